//! Transfers. Blind to another queue or agent: the agent's part ends at once (`call_ended`
//! `transferred`, then its wrap-up); the caller hears the new queue's music and waits there as
//! a new arrival, for the named agent alone when one is named. To an external number, blind
//! (`transfer`) or attended (`consult`, then `complete_transfer` or `return_to_caller`): a call
//! out, under the same permission and fraud limits as a `dial`; the agent keeps the call until
//! the target answers (blind) or it completes, so a target that fails gives the caller back to
//! it. A transfer that cannot be done is refused with the reason and the call goes on as it was.
use std::time::Instant;

use super::outbound::PlaceCall;
use super::{call_id, Call, CallCommand, Center, Output};
use crate::agent::protocol::{
    self as proto, CallId, EndReason, ErrorCode, GatewayMessage, TransferStage,
};
use crate::agent::sessions::ConnId;
use crate::call::leg::Progress;
use crate::call::outbound::{dialplan, limits, DialError};
use crate::events::{AgentEvent, CallEvent, EventKind, Unanswered};
use crate::queue::CallRef as AcdCall;

/// A transfer to an external number under way on a call.
#[derive(Debug)]
pub(super) struct Transferring {
    agent: String,
    /// E.164.
    number: String,
    /// The target leg's reference: it counts against the fraud limits until it ends. None
    /// when the carrier was asked to take the caller there (REFER).
    onward: Option<Call>,
    attended: bool,
    answered: bool,
}

/// Where a transfer sends the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Queue(String),
    Agent(String),
    /// An external number, as the agent typed it.
    Number(String),
}

