//! The ACD core: all queues and all agents of one gateway, as a sans-IO state machine.
//!
//! The shell feeds it what happened (an agent logged in, a caller arrived, an offer was
//! answered, time passed) and carries out what it asks for through [`AcdEvent`]s: ring this
//! agent, stop ringing, play an announcement, send this caller to overflow.
//!
//! # Rules
//! - **Order.** Callers are served first come, first served across all queues an agent can
//!   serve, except that a caller put back by [`Acd::requeue_at_head`] goes ahead of everyone who
//!   was not (among such callers, the earlier arrival first).
//! - **Selection.** A caller is offered to the available agent with every skill of its queue
//!   who has been idle longest: since their last wrap-up ended or since they became available.
//!   Ties go to the earlier login. One offer per agent and per caller at a time.
//! - **Unanswered offers.** An offer that rings out (`ring_timeout_ms`) is withdrawn, the agent
//!   is set away (someone who does not answer is not at their desk, and would otherwise steal
//!   ring time from every caller in turn), and the caller is offered to the next agent. An offer
//!   the agent declines ([`Acd::offer_rejected`]) leaves the agent available, since they are
//!   plainly present, but that caller is never offered to them again.
//! - **Wrap-up.** When a call ends the agent is in wrap-up for the queue's `wrap_up_ms`, then
//!   available (or away, if they asked to be while talking).
//! - **Announcements** come at `first_announce_ms` after entering the queue, then every
//!   `announce_every_ms`, on a fixed schedule. A slot that falls while the caller's offer is
//!   ringing is skipped: an agent is about to answer, and "you are caller number one" would be
//!   cut off mid-word.
//! - **Overflow** applies `max_wait_ms` after entering the queue, when the caller has no offer
//!   and none can be made. Max wait is how long a caller waits for an agent to *become* free; a
//!   caller whose offer is ringing at that moment keeps it, and overflows only if it fails and
//!   no other agent can be offered at once. With no agents at all, overflow is exact.
//! - **Agent lost mid-call.** [`Acd::requeue_at_head`] (or logging out an agent who is talking)
//!   puts the caller back at the head of their queue, with a fresh max wait and announcement
//!   schedule, and offers them at once if an agent is free.
//!
//! # Estimated wait
//! `position × average handle time ÷ staffed agents`, where the handle time is talk time plus
//! the queue's wrap-up, averaged over the queue's last [`HANDLE_TIME_SAMPLES`] calls, and staffed
//! agents are those logged in, not away, with the queue's skills. Unknown (`None`) before the
//! queue's first call has ended or while nobody is staffed: no number beats a made-up one.
//!
//! Every [`AcdEvent::Offer`] ends in exactly one of: [`Acd::offer_accepted`] returning `Ok`, or
//! an [`AcdEvent::OfferWithdrawn`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::agents::{Agent, Agents};
use super::config::QueueConfig;
use super::events::{
    AcdError, AcdEvent, AcdSnapshot, AgentState, CallRef, CallerState, QueueSnapshot,
    WithdrawReason,
};
use crate::ivr::config::Action;

#[cfg(test)]
mod consistency;
mod timers;

/// How many recent calls per queue the estimated wait averages over: enough to smooth one odd
/// call, few enough to follow a change of pace within the hour.
pub const HANDLE_TIME_SAMPLES: usize = 20;

#[derive(Debug, Clone)]
struct Caller {
    queue: String,
    /// Arrival order, the first-come-first-served key.
    arrival: u64,
    /// Put back after losing an agent: ahead of every caller who was not.
    requeued: bool,
    phase: Phase,
    /// Start of the current wait; max wait and announcements count from here.
    waiting_since: Instant,
    overflow_at: Instant,
    next_announcement: Option<Instant>,
    /// Agents who declined this caller; they are not offered it again.
    declined_by: BTreeSet<String>,
    /// Transferred to this agent: offered to nobody else.
    for_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Waiting,
    Ringing { agent: String, until: Instant },
    Connected { agent: String, since: Instant },
}

impl Caller {
    /// Smaller is served first.
    fn order(&self) -> (bool, u64) {
        (!self.requeued, self.arrival)
    }

    fn is_queued(&self) -> bool {
        !matches!(self.phase, Phase::Connected { .. })
    }
}

