//! What the agent decides, without sockets or clocks: which message to send when a gateway
//! message, a timer or a command arrives; when media starts, moves and stops; when to reconnect
//! and when to give up. The shell ([`super::shell`]) feeds it inputs with the time and carries
//! out its [`Action`]s in order.
//!
//! # The link's life
//!
//! ```text
//! Connecting ──connected()──▶ LoggingIn ──welcome──▶ Ready ──call_ended × --calls──▶ exit 0
//!   ▲   │ no welcome yet: exit 1     └──login_refused──▶ exit 2               │
//!   │   └─ past the grace period: exit 1                                       │
//!   └──────────── lost: at once, then every 500 ms ◀────────────────────────────┘
//! ```
//!
//! A connection that dies after a `welcome` (other than by a gateway close code that means "do
//! not come back") is resumed: the agent reconnects at once with the last `resume_token`, then
//! every [`RECONNECT_INTERVAL`], until the grace period the gateway announced has passed, counted
//! from when the agent noticed the loss (the gateway notices later, so its grace ends later).
//! Media keeps ticking meanwhile: the received side conceals, and what is sent is lost with the
//! path, as it would be for a real phone.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::agent::protocol as proto;
use crate::agent::protocol::{
    from_agent::{
        Accept, Chat, CompleteTransfer, Consult, Dial, Disposition, Dtmf, Hangup, Help, Hold,
        Leave, Login, Record, Reject, ReturnToCaller, SetState, Supervise, Transfer,
    },
    from_gateway::{Answered, CallEnded, DialFailed, Dialing, Offer, Resumed, Welcome},
    AgentId, AgentMessage, CallId, DecodeError, ErrorCode, ErrorReport, FlowId, GatewayMessage,
    MediaParams, RequestedState, ResumeToken, SessionId, WireMessage,
};

use super::events::{wire_name, Event};
use super::media::check_params;

mod vocabulary;

use vocabulary::exit_for_close_code;
pub use vocabulary::{Action, Command, CoreConfig, Exit, Loss, StopReason};

/// How long the gateway has to answer `login`; it closes connections that take longer to log
/// in, so waiting longer would be pointless.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Between connection attempts while resuming.
pub const RECONNECT_INTERVAL: Duration = Duration::from_millis(500);
/// Between `stats` messages for an answered call (docs/agent-protocol.md §6: about every 5 s).
pub const STATS_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// A connection attempt is under way (or scheduled).
    Connecting,
    /// `login` sent; the welcome is due by `deadline`.
    LoggingIn {
        deadline: Instant,
    },
    Ready,
    Finished,
}

#[derive(Debug, Clone)]
struct Session {
    id: SessionId,
    token: ResumeToken,
    grace: Duration,
}

#[derive(Debug, Clone)]
struct PendingOffer {
    call: CallId,
    accept_at: Option<Instant>,
    accepted: bool,
}

#[derive(Debug, Clone)]
struct ActiveCall {
    call: CallId,
    hangup_at: Option<Instant>,
    rebind_at: Option<Instant>,
    dtmf_at: Option<Instant>,
    hold_at: Option<Instant>,
    unhold_at: Option<Instant>,
    stats_at: Instant,
}

impl ActiveCall {
    fn next_timer(&self) -> Instant {
        [
            self.hangup_at,
            self.rebind_at,
            self.dtmf_at,
            self.hold_at,
            self.unhold_at,
        ]
        .into_iter()
        .flatten()
        .fold(self.stats_at, Instant::min)
    }
}

#[derive(Debug)]
pub struct AgentCore {
    config: CoreConfig,
    link: Link,
    session: Option<Session>,
    media: Option<MediaParams>,
    /// While the connection is down: when the gateway's grace period (as we count it) ends.
    resume_until: Option<Instant>,
    offer: Option<PendingOffer>,
    /// A call this agent placed, not answered yet: its id once the gateway took the `dial`.
    dialing: Option<Option<CallId>>,
    call: Option<ActiveCall>,
    /// The call that ended last: a disposition typed during its wrap-up names it.
    last_call: Option<CallId>,
    /// When the wrap-up after a call ends and the agent goes available again.
    available_at: Option<Instant>,
    calls_ended: u32,
    actions: VecDeque<Action>,
    /// A supervisor's session: the queues it supervises.
    supervises: Vec<String>,
    /// The call this supervisor is in, and its flow.
    supervising: Option<(CallId, FlowId)>,
    /// The call of the latest help request: `monitor`, `whisper` or `barge` without a call
    /// joins it.
    help_call: Option<CallId>,
    /// A supervisor's latest view of its queues, for `calls`.
    live: Option<proto::from_gateway::Live>,
}

