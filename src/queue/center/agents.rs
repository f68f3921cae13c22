//! The agents' side of the center: logins and resumes, what an agent's control stream says
//! (state, accept, reject, hang up, keys, hold, stats), and lost connections.
use std::time::Instant;

use super::{AgentEntry, Call, CallCommand, Center, Output};
use crate::agent::protocol::{
    self as proto, AgentMessage, AgentState as WireState, CallId, EndReason, ErrorCode,
    ErrorReport, FlowId, GatewayMessage, RefusalReason, RequestedState, ResumeToken, SessionId,
};
use crate::agent::sessions::{ConnId, LoginOutcome};
use crate::events::{AgentEvent, CallEvent, EventKind};
use crate::queue::{AgentState, CallRef, CallRef as AcdCall};

impl Center {
    /// An agent whose credential the shell verified logs in on `conn` with `skills` (already
    /// narrowed to what its config allows). The welcome (or refusal) goes out as outputs.
    pub fn login(
        &mut self,
        now: Instant,
        conn: ConnId,
        agent: &str,
        skills: &[String],
        resume: Option<&str>,
    ) -> Result<(), RefusalReason> {
        let outcome = self.sessions.login(now, conn, agent, resume);
        self.drain_sessions(now);
        let (token, resumed) = match outcome {
            LoginOutcome::AlreadyLoggedIn => return Err(RefusalReason::AlreadyLoggedIn),
            LoginOutcome::Fresh { token } => {
                self.agent_event(agent, AgentEvent::LoggedIn { resumed: false });
                self.acd.agent_login(now, agent, skills);
                let session = SessionId::new(format!("s{}", self.next_session));
                self.next_session += 1;
                self.agents.insert(
                    agent.to_string(),
                    AgentEntry {
                        conn: Some(conn),
                        session,
                        away_reason: None,
                        last_call: None,
                    },
                );
                (token, false)
            }
            LoginOutcome::Resumed { token, replaced } => {
                self.agent_event(agent, AgentEvent::LoggedIn { resumed: true });
                if let Some(old) = replaced {
                    self.conns.remove(&old);
                    self.out.push_back(Output::Close {
                        conn: old,
                        code: proto::close_code::DONE,
                        reason: "session resumed on another connection",
                    });
                }
                if let Some(entry) = self.agents.get_mut(agent) {
                    entry.conn = Some(conn);
                }
                (token, true)
            }
        };
        self.conns.insert(conn, agent.to_string());
        let state = self.wire_state(agent);
        let session = self
            .agents
            .get(agent)
            .map(|a| a.session.clone())
            .unwrap_or_else(|| SessionId::new("s0"));
        self.send_to_agent(
            conn,
            GatewayMessage::Welcome(proto::from_gateway::Welcome {
                session,
                resume_token: ResumeToken::new(token),
                state,
                media: self.media,
                resume_grace_ms: self.grace.as_millis() as u64,
                gateway: self.gateway_name.clone(),
                supervises: Vec::new(),
            }),
        );
        if resumed {
            self.resume_call(conn, agent);
        }
        self.drain_acd(now);
        Ok(())
    }

    /// After a resume: tell the agent which call it still has, and move the call's media over.
    fn resume_call(&mut self, conn: ConnId, agent: &str) {
        let talking = self
            .calls
            .iter_mut()
            .find(|(_, c)| c.agent.as_ref().is_some_and(|(a, _)| a == agent));
        let call = match talking {
            Some((&call, entry)) => {
                let old = entry.agent.as_ref().and_then(|(_, c)| *c);
                entry.agent = Some((agent.to_string(), Some(conn)));
                let flow = entry.flow;
                if let Some(old) = old {
                    self.out.push_back(Output::Unroute { conn: old, flow });
                }
                self.out.push_back(Output::Route { conn, flow, call });
                self.out.push_back(Output::ToCall {
                    call,
                    cmd: CallCommand::Reconnect { conn, flow },
                });
                if entry.held {
                    self.out.push_back(Output::ToCall {
                        call,
                        cmd: CallCommand::Hold { on: true },
                    });
                }
                Some(proto::from_gateway::ResumedCall {
                    id: call_id(call),
                    flow: FlowId(flow),
                    caller: entry.caller.clone(),
                    queue: entry.queue.clone(),
                    held: entry.held,
                })
            }
            None => None,
        };
        self.send_to_agent(
            conn,
            GatewayMessage::Resumed(proto::from_gateway::Resumed { call }),
        );
    }