/// All queues and agents of one gateway.
#[derive(Debug)]
pub struct Acd {
    config: Arc<BTreeMap<String, QueueConfig>>,
    agents: Agents,
    callers: BTreeMap<CallRef, Caller>,
    next_arrival: u64,
    handle_times: BTreeMap<String, VecDeque<Duration>>,
    events: VecDeque<AcdEvent>,
}

impl Acd {
    pub fn new(config: Arc<BTreeMap<String, QueueConfig>>) -> Self {
        Acd {
            config,
            agents: Agents::default(),
            callers: BTreeMap::new(),
            next_arrival: 0,
            handle_times: BTreeMap::new(),
            events: VecDeque::new(),
        }
    }

    pub fn queue_config(&self, queue: &str) -> Option<&QueueConfig> {
        self.config.get(queue)
    }

    /// New queue definitions (a config reload): callers already waiting keep their place and
    /// their deadlines; a queue gone from the new config keeps its old definition while it
    /// still has callers, so they are served to the end.
    pub fn set_config(&mut self, config: Arc<BTreeMap<String, QueueConfig>>) {
        let mut merged = (*config).clone();
        for caller in self.callers.values() {
            if !merged.contains_key(&caller.queue) {
                if let Some(old) = self.config.get(&caller.queue) {
                    merged.insert(caller.queue.clone(), old.clone());
                }
            }
        }
        self.config = Arc::new(merged);
    }

    // --- agents -------------------------------------------------------------------------------

    /// Logs an agent in, away. Logging in again (a reconnecting client) only updates the skills.
    pub fn agent_login(&mut self, now: Instant, agent: &str, skills: &[String]) {
        if self.agents.login(now, agent, skills) {
            self.emit_agent_state(agent, AgentState::Away);
        }
        self.dispatch(now);
    }

    /// Ready for calls. Ends wrap-up early; while talking, cancels an earlier request to go away
    /// after the call; while ringing, changes nothing.
    pub fn agent_available(&mut self, now: Instant, agent: &str) -> Result<(), AcdError> {
        let entry = self.agent_mut(agent)?;
        match entry.state {
            AgentState::Away | AgentState::WrapUp { .. } => {
                entry.idle_since = now;
                entry.away_after_call = false;
                self.set_agent_state(agent, AgentState::Available);
            }
            AgentState::Talking { .. } => entry.away_after_call = false,
            AgentState::Available | AgentState::Ringing { .. } | AgentState::LoggedOut => {}
        }
        self.dispatch(now);
        Ok(())
    }

    /// Not ready for calls. A ringing offer is withdrawn and goes to the next agent; while
    /// talking, the agent goes away once the call and its wrap-up are over.
    pub fn agent_away(&mut self, now: Instant, agent: &str) -> Result<(), AcdError> {
        let entry = self.agent_mut(agent)?;
        match entry.state {
            AgentState::Talking { .. } => entry.away_after_call = true,
            AgentState::Ringing { call } => {
                self.withdraw_offer(call, WithdrawReason::AgentAway);
                self.set_agent_state(agent, AgentState::Away);
            }
            AgentState::Available | AgentState::WrapUp { .. } => {
                self.set_agent_state(agent, AgentState::Away)
            }
            AgentState::Away | AgentState::LoggedOut => {}
        }
        self.dispatch(now);
        Ok(())
    }

    /// The agent is gone for good (after the agent link's resume grace). A ringing offer moves
    /// on; a caller they were talking to goes back to the head of the queue.
    pub fn agent_logout(&mut self, now: Instant, agent: &str) -> Result<(), AcdError> {
        let entry = self.agent_mut(agent)?;
        match entry.state {
            AgentState::Ringing { call } => {
                self.withdraw_offer(call, WithdrawReason::AgentLoggedOut);
            }
            AgentState::Talking { call } => self.put_back_at_head(now, call),
            _ => {}
        }
        self.agents.remove(agent);
        self.emit_agent_state(agent, AgentState::LoggedOut);
        self.dispatch(now);
        Ok(())
    }

