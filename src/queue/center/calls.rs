//! The callers' side of the center: a caller enters a queue, presses a key, hangs up; and a
//! call's end, whoever ended it.
use std::time::Instant;

use super::{call_id, Call, CallEntry, Center, Output};
use crate::agent::protocol::{self as proto, EndReason, GatewayMessage};
use crate::events::{CallEvent, EventKind};
use crate::queue::{AcdError, CallRef as AcdCall};

impl Center {
    /// The caller of `call` came in on `trunk` (whether its carrier takes transfers back
    /// depends on it).
    pub fn came_in_on(&mut self, call: Call, trunk: String) {
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.trunk = trunk;
        }
    }

    /// A caller enters `queue`.
    pub fn enqueue(
        &mut self,
        now: Instant,
        call: Call,
        queue: &str,
        caller: &str,
    ) -> Result<(), AcdError> {
        let flow = self.next_flow;
        self.calls.insert(
            call,
            CallEntry {
                queue: queue.to_string(),
                caller: caller.to_string(),
                flow,
                agent: None,
                held: false,
                agent_view: None,
                transfer: None,
                trunk: String::new(),
                recording: crate::events::RecordingState::Off,
            },
        );
        if let Err(e) = self.acd.enqueue(now, AcdCall(call), queue) {
            self.calls.remove(&call);
            return Err(e);
        }
        self.remember_caller(call, caller, queue);
        let position = self.acd.position(AcdCall(call)).unwrap_or(1);
        self.events.push_back(EventKind::Call {
            call,
            event: CallEvent::Queued {
                queue: queue.to_string(),
                position,
            },
        });
        self.next_flow += 1;
        self.drain_acd(now);
        Ok(())
    }

    /// The caller hung up (waiting, ringing an agent, or talking).
    pub fn caller_gone(&mut self, now: Instant, call: Call) {
        if self.calls.contains_key(&call) {
            self.end_call(now, call, EndReason::CallerHungUp);
            self.drain_acd(now);
        }
    }

    /// The caller pressed a key while talking to an agent: the agent hears of it.
    pub fn caller_dtmf(&mut self, call: Call, digit: char) {
        if let Some((_, Some(conn))) = self.calls.get(&call).and_then(|c| c.agent.clone()) {
            self.send_to_agent(
                conn,
                GatewayMessage::Dtmf(proto::from_gateway::Dtmf {
                    call: call_id(call),
                    digit,
                }),
            );
        }
    }

    pub(super) fn end_call(&mut self, now: Instant, call: Call, reason: EndReason) {
        let Some(entry) = self.calls.remove(&call) else {
            return;
        };
        if !self.end_placed_for_acd(now, call) {
            let _ = self.acd.call_ended(now, AcdCall(call));
        }
        if let Some(view) = &entry.agent_view {
            tracing::info!(
                call,
                rtt_ms = view.rtt_ms,
                loss_pct = view.loss_pct,
                jitter_ms = view.jitter_ms,
                packets_received = view.packets_received,
                packets_lost = view.packets_lost,
                "call quality as the agent heard it"
            );
        }
        if let Some((_, Some(conn))) = entry.agent {
            self.out.push_back(Output::Unroute {
                conn,
                flow: entry.flow,
            });
            self.send_to_agent(
                conn,
                GatewayMessage::CallEnded(proto::from_gateway::CallEnded {
                    call: call_id(call),
                    reason,
                }),
            );
        }
        self.drain_acd(now);
    }
}
