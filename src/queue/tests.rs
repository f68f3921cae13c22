//! ACD scenarios in virtual time: the clock only moves when a test advances it, and every timer
//! fires at its own instant.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::ivr::config::Action;

mod agents;
mod properties;
mod waiting;

const SECOND: Duration = Duration::from_secs(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The documented example queue: announcements at 5 s then every 30 s, 5 min max wait, 15 s
/// ring timeout, 5 s wrap-up.
fn queue(skills: &[&str]) -> QueueConfig {
    QueueConfig {
        skills: skills.iter().map(|s| s.to_string()).collect(),
        overflow: Action::Hangup {
            prompt: Some("goodbye".into()),
        },
        ..QueueConfig::default()
    }
}

/// An event with the virtual time it was emitted at.
type Stamped = (Duration, AcdEvent);

struct Harness {
    acd: Acd,
    base: Instant,
    now: Instant,
    log: Vec<Stamped>,
}

impl Harness {
    fn new(queues: &[(&str, QueueConfig)]) -> Self {
        let config: BTreeMap<String, QueueConfig> = queues
            .iter()
            .map(|(name, config)| (name.to_string(), config.clone()))
            .collect();
        let base = Instant::now();
        Harness {
            acd: Acd::new(Arc::new(config)),
            base,
            now: base,
            log: Vec::new(),
        }
    }

    fn support() -> Self {
        Harness::new(&[("support", queue(&["support"]))])
    }

    fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    fn collect(&mut self) {
        let at = self.elapsed();
        while let Some(event) = self.acd.poll_event() {
            self.log.push((at, event));
        }
    }

    /// Runs every timer up to `t` after the start, each at its own instant.
    fn advance_to(&mut self, t: Duration) {
        let target = self.base + t;
        assert!(target >= self.now, "time runs forward");
        while let Some(at) = self.acd.poll_timeout().filter(|at| *at <= target) {
            self.now = at;
            self.acd.handle_timeout(at);
            self.collect();
        }
        self.now = target;
    }

    fn advance(&mut self, by: Duration) {
        self.advance_to(self.elapsed() + by);
    }

    /// Logs `agent` in with `skills` and makes them available.
    fn agent(&mut self, agent: &str, skills: &[&str]) {
        let skills: Vec<String> = skills.iter().map(|s| s.to_string()).collect();
        self.acd.agent_login(self.now, agent, &skills);
        self.acd.agent_available(self.now, agent).unwrap();
        self.collect();
    }

    fn enqueue(&mut self, call: u64, queue: &str) {
        self.acd.enqueue(self.now, CallRef(call), queue).unwrap();
        self.collect();
    }

    fn accept(&mut self, call: u64, agent: &str) {
        self.acd
            .offer_accepted(self.now, CallRef(call), agent)
            .unwrap();
        self.collect();
    }

    fn reject(&mut self, call: u64, agent: &str) {
        self.acd
            .offer_rejected(self.now, CallRef(call), agent)
            .unwrap();
        self.collect();
    }

    fn end(&mut self, call: u64) {
        self.acd.call_ended(self.now, CallRef(call)).unwrap();
        self.collect();
    }

    /// Enqueues `call` and has `agent` (who must be the one offered) answer it.
    fn connect(&mut self, call: u64, queue: &str, agent: &str) {
        self.enqueue(call, queue);
        assert_eq!(self.offered(call).as_deref(), Some(agent));
        self.accept(call, agent);
    }

    /// The agent `call` is ringing at, if any.
    fn offered(&self, call: u64) -> Option<String> {
        match self.acd.caller_state(CallRef(call)) {
            Some(CallerState::Ringing { agent, .. }) => Some(agent),
            _ => None,
        }
    }

    fn events_since(&self, t: Duration) -> Vec<Stamped> {
        self.log
            .iter()
            .filter(|(at, _)| *at >= t)
            .cloned()
            .collect()
    }

    fn offers(&self) -> Vec<(Duration, u64, String)> {
        self.log
            .iter()
            .filter_map(|(at, event)| match event {
                AcdEvent::Offer { call, agent, .. } => Some((*at, call.0, agent.clone())),
                _ => None,
            })
            .collect()
    }

    fn withdrawals(&self) -> Vec<(Duration, u64, String, WithdrawReason)> {
        self.log
            .iter()
            .filter_map(|(at, event)| match event {
                AcdEvent::OfferWithdrawn {
                    call,
                    agent,
                    reason,
                } => Some((*at, call.0, agent.clone(), *reason)),
                _ => None,
            })
            .collect()
    }

    fn announcements(&self) -> Vec<(Duration, u64, usize)> {
        self.log
            .iter()
            .filter_map(|(at, event)| match event {
                AcdEvent::Announce { call, position, .. } => Some((*at, call.0, *position)),
                _ => None,
            })
            .collect()
    }

    fn overflows(&self) -> Vec<(Duration, u64)> {
        self.log
            .iter()
            .filter_map(|(at, event)| match event {
                AcdEvent::Overflow { call, .. } => Some((*at, call.0)),
                _ => None,
            })
            .collect()
    }

    fn state(&self, agent: &str) -> Option<AgentState> {
        self.acd.agent_state(agent)
    }
}
