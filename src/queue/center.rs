//! The contact center as a sans-IO core: agent sessions and the ACD joined, between the agents'
//! control streams and the calls waiting for them.
//!
//! Inputs are what agents say (already authenticated by the shell), lost connections, and
//! callers entering or leaving queues; outputs are messages for agents, commands for calls, and
//! media routes (which connection's datagrams of which flow belong to which call), and events
//! for the bus. The shell ([`shell`]) only carries them out.
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::agent::protocol::{
    self as proto, AgentMessage, AgentState as WireState, CallId, CancelReason, EndReason,
    ErrorCode, ErrorReport, FlowId, GatewayMessage, MediaParams, RefusalReason, RequestedState,
    ResumeToken, SessionId,
};
use crate::agent::sessions::{ConnId, LoginOutcome, SessionEvent, Sessions};
use crate::events::{AgentEvent, CallEvent, EventKind, LogoutReason};
use crate::ivr::Action;
use crate::queue::{
    Acd, AcdError, AcdEvent, AgentState, CallRef as AcdCall, QueueConfig, WithdrawReason,
};

/// A call's handle (the SIP side's call reference).
pub type Call = u64;

/// What a call must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCommand {
    /// The queue would not take the caller.
    Refused { reason: AcdError },
    /// Bridge the caller to the agent on `conn`; its audio travels as media flow `flow`.
    Connect {
        conn: ConnId,
        flow: u64,
        agent: String,
    },
    /// The agent's connection died: music on hold while it may resume.
    AgentLost,
    /// The agent is back on a new connection.
    Reconnect { conn: ConnId, flow: u64 },
    /// Back in the queue (the agent did not come back): music on hold.
    Requeued,
    /// Play these prompts over the music on hold.
    Announce { prompts: Vec<String> },
    /// The queue gave up waiting: carry out its overflow action.
    Overflow { action: Action },
    /// The agent hung up: end the call.
    AgentHungUp,
    /// The agent pressed keys: send them to the caller's side.
    Dtmf { digits: String },
    /// The agent put the caller on hold (music on hold, no audio either way) or took them off.
    Hold { on: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    ToAgent {
        conn: ConnId,
        msg: GatewayMessage,
    },
    /// Close the connection (a session taken over by a newer connection, a revoked agent).
    Close {
        conn: ConnId,
        code: u32,
        reason: &'static str,
    },
    ToCall {
        call: Call,
        cmd: CallCommand,
    },
    /// Datagrams of `flow` on `conn` belong to `call`.
    Route {
        conn: ConnId,
        flow: u64,
        call: Call,
    },
    Unroute {
        conn: ConnId,
        flow: u64,
    },
}

#[derive(Debug)]
struct AgentEntry {
    conn: Option<ConnId>,
    session: SessionId,
}

#[derive(Debug)]
struct CallEntry {
    queue: String,
    caller: String,
    flow: u64,
    /// The agent talking to this caller, and on which connection its media is routed.
    agent: Option<(String, Option<ConnId>)>,
    held: bool,
    /// The agent's latest report of the call's media as it received it.
    agent_view: Option<proto::from_agent::Stats>,
}

pub struct Center {
    acd: Acd,
    sessions: Sessions,
    media: MediaParams,
    grace: Duration,
    gateway_name: String,
    agents: HashMap<String, AgentEntry>,
    conns: HashMap<ConnId, String>,
    calls: HashMap<Call, CallEntry>,
    next_flow: u64,
    next_session: u64,
    out: VecDeque<Output>,
    events: VecDeque<EventKind>,
}

