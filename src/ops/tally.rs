//! What ops sees, kept from the event bus alone: the calls, agents and queues live now (for the
//! admin API and `trunkgate ctl`) and the Prometheus metrics. Sans-IO: events go in with their
//! own stamps, gauges are brought up to date with [`Tally::refresh`] at a given time.
//!
//! Queue figures count since the daemon started (Prometheus gives windows): service level is
//! the share of callers answered within the queue's `service_level_ms` among those answered or
//! abandoned; ASA the mean wait of answered callers; abandon rate the share of callers who hung
//! up waiting among all who left the queue.
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::metrics::Metrics;
use crate::config::Config;
use crate::events::{AgentEvent, CallEvent, CallId, Event, EventKind, LogoutReason};
use crate::queue::AgentState;

/// What a call is doing, for `ctl calls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Ringing,
    Answered,
    Ivr,
    Waiting,
    Offered,
    Talking,
    Held,
    AgentLost,
    /// The agent consults (or rings) an external number it transfers the caller to.
    Transferring,
    /// The caller talks to an external number the agent transferred it to.
    Transferred,
}

impl CallState {
    pub fn name(&self) -> &'static str {
        match self {
            CallState::Ringing => "ringing",
            CallState::Answered => "answered",
            CallState::Ivr => "ivr",
            CallState::Waiting => "waiting",
            CallState::Offered => "offered",
            CallState::Talking => "talking",
            CallState::Held => "held",
            CallState::AgentLost => "agent_lost",
            CallState::Transferring => "transferring",
            CallState::Transferred => "transferred",
        }
    }
}

#[derive(Debug, Clone)]
struct LiveCall {
    trunk: String,
    direction: &'static str,
    caller: String,
    callee: String,
    arrived: SystemTime,
    answered: Option<SystemTime>,
    state: CallState,
    menu: Option<String>,
    queue: Option<String>,
    /// Since when the caller has been waiting in `queue` (`None` once answered or gone on).
    waiting_since: Option<SystemTime>,
    agent: Option<String>,
    talk_since: Option<SystemTime>,
    hold_since: Option<SystemTime>,
}

#[derive(Debug, Clone)]
struct LiveAgent {
    state: &'static str,
    since: SystemTime,
    connected: bool,
}

#[derive(Debug, Clone, Default)]
struct QueueCounts {
    answered: u64,
    answered_in_service_level: u64,
    abandoned: u64,
    overflowed: u64,
    refused: u64,
    answered_wait_total: Duration,
}

/// One call, as `GET /v1/calls` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallView {
    pub call: CallId,
    pub trunk: String,
    pub caller: String,
    pub callee: String,
    pub state: CallState,
    pub menu: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    /// Since the carrier offered it.
    pub duration_s: f64,
    /// In the queue so far, while waiting.
    pub waiting_s: Option<f64>,
}

/// One agent, as `GET /v1/agents` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub agent: String,
    pub state: String,
    pub state_for_s: f64,
    /// False while its connection is gone and the session waits for a resume.
    pub connected: bool,
    pub call: Option<CallId>,
}

/// One queue, as `GET /v1/queues` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    pub queue: String,
    pub waiting: usize,
    pub longest_wait_s: f64,
    pub answered: u64,
    pub abandoned: u64,
    pub overflowed: u64,
    pub refused: u64,
    /// Answered within `service_level_ms` per answered or abandoned caller, in percent; `None`
    /// before the first such caller.
    pub service_level_pct: Option<f64>,
    pub service_level_s: f64,
    /// Average speed of answer.
    pub asa_s: Option<f64>,
    pub abandon_rate_pct: Option<f64>,
    /// Agents who could take this queue's calls (configured skills), by what they do now.
    pub agents_available: usize,
    pub agents_busy: usize,
}

pub struct Tally {
    metrics: Metrics,
    calls: BTreeMap<CallId, LiveCall>,
    agents: BTreeMap<String, LiveAgent>,
    queues: BTreeMap<String, (Duration, QueueCounts)>,
    /// Which configured agents may take each queue's calls.
    eligible: BTreeMap<String, BTreeSet<String>>,
    trunks: BTreeSet<String>,
    /// Ids that log in as supervisors: not agents, in the views or the gauges.
    supervisors: BTreeSet<String>,
}