impl AgentCore {
    /// The first connection is due at once.
    pub fn new(now: Instant, config: CoreConfig) -> Self {
        let mut core = Self {
            config,
            link: Link::Connecting,
            session: None,
            media: None,
            resume_until: None,
            offer: None,
            dialing: None,
            call: None,
            last_call: None,
            available_at: None,
            calls_ended: 0,
            supervises: Vec::new(),
            supervising: None,
            help_call: None,
            live: None,
            actions: VecDeque::new(),
        };
        core.actions.push_back(Action::Connect { at: now });
        core
    }

    pub fn agent(&self) -> &AgentId {
        &self.config.agent
    }

    /// The media settings of the current session (from its `welcome`).
    pub fn media_params(&self) -> Option<&MediaParams> {
        self.media.as_ref()
    }

    /// Whether a `welcome` was ever received (so a new connection resumes).
    pub fn has_session(&self) -> bool {
        self.session.is_some()
    }

    pub fn calls_ended(&self) -> u32 {
        self.calls_ended
    }

    pub fn is_finished(&self) -> bool {
        self.link == Link::Finished
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// A connection is up and its control stream open: the `login` to send first.
    pub fn connected(&mut self, now: Instant) -> AgentMessage {
        self.link = Link::LoggingIn {
            deadline: now + LOGIN_TIMEOUT,
        };
        AgentMessage::Login(Login {
            agent: self.config.agent.clone(),
            credential: self.config.credential.clone(),
            skills: self.config.skills.clone(),
            client: super::CLIENT_NAME.to_string(),
            resume: self.session.as_ref().map(|s| s.token.clone()),
        })
    }

    /// The connection, or an attempt at one, ended.
    pub fn connection_lost(&mut self, now: Instant, loss: Loss) {
        if self.is_finished() {
            return;
        }
        if let Loss::Closed { code, reason } = &loss {
            if let Some(exit) = exit_for_close_code(*code) {
                self.emit(Event::Closed {
                    code: *code,
                    reason: reason.clone(),
                });
                if let Exit::Refused { reason: why } = &exit {
                    // The `login_refused` itself was lost with the connection; the close says
                    // as much as is known.
                    self.emit(Event::LoginRefused {
                        reason: why.clone(),
                        message: reason.clone(),
                    });
                }
                self.finish(exit);
                return;
            }
        }
        let error = match loss {
            Loss::Closed { code, reason } => format!("closed with code {code}: {reason}"),
            Loss::Lost { error } => error,
        };
        self.emit(Event::ConnectionLost { error });
        // An offer ringing on a dead connection is withdrawn (docs/agent-protocol.md §5.1).
        self.offer = None;
        let Some(session) = &self.session else {
            self.finish(Exit::ConnectFailed);
            return;
        };
        let until = *self.resume_until.get_or_insert(now + session.grace);
        let first_attempt = self.link != Link::Connecting;
        self.link = Link::Connecting;
        let at = if first_attempt {
            now
        } else {
            now + RECONNECT_INTERVAL
        };
        if at >= until {
            self.finish(Exit::ResumeFailed);
        } else {
            self.actions.push_back(Action::Connect { at });
        }
    }

    pub fn handle_message(&mut self, now: Instant, message: GatewayMessage) {
        match (self.link, message) {
            (Link::Finished | Link::Connecting, _) => {}
            (_, GatewayMessage::LoginRefused(refused)) => {
                let reason = wire_name(&refused.reason);
                self.emit(Event::LoginRefused {
                    reason: reason.clone(),
                    message: refused.message,
                });
                self.finish(Exit::Refused { reason });
            }
            (_, GatewayMessage::Error(report)) => self.emit(Event::GatewayError {
                code: wire_name(&report.code),
                message: report.message,
                call: report.call.map(|c| c.0),
            }),
            (Link::LoggingIn { .. }, GatewayMessage::Welcome(welcome)) => self.on_welcome(welcome),
            (Link::LoggingIn { .. }, other) => {
                self.violation(&format!("{} before welcome", other.type_name()))
            }
            (Link::Ready, GatewayMessage::Welcome(_)) => self.violation("a second welcome"),
            (Link::Ready, GatewayMessage::State(state)) => self.emit(Event::State {
                state: wire_name(&state.state),
            }),
            (Link::Ready, GatewayMessage::Offer(offer)) => self.on_offer(now, offer),
            (Link::Ready, GatewayMessage::OfferCancelled(cancelled)) => {
                if self
                    .offer
                    .as_ref()
                    .is_some_and(|o| o.call == cancelled.call)
                {
                    self.offer = None;
                }
                self.emit(Event::OfferCancelled {
                    call: cancelled.call.0,
                    reason: wire_name(&cancelled.reason),
                });
            }
            (Link::Ready, GatewayMessage::Answered(answered)) => self.on_answered(now, answered),
            (Link::Ready, GatewayMessage::CallEnded(ended)) => self.on_call_ended(now, ended),
            (Link::Ready, GatewayMessage::Resumed(resumed)) => self.on_resumed(now, resumed),
            (Link::Ready, GatewayMessage::Dtmf(dtmf)) => self.emit(Event::Dtmf {
                call: dtmf.call.0,
                digit: dtmf.digit,
            }),
            (Link::Ready, GatewayMessage::Hold(hold)) => {
                if self.call.as_ref().is_some_and(|c| c.call == hold.call) {
                    self.actions.push_back(Action::HoldMedia { on: hold.on });
                }
                self.emit(Event::Hold {
                    call: hold.call.0,
                    on: hold.on,
                });
            }
            (Link::Ready, GatewayMessage::Pong(pong)) => {
                self.emit(Event::Pong { nonce: pong.nonce })
            }
            (Link::Ready, GatewayMessage::Dialing(dialing)) => self.on_dialing(dialing),
            (Link::Ready, GatewayMessage::Progress(progress)) => self.emit(Event::Progress {
                call: progress.call.0,
                early_media: progress.early_media,
            }),
            (Link::Ready, GatewayMessage::DialFailed(failed)) => self.on_dial_failed(now, failed),
            (Link::Ready, GatewayMessage::Supervising(s)) => self.on_supervising(s),
            (Link::Ready, GatewayMessage::SupervisionEnded(e)) => {
                if self.supervising.as_ref().is_some_and(|(c, _)| *c == e.call) {
                    self.supervising = None;
                    self.actions.push_back(Action::EndMedia {
                        call: e.call.clone(),
                        reason: e.reason.clone(),
                    });
                }
                self.emit(Event::SupervisionEnded {
                    call: e.call.0,
                    reason: e.reason,
                })
            }
            (Link::Ready, GatewayMessage::HelpRequested(h)) => {
                self.help_call = Some(h.call.clone());
                self.emit(Event::HelpRequested {
                    call: h.call.0,
                    agent: h.agent.0,
                    queue: h.queue,
                    note: h.note,
                })
            }
            (Link::Ready, GatewayMessage::Chat(c)) => self.emit(Event::Chat {
                from: c.from.0,
                call: c.call.map(|c| c.0),
                text: c.text,
            }),
            (Link::Ready, GatewayMessage::Wallboard(board)) => self.emit(Event::Wallboard {
                queues: board.queues,
            }),
            (Link::Ready, GatewayMessage::Live(live)) => {
                self.live = Some(live.clone());
                self.emit(Event::Live {
                    calls: live.calls,
                    agents: live.agents,
                })
            }
            (Link::Ready, GatewayMessage::Recording(r)) => self.emit(Event::Recording {
                call: r.call.0,
                state: wire_name(&r.state),
            }),
            (Link::Ready, GatewayMessage::TransferState(t)) => self.emit(Event::TransferState {
                call: t.call.0,
                number: t.number,
                state: wire_name(&t.state),
                reason: t.reason.as_ref().map(wire_name),
                message: t.message,
            }),
        }
    }

    /// A frame from the gateway that did not decode. Fatal ones end the run; others are
    /// answered with `error` (never an `error` about an `error`) and the stream carries on. Before
    /// the welcome every error is fatal.
    pub fn handle_decode_error(&mut self, error: DecodeError) {
        if self.is_finished() {
            return;
        }
        if !error.is_about_an_error() {
            self.send(AgentMessage::Error(error.report()));
        }
        let fatal = error.is_fatal() || !matches!(self.link, Link::Ready);
        if fatal {
            self.emit(Event::ProtocolError {
                error: error.to_string(),
            });
            self.finish(Exit::ProtocolError);
        } else {
            self.emit(Event::BadMessage {
                error: error.to_string(),
            });
        }
    }

    pub fn handle_command(&mut self, command: Command) {
        if self.is_finished() {
            return;
        }
        if command == Command::Quit {
            self.hang_up_before_leaving();
            self.finish(Exit::Quit);
            return;
        }
        if self.link != Link::Ready {
            self.command_error("not connected to the gateway");
            return;
        }
        match command {
            Command::Accept => match &self.offer {
                Some(offer) if !offer.accepted => self.accept_offer(),
                Some(_) => self.command_error("the call is already accepted"),
                None => self.command_error("no call is ringing"),
            },
            Command::Reject => match self.offer.take() {
                Some(offer) => {
                    self.send(AgentMessage::Reject(Reject {
                        call: offer.call.clone(),
                        reason: None,
                    }));
                    self.emit(Event::Reject { call: offer.call.0 });
                }
                None => self.command_error("no call is ringing"),
            },
            Command::Hangup => match (&self.call, &self.dialing) {
                (Some(call), _) => {
                    let call = call.call.clone();
                    self.hang_up(call);
                }
                (None, Some(Some(call))) => {
                    let call = call.clone();
                    self.hang_up(call);
                }
                _ => self.command_error("no call is answered"),
            },
            Command::Dial(number) => self.dial(Some(number), None),
            Command::Transfer(to) => {
                self.about_call(|call| AgentMessage::Transfer(Transfer { call, to }))
            }
            Command::Consult(to) => {
                self.about_call(|call| AgentMessage::Consult(Consult { call, to }))
            }
            Command::CompleteTransfer => {
                self.about_call(|call| AgentMessage::CompleteTransfer(CompleteTransfer { call }))
            }
            Command::ReturnToCaller => {
                self.about_call(|call| AgentMessage::ReturnToCaller(ReturnToCaller { call }))
            }
            Command::Supervise(mode, call) => {
                let call = call
                    .map(CallId::new)
                    .or_else(|| self.supervising.as_ref().map(|(c, _)| c.clone()))
                    .or_else(|| self.help_call.clone());
                match call {
                    Some(call) => self.send(AgentMessage::Supervise(Supervise { call, mode })),
                    None => self.command_error("which call? (monitor CALL)"),
                }
            }
            Command::Calls => match self.live.clone() {
                Some(live) => {
                    for c in live.calls {
                        self.emit(Event::LiveCall(c));
                    }
                    for a in live.agents {
                        self.emit(Event::LiveAgent(a));
                    }
                }
                None => self.command_error("no view of queues: not a supervisor"),
            },
            Command::Leave => match self.supervising.clone() {
                Some((call, _)) => self.send(AgentMessage::Leave(Leave { call })),
                None => self.command_error("not in a call"),
            },
            Command::Help(note) => self.about_call(|call| AgentMessage::Help(Help { call, note })),
            Command::Chat(to, text) => {
                let call = self.call.as_ref().map(|c| c.call.clone());
                let to = to.map(AgentId::new);
                self.send(AgentMessage::Chat(Chat { to, call, text }));
            }
            Command::Record(action) => {
                self.about_call(|call| AgentMessage::Record(Record { call, action }))
            }
            Command::Callback(call) => self.dial(None, Some(CallId::new(call))),
            Command::Dtmf(digits) => match &self.call {
                Some(call) => {
                    let call = call.call.clone();
                    self.send_dtmf(call, digits);
                }
                None => self.command_error("no call is answered"),
            },
            Command::Hold(on) => match &self.call {
                Some(call) => {
                    let call = call.call.clone();
                    self.send(AgentMessage::Hold(Hold { call, on }));
                }
                None => self.command_error("no call is answered"),
            },
            Command::SetState(state, reason) => {
                self.available_at = None;
                self.set_state(state, reason);
            }
            Command::Disposition(code) => {
                let call = self.call.as_ref().map(|c| c.call.clone());
                match call.or_else(|| self.last_call.clone()) {
                    Some(call) => self.send(AgentMessage::Disposition(Disposition { call, code })),
                    None => self.command_error("no call to give a code to"),
                }
            }
            Command::Quit => {}
        }
    }

    /// The run is being stopped from outside: hang up a call in progress, then leave.
    pub fn stop(&mut self, reason: StopReason) {
        if self.is_finished() {
            return;
        }
        self.hang_up_before_leaving();
        self.finish(Exit::Stopped(reason));
    }

    /// The earliest instant at which [`Self::handle_timeout`] has something to do. Call timers
    /// wait while the connection is down: a hang-up or accept cannot be sent then, and fires
    /// once the session is back.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.link {
            Link::LoggingIn { deadline } => Some(deadline),
            Link::Ready => {
                let accept = self
                    .offer
                    .as_ref()
                    .filter(|o| !o.accepted)
                    .and_then(|o| o.accept_at);
                let call = self.call.as_ref().map(ActiveCall::next_timer);
                [accept, call, self.available_at]
                    .into_iter()
                    .flatten()
                    .min()
            }
            Link::Connecting | Link::Finished => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.link {
            Link::LoggingIn { deadline } if deadline <= now => {
                let error = format!("no welcome within {} s", LOGIN_TIMEOUT.as_secs());
                self.connection_lost(now, Loss::Lost { error });
            }
            Link::Ready => {
                let accept_due = self
                    .offer
                    .as_ref()
                    .is_some_and(|o| !o.accepted && o.accept_at.is_some_and(|at| at <= now));
                if accept_due {
                    self.accept_offer();
                }
                if take_due(&mut self.available_at, now) {
                    self.set_state(RequestedState::Available, None);
                }
                let Some(call) = &mut self.call else {
                    return;
                };
                let id = call.call.clone();
                let hangup_due = call.hangup_at.is_some_and(|at| at <= now);
                let rebind_due = take_due(&mut call.rebind_at, now);
                let dtmf_due = take_due(&mut call.dtmf_at, now);
                let hold_due = take_due(&mut call.hold_at, now);
                let unhold_due = !hold_due && take_due(&mut call.unhold_at, now);
                let stats_due = call.stats_at <= now;
                if stats_due {
                    call.stats_at = now + STATS_INTERVAL;
                }
                if rebind_due {
                    self.actions.push_back(Action::Rebind);
                }
                if stats_due {
                    self.actions
                        .push_back(Action::SendStats { call: id.clone() });
                }
                if dtmf_due {
                    if let Some((_, digits)) = self.config.behaviour.send_dtmf.clone() {
                        self.send_dtmf(id.clone(), digits);
                    }
                }
                if hold_due || unhold_due {
                    self.send(AgentMessage::Hold(Hold {
                        call: id.clone(),
                        on: hold_due,
                    }));
                }
                if hangup_due {
                    self.hang_up(id);
                }
            }
            _ => {}
        }
    }