    /// A message from a logged-in agent.
    pub fn agent_message(&mut self, now: Instant, conn: ConnId, msg: AgentMessage) {
        let Some(agent) = self.conns.get(&conn).cloned() else {
            return;
        };
        if self.is_supervisor(&agent) {
            return self.supervisor_message(conn, &agent, msg);
        }
        match msg {
            AgentMessage::SetState(s) => {
                let result = match s.state {
                    RequestedState::Available => self.acd.agent_available(now, &agent),
                    RequestedState::Away => self.go_away(now, &agent, s.reason),
                };
                match (result, self.acd.agent_state(&agent)) {
                    (Ok(()), Some(AgentState::Ringing { .. } | AgentState::Talking { .. }))
                        if s.state == RequestedState::Available => {}
                    (Ok(()), _) => {}
                    (Err(e), _) => self.error(conn, ErrorCode::InvalidState, e.to_string(), None),
                }
                // set_state is always answered with the state now in force.
                let state = self.wire_state(&agent);
                self.send_to_agent(
                    conn,
                    GatewayMessage::State(proto::from_gateway::State::new(state)),
                );
            }
            AgentMessage::Accept(a) => self.accept(now, conn, &agent, &a.call),
            AgentMessage::Reject(r) => {
                let Some(call) = self.known_call(conn, &r.call) else {
                    return;
                };
                if let Err(e) = self.acd.offer_rejected(now, AcdCall(call), &agent) {
                    self.error(conn, ErrorCode::InvalidState, e.to_string(), Some(r.call));
                }
            }
            AgentMessage::Hangup(h) => {
                if let Some(call) = self.talking_call(conn, &agent, &h.call) {
                    self.end_call(now, call, EndReason::AgentHungUp);
                    self.out.push_back(Output::ToCall {
                        call,
                        cmd: CallCommand::AgentHungUp,
                    });
                }
            }
            AgentMessage::Dtmf(d) => {
                if let Some(call) = self.talking_call(conn, &agent, &d.call) {
                    self.out.push_back(Output::ToCall {
                        call,
                        cmd: CallCommand::Dtmf { digits: d.digits },
                    });
                }
            }
            AgentMessage::Hold(h) => {
                if let Some(call) = self.talking_call(conn, &agent, &h.call) {
                    self.hold(call, conn, h.on);
                }
            }
            AgentMessage::Disposition(d) => self.disposition(conn, &agent, d),
            AgentMessage::Dial(d) => self.dial(now, conn, &agent, d),
            AgentMessage::Transfer(t) => self.transfer(now, conn, &agent, t),
            AgentMessage::Consult(c) => self.consult(now, conn, &agent, c),
            AgentMessage::CompleteTransfer(c) => self.complete_transfer(conn, &agent, &c.call),
            AgentMessage::ReturnToCaller(r) => self.return_to_caller(conn, &agent, &r.call),
            AgentMessage::Record(r) => self.record(conn, &agent, r),
            AgentMessage::Supervise(_) => self.not_a_supervisor(conn, &agent, "supervise"),
            AgentMessage::Leave(_) => self.not_a_supervisor(conn, &agent, "leave"),
            AgentMessage::Help(h) => self.help(conn, &agent, h),
            AgentMessage::Chat(c) => self.agent_chat(conn, &agent, c),
            AgentMessage::Stats(stats) => {
                if let Some(call) = self.talking_call(conn, &agent, &stats.call) {
                    tracing::debug!(
                        call,
                        rtt_ms = stats.rtt_ms,
                        loss_pct = stats.loss_pct,
                        jitter_ms = stats.jitter_ms,
                        "agent media report"
                    );
                    if let Some(entry) = self.calls.get_mut(&call) {
                        entry.agent_view = Some(stats);
                    }
                }
            }
            AgentMessage::Login(_) => self.error(
                conn,
                ErrorCode::ProtocolViolation,
                "already logged in".into(),
                None,
            ),
            // Answered here, by the control loop itself: a pong says it is alive, not only QUIC.
            AgentMessage::Ping(ping) => self.send_to_agent(
                conn,
                GatewayMessage::Pong(proto::from_gateway::Pong { nonce: ping.nonce }),
            ),
            AgentMessage::Error(_) => {}
        }
        self.drain_acd(now);
    }

