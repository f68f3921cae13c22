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
    self as proto, CancelReason, FlowId, GatewayMessage, MediaParams, SessionId,
};
use crate::agent::sessions::{ConnId, SessionEvent, Sessions};
use crate::events::{AgentEvent, CallEvent, EventKind, LogoutReason};
use crate::ivr::Action;
use crate::queue::{Acd, AcdError, AcdEvent, AgentState, QueueConfig, WithdrawReason};
use agents::wire;

/// A call's handle (the SIP side's call reference).
pub type Call = u64;

/// What a call must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCommand {
    /// `supervisor` joins the call (its media comes with the command) or changes how it takes
    /// part.
    Supervise {
        supervisor: String,
        mode: crate::agent::protocol::SuperviseMode,
    },
    /// The supervisor leaves the call.
    Unsupervise,
    /// Start, pause or resume the call's recording, as `by` (an agent's id, `admin`) asks.
    Recording {
        action: crate::call::core::RecordingAction,
        by: String,
    },
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
    /// The agent transferred the caller to `queue`: music on hold there until the next agent.
    Transferred { queue: String },
    /// The agent transfers the caller to an external number: ask the carrier to take it there
    /// (REFER; the caller's trunk takes it).
    HandOver { number: String, agent: String },
    /// The agent transfers the caller to an external number, admitted as a call out, through
    /// a leg of our own to the target, which the agent consults first if `attended`.
    TransferOut {
        onward: Box<outbound::PlaceCall>,
        attended: bool,
    },
    /// The agent completes its attended transfer: join the caller to the target.
    CompleteTransfer,
    /// The agent takes the caller back from the transfer target.
    ReturnToCaller,
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
    /// Route a supervisor's flow on `conn` to `call` (the media handle travels with the
    /// `Supervise` command).
    RouteSupervisor {
        conn: ConnId,
        flow: u64,
        call: Call,
    },
    Route {
        conn: ConnId,
        flow: u64,
        call: Call,
    },
    Unroute {
        conn: ConnId,
        flow: u64,
    },
    /// Place this call (an agent dialled); its agent's media is routed already.
    Place(Box<outbound::PlaceCall>),
}

#[derive(Debug)]
struct AgentEntry {
    conn: Option<ConnId>,
    session: SessionId,
    /// Why the agent last said it was away.
    away_reason: Option<String>,
    /// The last call the agent answered: a disposition may name it until its wrap-up ends.
    last_call: Option<Call>,
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
    /// A transfer to an external number under way.
    transfer: Option<transfer::Transferring>,
    /// The trunk the caller came in on (empty for calls agents place).
    trunk: String,
    /// The call's recording, as the call last said.
    recording: crate::events::RecordingState,
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
    outbound: outbound::Outbound,
    /// Logged-in supervisors, by id.
    supervisors: HashMap<String, supervisors::SupervisorEntry>,
    /// Every queue's wallboard figures, as ops last published them.
    wallboard: Vec<crate::agent::protocol::from_gateway::QueueBoard>,
}

impl Center {
    /// `rng` makes the resume tokens: in production a CSPRNG seeded from the OS (see
    /// `Sessions::new`), in tests a seeded one so runs repeat.
    pub fn new(
        queues: Arc<std::collections::BTreeMap<String, QueueConfig>>,
        grace: Duration,
        media: MediaParams,
        rng: rand::rngs::StdRng,
    ) -> Self {
        Center {
            acd: Acd::new(queues),
            sessions: Sessions::new(grace, rng),
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
            outbound: outbound::Outbound::default(),
            supervisors: HashMap::new(),
            wallboard: Vec::new(),
        }
    }

    pub fn acd(&self) -> &Acd {
        &self.acd
    }

    /// A config reload: new queue definitions and media settings for the offers to come, and
    /// agents no longer allowed in (revoked or removed) logged out at once. A call such an agent
    /// was on goes back to the head of its queue (music meanwhile), as when an agent never comes
    /// back after losing its connection.
    pub fn reconfigure(
        &mut self,
        now: Instant,
        queues: Arc<std::collections::BTreeMap<String, QueueConfig>>,
        media: MediaParams,
        allowed: &dyn Fn(&str) -> bool,
    ) {
        self.acd.set_config(queues);
        self.media = media;
        let barred: Vec<String> = self
            .agents
            .keys()
            .filter(|a| !allowed(a))
            .cloned()
            .collect();
        for agent in barred {
            tracing::info!(%agent, "agent no longer allowed: logged out");
            if let Some(conn) = self.conn_of(&agent) {
                self.out.push_back(Output::Close {
                    conn,
                    code: proto::close_code::REVOKED,
                    reason: "agent revoked",
                });
                self.connection_lost(now, conn);
            }
            self.sessions.revoke(&agent);
            self.drain_sessions(now);
        }
        self.bar_supervisors(allowed);
        self.drain_acd(now);
    }

    /// The gateway stops: every agent's session ends with it (their connections close with
    /// the process).
    pub fn shutdown(&mut self) {
        let mut agents: Vec<String> = self.agents.keys().cloned().collect();
        agents.sort();
        for agent in agents {
            self.agent_event(
                &agent,
                AgentEvent::LoggedOut {
                    reason: LogoutReason::Shutdown,
                },
            );
        }
        self.agents.clear();
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
        if self.out.is_empty() && !self.supervisors.is_empty() {
            self.settle_supervisors();
        }
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
                SessionEvent::Revoked { agent } => (agent, LogoutReason::Revoked),
                SessionEvent::LoggedOut { agent } => (agent, LogoutReason::Logout),
            };
            self.agent_event(&agent, AgentEvent::LoggedOut { reason });
            // A call the agent placed has nobody left to talk to.
            for call in self.placed_calls_of(&agent) {
                self.calls.remove(&call);
                self.out.push_back(Output::ToCall {
                    call,
                    cmd: CallCommand::AgentHungUp,
                });
            }
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

    fn drain_acd(&mut self, now: Instant) {
        while let Some(ev) = self.acd.poll_event() {
            match ev {
                AcdEvent::Offer {
                    call,
                    agent,
                    queue,
                    ring_timeout,
                    waited,
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
                        waited_ms: Some(waited.as_millis() as u64),
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
                    let entry = self.agents.get_mut(&agent);
                    let reason = match (state, entry) {
                        (AgentState::Away, Some(entry)) => entry.away_reason.clone(),
                        // Back at work: a later away (after a missed offer, say) is not for
                        // the reason given before.
                        (AgentState::Available, Some(entry)) => {
                            entry.away_reason = None;
                            None
                        }
                        _ => None,
                    };
                    self.agent_event(&agent, AgentEvent::StateChanged { state, reason });
                    let wrap_up_ms = match state {
                        AgentState::WrapUp { until } => {
                            Some(until.saturating_duration_since(now).as_millis() as u64)
                        }
                        _ => None,
                    };
                    if let (Some(conn), Some(state)) = (self.conn_of(&agent), wire(state)) {
                        self.send_to_agent(
                            conn,
                            GatewayMessage::State(proto::from_gateway::State { state, wrap_up_ms }),
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

    fn send_to_agent(&mut self, conn: ConnId, msg: GatewayMessage) {
        self.out.push_back(Output::ToAgent { conn, msg });
    }
}

mod agents;
mod calls;
pub mod outbound;
mod recording;
pub mod shell;
mod supervisors;
mod transfer;

pub use agents::call_id;

#[cfg(test)]
mod tests;