    fn on_welcome(&mut self, welcome: Welcome) {
        let resumed = self
            .session
            .as_ref()
            .is_some_and(|s| s.id == welcome.session);
        let had_session = self.session.is_some();
        self.link = Link::Ready;
        self.resume_until = None;
        self.session = Some(Session {
            id: welcome.session.clone(),
            token: welcome.resume_token,
            grace: Duration::from_millis(welcome.resume_grace_ms),
        });
        self.media = Some(welcome.media);
        self.supervises = welcome.supervises.clone();
        self.emit(Event::Welcome {
            session: welcome.session.0,
            state: wire_name(&welcome.state),
            resumed,
            grace_ms: welcome.resume_grace_ms,
            gateway: welcome.gateway,
            supervises: welcome.supervises,
        });
        if self.config.behaviour.supervisor && self.supervises.is_empty() {
            self.emit(Event::Unexpected {
                message: "--supervisor, but the gateway does not know this id as a supervisor \
                          (supervises in its [[agent]] entry)"
                    .into(),
            });
            self.finish(Exit::NotSupervisor);
            return;
        }
        if let Err(e) = check_params(&welcome.media) {
            self.emit(Event::MediaError {
                error: e.to_string(),
            });
            self.finish(Exit::UnsupportedMedia);
            return;
        }
        if resumed {
            // `resumed` follows and says which call survived.
            return;
        }
        if had_session {
            // The old session expired: a fresh one started, and any call of the old one is over.
            if let Some(call) = self.call.take() {
                self.end_lost_call(call.call);
                return;
            }
        }
        match self.config.behaviour.dial.clone() {
            // A supervisor takes no calls: it has no state to set.
            _ if !self.supervises.is_empty() => {}
            Some(number) if !had_session => self.dial(Some(number), None),
            _ => self.set_state(RequestedState::Available, None),
        }
    }

