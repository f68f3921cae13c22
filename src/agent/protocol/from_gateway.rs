//! Messages the gateway sends to the agent.

use serde::{Deserialize, Serialize};

use super::limits::{
    self, LimitError, MAX_CHAT_BYTES, MAX_LIVE_ENTRIES, MAX_MESSAGE_BYTES, MAX_NUMBER_BYTES,
    MAX_RESUME_TOKEN_BYTES, MAX_RING_TIMEOUT_MS, MAX_SHORT_TEXT_BYTES, MAX_SOFTWARE_BYTES,
};
use super::types::{
    AgentId, AgentState, CallId, CancelReason, DialFailure, EndReason, ErrorReport, FlowId,
    MediaParams, RecordingStage, RefusalReason, ResumeToken, SessionId, SuperviseMode,
    TransferStage,
};
use super::WireMessage;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GatewayMessage {
    Welcome(Welcome),
    LoginRefused(LoginRefused),
    State(State),
    Offer(Offer),
    OfferCancelled(OfferCancelled),
    Answered(Answered),
    CallEnded(CallEnded),
    Resumed(Resumed),
    Dtmf(Dtmf),
    Hold(Hold),
    Dialing(Dialing),
    Progress(Progress),
    DialFailed(DialFailed),
    TransferState(TransferState),
    Recording(Recording),
    Supervising(Supervising),
    SupervisionEnded(SupervisionEnded),
    HelpRequested(HelpRequested),
    Chat(Chat),
    Live(Live),
    Wallboard(Wallboard),
    Error(ErrorReport),
    Pong(Pong),
}

/// The answer to `dial`: the call is on its way to `number` (E.164, as the dial plan made it).
/// Ringback or early media arrives on `flow` until `answered` (same `call` and `flow`) or
/// `dial_failed`; `hangup` on `call` gives up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dialing {
    pub call: CallId,
    pub number: String,
    pub flow: FlowId,
}

/// The callee's phone rings; `early_media`: the audio on the flow is the carrier's own
/// (ringback, an announcement), not the gateway's ringback tone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub call: CallId,
    pub early_media: bool,
}

/// A `dial` that did not become a conversation: refused before anything was sent (`call`
/// absent), or not answered (`call` as in `dialing`). `message` is for the person at the desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialFailed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallId>,
    pub reason: DialFailure,
    pub message: String,
}

/// How a transfer to a number is getting on: `dialing` (the number as the dial plan made it),
/// `ringing`, `answered` (consulting: the agent talks to the target now), `ended` (the target
/// is gone before the caller was joined to it: the agent has its caller back; `reason` and
/// `message` say why when it never answered). A completed transfer ends with `call_ended`
/// (`transferred`) instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferState {
    pub call: CallId,
    pub number: String,
    pub state: TransferStage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DialFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The answer to a successful `login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Equal to the previous session's id exactly when the login resumed it.
    pub session: SessionId,
    /// Present in the next `login` after a lost connection to take this session back.
    pub resume_token: ResumeToken,
    /// How long after losing the connection the session (and its call) waits for a resume.
    pub resume_grace_ms: u64,
    pub state: AgentState,
    pub media: MediaParams,
    /// The gateway's name/version, for the agent's logs.
    pub gateway: String,
    /// A supervisor's session: the queues it supervises (it is offered no calls).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supervises: Vec<String>,
}

/// The answer to a failed `login`; the gateway closes the connection after it. Its shape is
/// frozen across protocol versions, like `error`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRefused {
    pub reason: RefusalReason,
    /// For the person at the agent: what to do about it.
    pub message: String,
}

/// The agent's state changed; the latest one is the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub state: AgentState,
    /// In `wrap_up`: how long until the queue makes the agent available again (absent when
    /// the gateway does not say, as in answers to `set_state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_up_ms: Option<u64>,
}

impl State {
    pub fn new(state: AgentState) -> Self {
        State {
            state,
            wrap_up_ms: None,
        }
    }
}