    /// The agent asks to be away, for `reason`. Already away, a new reason is a state record
    /// of its own (the shift shows time away per reason); the reason ends when it is back.
    fn go_away(
        &mut self,
        now: Instant,
        agent: &str,
        reason: Option<String>,
    ) -> Result<(), crate::queue::AcdError> {
        let already_away = self.acd.agent_state(agent) == Some(AgentState::Away);
        let changed = self.agents.get_mut(agent).is_some_and(|entry| {
            let changed = entry.away_reason != reason;
            entry.away_reason = reason.clone();
            changed
        });
        if already_away && changed {
            let state = AgentState::Away;
            self.agent_event(agent, AgentEvent::StateChanged { state, reason });
        }
        self.acd.agent_away(now, agent)
    }

    /// A disposition names the agent's last answered call, while it lasts or during its
    /// wrap-up: its CDR is written when the wrap-up ends.
    fn disposition(&mut self, conn: ConnId, agent: &str, d: proto::from_agent::Disposition) {
        let last = self.agents.get(agent).and_then(|a| a.last_call);
        let call = parse_call_id(&d.call).filter(|c| Some(*c) == last);
        let Some(call) = call else {
            return self.error(
                conn,
                ErrorCode::UnknownCall,
                format!("{} is not your last call", d.call.as_str()),
                Some(d.call),
            );
        };
        let current = self.acd.agent_state(agent);
        let open = matches!(current, Some(AgentState::WrapUp { .. }))
            || matches!(current, Some(AgentState::Talking { call: c }) if c.0 == call);
        if !open {
            return self.error(
                conn,
                ErrorCode::InvalidState,
                format!("the wrap-up of {} is over", d.call.as_str()),
                Some(d.call),
            );
        }
        self.agent_event(
            agent,
            AgentEvent::Disposition {
                call: CallRef(call),
                code: d.code,
            },
        );
    }

    fn accept(&mut self, now: Instant, conn: ConnId, agent: &str, id: &CallId) {
        let Some(call) = self.known_call(conn, id) else {
            return;
        };
        if let Err(e) = self.acd.offer_accepted(now, AcdCall(call), agent) {
            return self.error(
                conn,
                ErrorCode::InvalidState,
                e.to_string(),
                Some(id.clone()),
            );
        }
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        entry.agent = Some((agent.to_string(), Some(conn)));
        let flow = entry.flow;
        if let Some(agent) = self.agents.get_mut(agent) {
            agent.last_call = Some(call);
        }
        self.out.push_back(Output::Route { conn, flow, call });
        self.out.push_back(Output::ToCall {
            call,
            cmd: CallCommand::Connect {
                conn,
                flow,
                agent: agent.to_string(),
            },
        });
        self.send_to_agent(
            conn,
            GatewayMessage::Answered(proto::from_gateway::Answered {
                call: id.clone(),
                flow: FlowId(flow),
            }),
        );
    }

    /// The connection carrying an agent's session died.
    pub fn connection_lost(&mut self, now: Instant, conn: ConnId) {
        if self.supervisor_gone(conn) {
            return;
        }
        if let Some(agent) = self.release_connection(now, conn) {
            self.agent_event(&agent, AgentEvent::ConnectionLost);
        }
        self.drain_acd(now);
    }

    /// The connection carrying an agent's session moved to a new address and goes on; the
    /// call the agent is on, if any, is told for its record.
    pub fn connection_moved(&mut self, conn: ConnId) {
        let Some(agent) = self.conns.get(&conn).cloned() else {
            return;
        };
        self.agent_event(&agent, AgentEvent::ConnectionMoved);
        let on_call = self
            .calls
            .iter()
            .find(|(_, c)| matches!(&c.agent, Some((a, Some(c))) if *a == agent && *c == conn))
            .map(|(call, _)| *call);
        if let Some(call) = on_call {
            self.events.push_back(EventKind::Call {
                call,
                event: CallEvent::AgentMoved,
            });
        }
    }