    fn dial(&mut self, number: Option<String>, callback: Option<CallId>) {
        if self.call.is_some() || self.dialing.is_some() || self.offer.is_some() {
            self.command_error("already on a call");
            return;
        }
        let message = AgentMessage::Dial(Dial {
            number,
            callback,
            queue: None,
        });
        if let Err(e) = message.validate() {
            self.command_error(&e.to_string());
            return;
        }
        self.dialing = Some(None);
        self.send(message);
    }

    fn on_dialing(&mut self, dialing: Dialing) {
        self.emit(Event::Dialing {
            call: dialing.call.0.clone(),
            number: dialing.number,
            flow: dialing.flow.0,
        });
        // Ringback and early media come on the flow before the answer.
        self.dialing = Some(Some(dialing.call.clone()));
        self.actions.push_back(Action::StartMedia {
            call: dialing.call,
            flow: dialing.flow,
        });
    }

    /// Sends the message `make` makes about the answered call, if it is valid.
    fn about_call(&mut self, make: impl FnOnce(CallId) -> AgentMessage) {
        let Some(call) = &self.call else {
            return self.command_error("no call is answered");
        };
        let message = make(call.call.clone());
        match message.validate() {
            Ok(()) => self.send(message),
            Err(e) => self.command_error(&e.to_string()),
        }
    }

