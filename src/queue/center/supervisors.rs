//! Supervisors: logins with `supervises` in their `[[agent]]` entry. They take no calls; they
//! see the calls and agents of the queues they supervise (`live`, pushed on every change),
//! join a talking call of those queues to monitor, whisper or barge (`supervise`, `leave`),
//! answer agents' help requests and chat with them. Everything a supervisor may not do is
//! refused with `not_permitted` and the reason, logged and journaled.
use super::agents::parse_call_id;
use super::{call_id, Call, CallCommand, Center, Output};
use crate::agent::protocol::{
    self as proto, AgentId, AgentMessage, CallId, ErrorCode, GatewayMessage, SuperviseMode,
    WireMessage,
};
use crate::agent::sessions::ConnId;
use crate::events::{AgentEvent, CallEvent, EventKind};
use crate::queue::AgentState;

#[derive(Debug)]
pub(super) struct SupervisorEntry {
    conn: ConnId,
    queues: Vec<String>,
    /// The call it takes part in, how, and its media flow.
    supervising: Option<(Call, SuperviseMode, u64)>,
    /// What it was last sent of its queues, so that only changes go out.
    last_live: Option<proto::from_gateway::Live>,
    last_wallboard: Option<Vec<proto::from_gateway::QueueBoard>>,
}

impl Center {
    /// A supervisor whose credential the shell verified logs in on `conn`.
    pub fn supervisor_login(
        &mut self,
        conn: ConnId,
        supervisor: &str,
        queues: &[String],
    ) -> Result<(), proto::RefusalReason> {
        if self.supervisors.contains_key(supervisor) {
            return Err(proto::RefusalReason::AlreadyLoggedIn);
        }
        self.agent_event(supervisor, AgentEvent::LoggedIn { resumed: false });
        self.supervisors.insert(
            supervisor.to_owned(),
            SupervisorEntry {
                conn,
                queues: queues.to_vec(),
                supervising: None,
                last_live: None,
                last_wallboard: None,
            },
        );
        self.conns.insert(conn, supervisor.to_owned());
        let session = proto::SessionId::new(format!("s{}", self.next_session));
        self.next_session += 1;
        self.send_to_agent(
            conn,
            GatewayMessage::Welcome(proto::from_gateway::Welcome {
                session,
                // A supervisor's session does not outlive its connection: nothing to resume.
                resume_token: proto::ResumeToken::new(String::from("none")),
                state: proto::AgentState::Away,
                media: self.media,
                resume_grace_ms: 0,
                gateway: self.gateway_name.clone(),
                supervises: queues.to_vec(),
            }),
        );
        Ok(())
    }

    /// The supervisor on `conn` is gone (its connection lost or closed): out of its call.
    /// Returns whether `conn` was a supervisor's.
    pub(super) fn supervisor_gone(&mut self, conn: ConnId) -> bool {
        let Some(name) = self
            .supervisors
            .iter()
            .find(|(_, s)| s.conn == conn)
            .map(|(n, _)| n.clone())
        else {
            return false;
        };
        self.stop_supervising(&name, None);
        self.supervisors.remove(&name);
        self.conns.remove(&conn);
        self.agent_event(
            &name,
            AgentEvent::LoggedOut {
                reason: crate::events::LogoutReason::Logout,
            },
        );
        true
    }

    /// A reload revoked or removed supervisors: their connections close, out of their calls.
    pub(super) fn bar_supervisors(&mut self, allowed: &dyn Fn(&str) -> bool) {
        let barred: Vec<(String, ConnId)> = self
            .supervisors
            .iter()
            .filter(|(name, _)| !allowed(name))
            .map(|(name, s)| (name.clone(), s.conn))
            .collect();
        for (name, conn) in barred {
            tracing::info!(supervisor = %name, "supervisor no longer allowed: logged out");
            self.out.push_back(Output::Close {
                conn,
                code: proto::close_code::REVOKED,
                reason: "agent revoked",
            });
            self.supervisor_gone(conn);
        }
    }

    pub(super) fn is_supervisor(&self, id: &str) -> bool {
        self.supervisors.contains_key(id)
    }