    /// The agent places `call`: it is talking on it and gets no offers until it is over.
    /// An agent who was away is away again afterwards.
    pub fn agent_dialing(
        &mut self,
        _now: Instant,
        agent: &str,
        call: CallRef,
    ) -> Result<(), AcdError> {
        let entry = self.agent_mut(agent)?;
        match entry.state {
            AgentState::Away => entry.away_after_call = true,
            AgentState::Available | AgentState::WrapUp { .. } => entry.away_after_call = false,
            AgentState::Ringing { .. } | AgentState::Talking { .. } | AgentState::LoggedOut => {
                return Err(AcdError::AgentBusy(agent.to_owned()))
            }
        }
        self.set_agent_state(agent, AgentState::Talking { call });
        Ok(())
    }

    /// A call the agent placed is over: wrap-up for `wrap_up` (none after an unanswered
    /// one), then back to where the agent was before dialling.
    pub fn placed_call_ended(
        &mut self,
        now: Instant,
        agent: &str,
        call: CallRef,
        wrap_up: Duration,
    ) {
        if self.agent_state(agent) == Some(AgentState::Talking { call }) {
            self.start_wrap_up(now, agent, wrap_up);
            self.dispatch(now);
        }
    }

    /// Whether `agent` is logged in with the skills `queue` asks for: one of its agents.
    pub fn agent_serves(&self, agent: &str, queue: &str) -> bool {
        self.config
            .get(queue)
            .is_some_and(|q| self.agents.serves(agent, &q.skills))
    }

    pub fn agent_state(&self, agent: &str) -> Option<AgentState> {
        self.agents.get(agent).map(|entry| entry.state)
    }

    // --- callers ------------------------------------------------------------------------------

    /// A caller arrives at the tail of `queue`, and is offered at once if an agent is free.
    pub fn enqueue(&mut self, now: Instant, call: CallRef, queue: &str) -> Result<(), AcdError> {
        let config = self
            .config
            .get(queue)
            .ok_or_else(|| AcdError::UnknownQueue(queue.to_owned()))?;
        if self.callers.contains_key(&call) {
            return Err(AcdError::CallAlreadyQueued(call));
        }
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        let caller = Caller {
            queue: queue.to_owned(),
            arrival,
            requeued: false,
            phase: Phase::Waiting,
            waiting_since: now,
            overflow_at: now + config.max_wait(),
            next_announcement: config
                .announce_every()
                .map(|_| now + config.first_announce()),
            declined_by: BTreeSet::new(),
            for_agent: None,
        };
        self.callers.insert(call, caller);
        self.dispatch(now);
        Ok(())
    }

    /// The agent of a connected call vanished (their link's resume grace ran out): the caller
    /// goes back to the head of their queue and is offered to the next free agent at once. The
    /// agent, if still logged in, is set away. Emits [`AcdEvent::CallerRequeued`].
    pub fn requeue_at_head(&mut self, now: Instant, call: CallRef) -> Result<(), AcdError> {
        let caller = self.callers.get(&call).ok_or(AcdError::UnknownCall(call))?;
        let Phase::Connected { agent, .. } = &caller.phase else {
            return Err(AcdError::NotConnected(call));
        };
        let agent = agent.clone();
        self.put_back_at_head(now, call);
        if let Some(entry) = self.agents.get_mut(&agent) {
            entry.away_after_call = false;
            self.set_agent_state(&agent, AgentState::Away);
        }
        self.dispatch(now);
        Ok(())
    }

    /// The call is over, whoever hung up and wherever it was: a waiting caller leaves the
    /// queue, a ringing offer is withdrawn (the agent stays available and keeps their place in
    /// line), a connected agent goes into wrap-up.
    pub fn call_ended(&mut self, now: Instant, call: CallRef) -> Result<(), AcdError> {
        let caller = self.callers.get(&call).ok_or(AcdError::UnknownCall(call))?;
        match caller.phase.clone() {
            Phase::Waiting => {}
            Phase::Ringing { agent, .. } => {
                self.withdraw_offer(call, WithdrawReason::CallerGone);
                self.set_agent_state(&agent, AgentState::Available);
            }
            Phase::Connected { agent, since } => {
                let wrap_up = self.wrap_up_of(&caller.queue);
                let samples = self.handle_times.entry(caller.queue.clone()).or_default();
                if samples.len() == HANDLE_TIME_SAMPLES {
                    samples.pop_front();
                }
                samples.push_back(now.saturating_duration_since(since) + wrap_up);
                self.start_wrap_up(now, &agent, wrap_up);
            }
        }
        self.callers.remove(&call);
        self.dispatch(now);
        Ok(())
    }