    fn on_dial_failed(&mut self, now: Instant, failed: DialFailed) {
        let call = failed.call.clone();
        self.emit(Event::DialFailed {
            call: call.as_ref().map(|c| c.0.clone()),
            reason: wire_name(&failed.reason),
            message: failed.message,
        });
        let Some(pending) = self.dialing.take() else {
            return;
        };
        let started = pending.filter(|p| call.as_ref() == Some(p));
        let go_on = match started {
            Some(call) => self.end_call(call, wire_name(&failed.reason)),
            None => {
                // Refused before it started: it still counts as the run's call.
                self.calls_ended += 1;
                let done = self
                    .config
                    .behaviour
                    .calls
                    .is_some_and(|n| self.calls_ended >= n);
                if done {
                    self.finish(Exit::CallsDone);
                }
                !done
            }
        };
        if go_on {
            self.wrap_up(now);
        }
    }

    fn on_resumed(&mut self, now: Instant, resumed: Resumed) {
        let Some(survivor) = resumed.call else {
            self.emit(Event::Resumed { call: None });
            if let Some(call) = self.call.take() {
                self.end_lost_call(call.call);
            }
            return;
        };
        self.emit(Event::Resumed {
            call: Some((survivor.id.0.clone(), survivor.flow.0)),
        });
        match &self.call {
            Some(call) if call.call == survivor.id => {
                self.actions.push_back(Action::MoveMedia {
                    flow: survivor.flow,
                });
            }
            _ => {
                if let Some(call) = self.call.take() {
                    self.end_lost_call(call.call);
                    if self.is_finished() {
                        return;
                    }
                }
                // Accepted just before the loss: the `answered` never reached us.
                self.offer = None;
                self.start_call(now, survivor.id, survivor.flow);
            }
        }
        self.actions
            .push_back(Action::HoldMedia { on: survivor.held });
    }