impl Center {
    pub fn new(
        queues: Arc<std::collections::BTreeMap<String, QueueConfig>>,
        grace: Duration,
        media: MediaParams,
    ) -> Self {
        Center {
            acd: Acd::new(queues),
            sessions: Sessions::new(grace, rand::SeedableRng::from_entropy()),
            media,
            grace,
            gateway_name: format!("trunkgate/{}", env!("CARGO_PKG_VERSION")),
            agents: HashMap::new(),
            conns: HashMap::new(),
            calls: HashMap::new(),
            next_flow: 1,
            next_session: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn acd(&self) -> &Acd {
        &self.acd
    }

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
        match msg {
            AgentMessage::SetState(s) => {
                let result = match s.state {
                    RequestedState::Available => self.acd.agent_available(now, &agent),
                    RequestedState::Away => self.acd.agent_away(now, &agent),
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
                    GatewayMessage::State(proto::from_gateway::State { state }),
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
            AgentMessage::Ping(_) | AgentMessage::Error(_) => {}
        }
        self.drain_acd(now);
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
        let Some(agent) = self.conns.remove(&conn) else {
            return;
        };
        self.sessions.connection_lost(now, &agent, conn);
        self.agent_event(&agent, AgentEvent::ConnectionLost);
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
        self.drain_acd(now);
    }

    /// A caller enters `queue`.
    pub fn enqueue(
        &mut self,
        now: Instant,
        call: Call,
        queue: &str,
        caller: &str,
    ) -> Result<(), crate::queue::AcdError> {
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
            },
        );
        if let Err(e) = self.acd.enqueue(now, AcdCall(call), queue) {
            self.calls.remove(&call);
            return Err(e);
        }
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

    /// Puts the caller on hold or takes them off, and confirms to the agent (also when nothing
    /// changed, so a repeated request is answered like the first).
    fn hold(&mut self, call: Call, conn: ConnId, on: bool) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
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

    fn end_call(&mut self, now: Instant, call: Call, reason: EndReason) {
        let Some(entry) = self.calls.remove(&call) else {
            return;
        };
        let _ = self.acd.call_ended(now, AcdCall(call));
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

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.acd.poll_timeout(), self.sessions.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.sessions.handle_timeout(now);
        self.drain_sessions(now);
        self.acd.handle_timeout(now);
        self.drain_acd(now);
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// What happened to agents and calls, for the event bus.
    pub fn poll_event(&mut self) -> Option<EventKind> {
        self.events.pop_front()
    }

    fn agent_event(&mut self, agent: &str, event: AgentEvent) {
        self.events.push_back(EventKind::Agent {
            agent: agent.to_string(),
            event,
        });
    }

    fn drain_sessions(&mut self, now: Instant) {
        while let Some(ev) = self.sessions.poll_event() {
            let (agent, reason) = match ev {
                SessionEvent::Gone { agent } => (agent, LogoutReason::Gone),
                SessionEvent::Replaced { agent } => (agent, LogoutReason::Replaced),
            };
            self.agent_event(&agent, AgentEvent::LoggedOut { reason });
            let _ = self.acd.agent_logout(now, &agent);
            self.agents.remove(&agent);
            // A call the agent held stays in the ACD's hands (back at the head of the queue);
            // forget which agent it had.
            for entry in self.calls.values_mut() {
                if entry.agent.as_ref().is_some_and(|(a, _)| *a == agent) {
                    entry.agent = None;
                }
            }
        }
    }

    fn drain_acd(&mut self, _now: Instant) {
        while let Some(ev) = self.acd.poll_event() {
            match ev {
                AcdEvent::Offer {
                    call,
                    agent,
                    queue,
                    ring_timeout,
                } => {
                    let (Some(conn), Some(entry)) = (self.conn_of(&agent), self.calls.get(&call.0))
                    else {
                        continue;
                    };
                    self.events.push_back(EventKind::Call {
                        call: call.0,
                        event: CallEvent::Offered {
                            agent: agent.clone(),
                        },
                    });
                    let msg = GatewayMessage::Offer(proto::from_gateway::Offer {
                        call: call_id(call.0),
                        caller: entry.caller.clone(),
                        queue,
                        ring_timeout_ms: ring_timeout.as_millis() as u64,
                        flow: FlowId(entry.flow),
                    });
                    self.send_to_agent(conn, msg);
                }
                AcdEvent::OfferWithdrawn {
                    call,
                    agent,
                    reason,
                } => {
                    if let Some(conn) = self.conn_of(&agent) {
                        let reason = match reason {
                            WithdrawReason::RingTimeout => CancelReason::Timeout,
                            WithdrawReason::CallerGone => CancelReason::CallerGone,
                            _ => CancelReason::Taken,
                        };
                        self.send_to_agent(
                            conn,
                            GatewayMessage::OfferCancelled(proto::from_gateway::OfferCancelled {
                                call: call_id(call.0),
                                reason,
                            }),
                        );
                    }
                }
                AcdEvent::Announce { call, prompts, .. } => self.out.push_back(Output::ToCall {
                    call: call.0,
                    cmd: CallCommand::Announce { prompts },
                }),
                AcdEvent::Overflow { call, action, .. } => {
                    self.calls.remove(&call.0);
                    self.out.push_back(Output::ToCall {
                        call: call.0,
                        cmd: CallCommand::Overflow { action },
                    });
                }
                AcdEvent::CallerRequeued { call, .. } => {
                    if let Some(entry) = self.calls.get_mut(&call.0) {
                        entry.agent = None;
                        entry.held = false;
                    }
                    self.out.push_back(Output::ToCall {
                        call: call.0,
                        cmd: CallCommand::Requeued,
                    });
                }
                AcdEvent::AgentStateChanged { agent, state } => {
                    self.agent_event(&agent, AgentEvent::StateChanged { state });
                    if let (Some(conn), Some(state)) = (self.conn_of(&agent), wire(state)) {
                        self.send_to_agent(
                            conn,
                            GatewayMessage::State(proto::from_gateway::State { state }),
                        );
                    }
                }
            }
        }
    }

    fn conn_of(&self, agent: &str) -> Option<ConnId> {
        self.agents.get(agent).and_then(|a| a.conn)
    }

    fn talking_to(&self, call: Call) -> Option<&String> {
        self.calls
            .get(&call)
            .and_then(|c| c.agent.as_ref().map(|(a, _)| a))
    }

    /// The call a message names if `agent` is talking on it; otherwise the agent gets an error.
    fn talking_call(&mut self, conn: ConnId, agent: &str, id: &CallId) -> Option<Call> {
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

    fn send_to_agent(&mut self, conn: ConnId, msg: GatewayMessage) {
        self.out.push_back(Output::ToAgent { conn, msg });
    }
}

fn wire(state: AgentState) -> Option<WireState> {
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

fn parse_call_id(id: &CallId) -> Option<Call> {
    id.as_str().strip_prefix('c')?.parse().ok()
}

pub mod shell;

#[cfg(test)]
mod tests;