    /// The agent talking to `call` hands it on (a blind transfer): the agent goes into its
    /// wrap-up, and the caller waits in `queue` as a new arrival, for `only_agent` alone if
    /// given (an agent who declines or lets it ring out leaves it waiting for them until the
    /// queue's overflow). Returns the agent who transferred it.
    pub fn transfer(
        &mut self,
        now: Instant,
        call: CallRef,
        queue: &str,
        only_agent: Option<&str>,
    ) -> Result<String, AcdError> {
        let config = self
            .config
            .get(queue)
            .ok_or_else(|| AcdError::UnknownQueue(queue.to_owned()))?;
        let overflow_at = now + config.max_wait();
        let next_announcement = config
            .announce_every()
            .map(|_| now + config.first_announce());
        let caller = self.callers.get(&call).ok_or(AcdError::UnknownCall(call))?;
        let Phase::Connected { agent, since } = caller.phase.clone() else {
            return Err(AcdError::NotConnected(call));
        };
        let old_queue = caller.queue.clone();
        let wrap_up = self.wrap_up_of(&old_queue);
        let samples = self.handle_times.entry(old_queue).or_default();
        if samples.len() == HANDLE_TIME_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(now.saturating_duration_since(since) + wrap_up);
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        if let Some(caller) = self.callers.get_mut(&call) {
            caller.queue = queue.to_owned();
            caller.arrival = arrival;
            caller.requeued = false;
            caller.phase = Phase::Waiting;
            caller.waiting_since = now;
            caller.overflow_at = overflow_at;
            caller.next_announcement = next_announcement;
            caller.declined_by.clear();
            caller.for_agent = only_agent.map(str::to_owned);
        }
        self.start_wrap_up(now, &agent, wrap_up);
        self.dispatch(now);
        Ok(agent)
    }

    // --- offers -------------------------------------------------------------------------------

    /// The agent answered: caller and agent are connected. Fails if the offer is no longer
    /// theirs (withdrawn a moment earlier); the shell then tells the agent the call is gone.
    pub fn offer_accepted(
        &mut self,
        now: Instant,
        call: CallRef,
        agent: &str,
    ) -> Result<(), AcdError> {
        let caller = self.ringing_caller_mut(call, agent)?;
        caller.phase = Phase::Connected {
            agent: agent.to_owned(),
            since: now,
        };
        caller.next_announcement = None;
        self.set_agent_state(agent, AgentState::Talking { call });
        Ok(())
    }

    /// The agent declined: the caller goes to the next agent and is not offered to this one
    /// again; the agent stays available for other callers.
    pub fn offer_rejected(
        &mut self,
        now: Instant,
        call: CallRef,
        agent: &str,
    ) -> Result<(), AcdError> {
        let caller = self.ringing_caller_mut(call, agent)?;
        caller.declined_by.insert(agent.to_owned());
        self.withdraw_offer(call, WithdrawReason::Rejected);
        self.set_agent_state(agent, AgentState::Available);
        self.dispatch(now);
        Ok(())
    }