    fn on_offer(&mut self, now: Instant, offer: Offer) {
        self.emit(Event::Offer {
            call: offer.call.0.clone(),
            caller: offer.caller,
            queue: offer.queue,
            flow: offer.flow.0,
            ring_timeout_ms: offer.ring_timeout_ms,
        });
        if self.call.is_some() {
            // Version 1 has one call per agent; a gateway offering a second is confused.
            self.send(AgentMessage::Reject(Reject {
                call: offer.call.clone(),
                reason: Some("busy: already on a call".into()),
            }));
            self.emit(Event::Reject { call: offer.call.0 });
            return;
        }
        let accept_at = self.config.behaviour.auto_answer.map(|delay| now + delay);
        self.offer = Some(PendingOffer {
            call: offer.call,
            accept_at,
            accepted: false,
        });
        if accept_at.is_some_and(|at| at <= now) {
            self.accept_offer();
        }
    }

    fn on_answered(&mut self, now: Instant, answered: Answered) {
        if self.dialing.as_ref() == Some(&Some(answered.call.clone())) {
            // The callee answered: media is running since `dialing`.
            self.dialing = None;
            self.start_call(now, answered.call, answered.flow);
            return;
        }
        let offered = self.offer.as_ref().is_some_and(|o| o.call == answered.call);
        if !offered || self.call.is_some() {
            self.emit(Event::Unexpected {
                message: format!(
                    "answered for call {} that is not ringing here",
                    answered.call
                ),
            });
            self.send(AgentMessage::Error(
                ErrorReport::new(
                    ErrorCode::UnknownCall,
                    &format!("no ringing call {}", answered.call),
                )
                .about_call(answered.call),
            ));
            return;
        }
        self.offer = None;
        self.start_call(now, answered.call, answered.flow);
    }