    /// A message from a supervisor.
    pub(super) fn supervisor_message(&mut self, conn: ConnId, name: &str, msg: AgentMessage) {
        match msg {
            AgentMessage::Supervise(s) => self.supervise(conn, name, &s.call, s.mode),
            AgentMessage::Leave(l) => {
                let current = self.supervisors.get(name).and_then(|s| s.supervising);
                match current {
                    Some((call, ..)) if call_id(call) == l.call => {
                        self.stop_supervising(name, Some("left"))
                    }
                    _ => self.error_to(conn, ErrorCode::InvalidState, "not in this call", l.call),
                }
            }
            AgentMessage::Chat(chat) => self.supervisor_chat(conn, name, chat),
            AgentMessage::Ping(ping) => self.send_to_agent(
                conn,
                GatewayMessage::Pong(proto::from_gateway::Pong { nonce: ping.nonce }),
            ),
            AgentMessage::Error(_) | AgentMessage::Stats(_) => {}
            other => {
                let what = other.type_name();
                self.refuse(
                    conn,
                    name,
                    what,
                    format!("{what}: a supervisor takes no calls"),
                    None,
                );
            }
        }
    }

    /// An agent (not a supervisor) sent a supervisor's command.
    pub(super) fn not_a_supervisor(&mut self, conn: ConnId, agent: &str, what: &str) {
        self.refuse(
            conn,
            agent,
            what,
            format!("{what} is a supervisor's command, and {agent} is not a supervisor"),
            None,
        );
    }

    fn supervise(&mut self, conn: ConnId, name: &str, id: &CallId, mode: SuperviseMode) {
        let Some(call) = parse_call_id(id).filter(|c| self.calls.contains_key(c)) else {
            return self.error_to(conn, ErrorCode::UnknownCall, "no such call", id.clone());
        };
        let Some(queues) = self.supervisors.get(name).map(|s| s.queues.clone()) else {
            return;
        };
        let Some(entry) = self.calls.get(&call) else {
            return;
        };
        if !queues.contains(&entry.queue) {
            let why = format!(
                "call {} is in queue {}, which {name} does not supervise",
                id.as_str(),
                entry.queue
            );
            return self.refuse(conn, name, "supervise", why, Some(id.clone()));
        }
        if entry.agent.is_none() {
            return self.error_to(
                conn,
                ErrorCode::InvalidState,
                "the call is not with an agent",
                id.clone(),
            );
        }
        if mode == SuperviseMode::Other {
            return self.error_to(conn, ErrorCode::BadMessage, "unknown mode", id.clone());
        }
        let other = self
            .supervisors
            .iter()
            .find(|(n, s)| n.as_str() != name && s.supervising.is_some_and(|(c, ..)| c == call))
            .map(|(n, _)| n.clone());
        if let Some(other) = other {
            let why = format!("{other} supervises this call already");
            return self.error_to(conn, ErrorCode::InvalidState, &why, id.clone());
        }
        let current = self.supervisors.get(name).and_then(|s| s.supervising);
        let flow = match current {
            Some((c, _, flow)) if c == call => flow,
            Some(_) => {
                self.stop_supervising(name, Some("left"));
                self.new_supervisor_flow(conn, call)
            }
            None => self.new_supervisor_flow(conn, call),
        };
        if let Some(s) = self.supervisors.get_mut(name) {
            s.supervising = Some((call, mode, flow));
        }
        self.out.push_back(Output::ToCall {
            call,
            cmd: CallCommand::Supervise {
                supervisor: name.to_owned(),
                mode,
            },
        });
        self.events.push_back(EventKind::Call {
            call,
            event: CallEvent::Supervised {
                supervisor: name.to_owned(),
                mode: Some(mode.code().to_owned()),
            },
        });
        self.send_to_agent(
            conn,
            GatewayMessage::Supervising(proto::from_gateway::Supervising {
                call: id.clone(),
                mode,
                flow: proto::FlowId(flow),
            }),
        );
    }

    fn new_supervisor_flow(&mut self, conn: ConnId, call: Call) -> u64 {
        let flow = self.next_flow;
        self.next_flow += 1;
        self.out
            .push_back(Output::RouteSupervisor { conn, flow, call });
        flow
    }

    /// Takes `name` out of its call, telling it why (`None`: it is gone, nobody to tell).
    fn stop_supervising(&mut self, name: &str, reason: Option<&str>) {
        let Some(s) = self.supervisors.get_mut(name) else {
            return;
        };
        let Some((call, _, flow)) = s.supervising.take() else {
            return;
        };
        let conn = s.conn;
        self.out.push_back(Output::Unroute { conn, flow });
        if self.calls.contains_key(&call) {
            self.out.push_back(Output::ToCall {
                call,
                cmd: CallCommand::Unsupervise,
            });
            self.events.push_back(EventKind::Call {
                call,
                event: CallEvent::Supervised {
                    supervisor: name.to_owned(),
                    mode: None,
                },
            });
        }
        if let Some(reason) = reason {
            self.send_to_agent(
                conn,
                GatewayMessage::SupervisionEnded(proto::from_gateway::SupervisionEnded {
                    call: call_id(call),
                    reason: reason.to_owned(),
                }),
            );
        }
    }

