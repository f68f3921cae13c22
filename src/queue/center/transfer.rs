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
    /// An external number, E.164: the carrier is asked to take the caller there (REFER).
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
            _ => match self.external_number(&msg.to) {
                Ok(number) => Target::Number(number),
                Err(why) => {
                    return refuse(
                        self,
                        format!(
                            "transfer target {:?}: queue:NAME, agent:ID or a number: {why}",
                            msg.to
                        ),
                    )
                }
            },
        };
        if let Target::Number(number) = target {
            if let Some(entry) = self.calls.get_mut(&call) {
                entry.handing_over = Some((agent.to_owned(), number.clone()));
            }
            self.out.push_back(Output::ToCall {
                call,
                cmd: CallCommand::HandOver {
                    number,
                    agent: agent.to_owned(),
                },
            });
            return;
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

    /// The carrier took the caller to the external number: the agent's part ends as
    /// transferred.
    pub fn handed_over(&mut self, now: Instant, call: Call) {
        let Some((agent, number)) = self
            .calls
            .get_mut(&call)
            .and_then(|e| e.handing_over.take())
        else {
            return;
        };
        self.events.push_back(EventKind::Call {
            call,
            event: CallEvent::Transferred {
                by: agent,
                to: number,
            },
        });
        self.end_call(now, call, EndReason::Transferred);
    }

    /// The carrier did not take the caller: the agent hears why, and still has the call.
    pub fn hand_over_failed(&mut self, call: Call, reason: &str) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        entry.handing_over = None;
        if let Some((_, Some(conn))) = entry.agent.clone() {
            self.error_about(conn, ErrorCode::InvalidState, reason.to_owned(), call);
        }
    }

    /// `typed` as an E.164 number the branch may call (the dial plan and destination rules of
    /// `[outbound]`: a transfer out is a call out, billed to the branch).
    fn external_number(&self, typed: &str) -> Result<String, String> {
        let settings = self.outbound_settings();
        let config = settings
            .config
            .as_ref()
            .ok_or("outbound calls are not configured")?;
        let number =
            crate::call::outbound::dialplan::normalise(typed, config).map_err(|e| e.to_string())?;
        crate::call::outbound::limits::check_destination(&number, config)
            .map_err(|e| e.to_string())?;
        Ok(number.to_string())
    }

    fn error_about(&mut self, conn: ConnId, code: ErrorCode, message: String, call: Call) {
        tracing::info!(call, %message, "transfer refused");
        let report = proto::ErrorReport::new(code, &message).about_call(call_id(call));
        self.send_to_agent(conn, GatewayMessage::Error(report));
    }
}