    fn on_call_ended(&mut self, now: Instant, ended: CallEnded) {
        if self.dialing.as_ref() == Some(&Some(ended.call.clone())) {
            // Hung up before the answer.
            self.dialing = None;
            self.last_call = Some(ended.call.clone());
            if self.end_call(ended.call, wire_name(&ended.reason)) {
                self.wrap_up(now);
            }
            return;
        }
        match self.call.take() {
            Some(call) if call.call == ended.call => {
                // Before the run may end on its call count: the code belongs in the CDR.
                if let Some(code) = self.config.behaviour.disposition.clone() {
                    self.send(AgentMessage::Disposition(Disposition {
                        call: call.call.clone(),
                        code,
                    }));
                }
                self.last_call = Some(call.call.clone());
                if self.end_call(call.call, wire_name(&ended.reason)) {
                    self.wrap_up(now);
                }
            }
            other => {
                self.call = other;
                self.emit(Event::Unexpected {
                    message: format!(
                        "call_ended for call {} that is not answered here",
                        ended.call
                    ),
                });
            }
        }
    }

    /// The gateway put this supervisor in a call (or changed its mode): media on the flow.
    fn on_supervising(&mut self, s: proto::from_gateway::Supervising) {
        let moved = self.supervising.as_ref().map(|(c, f)| (c.clone(), *f));
        let same = moved
            .as_ref()
            .is_some_and(|(c, f)| *c == s.call && *f == s.flow);
        if !same {
            if let Some((old, _)) = moved {
                self.actions.push_back(Action::EndMedia {
                    call: old,
                    reason: "left".into(),
                });
            }
            self.actions.push_back(Action::StartMedia {
                call: s.call.clone(),
                flow: s.flow,
            });
        }
        self.supervising = Some((s.call.clone(), s.flow));
        self.emit(Event::Supervising {
            call: s.call.0,
            mode: wire_name(&s.mode),
            flow: s.flow.0,
        });
    }