impl Center {
    pub(super) fn transfer(
        &mut self,
        now: Instant,
        conn: ConnId,
        agent: &str,
        msg: proto::from_agent::Transfer,
    ) {
        let Some(call) = self.talking_call(conn, agent, &msg.call) else {
            return;
        };
        let refuse = |center: &mut Center, message: String| {
            center.error_about(conn, ErrorCode::InvalidState, message, call);
        };
        if self.is_placed(call) {
            return refuse(self, "a call you placed cannot be transferred (yet)".into());
        }
        let target = match msg.to.split_once(':') {
            Some(("queue", name)) => Target::Queue(name.to_owned()),
            Some(("agent", id)) => Target::Agent(id.to_owned()),
            _ => Target::Number(msg.to.clone()),
        };
        if let Target::Number(number) = target {
            return self.transfer_out(now, conn, agent, call, &number, false);
        }
        if self.calls.get(&call).is_some_and(|e| e.transfer.is_some()) {
            return refuse(
                self,
                "a transfer to a number is under way on this call".into(),
            );
        }
        let Some(entry) = self.calls.get(&call) else {
            return;
        };
        let (queue, only_agent) = match &target {
            Target::Queue(name) => (name.clone(), None),
            Target::Agent(id) if id == agent => {
                return refuse(self, "you cannot transfer a call to yourself".into())
            }
            Target::Agent(id) if !self.agents.contains_key(id) => {
                return refuse(self, format!("agent {id} is not logged in"))
            }
            Target::Agent(id) => (entry.queue.clone(), Some(id.as_str())),
            Target::Number(_) => return,
        };
        if let Err(e) = self.acd.transfer(now, AcdCall(call), &queue, only_agent) {
            return refuse(self, format!("transfer to {}: {e}", msg.to));
        }
        let flow = entry.flow;
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.queue = queue.clone();
            entry.agent = None;
            entry.held = false;
        }
        self.events.push_back(EventKind::Call {
            call,
            event: CallEvent::Transferred {
                by: agent.to_owned(),
                to: msg.to.clone(),
            },
        });
        self.out.push_back(Output::Unroute { conn, flow });
        self.send_to_agent(
            conn,
            GatewayMessage::CallEnded(proto::from_gateway::CallEnded {
                call: call_id(call),
                reason: EndReason::Transferred,
            }),
        );
        self.out.push_back(Output::ToCall {
            call,
            cmd: CallCommand::Transferred {
                queue: queue.clone(),
            },
        });
        let position = self.acd.position(AcdCall(call)).unwrap_or(1);
        self.events.push_back(EventKind::Call {
            call,
            event: CallEvent::Queued { queue, position },
        });
        self.drain_acd(now);
    }

    /// `consult` from `agent`: an attended transfer to an external number.
    pub(super) fn consult(
        &mut self,
        now: Instant,
        conn: ConnId,
        agent: &str,
        msg: proto::from_agent::Consult,
    ) {
        let Some(call) = self.talking_call(conn, agent, &msg.call) else {
            return;
        };
        if msg.to.contains(':') {
            let message = format!(
                "consult target {:?}: a number (transfers to queues and agents are blind)",
                msg.to
            );
            return self.error_about(conn, ErrorCode::InvalidState, message, call);
        }
        self.transfer_out(now, conn, agent, call, &msg.to, true);
    }

    /// A transfer to the number `typed`: planned and admitted like a `dial` (the branch pays
    /// for it), then handed to the call.
    fn transfer_out(
        &mut self,
        now: Instant,
        conn: ConnId,
        agent: &str,
        call: Call,
        typed: &str,
        attended: bool,
    ) {
        let refuse = |center: &mut Center, message: String| {
            center.error_about(conn, ErrorCode::InvalidState, message, call);
        };
        if self.is_placed(call) {
            return refuse(self, "a call you placed cannot be transferred (yet)".into());
        }
        let Some(entry) = self.calls.get(&call) else {
            return;
        };
        if entry.transfer.is_some() {
            return refuse(self, "a transfer is under way on this call already".into());
        }
        let queue = entry.queue.clone();
        let refers = self
            .outbound_settings()
            .trunks
            .iter()
            .any(|t| t.name == entry.trunk && t.refer);
        // Blind, on a trunk that takes REFER: the carrier carries it out and no channel of
        // ours is used, so only the number itself is checked. Otherwise a call of our own.
        let admitted = if refers && !attended {
            self.external_number(agent, typed)
                .map(|number| (number, None))
        } else {
            self.admit_call_out(now, agent, typed, Some(&queue)).map(
                |(onward, plan, ring_timeout)| {
                    let place = PlaceCall {
                        call: onward,
                        agent: agent.to_owned(),
                        plan,
                        ring_timeout,
                    };
                    (place.plan.number.to_string(), Some(place))
                },
            )
        };
        let (number, place) = match admitted {
            Ok(admitted) => admitted,
            Err(e) => {
                let message = format!("transfer to {typed}: {e}");
                self.agent_event(
                    agent,
                    AgentEvent::DialRefused {
                        number: typed.to_owned(),
                        reason: e.kind().to_owned(),
                        message: message.clone(),
                    },
                );
                return refuse(self, message);
            }
        };
        if let Some(entry) = self.calls.get_mut(&call) {
            if place.is_some() {
                entry.held = false;
            }
            entry.transfer = Some(Transferring {
                agent: agent.to_owned(),
                number: number.clone(),
                onward: place.as_ref().map(|p| p.call),
                attended,
                answered: false,
            });
        }
        self.send_transfer_state(conn, call, &number, TransferStage::Dialing, None);
        let cmd = match place {
            Some(place) => CallCommand::TransferOut {
                onward: Box::new(place),
                attended,
            },
            None => CallCommand::HandOver {
                number,
                agent: agent.to_owned(),
            },
        };
        self.out.push_back(Output::ToCall { call, cmd });
    }

    /// `typed` as an E.164 number `agent` may have the branch call (permission, the dial plan
    /// and the destination rules of `[outbound]`).
    fn external_number(&self, agent: &str, typed: &str) -> Result<String, DialError> {
        self.may_dial(agent)?;
        let settings = self.outbound_settings();
        let config = settings.config.as_ref().ok_or(DialError::NotConfigured)?;
        let number = dialplan::normalise(typed, config)?;
        limits::check_destination(&number, config)?;
        Ok(number.to_string())
    }

    /// `complete_transfer`: the caller is joined to the target the agent consulted.
    pub(super) fn complete_transfer(&mut self, conn: ConnId, agent: &str, id: &CallId) {
        let Some(call) = self.talking_call(conn, agent, id) else {
            return;
        };
        let ready = self
            .calls
            .get(&call)
            .and_then(|e| e.transfer.as_ref())
            .map(|t| (t.attended, t.answered));
        let message = match ready {
            Some((true, true)) => {
                self.out.push_back(Output::ToCall {
                    call,
                    cmd: CallCommand::CompleteTransfer,
                });
                return;
            }
            Some((true, false)) => "the target has not answered yet",
            Some((false, _)) => "a blind transfer completes when the target answers",
            None => "no consultation is under way on this call",
        };
        self.error_about(conn, ErrorCode::InvalidState, message.into(), call);
    }

    /// `return_to_caller`: the target is hung up and the agent talks to the caller again.
    pub(super) fn return_to_caller(&mut self, conn: ConnId, agent: &str, id: &CallId) {
        let Some(call) = self.talking_call(conn, agent, id) else {
            return;
        };
        if self.calls.get(&call).is_some_and(|e| e.transfer.is_some()) {
            self.out.push_back(Output::ToCall {
                call,
                cmd: CallCommand::ReturnToCaller,
            });
        } else {
            let message = "no transfer is under way on this call".into();
            self.error_about(conn, ErrorCode::InvalidState, message, call);
        }
    }

    /// The transfer target's leg rings, or answered (the minutes count from then).
    pub fn transfer_progress(&mut self, now: Instant, call: Call, progress: Progress) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        let conn = entry.agent.as_ref().and_then(|(_, c)| *c);
        let Some(t) = &mut entry.transfer else {
            return;
        };
        let stage = match progress {
            Progress::Ringing | Progress::EarlyMedia => TransferStage::Ringing,
            Progress::Answered => {
                t.answered = true;
                TransferStage::Answered
            }
        };
        let (number, onward) = (t.number.clone(), t.onward);
        if let (TransferStage::Answered, Some(onward)) = (stage, onward) {
            self.outbound_answered(now, onward);
        }
        if let Some(conn) = conn {
            self.send_transfer_state(conn, call, &number, stage, None);
        }
    }

    /// The caller talks to the target now (or the carrier took it there): the agent's part
    /// ends as transferred.
    pub fn transfer_done(&mut self, now: Instant, call: Call) {
        let Some(t) = self.calls.get_mut(&call).and_then(|e| e.transfer.take()) else {
            return;
        };
        self.events.push_back(EventKind::Call {
            call,
            event: CallEvent::Transferred {
                by: t.agent,
                to: t.number,
            },
        });
        self.end_call(now, call, EndReason::Transferred);
    }

    /// The carrier took the caller to the number (REFER): no leg of ours was used.
    pub fn handed_over(&mut self, now: Instant, call: Call) {
        self.transfer_done(now, call);
    }

    /// The transfer did not start, or the carrier did not take it: the agent hears why, and
    /// still has the call.
    pub fn transfer_failed(&mut self, now: Instant, call: Call, reason: &str) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        let conn = entry.agent.as_ref().and_then(|(_, c)| *c);
        if let Some(onward) = entry.transfer.take().and_then(|t| t.onward) {
            self.outbound_ended(now, onward);
        }
        if let Some(conn) = conn {
            self.error_about(conn, ErrorCode::InvalidState, reason.to_owned(), call);
        }
    }

    /// The target's leg `onward` of `call` is over. Before a join: the agent has the caller
    /// again and hears why the target is gone.
    pub fn onward_ended(
        &mut self,
        now: Instant,
        call: Call,
        onward: Call,
        unanswered: Option<Unanswered>,
    ) {
        self.outbound_ended(now, onward);
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        if entry
            .transfer
            .as_ref()
            .is_none_or(|t| t.onward != Some(onward))
        {
            return;
        }
        let conn = entry.agent.as_ref().and_then(|(_, c)| *c);
        let Some(t) = entry.transfer.take() else {
            return;
        };
        if let Some(conn) = conn {
            let reason = unanswered.map(|why| (why, why.to_string()));
            self.send_transfer_state(conn, call, &t.number, TransferStage::Ended, reason);
        }
    }

    fn send_transfer_state(
        &mut self,
        conn: ConnId,
        call: Call,
        number: &str,
        state: TransferStage,
        unanswered: Option<(Unanswered, String)>,
    ) {
        let (reason, message) = match unanswered {
            Some((why, message)) => (Some(super::outbound::failure_of(why)), Some(message)),
            None => (None, None),
        };
        self.send_to_agent(
            conn,
            GatewayMessage::TransferState(proto::from_gateway::TransferState {
                call: call_id(call),
                number: number.to_owned(),
                state,
                reason,
                message,
            }),
        );
    }

    fn error_about(&mut self, conn: ConnId, code: ErrorCode, message: String, call: Call) {
        tracing::info!(call, %message, "transfer refused");
        let report = proto::ErrorReport::new(code, &message).about_call(call_id(call));
        self.send_to_agent(conn, GatewayMessage::Error(report));
    }
}