    /// The talking agent on `conn` asks for help on its call: every supervisor of the call's
    /// queue hears of it.
    pub(super) fn help(&mut self, conn: ConnId, agent: &str, h: proto::from_agent::Help) {
        let Some(call) = self.talking_call(conn, agent, &h.call) else {
            return;
        };
        let queue = self
            .calls
            .get(&call)
            .map(|c| c.queue.clone())
            .unwrap_or_default();
        let told: Vec<ConnId> = self
            .supervisors
            .values()
            .filter(|s| s.queues.contains(&queue))
            .map(|s| s.conn)
            .collect();
        for &to in &told {
            self.send_to_agent(
                to,
                GatewayMessage::HelpRequested(proto::from_gateway::HelpRequested {
                    call: h.call.clone(),
                    agent: AgentId::new(agent),
                    queue: queue.clone(),
                    note: h.note.clone(),
                }),
            );
        }
        tracing::info!(call, %agent, %queue, supervisors = told.len(), "agent asks for help");
        self.events.push_back(EventKind::Call {
            call,
            event: CallEvent::HelpRequested {
                agent: agent.to_owned(),
                note: h.note,
                supervisors: told.len(),
            },
        });
        if told.is_empty() {
            let why = format!("no supervisor of {queue} is logged in");
            self.error_to(conn, ErrorCode::InvalidState, &why, h.call);
        }
    }

    /// An agent's chat: to every supervisor of the queues it serves.
    pub(super) fn agent_chat(&mut self, conn: ConnId, agent: &str, chat: proto::from_agent::Chat) {
        let call = chat.call.as_ref().and_then(parse_call_id);
        let to: Vec<(String, ConnId)> = self
            .supervisors
            .iter()
            .filter(|(_, s)| s.queues.iter().any(|q| self.acd.agent_serves(agent, q)))
            .map(|(n, s)| (n.clone(), s.conn))
            .collect();
        if to.is_empty() {
            let report = proto::ErrorReport::new(
                ErrorCode::InvalidState,
                "no supervisor of your queues is logged in",
            );
            return self.send_to_agent(conn, GatewayMessage::Error(report));
        }
        self.deliver_chat(agent, &to, chat.call, call, chat.text);
    }

    /// A supervisor's chat: to one agent of the queues it supervises.
    fn supervisor_chat(&mut self, conn: ConnId, name: &str, chat: proto::from_agent::Chat) {
        let Some(to) = chat.to.clone() else {
            let report = proto::ErrorReport::new(ErrorCode::BadMessage, "chat: `to` the agent");
            return self.send_to_agent(conn, GatewayMessage::Error(report));
        };
        let queues = self
            .supervisors
            .get(name)
            .map(|s| s.queues.clone())
            .unwrap_or_default();
        if !queues.iter().any(|q| self.acd.agent_serves(to.as_str(), q)) {
            let why = format!(
                "{} is not logged in to a queue {name} supervises",
                to.as_str()
            );
            return self.refuse(conn, name, "chat", why, None);
        }
        let Some(agent_conn) = self.conn_of(to.as_str()) else {
            return;
        };
        let call = chat.call.as_ref().and_then(parse_call_id);
        let to = vec![(to.as_str().to_owned(), agent_conn)];
        self.deliver_chat(name, &to, chat.call, call, chat.text);
    }

    fn deliver_chat(
        &mut self,
        from: &str,
        to: &[(String, ConnId)],
        call_wire: Option<CallId>,
        call: Option<Call>,
        text: String,
    ) {
        for (_, conn) in to {
            self.send_to_agent(
                *conn,
                GatewayMessage::Chat(proto::from_gateway::Chat {
                    from: AgentId::new(from),
                    call: call_wire.clone(),
                    text: text.clone(),
                }),
            );
        }
        self.agent_event(
            from,
            AgentEvent::Chat {
                to: to.iter().map(|(n, _)| n.clone()).collect(),
                call: call.map(crate::queue::CallRef),
                text,
            },
        );
    }