    fn start_call(&mut self, now: Instant, call: CallId, flow: FlowId) {
        let behaviour = &self.config.behaviour;
        self.call = Some(ActiveCall {
            call: call.clone(),
            hangup_at: behaviour.hangup_after.map(|after| now + after),
            rebind_at: behaviour.rebind_after.map(|after| now + after),
            dtmf_at: behaviour.send_dtmf.as_ref().map(|(after, _)| now + *after),
            hold_at: behaviour.hold.map(|(after, _)| now + after),
            unhold_at: behaviour
                .hold
                .and_then(|(after, held)| held.map(|held| now + after + held)),
            stats_at: now + STATS_INTERVAL,
        });
        self.emit(Event::Answered {
            call: call.0.clone(),
            flow: flow.0,
        });
        self.actions.push_back(Action::StartMedia { call, flow });
    }

    /// Ends a lost call (the session that had it is gone): back to taking calls at once.
    fn end_lost_call(&mut self, call: CallId) {
        if self.end_call(call, "lost".into()) {
            self.set_state(RequestedState::Available, None);
        }
    }

    /// Whether the run goes on (its call count not reached).
    fn end_call(&mut self, call: CallId, reason: String) -> bool {
        self.actions.push_back(Action::EndMedia { call, reason });
        self.calls_ended += 1;
        if self
            .config
            .behaviour
            .calls
            .is_some_and(|limit| self.calls_ended >= limit)
        {
            self.finish(Exit::CallsDone);
            return false;
        }
        true
    }

    /// After a call: available again once the wrap-up time is over, or, with none set, when
    /// the agent says so (`s available`) or the queue's own wrap-up time runs out.
    fn wrap_up(&mut self, now: Instant) {
        match self.config.behaviour.wrap_up {
            Some(time) if time.is_zero() => self.set_state(RequestedState::Available, None),
            Some(time) => self.available_at = Some(now + time),
            None => {}
        }
    }

    fn set_state(&mut self, state: RequestedState, reason: Option<String>) {
        self.send(AgentMessage::SetState(SetState { state, reason }));
    }

    fn accept_offer(&mut self) {
        let Some(offer) = &mut self.offer else {
            return;
        };
        offer.accepted = true;
        let call = offer.call.clone();
        self.send(AgentMessage::Accept(Accept { call: call.clone() }));
        self.emit(Event::Accept { call: call.0 });
    }

    fn send_dtmf(&mut self, call: CallId, digits: String) {
        let message = AgentMessage::Dtmf(Dtmf {
            call: call.clone(),
            digits: digits.clone(),
        });
        match message.validate() {
            Ok(()) => {
                self.send(message);
                self.emit(Event::SendDtmf {
                    call: call.0,
                    digits,
                });
            }
            Err(e) => self.command_error(&e.to_string()),
        }
    }

    fn hang_up(&mut self, call: CallId) {
        if let Some(active) = &mut self.call {
            active.hangup_at = None;
        }
        self.send(AgentMessage::Hangup(Hangup { call: call.clone() }));
        self.emit(Event::Hangup { call: call.0 });
    }

    fn hang_up_before_leaving(&mut self) {
        if self.link == Link::Ready {
            if let Some(call) = &self.call {
                let call = call.call.clone();
                self.hang_up(call);
            }
        }
    }

    fn violation(&mut self, what: &str) {
        self.send(AgentMessage::Error(ErrorReport::new(
            ErrorCode::ProtocolViolation,
            what,
        )));
        self.emit(Event::ProtocolError {
            error: what.to_string(),
        });
        self.finish(Exit::ProtocolError);
    }

    fn command_error(&mut self, error: &str) {
        self.emit(Event::CommandError {
            error: error.to_string(),
        });
    }

    fn finish(&mut self, exit: Exit) {
        self.link = Link::Finished;
        self.actions.push_back(Action::Exit(exit));
    }

    fn send(&mut self, message: AgentMessage) {
        self.actions.push_back(Action::Send(message));
    }

    fn emit(&mut self, event: Event) {
        self.actions.push_back(Action::Emit(event));
    }
}

/// Whether a one-shot timer is due; a due timer is cleared so it fires once.
fn take_due(timer: &mut Option<Instant>, now: Instant) -> bool {
    let due = timer.is_some_and(|at| at <= now);
    if due {
        *timer = None;
    }
    due
}