/// A call rings at this agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub call: CallId,
    /// Caller id as the carrier presented it (name and/or number); empty when withheld.
    pub caller: String,
    /// The queue the call waited in.
    pub queue: String,
    /// After this long without `accept` the offer is cancelled with reason `timeout`.
    pub ring_timeout_ms: u64,
    /// The media flow that will carry the call's audio once it is answered.
    pub flow: FlowId,
    /// How long the caller has waited in the queue so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferCancelled {
    pub call: CallId,
    pub reason: CancelReason,
}

/// The call is connected: audio flows on `flow` in both directions from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    pub call: CallId,
    pub flow: FlowId,
}

/// An answered call is over; its flow carries no more audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEnded {
    pub call: CallId,
    pub reason: EndReason,
}

/// Follows `welcome` when a login resumed a session. A call the agent had before the connection
/// was lost and that is not named here has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<ResumedCall>,
}

/// The call that survived the reconnect, with everything the agent needs to rebuild its view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumedCall {
    pub id: CallId,
    /// Flow ids belong to a connection, so the call gets a new one on the new connection.
    pub flow: FlowId,
    pub caller: String,
    pub queue: String,
    /// Whether the caller is on hold.
    pub held: bool,
}

/// A digit the caller pressed during the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dtmf {
    pub call: CallId,
    pub digit: char,
}

/// The caller's hold state changed (the answer to the agent's `hold`, or an operator's doing).
/// While on hold, neither side sends audio on the call's flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub call: CallId,
    pub on: bool,
}

/// The call's recording started, paused or resumed (the answer to the agent's `record`, or
/// the policy's or an operator's doing); `off` when an agent answers a call that is not
/// recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub call: CallId,
    pub state: RecordingStage,
}

/// The supervisor takes part in `call` as `mode` now; the call's audio for it travels on
/// `flow` (its own voice too, heard as the mode says).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supervising {
    pub call: CallId,
    pub mode: SuperviseMode,
    pub flow: FlowId,
}

/// The supervisor is out of `call`: it left, or the call or the agent's part of it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisionEnded {
    pub call: CallId,
    /// `left`, `call_ended`, `agent_left`.
    pub reason: String,
}

/// An agent of a queue the supervisor supervises asks for help on its call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelpRequested {
    pub call: CallId,
    pub agent: AgentId,
    pub queue: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A text message from an agent or a supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    pub from: AgentId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallId>,
    pub text: String,
}

/// The calls and agents of the supervisor's queues, sent when it logs in and whenever they
/// change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub calls: Vec<LiveCall>,
    pub agents: Vec<LiveAgent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCall {
    pub call: CallId,
    pub queue: String,
    pub caller: String,
    /// `waiting` or `talking`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveAgent {
    pub agent: AgentId,
    pub state: AgentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallId>,
}

impl Live {
    fn validate(&self) -> Result<(), LimitError> {
        limits::count("calls", self.calls.len(), MAX_LIVE_ENTRIES)?;
        limits::count("agents", self.agents.len(), MAX_LIVE_ENTRIES)?;
        for (i, c) in self.calls.iter().enumerate() {
            limits::identifier(&format!("calls[{i}].call"), c.call.as_str())?;
            limits::identifier(&format!("calls[{i}].queue"), &c.queue)?;
            limits::text(
                &format!("calls[{i}].caller"),
                &c.caller,
                0,
                MAX_SHORT_TEXT_BYTES,
            )?;
            limits::identifier(&format!("calls[{i}].state"), &c.state)?;
            if let Some(agent) = &c.agent {
                limits::identifier(&format!("calls[{i}].agent"), agent.as_str())?;
            }
        }
        for (i, a) in self.agents.iter().enumerate() {
            limits::identifier(&format!("agents[{i}].agent"), a.agent.as_str())?;
            if let Some(call) = &a.call {
                limits::identifier(&format!("agents[{i}].call"), call.as_str())?;
            }
        }
        Ok(())
    }
}

