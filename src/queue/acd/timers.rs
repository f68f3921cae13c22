//! The ACD's clock: which timer is due next, and what each does when it fires.

use std::time::Instant;

use super::{Acd, AcdEvent, AgentState, CallRef, Phase, WithdrawReason};
use crate::queue::announce::announcement_prompts;

/// The ACD's timers; each fires at an instant derived from the state, so there is nothing to
/// cancel. When several are due at once they fire in the order listed here, so that an agent
/// who comes free at the very instant a caller's max wait ends still gets that caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Timer {
    /// The agent's wrap-up time has passed: they become available (or away, if asked).
    WrapUpEnd(String),
    /// An offer has rung for the queue's `ring_timeout_ms` unanswered.
    RingTimeout(CallRef),
    /// A caller without an offer has waited the queue's `max_wait_ms`.
    MaxWait(CallRef),
    /// A caller's next announcement slot.
    Announcement(CallRef),
}

impl Acd {
    /// The earliest timer, ties broken by [`Timer`] order, then by who is served first.
    pub(super) fn next_timer(&self) -> Option<(Instant, Timer)> {
        let agent_timers = self
            .agents
            .iter()
            .filter_map(|(id, agent)| match agent.state {
                AgentState::WrapUp { until } => {
                    let timer = Timer::WrapUpEnd(id.clone());
                    Some((
                        (until, timer_rank(&timer), (false, agent.login_order)),
                        timer,
                    ))
                }
                _ => None,
            });
        let caller_timers = self.callers.iter().flat_map(|(&call, caller)| {
            let wait = match caller.phase {
                // Max wait does not tick while an offer rings (see the module docs);
                // announcement slots do, to be skipped.
                Phase::Ringing { until, .. } => Some((until, Timer::RingTimeout(call))),
                Phase::Waiting => Some((caller.overflow_at, Timer::MaxWait(call))),
                Phase::Connected { .. } => None,
            };
            let announcement = caller
                .next_announcement
                .map(|at| (at, Timer::Announcement(call)));
            [wait, announcement]
                .into_iter()
                .flatten()
                .map(|(at, timer)| ((at, timer_rank(&timer), caller.order()), timer))
        });
        agent_timers
            .chain(caller_timers)
            .min_by_key(|(key, _)| *key)
            .map(|((at, _, _), timer)| (at, timer))
    }

    pub(super) fn fire(&mut self, at: Instant, now: Instant, timer: Timer) {
        match timer {
            Timer::WrapUpEnd(agent) => {
                // Cannot fail: the timer exists only for an agent in wrap-up.
                if let Some(entry) = self.agents.get_mut(&agent) {
                    entry.idle_since = at;
                    let state = if std::mem::take(&mut entry.away_after_call) {
                        AgentState::Away
                    } else {
                        AgentState::Available
                    };
                    self.set_agent_state(&agent, state);
                }
            }
            Timer::RingTimeout(call) => {
                if let Some(agent) = self.withdraw_offer(call, WithdrawReason::RingTimeout) {
                    self.set_agent_state(&agent, AgentState::Away);
                }
            }
            Timer::MaxWait(call) => {
                // Offer first: an agent freed at this very instant still gets the caller.
                self.dispatch(at);
                if self
                    .callers
                    .get(&call)
                    .is_some_and(|c| c.phase == Phase::Waiting)
                {
                    self.overflow(call);
                }
            }
            Timer::Announcement(call) => self.announce(at, now, call),
        }
    }

    fn announce(&mut self, at: Instant, now: Instant, call: CallRef) {
        let Some(caller) = self.callers.get_mut(&call) else {
            return;
        };
        let queue = caller.queue.clone();
        let ringing = matches!(caller.phase, Phase::Ringing { .. });
        let Some(config) = self.config.get(&queue) else {
            return;
        };
        // The next slot after `now`, so a shell that was held up for minutes gets one
        // announcement rather than a burst of stale ones.
        caller.next_announcement = config.announce_every().and_then(|period| {
            let behind = now.saturating_duration_since(at).as_nanos() / period.as_nanos();
            let slots = u32::try_from(behind + 1).unwrap_or(u32::MAX);
            at.checked_add(period.saturating_mul(slots))
        });
        if ringing {
            return;
        }
        // Cannot fail: the caller exists and is queued.
        let Some(position) = self.position(call) else {
            return;
        };
        let estimated_wait = self.estimated_wait(call);
        let prompts = announcement_prompts(config, position, estimated_wait);
        self.events.push_back(AcdEvent::Announce {
            call,
            queue,
            position,
            estimated_wait,
            prompts,
        });
    }
}

fn timer_rank(timer: &Timer) -> u8 {
    match timer {
        Timer::WrapUpEnd(_) => 0,
        Timer::RingTimeout(_) => 1,
        Timer::MaxWait(_) => 2,
        Timer::Announcement(_) => 3,
    }
}