    /// The agent logged out: its session ends at once, no grace period.
    pub fn logged_out(&mut self, now: Instant, conn: ConnId) {
        if self.supervisor_gone(conn) {
            return;
        }
        if let Some(agent) = self.release_connection(now, conn) {
            self.sessions.logout(&agent);
            self.drain_sessions(now);
        }
        self.drain_acd(now);
    }

    /// Forgets `conn`: an offer ringing there goes on, a call there hears music. Returns the
    /// agent it carried.
    fn release_connection(&mut self, now: Instant, conn: ConnId) -> Option<String> {
        let agent = self.conns.remove(&conn)?;
        self.sessions.connection_lost(now, &agent, conn);
        if let Some(entry) = self.agents.get_mut(&agent) {
            if entry.conn == Some(conn) {
                entry.conn = None;
            }
        }
        match self.acd.agent_state(&agent) {
            // An offer ringing on a dead connection goes to the next agent at once.
            Some(AgentState::Ringing { .. }) => {
                let _ = self.acd.agent_away(now, &agent);
            }
            Some(AgentState::Talking { call }) => {
                if let Some(entry) = self.calls.get_mut(&call.0) {
                    if let Some((_, c)) = entry.agent.as_mut() {
                        *c = None;
                    }
                    let flow = entry.flow;
                    self.out.push_back(Output::Unroute { conn, flow });
                    self.out.push_back(Output::ToCall {
                        call: call.0,
                        cmd: CallCommand::AgentLost,
                    });
                }
            }
            _ => {}
        }
        Some(agent)
    }

    /// Puts the caller on hold or takes them off, and confirms to the agent (also when nothing
    /// changed, so a repeated request is answered like the first).
    fn hold(&mut self, call: Call, conn: ConnId, on: bool) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        if entry.transfer.is_some() {
            // The caller hears music already; the hold would only reach the target.
            let message = "the caller is on hold while a transfer is under way".into();
            return self.error(conn, ErrorCode::InvalidState, message, Some(call_id(call)));
        }
        if entry.held != on {
            entry.held = on;
            self.out.push_back(Output::ToCall {
                call,
                cmd: CallCommand::Hold { on },
            });
        }
        self.send_to_agent(
            conn,
            GatewayMessage::Hold(proto::from_gateway::Hold {
                call: call_id(call),
                on,
            }),
        );
    }

    /// The call a message names if `agent` is talking on it; otherwise the agent gets an error.
    pub(super) fn talking_call(&mut self, conn: ConnId, agent: &str, id: &CallId) -> Option<Call> {
        let call = self.known_call(conn, id)?;
        if self.talking_to(call).map(String::as_str) != Some(agent) {
            self.error(
                conn,
                ErrorCode::InvalidState,
                "not talking on this call".into(),
                Some(id.clone()),
            );
            return None;
        }
        Some(call)
    }

    /// The call a message names, or an `unknown_call` error to the agent.
    fn known_call(&mut self, conn: ConnId, id: &CallId) -> Option<Call> {
        let call = parse_call_id(id).filter(|c| self.calls.contains_key(c));
        if call.is_none() {
            self.error(
                conn,
                ErrorCode::UnknownCall,
                format!("no call {}", id.as_str()),
                Some(id.clone()),
            );
        }
        call
    }

    fn wire_state(&self, agent: &str) -> WireState {
        self.acd
            .agent_state(agent)
            .and_then(wire)
            .unwrap_or(WireState::Away)
    }

    fn error(&mut self, conn: ConnId, code: ErrorCode, message: String, call: Option<CallId>) {
        let mut report = ErrorReport::new(code, &message);
        if let Some(call) = call {
            report = report.about_call(call);
        }
        self.send_to_agent(conn, GatewayMessage::Error(report));
    }
}

pub(super) fn wire(state: AgentState) -> Option<WireState> {
    Some(match state {
        AgentState::Away => WireState::Away,
        AgentState::Available => WireState::Available,
        AgentState::Ringing { .. } => WireState::Ringing,
        AgentState::Talking { .. } => WireState::Talking,
        AgentState::WrapUp { .. } => WireState::WrapUp,
        AgentState::LoggedOut => return None,
    })
}

pub fn call_id(call: Call) -> CallId {
    CallId::new(format!("c{call}"))
}

pub(super) fn parse_call_id(id: &CallId) -> Option<Call> {
    id.as_str().strip_prefix('c')?.parse().ok()
}