/// Live statistics of the supervisor's queues: sent after `welcome` and whenever a figure
/// changes (docs/supervisors.md, "Wallboard").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wallboard {
    pub queues: Vec<QueueBoard>,
}

/// One queue on the wallboard. Percentages and averages are absent before their first caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueBoard {
    pub queue: String,
    pub waiting: u32,
    pub longest_wait_s: f64,
    /// The queue's answer-time target.
    pub service_level_s: f64,
    /// Answered within the target, per caller answered or abandoned, over the last 15 minutes.
    pub service_level_15m_pct: Option<f64>,
    /// The same over the day (UTC).
    pub service_level_day_pct: Option<f64>,
    /// Average speed of answer, the day.
    pub asa_s: Option<f64>,
    /// Average handle time (talk, holds, wrap-up), the day.
    pub aht_s: Option<f64>,
    /// Hung up waiting, per caller who left the queue, the day.
    pub abandon_rate_pct: Option<f64>,
    pub answered: u64,
    pub abandoned: u64,
    pub agents_available: u32,
    /// Ringing or talking.
    pub agents_in_call: u32,
    pub agents_wrap_up: u32,
    pub agents_away: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    pub nonce: u64,
}

impl WireMessage for GatewayMessage {
    const TYPES: &'static [&'static str] = &[
        "welcome",
        "login_refused",
        "state",
        "offer",
        "offer_cancelled",
        "answered",
        "call_ended",
        "resumed",
        "dtmf",
        "hold",
        "dialing",
        "progress",
        "dial_failed",
        "transfer_state",
        "recording",
        "supervising",
        "supervision_ended",
        "help_requested",
        "chat",
        "live",
        "wallboard",
        "error",
        "pong",
    ];

    fn type_name(&self) -> &'static str {
        match self {
            Self::Welcome(_) => "welcome",
            Self::LoginRefused(_) => "login_refused",
            Self::State(_) => "state",
            Self::Offer(_) => "offer",
            Self::OfferCancelled(_) => "offer_cancelled",
            Self::Answered(_) => "answered",
            Self::CallEnded(_) => "call_ended",
            Self::Resumed(_) => "resumed",
            Self::Dtmf(_) => "dtmf",
            Self::Hold(_) => "hold",
            Self::Dialing(_) => "dialing",
            Self::Progress(_) => "progress",
            Self::DialFailed(_) => "dial_failed",
            Self::TransferState(_) => "transfer_state",
            Self::Recording(_) => "recording",
            Self::Supervising(_) => "supervising",
            Self::SupervisionEnded(_) => "supervision_ended",
            Self::HelpRequested(_) => "help_requested",
            Self::Chat(_) => "chat",
            Self::Live(_) => "live",
            Self::Wallboard(_) => "wallboard",
            Self::Error(_) => "error",
            Self::Pong(_) => "pong",
        }
    }

    fn validate(&self) -> Result<(), LimitError> {
        match self {
            Self::Welcome(welcome) => welcome.validate(),
            Self::LoginRefused(refused) => {
                limits::text("message", &refused.message, 0, MAX_MESSAGE_BYTES)
            }
            Self::State(_) | Self::Pong(_) => Ok(()),
            Self::Offer(offer) => offer.validate(),
            Self::OfferCancelled(OfferCancelled { call, .. })
            | Self::CallEnded(CallEnded { call, .. })
            | Self::Hold(Hold { call, .. })
            | Self::Recording(Recording { call, .. }) => limits::identifier("call", call.as_str()),
            Self::Supervising(Supervising { call, flow, .. }) => {
                limits::identifier("call", call.as_str())?;
                flow.validate("flow")
            }
            Self::SupervisionEnded(SupervisionEnded { call, reason }) => {
                limits::identifier("call", call.as_str())?;
                limits::text("reason", reason, 1, MAX_SHORT_TEXT_BYTES)
            }
            Self::HelpRequested(h) => {
                limits::identifier("call", h.call.as_str())?;
                limits::identifier("agent", h.agent.as_str())?;
                limits::identifier("queue", &h.queue)?;
                match &h.note {
                    Some(note) => limits::text("note", note, 0, MAX_SHORT_TEXT_BYTES),
                    None => Ok(()),
                }
            }
            Self::Chat(Chat { from, call, text }) => {
                limits::identifier("from", from.as_str())?;
                if let Some(call) = call {
                    limits::identifier("call", call.as_str())?;
                }
                limits::text("text", text, 1, MAX_CHAT_BYTES)
            }
            Self::Live(live) => live.validate(),
            Self::Wallboard(board) => {
                limits::count("queues", board.queues.len(), MAX_LIVE_ENTRIES)?;
                for (i, q) in board.queues.iter().enumerate() {
                    limits::identifier(&format!("queues[{i}].queue"), &q.queue)?;
                }
                Ok(())
            }
            Self::Answered(Answered { call, flow }) => {
                limits::identifier("call", call.as_str())?;
                flow.validate("flow")
            }
            Self::Resumed(Resumed { call: None }) => Ok(()),
            Self::Resumed(Resumed { call: Some(call) }) => call.validate(),
            Self::Dtmf(Dtmf { call, digit }) => {
                limits::identifier("call", call.as_str())?;
                limits::dtmf_digit("digit", *digit)
            }
            Self::Error(report) => report.validate(),
            Self::Dialing(Dialing { call, number, flow }) => {
                limits::identifier("call", call.as_str())?;
                limits::text("number", number, 1, MAX_NUMBER_BYTES)?;
                flow.validate("flow")
            }
            Self::Progress(Progress { call, .. }) => limits::identifier("call", call.as_str()),
            Self::TransferState(TransferState {
                call,
                number,
                message,
                ..
            }) => {
                limits::identifier("call", call.as_str())?;
                limits::text("number", number, 1, MAX_NUMBER_BYTES)?;
                match message {
                    Some(message) => limits::text("message", message, 0, MAX_MESSAGE_BYTES),
                    None => Ok(()),
                }
            }
            Self::DialFailed(DialFailed { call, message, .. }) => {
                if let Some(call) = call {
                    limits::identifier("call", call.as_str())?;
                }
                limits::text("message", message, 0, MAX_MESSAGE_BYTES)
            }
        }
    }
}

