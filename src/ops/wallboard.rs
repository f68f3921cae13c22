//! The wallboard (sans-IO): live queue statistics for supervisors, from the event bus. Per
//! queue: callers waiting and the longest wait; the service level over the last 15 minutes and
//! over the day (UTC); average speed of answer and handle time; the abandon rate; the queue's
//! agents available, in a call, wrapping up, away.
//!
//! Definitions (the journal's and `trunkgate ctl queues`' too):
//! - service level: callers answered within the queue's `service_level_ms`, per caller
//!   answered or abandoned;
//! - ASA: the mean wait of the answered;
//! - AHT: per answered call, talk (holds included) plus the agent's wrap-up after it;
//! - abandon rate: callers who hung up waiting, per caller who left the queue (answered,
//!   abandoned or overflowed).
//!
//! Time comes with each event (its stamp) and with each view; nothing here reads a clock.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::agent::protocol::from_gateway::QueueBoard;
use crate::config::Config;
use crate::events::{AgentEvent, CallEvent, CallId, Event, EventKind};

/// The window of the "now" service level.
pub const RECENT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answered { within: bool },
    Abandoned,
    Overflowed,
}

#[derive(Debug, Default)]
struct Day {
    answered: u64,
    answered_within: u64,
    abandoned: u64,
    overflowed: u64,
    wait_total: Duration,
    handled: u64,
    handle_total: Duration,
}

#[derive(Debug, Default)]
struct Queue {
    service_level: Duration,
    /// The agents whose skills this queue asks for.
    eligible: BTreeSet<String>,
    recent: VecDeque<(SystemTime, Outcome)>,
    day: Day,
}

#[derive(Debug)]
struct Call {
    queue: String,
    /// While it waits.
    waiting_since: Option<SystemTime>,
    /// While an agent talks to it.
    talk_since: Option<SystemTime>,
    agent: Option<String>,
}

#[derive(Debug)]
struct Agent {
    state: &'static str,
    /// Since when it has been wrapping up, and after which queue's call.
    wrap_up: Option<(SystemTime, String)>,
    /// The queue of its last answered call: its wrap-up counts there.
    last_queue: Option<String>,
}

#[derive(Debug, Default)]
pub struct Wallboard {
    queues: BTreeMap<String, Queue>,
    calls: HashMap<CallId, Call>,
    agents: HashMap<String, Agent>,
    /// The UTC day the day's counts are of.
    today: u64,
}

fn utc_day(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or_default()
}

