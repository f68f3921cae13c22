//! Blind transfers: the agent talking to a caller hands the call to another queue or another
//! agent. The agent's part ends at once (`call_ended` `transferred`, then its wrap-up); the
//! caller hears the new queue's music and waits there as a new arrival, for the named agent
//! alone when one is named. A transfer that cannot be done is refused with the reason and the
//! call goes on as it was.
use std::time::Instant;

use super::{call_id, Call, CallCommand, Center, Output};
use crate::agent::protocol::{self as proto, EndReason, ErrorCode, GatewayMessage};
use crate::agent::sessions::ConnId;
use crate::events::{CallEvent, EventKind};
use crate::queue::CallRef as AcdCall;

/// Where a transfer sends the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Queue(String),
    Agent(String),
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
            _ => {
                return refuse(
                    self,
                    format!(
                        "transfer target {:?}: queue:NAME or agent:ID (external numbers: not yet)",
                        msg.to
                    ),
                )
            }
        };
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

    fn error_about(&mut self, conn: ConnId, code: ErrorCode, message: String, call: Call) {
        tracing::info!(call, %message, "transfer refused");
        let report = proto::ErrorReport::new(code, &message).about_call(call_id(call));
        self.send_to_agent(conn, GatewayMessage::Error(report));
    }
}