    // --- time ---------------------------------------------------------------------------------

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }

    /// Fires every timer due at `now`, each at its own instant, in order.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, timer)) = self.next_timer().filter(|(at, _)| *at <= now) {
            self.fire(at, now, timer);
            self.dispatch(at);
        }
    }

    pub fn poll_event(&mut self) -> Option<AcdEvent> {
        self.events.pop_front()
    }

    // --- queries ------------------------------------------------------------------------------

    /// 1 for the caller served next in their queue; `None` unless waiting or ringing.
    pub fn position(&self, call: CallRef) -> Option<usize> {
        let caller = self
            .callers
            .get(&call)
            .filter(|caller| caller.is_queued())?;
        let ahead = self
            .callers
            .values()
            .filter(|other| {
                other.is_queued() && other.queue == caller.queue && other.order() < caller.order()
            })
            .count();
        Some(ahead + 1)
    }

    /// See the module docs for the formula.
    pub fn estimated_wait(&self, call: CallRef) -> Option<Duration> {
        let position = self.position(call)?;
        // Cannot fail: position() only answers for a caller that exists.
        let queue = &self.callers.get(&call)?.queue;
        let skills = &self.config.get(queue)?.skills;
        let staffed = self.agents.staffed_for(skills);
        let average = self.average_handle_time(queue)?;
        if staffed == 0 {
            return None;
        }
        let nanos = average.as_nanos() * position as u128 / staffed as u128;
        Some(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    pub fn caller_state(&self, call: CallRef) -> Option<CallerState> {
        let caller = self.callers.get(&call)?;
        let queue = caller.queue.clone();
        Some(match &caller.phase {
            Phase::Waiting => CallerState::Waiting {
                queue,
                position: self.position(call)?,
            },
            Phase::Ringing { agent, .. } => CallerState::Ringing {
                queue,
                position: self.position(call)?,
                agent: agent.clone(),
            },
            Phase::Connected { agent, .. } => CallerState::Connected {
                queue,
                agent: agent.clone(),
            },
        })
    }

    pub fn snapshot(&self, now: Instant) -> AcdSnapshot {
        let queues = self
            .config
            .iter()
            .map(|(name, config)| {
                let callers = || self.callers.values().filter(|c| &c.queue == name);
                let queued = || callers().filter(|c| c.is_queued());
                let snapshot = QueueSnapshot {
                    waiting: queued().count(),
                    ringing: callers()
                        .filter(|c| matches!(c.phase, Phase::Ringing { .. }))
                        .count(),
                    connected: callers().filter(|c| !c.is_queued()).count(),
                    longest_wait: queued()
                        .map(|c| now.saturating_duration_since(c.waiting_since))
                        .max(),
                    staffed_agents: self.agents.staffed_for(&config.skills),
                    available_agents: self.agents.available_for(&config.skills),
                    average_handle_time: self.average_handle_time(name),
                };
                (name.clone(), snapshot)
            })
            .collect();
        let agents = self
            .agents
            .iter()
            .map(|(id, agent)| (id.clone(), agent.state))
            .collect();
        AcdSnapshot { queues, agents }
    }

    // --- internals ----------------------------------------------------------------------------

    fn agent_mut(&mut self, agent: &str) -> Result<&mut Agent, AcdError> {
        self.agents
            .get_mut(agent)
            .ok_or_else(|| AcdError::UnknownAgent(agent.to_owned()))
    }

    fn ringing_caller_mut(&mut self, call: CallRef, agent: &str) -> Result<&mut Caller, AcdError> {
        let no_such_offer = || AcdError::NoSuchOffer {
            call,
            agent: agent.to_owned(),
        };
        let caller = self.callers.get_mut(&call).ok_or_else(no_such_offer)?;
        match &caller.phase {
            Phase::Ringing { agent: ringing, .. } if ringing == agent => Ok(caller),
            _ => Err(no_such_offer()),
        }
    }

    fn wrap_up_of(&self, queue: &str) -> Duration {
        self.config
            .get(queue)
            .map(QueueConfig::wrap_up)
            .unwrap_or_default()
    }

    fn average_handle_time(&self, queue: &str) -> Option<Duration> {
        let samples = self.handle_times.get(queue).filter(|s| !s.is_empty())?;
        let total: Duration = samples.iter().sum();
        // Cannot truncate: at most HANDLE_TIME_SAMPLES samples.
        Some(total / samples.len() as u32)
    }

    /// Offers waiting callers to free agents, then sends every caller past max wait who got no
    /// offer to overflow. Runs after every change, so no caller waits while an agent who could
    /// take them is free.
    fn dispatch(&mut self, now: Instant) {
        let mut order: Vec<(bool, u64, CallRef)> = self
            .callers
            .iter()
            .filter(|(_, caller)| caller.phase == Phase::Waiting)
            .map(|(&call, caller)| {
                let (requeued, arrival) = caller.order();
                (requeued, arrival, call)
            })
            .collect();
        order.sort_unstable();
        for &(_, _, call) in &order {
            // Cannot fail: `order` was just built from `callers`, and offers never remove one.
            let Some(caller) = self.callers.get(&call) else {
                continue;
            };
            let Some(config) = self.config.get(&caller.queue) else {
                continue;
            };
            let agent = match &caller.for_agent {
                Some(only) => {
                    (self.agent_state(only) == Some(AgentState::Available)).then(|| only.clone())
                }
                None => self
                    .agents
                    .longest_idle(&config.skills, &caller.declined_by),
            };
            if let Some(agent) = agent {
                let ring_timeout = config.ring_timeout();
                self.offer(now, call, agent, ring_timeout);
            }
        }
        for &(_, _, call) in &order {
            let overdue = self
                .callers
                .get(&call)
                .is_some_and(|c| c.phase == Phase::Waiting && c.overflow_at <= now);
            if overdue {
                self.overflow(call);
            }
        }
    }

    fn offer(&mut self, now: Instant, call: CallRef, agent: String, ring_timeout: Duration) {
        let Some(caller) = self.callers.get_mut(&call) else {
            return;
        };
        caller.phase = Phase::Ringing {
            agent: agent.clone(),
            until: now + ring_timeout,
        };
        self.events.push_back(AcdEvent::Offer {
            call,
            agent: agent.clone(),
            queue: caller.queue.clone(),
            ring_timeout,
            waited: now.saturating_duration_since(caller.waiting_since),
        });
        self.set_agent_state(&agent, AgentState::Ringing { call });
    }

    /// Ends the ringing offer of `call`, if any, and returns the agent it rang; the caller goes
    /// back to waiting. The agent's next state is the caller's business.
    fn withdraw_offer(&mut self, call: CallRef, reason: WithdrawReason) -> Option<String> {
        let caller = self.callers.get_mut(&call)?;
        let Phase::Ringing { agent, .. } = &caller.phase else {
            return None;
        };
        let agent = agent.clone();
        caller.phase = Phase::Waiting;
        self.events.push_back(AcdEvent::OfferWithdrawn {
            call,
            agent: agent.clone(),
            reason,
        });
        Some(agent)
    }

    fn overflow(&mut self, call: CallRef) {
        let Some(caller) = self.callers.remove(&call) else {
            return;
        };
        let action = self
            .config
            .get(&caller.queue)
            .map(|config| config.overflow.clone())
            .unwrap_or(Action::Hangup { prompt: None });
        self.events.push_back(AcdEvent::Overflow {
            call,
            queue: caller.queue,
            action,
        });
    }

    /// Turns a connected call back into the first waiting caller of its queue.
    fn put_back_at_head(&mut self, now: Instant, call: CallRef) {
        let Some(caller) = self.callers.get_mut(&call) else {
            return;
        };
        let Phase::Connected { agent, .. } = &caller.phase else {
            return;
        };
        let agent = agent.clone();
        caller.phase = Phase::Waiting;
        let config = self.config.get(&caller.queue);
        caller.requeued = true;
        caller.waiting_since = now;
        caller.overflow_at = now + config.map(QueueConfig::max_wait).unwrap_or_default();
        caller.next_announcement = config.and_then(|config| {
            config
                .announce_every()
                .map(|_| now + config.first_announce())
        });
        self.events.push_back(AcdEvent::CallerRequeued {
            call,
            queue: caller.queue.clone(),
            agent,
        });
    }

    fn start_wrap_up(&mut self, now: Instant, agent: &str, wrap_up: Duration) {
        let Some(entry) = self.agents.get_mut(agent) else {
            return;
        };
        let state = if !wrap_up.is_zero() {
            AgentState::WrapUp {
                until: now + wrap_up,
            }
        } else if std::mem::take(&mut entry.away_after_call) {
            AgentState::Away
        } else {
            entry.idle_since = now;
            AgentState::Available
        };
        self.set_agent_state(agent, state);
    }

    fn set_agent_state(&mut self, agent: &str, state: AgentState) {
        let Some(entry) = self.agents.get_mut(agent) else {
            return;
        };
        if entry.state != state {
            entry.state = state;
            self.emit_agent_state(agent, state);
        }
    }

    fn emit_agent_state(&mut self, agent: &str, state: AgentState) {
        self.events.push_back(AcdEvent::AgentStateChanged {
            agent: agent.to_owned(),
            state,
        });
    }
}