fn elapsed(since: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or_default()
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| round1(part as f64 * 100.0 / whole as f64))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl Wallboard {
    pub fn new(config: &Config) -> Self {
        let mut board = Wallboard::default();
        board.reconfigure(config);
        board
    }

    /// The queues and agents of a (re)loaded config; counts of queues that stay are kept.
    pub fn reconfigure(&mut self, config: &Config) {
        self.queues
            .retain(|name, _| config.queues.contains_key(name));
        for (name, q) in &config.queues {
            let entry = self.queues.entry(name.clone()).or_default();
            entry.service_level = q.service_level();
            entry.eligible = config
                .agent
                .iter()
                .filter(|a| a.supervises.is_empty())
                .filter(|a| q.skills.iter().all(|s| a.skills.contains(s)))
                .map(|a| a.id.clone())
                .collect();
        }
    }

    pub fn handle(&mut self, event: &Event) {
        self.roll_day(event.at);
        match &event.what {
            EventKind::Call { call, event: e } => self.call_event(event.at, *call, e),
            EventKind::Agent { agent, event: e } => self.agent_event(event.at, agent, e),
        }
    }

    /// A new UTC day starts the day's counts again.
    fn roll_day(&mut self, now: SystemTime) {
        let day = utc_day(now);
        if day != self.today {
            self.today = day;
            for q in self.queues.values_mut() {
                q.day = Day::default();
            }
        }
    }

    fn outcome(&mut self, at: SystemTime, queue: &str, outcome: Outcome, waited: Duration) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        q.recent.push_back((at, outcome));
        while q
            .recent
            .front()
            .is_some_and(|(t, _)| elapsed(*t, at) > RECENT)
        {
            q.recent.pop_front();
        }
        match outcome {
            Outcome::Answered { within } => {
                q.day.answered += 1;
                q.day.answered_within += u64::from(within);
                q.day.wait_total += waited;
            }
            Outcome::Abandoned => q.day.abandoned += 1,
            Outcome::Overflowed => q.day.overflowed += 1,
        }
    }

    fn call_event(&mut self, at: SystemTime, id: CallId, event: &CallEvent) {
        match event {
            CallEvent::Queued { queue, .. } => {
                self.calls.insert(
                    id,
                    Call {
                        queue: queue.clone(),
                        waiting_since: Some(at),
                        talk_since: None,
                        agent: None,
                    },
                );
            }
            CallEvent::AgentAnswered { agent } => {
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                call.talk_since = Some(at);
                call.agent = Some(agent.clone());
                let queue = call.queue.clone();
                if let Some(since) = call.waiting_since.take() {
                    let waited = elapsed(since, at);
                    let level = self
                        .queues
                        .get(&queue)
                        .map_or(Duration::ZERO, |q| q.service_level);
                    let within = waited <= level;
                    self.outcome(at, &queue, Outcome::Answered { within }, waited);
                }
                if let Some(a) = self.agents.get_mut(agent) {
                    a.last_queue = Some(queue);
                }
            }
            CallEvent::Requeued => {
                self.end_talk(at, id);
                if let Some(call) = self.calls.get_mut(&id) {
                    call.waiting_since = Some(at);
                }
            }
            CallEvent::Transferred { .. } => {
                // A transfer to a queue is a new wait there (its `queued` follows).
                self.end_talk(at, id);
                self.calls.remove(&id);
            }
            CallEvent::Overflowed { .. } => {
                if let Some(call) = self.calls.remove(&id) {
                    if let Some(since) = call.waiting_since {
                        self.outcome(at, &call.queue, Outcome::Overflowed, elapsed(since, at));
                    }
                }
            }
            CallEvent::Ended { .. } => {
                self.end_talk(at, id);
                if let Some(call) = self.calls.remove(&id) {
                    if let Some(since) = call.waiting_since {
                        self.outcome(at, &call.queue, Outcome::Abandoned, elapsed(since, at));
                    }
                }
            }
            _ => {}
        }
    }

    /// The agent's talk on `id` is over: it counts toward its queue's handle time.
    fn end_talk(&mut self, at: SystemTime, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(since) = call.talk_since.take() else {
            return;
        };
        if let Some(q) = self.queues.get_mut(&call.queue) {
            q.day.handled += 1;
            q.day.handle_total += elapsed(since, at);
        }
    }

    fn agent_event(&mut self, at: SystemTime, agent: &str, event: &AgentEvent) {
        match event {
            AgentEvent::LoggedIn { .. } => {
                self.agents.entry(agent.to_owned()).or_insert(Agent {
                    state: "away",
                    wrap_up: None,
                    last_queue: None,
                });
            }
            AgentEvent::StateChanged { state, .. } => {
                let Some(a) = self.agents.get_mut(agent) else {
                    return;
                };
                let name = state.name();
                if let Some((since, queue)) = a.wrap_up.take() {
                    if let Some(q) = self.queues.get_mut(&queue) {
                        q.day.handle_total += elapsed(since, at);
                    }
                }
                if name == "wrap_up" {
                    if let Some(queue) = a.last_queue.clone() {
                        a.wrap_up = Some((at, queue));
                    }
                }
                a.state = name;
            }
            AgentEvent::LoggedOut { .. } => {
                self.agents.remove(agent);
            }
            _ => {}
        }
    }

    /// Every queue's board at `now`.
    pub fn view(&self, now: SystemTime) -> Vec<QueueBoard> {
        let today = utc_day(now) == self.today;
        self.queues
            .iter()
            .map(|(name, q)| {
                let waits: Vec<Duration> = self
                    .calls
                    .values()
                    .filter(|c| &c.queue == name)
                    .filter_map(|c| c.waiting_since.map(|s| elapsed(s, now)))
                    .collect();
                let recent = q.recent.iter().filter(|(t, _)| elapsed(*t, now) <= RECENT);
                let (mut judged, mut within) = (0, 0);
                for (_, o) in recent {
                    match o {
                        Outcome::Answered { within: w } => {
                            judged += 1;
                            within += u64::from(*w);
                        }
                        Outcome::Abandoned => judged += 1,
                        Outcome::Overflowed => {}
                    }
                }
                let empty = Day::default();
                let d = if today { &q.day } else { &empty };
                let agents = |states: &[&str]| {
                    self.agents
                        .iter()
                        .filter(|(id, a)| q.eligible.contains(*id) && states.contains(&a.state))
                        .count() as u32
                };
                QueueBoard {
                    queue: name.clone(),
                    waiting: waits.len() as u32,
                    longest_wait_s: round1(
                        waits
                            .iter()
                            .max()
                            .copied()
                            .unwrap_or_default()
                            .as_secs_f64(),
                    ),
                    service_level_s: q.service_level.as_secs_f64(),
                    service_level_15m_pct: percent(within, judged),
                    service_level_day_pct: percent(d.answered_within, d.answered + d.abandoned),
                    asa_s: (d.answered > 0)
                        .then(|| round1(d.wait_total.as_secs_f64() / d.answered as f64)),
                    aht_s: (d.handled > 0)
                        .then(|| round1(d.handle_total.as_secs_f64() / d.handled as f64)),
                    abandon_rate_pct: percent(d.abandoned, d.answered + d.abandoned + d.overflowed),
                    answered: d.answered,
                    abandoned: d.abandoned,
                    agents_available: agents(&["available"]),
                    agents_in_call: agents(&["ringing", "talking"]),
                    agents_wrap_up: agents(&["wrap_up"]),
                    agents_away: agents(&["away"]),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