impl Welcome {
    fn validate(&self) -> Result<(), LimitError> {
        limits::identifier("session", self.session.as_str())?;
        limits::text(
            "resume_token",
            self.resume_token.expose(),
            1,
            MAX_RESUME_TOKEN_BYTES,
        )?;
        self.media.validate()?;
        limits::count("supervises", self.supervises.len(), MAX_LIVE_ENTRIES)?;
        for (i, q) in self.supervises.iter().enumerate() {
            limits::identifier(&format!("supervises[{i}]"), q)?;
        }
        limits::text("gateway", &self.gateway, 1, MAX_SOFTWARE_BYTES)
    }
}

impl Offer {
    fn validate(&self) -> Result<(), LimitError> {
        limits::identifier("call", self.call.as_str())?;
        limits::text("caller", &self.caller, 0, MAX_SHORT_TEXT_BYTES)?;
        limits::identifier("queue", &self.queue)?;
        limits::within(
            "ring_timeout_ms",
            self.ring_timeout_ms,
            1,
            MAX_RING_TIMEOUT_MS,
        )?;
        self.flow.validate("flow")
    }
}

impl ResumedCall {
    fn validate(&self) -> Result<(), LimitError> {
        limits::identifier("call.id", self.id.as_str())?;
        self.flow.validate("call.flow")?;
        limits::text("call.caller", &self.caller, 0, MAX_SHORT_TEXT_BYTES)?;
        limits::identifier("call.queue", &self.queue)
    }
}