/// The `direction` label: a call a carrier offered, or one an agent placed.
const INBOUND: &str = "inbound";
const OUTBOUND: &str = "outbound";

const AGENT_STATES: [&str; 5] = ["away", "available", "ringing", "talking", "wrap_up"];

impl Tally {
    pub fn new(config: &Config) -> Tally {
        let mut tally = Tally {
            metrics: Metrics::new(),
            calls: BTreeMap::new(),
            agents: BTreeMap::new(),
            queues: BTreeMap::new(),
            eligible: BTreeMap::new(),
            trunks: BTreeSet::new(),
            supervisors: BTreeSet::new(),
        };
        tally.reconfigure(config);
        tally
    }

    /// Queues, their service levels and skilled agents, and trunks from `config` (at start and
    /// on reload); counts so far are kept.
    pub fn reconfigure(&mut self, config: &Config) {
        let mut eligible = BTreeMap::new();
        for (name, q) in &config.queues {
            let agents = config
                .agent
                .iter()
                .filter(|a| q.skills.iter().all(|s| a.skills.contains(s)))
                .map(|a| a.id.clone())
                .collect();
            eligible.insert(name.clone(), agents);
            let entry = self.queues.entry(name.clone()).or_default();
            entry.0 = q.service_level();
        }
        self.eligible = eligible;
        self.supervisors = config
            .agent
            .iter()
            .filter(|a| !a.supervises.is_empty())
            .map(|a| a.id.clone())
            .collect();
        let metrics = &self.metrics;
        // Series of configured names exist from the start at zero, so the first failure of a
        // kind shows in `rate()` and `increase()`.
        for trunk in &config.trunks {
            self.trunks.insert(trunk.name.clone());
            metrics
                .calls_started
                .with_label_values(&[&trunk.name, INBOUND]);
            for side in ["caller", "agent", "gateway"] {
                for cause in CAUSES {
                    metrics
                        .calls_ended
                        .with_label_values(&[&trunk.name, INBOUND, side, cause]);
                }
            }
        }
        for queue in config.queues.keys() {
            for outcome in ["answered", "abandoned", "overflowed", "refused"] {
                metrics.queue_calls.with_label_values(&[queue, outcome]);
            }
            metrics
                .queue_answered_in_service_level
                .with_label_values(&[queue]);
        }
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn handle(&mut self, event: &Event) {
        let at = event.at;
        match &event.what {
            EventKind::Call { call, event } => self.call_event(at, *call, event),
            EventKind::Agent { agent, event } => self.agent_event(at, agent, event),
        }
    }

    fn call_event(&mut self, at: SystemTime, id: CallId, event: &CallEvent) {
        let started = match event {
            CallEvent::Arrived {
                trunk,
                caller,
                callee,
                ..
            } => Some((trunk, caller, callee, INBOUND)),
            CallEvent::Dialled {
                trunk,
                caller_id,
                callee,
                ..
            } => Some((trunk, caller_id, callee, OUTBOUND)),
            _ => None,
        };
        if let Some((trunk, caller, callee, direction)) = started {
            self.trunks.insert(trunk.clone());
            self.metrics
                .calls_started
                .with_label_values(&[trunk, direction])
                .inc();
            self.calls.insert(
                id,
                LiveCall {
                    trunk: trunk.clone(),
                    direction,
                    caller: caller.clone(),
                    callee: callee.clone(),
                    arrived: at,
                    answered: None,
                    state: CallState::Ringing,
                    menu: None,
                    queue: None,
                    waiting_since: None,
                    agent: None,
                    talk_since: None,
                    hold_since: None,
                },
            );
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let m = &self.metrics;
        match event {
            CallEvent::Arrived { .. } | CallEvent::Dialled { .. } => {}
            CallEvent::Ringing { .. } => {}
            CallEvent::Answered => {
                call.answered = Some(at);
                call.state = CallState::Answered;
            }
            CallEvent::EnteredMenu { menu } => {
                call.state = CallState::Ivr;
                call.menu = Some(menu.clone());
            }
            CallEvent::LeftIvr { .. }
            | CallEvent::Digits { .. }
            | CallEvent::Announced { .. }
            | CallEvent::CarrierHeld { .. } => {}
            CallEvent::Queued { queue, .. } => {
                call.state = CallState::Waiting;
                call.menu = None;
                call.queue = Some(queue.clone());
                call.waiting_since = Some(at);
            }
            CallEvent::QueueRefused { queue, .. } => {
                m.queue_calls.with_label_values(&[queue, "refused"]).inc();
                if let Some((_, counts)) = self.queues.get_mut(queue) {
                    counts.refused += 1;
                }
            }
            CallEvent::Offered { agent } => {
                call.state = CallState::Offered;
                call.agent = Some(agent.clone());
            }
            CallEvent::AgentAnswered { agent } => {
                call.state = CallState::Talking;
                call.agent = Some(agent.clone());
                call.talk_since = Some(at);
                if let (Some(queue), Some(since)) = (&call.queue, call.waiting_since.take()) {
                    let waited = elapsed(since, at);
                    m.queue_calls.with_label_values(&[queue, "answered"]).inc();
                    m.queue_wait_seconds
                        .with_label_values(&[queue, "answered"])
                        .observe(waited.as_secs_f64());
                    if let Some((level, counts)) = self.queues.get_mut(queue) {
                        counts.answered += 1;
                        counts.answered_wait_total += waited;
                        if waited <= *level {
                            counts.answered_in_service_level += 1;
                            m.queue_answered_in_service_level
                                .with_label_values(&[queue])
                                .inc();
                        }
                    }
                }
            }
            CallEvent::Held { on } => {
                if *on {
                    call.state = CallState::Held;
                    call.hold_since = Some(at);
                } else {
                    call.state = CallState::Talking;
                    if let Some(since) = call.hold_since.take() {
                        let queue = call.queue.clone().unwrap_or_default();
                        m.agent_hold_seconds
                            .with_label_values(&[&queue])
                            .observe(elapsed(since, at).as_secs_f64());
                    }
                }
            }
            CallEvent::AgentAudio { flowing } => {
                if !flowing {
                    m.agent_audio_stalls.inc();
                }
            }
            CallEvent::AgentLink { poor, .. } => {
                if *poor {
                    m.agent_link_poor.inc();
                }
            }
            CallEvent::Recording { .. } | CallEvent::Supervised { .. } => {}
            CallEvent::HelpRequested { .. } => {
                let queue = call.queue.clone().unwrap_or_default();
                m.help_requests.with_label_values(&[&queue]).inc();
            }
            CallEvent::Recorded {
                duration,
                started_by,
                ..
            } => {
                let by = match started_by.as_str() {
                    "policy" | "admin" => started_by.as_str(),
                    _ => "agent",
                };
                m.recordings.with_label_values(&[by]).inc();
                m.recorded_seconds.inc_by(duration.as_secs_f64());
            }
            CallEvent::AgentLost => call.state = CallState::AgentLost,
            CallEvent::AgentResumed => call.state = CallState::Talking,
            // Counted by the agent link itself (trunkgate_agent_migrations_total).
            CallEvent::AgentMoved => {}
            CallEvent::Transferred { to, .. } => {
                // The agent's talk ends; the caller waits in the new queue (its `queued` next)
                // or talks to the external number now.
                observe_talk(m, call, at);
                call.talk_since = None;
                call.hold_since = None;
                call.state = if to.starts_with("queue:") || to.starts_with("agent:") {
                    CallState::Waiting
                } else {
                    CallState::Transferred
                };
                call.agent = None;
            }
            CallEvent::TransferDialled { .. } => call.state = CallState::Transferring,
            CallEvent::TransferLegEnded { .. } => {
                if call.state == CallState::Transferring {
                    call.state = CallState::Talking;
                }
            }
            CallEvent::Requeued => {
                // The talk so far ends; the caller waits again from now.
                observe_talk(m, call, at);
                call.talk_since = None;
                call.hold_since = None;
                call.state = CallState::Waiting;
                call.agent = None;
                call.waiting_since = Some(at);
            }
            CallEvent::Overflowed { queue, .. } => {
                if let Some(since) = call.waiting_since.take() {
                    m.queue_wait_seconds
                        .with_label_values(&[queue, "overflowed"])
                        .observe(elapsed(since, at).as_secs_f64());
                }
                m.queue_calls
                    .with_label_values(&[queue, "overflowed"])
                    .inc();
                if let Some((_, counts)) = self.queues.get_mut(queue) {
                    counts.overflowed += 1;
                }
                call.queue = None;
                call.state = CallState::Answered;
            }
            CallEvent::Ended {
                side,
                cause,
                quality,
                ..
            } => {
                let Some(call) = self.calls.remove(&id) else {
                    return;
                };
                let m = &self.metrics;
                m.calls_ended
                    .with_label_values(&[
                        &call.trunk,
                        call.direction,
                        &side.to_string(),
                        cause.code(),
                    ])
                    .inc();
                if let Some(answered) = call.answered {
                    m.call_answered_seconds
                        .with_label_values(&[&call.trunk])
                        .observe(elapsed(answered, at).as_secs_f64());
                }
                if let (Some(queue), Some(since)) = (&call.queue, call.waiting_since) {
                    m.queue_calls.with_label_values(&[queue, "abandoned"]).inc();
                    m.queue_wait_seconds
                        .with_label_values(&[queue, "abandoned"])
                        .observe(elapsed(since, at).as_secs_f64());
                    if let Some((_, counts)) = self.queues.get_mut(queue) {
                        counts.abandoned += 1;
                    }
                }
                observe_talk(m, &call, at);
                let c = &quality.carrier;
                observe_leg(
                    m,
                    "carrier",
                    LegFigures {
                        received: c.packets_received,
                        sent: c.packets_sent,
                        lost: c.packets_lost.max(0) as u64,
                        late: None,
                        rebuilt: None,
                        concealed: c.concealed_frames,
                        jitter_ms: c.jitter_ms,
                        delay: c.jitter_buffer_delay,
                        mos: c.estimated_mos(),
                    },
                );
                if let Some(a) = &quality.agent {
                    observe_leg(
                        m,
                        "agent",
                        LegFigures {
                            received: a.packets,
                            sent: a.packets_sent,
                            lost: a.lost,
                            late: Some(a.late),
                            rebuilt: Some((a.recovered_by_fec, a.recovered_by_redundancy)),
                            concealed: a.concealed_frames,
                            jitter_ms: a.jitter_ms,
                            delay: a.jitter_buffer_delay,
                            mos: a.estimated_mos(),
                        },
                    );
                }
                if call.answered.is_some() {
                    m.frame_delay_seconds
                        .observe(quality.frame_delay_max.as_secs_f64());
                }
            }
        }
    }

    fn agent_event(&mut self, at: SystemTime, agent: &str, event: &AgentEvent) {
        let m = &self.metrics;
        if self.supervisors.contains(agent) {
            if let AgentEvent::Refused { what, .. } = event {
                m.supervisor_refusals.with_label_values(&[what]).inc();
            }
            return;
        }
        match event {
            AgentEvent::Chat { .. } => {}
            AgentEvent::Refused { what, .. } => {
                m.supervisor_refusals.with_label_values(&[what]).inc();
            }
            AgentEvent::DialRefused { reason, .. } => {
                m.outbound_refused.with_label_values(&[reason]).inc();
            }
            AgentEvent::LoggedIn { resumed } => {
                if *resumed {
                    m.agent_resumes.inc();
                }
                let entry = self.agents.entry(agent.to_string()).or_insert(LiveAgent {
                    state: "away",
                    since: at,
                    connected: true,
                });
                entry.connected = true;
            }
            AgentEvent::StateChanged { state, .. } => {
                let name = state.name();
                if name == AgentState::LoggedOut.name() {
                    return;
                }
                let entry = self.agents.entry(agent.to_string()).or_insert(LiveAgent {
                    state: name,
                    since: at,
                    connected: true,
                });
                if entry.state == "wrap_up" && name != "wrap_up" {
                    m.agent_wrap_up_seconds
                        .observe(elapsed(entry.since, at).as_secs_f64());
                }
                if entry.state != name {
                    entry.state = name;
                    entry.since = at;
                }
            }
            // Codes are the contact center's own words: no metric label for them.
            AgentEvent::Disposition { .. } | AgentEvent::ConnectionMoved => {}
            AgentEvent::ConnectionLost => {
                m.agent_connections_lost.inc();
                if let Some(a) = self.agents.get_mut(agent) {
                    a.connected = false;
                }
            }
            AgentEvent::LoggedOut { reason } => {
                if let Some(a) = self.agents.get(agent).filter(|a| a.state == "wrap_up") {
                    m.agent_wrap_up_seconds
                        .observe(elapsed(a.since, at).as_secs_f64());
                }
                let reason = match reason {
                    LogoutReason::Gone => "gone",
                    LogoutReason::Replaced => "replaced",
                    LogoutReason::Revoked => "revoked",
                    LogoutReason::Logout => "logout",
                    LogoutReason::Shutdown => "shutdown",
                };
                m.agent_logouts.with_label_values(&[reason]).inc();
                self.agents.remove(agent);
            }
        }
    }

    /// Brings the gauges (calls active, agents by state, callers waiting, longest waits) to `now`.
    pub fn refresh(&self, now: SystemTime, dropped_by_feed: &[(String, u64)]) {
        let m = &self.metrics;
        for trunk in &self.trunks {
            for direction in [INBOUND, OUTBOUND] {
                let active = self
                    .calls
                    .values()
                    .filter(|c| &c.trunk == trunk && c.direction == direction)
                    .count();
                m.calls_active
                    .with_label_values(&[trunk, direction])
                    .set(active as i64);
            }
        }
        for state in AGENT_STATES {
            let n = self.agents.values().filter(|a| a.state == state).count();
            m.agents.with_label_values(&[state]).set(n as i64);
        }
        for connected in [true, false] {
            let n = self
                .agents
                .values()
                .filter(|a| a.connected == connected)
                .count();
            let label = if connected { "1" } else { "0" };
            m.agents_connected.with_label_values(&[label]).set(n as i64);
        }
        for queue in self.queues.keys() {
            let (waiting, longest) = self.waiting_in(queue, now);
            m.queue_waiting
                .with_label_values(&[queue])
                .set(waiting as i64);
            m.queue_longest_wait_seconds
                .with_label_values(&[queue])
                .set(longest.as_secs_f64());
        }
        for (feed, dropped) in dropped_by_feed {
            m.event_feed_dropped
                .with_label_values(&[feed])
                .set(*dropped as i64);
        }
    }

    fn waiting_in(&self, queue: &str, now: SystemTime) -> (usize, Duration) {
        let waits: Vec<Duration> = self
            .calls
            .values()
            .filter(|c| c.queue.as_deref() == Some(queue))
            .filter_map(|c| c.waiting_since.map(|since| elapsed(since, now)))
            .collect();
        (waits.len(), waits.into_iter().max().unwrap_or_default())
    }

    pub fn calls(&self, now: SystemTime) -> Vec<CallView> {
        self.calls
            .iter()
            .map(|(id, c)| CallView {
                call: *id,
                trunk: c.trunk.clone(),
                caller: c.caller.clone(),
                callee: c.callee.clone(),
                state: c.state.clone(),
                menu: c.menu.clone(),
                queue: c.queue.clone(),
                agent: c.agent.clone(),
                duration_s: secs(elapsed(c.arrived, now)),
                waiting_s: c.waiting_since.map(|since| secs(elapsed(since, now))),
            })
            .collect()
    }

    pub fn agents(&self, now: SystemTime) -> Vec<AgentView> {
        self.agents
            .iter()
            .map(|(name, a)| AgentView {
                agent: name.clone(),
                state: a.state.to_string(),
                state_for_s: secs(elapsed(a.since, now)),
                connected: a.connected,
                call: self
                    .calls
                    .iter()
                    .find(|(_, c)| c.agent.as_deref() == Some(name))
                    .map(|(id, _)| *id),
            })
            .collect()
    }

    pub fn queues(&self, now: SystemTime) -> Vec<QueueView> {
        self.queues
            .iter()
            .map(|(name, (level, counts))| {
                let (waiting, longest) = self.waiting_in(name, now);
                let eligible = self.eligible.get(name);
                let count = |busy: bool| {
                    self.agents
                        .iter()
                        .filter(|(a, _)| eligible.is_some_and(|e| e.contains(*a)))
                        .filter(|(_, a)| match a.state {
                            "available" => !busy,
                            "ringing" | "talking" | "wrap_up" => busy,
                            _ => false,
                        })
                        .count()
                };
                let judged = counts.answered + counts.abandoned;
                let left = judged + counts.overflowed;
                QueueView {
                    queue: name.clone(),
                    waiting,
                    longest_wait_s: secs(longest),
                    answered: counts.answered,
                    abandoned: counts.abandoned,
                    overflowed: counts.overflowed,
                    refused: counts.refused,
                    service_level_pct: percent(counts.answered_in_service_level, judged),
                    service_level_s: secs(*level),
                    asa_s: (counts.answered > 0)
                        .then(|| secs(counts.answered_wait_total) / counts.answered as f64),
                    abandon_rate_pct: percent(counts.abandoned, left),
                    agents_available: count(false),
                    agents_busy: count(true),
                }
            })
            .collect()
    }
}

/// A talk that ends now (the call ended or went back to the queue) counts toward handle time.
/// One leg's media figures at a call's end, carrier or agent alike.
struct LegFigures {
    received: u64,
    sent: u64,
    lost: u64,
    /// Counted only where a jitter buffer tells late from lost (the agent leg).
    late: Option<u64>,
    /// Lost packets' frames rebuilt from Opus FEC and from redundant copies (the agent leg).
    rebuilt: Option<(u64, u64)>,
    concealed: u64,
    jitter_ms: f64,
    delay: Option<Duration>,
    mos: Option<f64>,
}

fn observe_leg(m: &Metrics, leg: &str, f: LegFigures) {
    let leg = [leg];
    m.rtp_packets_received
        .with_label_values(&leg)
        .inc_by(f.received);
    m.rtp_packets_sent.with_label_values(&leg).inc_by(f.sent);
    m.rtp_packets_lost.with_label_values(&leg).inc_by(f.lost);
    if let Some(late) = f.late {
        m.rtp_packets_late.with_label_values(&leg).inc_by(late);
    }
    m.concealed_frames
        .with_label_values(&leg)
        .inc_by(f.concealed);
    if let Some((fec, redundancy)) = f.rebuilt {
        for (by, frames) in [("fec", fec), ("redundancy", redundancy)] {
            m.rebuilt_frames
                .with_label_values(&[leg[0], by])
                .inc_by(frames);
        }
    }
    // A leg that received nothing has no jitter to speak of.
    if f.received > 0 {
        m.jitter_seconds
            .with_label_values(&leg)
            .observe(f.jitter_ms / 1000.0);
    }
    if let Some(delay) = f.delay {
        m.jitter_buffer_delay_seconds
            .with_label_values(&leg)
            .observe(delay.as_secs_f64());
    }
    if let Some(mos) = f.mos {
        m.call_mos.with_label_values(&leg).observe(mos);
    }
}

fn observe_talk(m: &Metrics, call: &LiveCall, at: SystemTime) {
    if let Some(since) = call.talk_since {
        let queue = call.queue.clone().unwrap_or_default();
        m.agent_talk_seconds
            .with_label_values(&[&queue])
            .observe(elapsed(since, at).as_secs_f64());
    }
}

const CAUSES: [&str; 14] = [
    "caller_hung_up",
    "caller_cancelled",
    "no_confirmation",
    "media_timeout",
    "refused",
    "ivr_hangup",
    "queue_hangup",
    "agent_hung_up",
    "unroutable",
    "signalling_failed",
    "shutdown",
    "bridge_failed",
    "session_expired",
    "transferred_out",
];

fn elapsed(since: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or_default()
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

#[cfg(test)]
mod tests;