    /// Refuses what `who` may not do: `not_permitted` with the reason, a log line, a journal
    /// record.
    fn refuse(&mut self, conn: ConnId, who: &str, what: &str, why: String, call: Option<CallId>) {
        tracing::warn!(agent = %who, %what, reason = %why, "supervisor command refused");
        let mut report = proto::ErrorReport::new(ErrorCode::NotPermitted, &why);
        if let Some(call) = call {
            report = report.about_call(call);
        }
        self.send_to_agent(conn, GatewayMessage::Error(report));
        self.agent_event(
            who,
            AgentEvent::Refused {
                what: what.to_owned(),
                why,
            },
        );
    }

    fn error_to(&mut self, conn: ConnId, code: ErrorCode, message: &str, call: CallId) {
        let report = proto::ErrorReport::new(code, message).about_call(call);
        self.send_to_agent(conn, GatewayMessage::Error(report));
    }

    /// After every input: supervisors whose call ended (or whose agent left it) are out of it,
    /// and each supervisor's view of its queues goes out if it changed.
    pub(super) fn settle_supervisors(&mut self) {
        let ended: Vec<(String, &'static str)> = self
            .supervisors
            .iter()
            .filter_map(|(n, s)| {
                let (call, ..) = s.supervising?;
                match self.calls.get(&call) {
                    None => Some((n.clone(), "call_ended")),
                    Some(c) if c.agent.is_none() => Some((n.clone(), "agent_left")),
                    Some(_) => None,
                }
            })
            .collect();
        for (name, reason) in ended {
            self.stop_supervising(&name, Some(reason));
        }
        let names: Vec<String> = self.supervisors.keys().cloned().collect();
        for name in names {
            let live = self.live_for(&name);
            let Some(s) = self.supervisors.get_mut(&name) else {
                continue;
            };
            let conn = s.conn;
            let board: Vec<_> = self
                .wallboard
                .iter()
                .filter(|q| s.queues.contains(&q.queue))
                .cloned()
                .collect();
            let new_board = s.last_wallboard.as_ref() != Some(&board);
            if new_board {
                s.last_wallboard = Some(board.clone());
            }
            if s.last_live.as_ref() != Some(&live) {
                s.last_live = Some(live.clone());
                self.send_to_agent(conn, GatewayMessage::Live(live));
            }
            if new_board {
                self.send_to_agent(
                    conn,
                    GatewayMessage::Wallboard(proto::from_gateway::Wallboard { queues: board }),
                );
            }
        }
    }

    /// The wallboard as ops computed it now: supervisors get their queues' part when it changed.
    pub fn set_wallboard(&mut self, boards: Vec<proto::from_gateway::QueueBoard>) {
        self.wallboard = boards;
    }

    /// The calls and agents of `name`'s queues, as it sees them.
    fn live_for(&self, name: &str) -> proto::from_gateway::Live {
        let queues = self
            .supervisors
            .get(name)
            .map(|s| s.queues.as_slice())
            .unwrap_or_default();
        let mut calls: Vec<_> = self
            .calls
            .iter()
            .filter(|(_, c)| queues.contains(&c.queue))
            .map(|(&call, c)| proto::from_gateway::LiveCall {
                call: call_id(call),
                queue: c.queue.clone(),
                caller: c.caller.clone(),
                state: if c.agent.is_some() {
                    "talking"
                } else {
                    "waiting"
                }
                .into(),
                agent: c.agent.as_ref().map(|(a, _)| AgentId::new(a)),
            })
            .collect();
        calls.sort_by(|a, b| a.call.as_str().cmp(b.call.as_str()));
        calls.truncate(proto::limits::MAX_LIVE_ENTRIES);
        let mut agents: Vec<_> = self
            .agents
            .keys()
            .filter(|a| queues.iter().any(|q| self.acd.agent_serves(a, q)))
            .map(|a| {
                let state = self.acd.agent_state(a);
                let call = match state {
                    Some(AgentState::Talking { call } | AgentState::Ringing { call }) => {
                        Some(call_id(call.0))
                    }
                    _ => None,
                };
                proto::from_gateway::LiveAgent {
                    agent: AgentId::new(a),
                    state: state
                        .and_then(super::agents::wire)
                        .unwrap_or(proto::AgentState::Away),
                    call,
                }
            })
            .collect();
        agents.sort_by(|a, b| a.agent.as_str().cmp(b.agent.as_str()));
        agents.truncate(proto::limits::MAX_LIVE_ENTRIES);
        proto::from_gateway::Live { calls, agents }
    }
}
