//! Messages the agent sends to the gateway.

use serde::{Deserialize, Serialize};

use super::limits::{
    self, LimitError, MAX_CHAT_BYTES, MAX_CREDENTIAL_BYTES, MAX_JITTER_MS, MAX_NUMBER_BYTES,
    MAX_RESUME_TOKEN_BYTES, MAX_SHORT_TEXT_BYTES, MAX_SKILLS, MAX_SOFTWARE_BYTES,
    MAX_TRANSFER_TARGET_BYTES,
};
use super::types::{
    AgentId, CallId, Credential, ErrorReport, RecordAction, RequestedState, ResumeToken,
    SuperviseMode,
};
use super::WireMessage;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    Login(Login),
    SetState(SetState),
    Accept(Accept),
    Reject(Reject),
    Hangup(Hangup),
    Dtmf(Dtmf),
    Hold(Hold),
    Disposition(Disposition),
    Dial(Dial),
    Transfer(Transfer),
    Consult(Consult),
    CompleteTransfer(CompleteTransfer),
    ReturnToCaller(ReturnToCaller),
    Record(Record),
    Supervise(Supervise),
    Leave(Leave),
    Help(Help),
    Chat(Chat),
    Stats(Stats),
    Ping(Ping),
    Error(ErrorReport),
}

/// The first message on every control stream; nothing else is accepted before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub agent: AgentId,
    pub credential: Credential,
    /// Narrows the skills the gateway has configured for this agent, for this session (empty:
    /// all of them); it can never add one, since the credential proves who the agent is, not
    /// what it may do.
    #[serde(default)]
    pub skills: Vec<String>,
    /// The client's name/version, e.g. `trunkgate-agent/0.1.0`, for the gateway's logs.
    pub client: String,
    /// The token from the last `welcome`, when reconnecting to take a session back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeToken>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetState {
    pub state: RequestedState,
    /// Why the agent is away (`lunch`, `break`, `training`…), for its shift record; ignored
    /// with `available`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Takes the offered call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accept {
    pub call: CallId,
}

/// Declines the offered call; the queue offers it elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    pub call: CallId,
    /// Free text for the gateway's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Ends the agent's side of an answered call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hangup {
    pub call: CallId,
}

/// Digits the gateway plays towards the caller's side (to an IVR the agent dialled through,
/// for instance), in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dtmf {
    pub call: CallId,
    pub digits: String,
}

/// Asks the gateway to put the caller on hold (`on: true`) or take them off it. The gateway's
/// own `hold` message confirms; until then nothing has changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub call: CallId,
    pub on: bool,
}

/// Starts (on demand), pauses or resumes the call's recording. The gateway's `recording`
/// message confirms; a refusal is an `error` saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub call: CallId,
    pub action: RecordAction,
}

/// A supervisor joins a call of a queue it supervises, or changes how it takes part: the
/// gateway answers `supervising` (with the media flow) or `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supervise {
    pub call: CallId,
    pub mode: SuperviseMode,
}

/// A supervisor leaves the call; the caller and the agent go on as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {
    pub call: CallId,
}

/// An agent asks its supervisors for help on its call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Help {
    pub call: CallId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A text message: from an agent to the supervisors of its queues (`to` absent), from a
/// supervisor to an agent (`to`). `call` ties it to a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallId>,
    pub text: String,
}

/// The outcome the agent gives its call (a wrap-up code: `sale`, `callback`, `resolved`…),
/// during the call or its wrap-up; the call's CDR carries the last one given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    pub call: CallId,
    pub code: String,
}

/// Places a call: to `number` as the agent typed it (the gateway's dial plan makes it E.164),
/// or back to the caller of an earlier call (`callback`). The gateway answers `dialing` (the
/// call is on its way) or `dial_failed` (why not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallId>,
    /// The queue the call is made for: its caller id is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// Hands the agent's call on (a blind transfer): `to` is `queue:NAME` (the caller waits there
/// as a new arrival), `agent:ID` (offered to that agent alone) or a number (a call out, which
/// the agent hears ring and which `transfer_state` follows; the caller is joined to it at the
/// answer). The agent's part ends with `call_ended` (`transferred`); a refused transfer gets
/// `error`, a number that does not answer `transfer_state` `ended`, and the call goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub call: CallId,
    pub to: String,
}

/// Starts an attended transfer: the gateway calls the number `to` and the agent talks to it
/// while the caller hears music (`transfer_state` follows it); then `complete_transfer` or
/// `return_to_caller`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consult {
    pub call: CallId,
    pub to: String,
}

/// Joins the caller to the number the agent consulted, once it answered; the agent's part ends
/// with `call_ended` (`transferred`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteTransfer {
    pub call: CallId,
}

/// Hangs up the transfer target (consulted, or still ringing) and gives the agent its caller
/// back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnToCaller {
    pub call: CallId,
}

/// What the agent measured on a call's media, so the gateway can record call quality from both
/// ends. Rates cover the time since the previous `stats` for the call; counts are totals since
/// the call was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub call: CallId,
    /// The QUIC connection's smoothed round-trip time.
    pub rtt_ms: u32,
    /// Gateway-sent RTP packets the agent never received, as a percentage of those expected
    /// (RTP sequence-number gaps).
    pub loss_pct: f32,
    /// RFC 3550 §6.4.1 interarrival jitter of the received packets, in milliseconds.
    pub jitter_ms: f32,
    pub packets_received: u64,
    pub packets_lost: u64,
}

/// Asks for a `pong` with the same nonce; lets the agent measure the control path and notice a
/// gateway that is connected but no longer answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    pub nonce: u64,
}

impl WireMessage for AgentMessage {
    const TYPES: &'static [&'static str] = &[
        "login",
        "set_state",
        "accept",
        "reject",
        "hangup",
        "dtmf",
        "hold",
        "disposition",
        "dial",
        "transfer",
        "consult",
        "complete_transfer",
        "return_to_caller",
        "record",
        "supervise",
        "leave",
        "help",
        "chat",
        "stats",
        "ping",
        "error",
    ];

    fn type_name(&self) -> &'static str {
        match self {
            Self::Login(_) => "login",
            Self::SetState(_) => "set_state",
            Self::Accept(_) => "accept",
            Self::Reject(_) => "reject",
            Self::Hangup(_) => "hangup",
            Self::Dtmf(_) => "dtmf",
            Self::Hold(_) => "hold",
            Self::Disposition(_) => "disposition",
            Self::Dial(_) => "dial",
            Self::Transfer(_) => "transfer",
            Self::Consult(_) => "consult",
            Self::CompleteTransfer(_) => "complete_transfer",
            Self::ReturnToCaller(_) => "return_to_caller",
            Self::Record(_) => "record",
            Self::Supervise(_) => "supervise",
            Self::Leave(_) => "leave",
            Self::Help(_) => "help",
            Self::Chat(_) => "chat",
            Self::Stats(_) => "stats",
            Self::Ping(_) => "ping",
            Self::Error(_) => "error",
        }
    }

    fn validate(&self) -> Result<(), LimitError> {
        match self {
            Self::Login(login) => login.validate(),
            Self::SetState(SetState { reason, .. }) => match reason {
                Some(reason) => limits::identifier("reason", reason),
                None => Ok(()),
            },
            Self::Disposition(Disposition { call, code }) => {
                limits::identifier("call", call.as_str())?;
                limits::identifier("code", code)
            }
            Self::Ping(_) => Ok(()),
            Self::Accept(Accept { call })
            | Self::Hangup(Hangup { call })
            | Self::Hold(Hold { call, .. })
            | Self::Record(Record { call, .. })
            | Self::Supervise(Supervise { call, .. })
            | Self::Leave(Leave { call }) => limits::identifier("call", call.as_str()),
            Self::Help(Help { call, note }) => {
                limits::identifier("call", call.as_str())?;
                match note {
                    Some(note) => limits::text("note", note, 0, MAX_SHORT_TEXT_BYTES),
                    None => Ok(()),
                }
            }
            Self::Chat(Chat { to, call, text }) => {
                if let Some(to) = to {
                    limits::identifier("to", to.as_str())?;
                }
                if let Some(call) = call {
                    limits::identifier("call", call.as_str())?;
                }
                limits::text("text", text, 1, MAX_CHAT_BYTES)
            }
            Self::Reject(Reject { call, reason }) => {
                limits::identifier("call", call.as_str())?;
                match reason {
                    Some(reason) => limits::text("reason", reason, 0, MAX_SHORT_TEXT_BYTES),
                    None => Ok(()),
                }
            }
            Self::Dtmf(Dtmf { call, digits }) => {
                limits::identifier("call", call.as_str())?;
                limits::dtmf_digits("digits", digits)
            }
            Self::Stats(stats) => stats.validate(),
            Self::Dial(dial) => dial.validate(),
            Self::Transfer(Transfer { call, to }) | Self::Consult(Consult { call, to }) => {
                limits::identifier("call", call.as_str())?;
                limits::text("to", to, 1, MAX_TRANSFER_TARGET_BYTES)
            }
            Self::CompleteTransfer(CompleteTransfer { call })
            | Self::ReturnToCaller(ReturnToCaller { call }) => {
                limits::identifier("call", call.as_str())
            }
            Self::Error(report) => report.validate(),
        }
    }
}

impl Login {
    fn validate(&self) -> Result<(), LimitError> {
        limits::identifier("agent", self.agent.as_str())?;
        limits::text(
            "credential",
            self.credential.expose(),
            1,
            MAX_CREDENTIAL_BYTES,
        )?;
        limits::count("skills", self.skills.len(), MAX_SKILLS)?;
        for (index, skill) in self.skills.iter().enumerate() {
            limits::identifier(&format!("skills[{index}]"), skill)?;
        }
        limits::text("client", &self.client, 1, MAX_SOFTWARE_BYTES)?;
        if let Some(token) = &self.resume {
            limits::text("resume", token.expose(), 1, MAX_RESUME_TOKEN_BYTES)?;
        }
        Ok(())
    }
}

impl Dial {
    fn validate(&self) -> Result<(), LimitError> {
        match (&self.number, &self.callback) {
            (Some(number), None) => limits::text("number", number, 1, MAX_NUMBER_BYTES)?,
            (None, Some(call)) => limits::identifier("callback", call.as_str())?,
            _ => {
                return Err(limits::problem(
                    "number",
                    limits::LimitProblem::OutOfRange {
                        value: "number and callback together, or neither".into(),
                        allowed: "one of them".into(),
                    },
                ))
            }
        }
        match &self.queue {
            Some(queue) => limits::identifier("queue", queue),
            None => Ok(()),
        }
    }
}

impl Stats {
    fn validate(&self) -> Result<(), LimitError> {
        limits::identifier("call", self.call.as_str())?;
        limits::within("loss_pct", self.loss_pct, 0.0, 100.0)?;
        limits::within("jitter_ms", self.jitter_ms, 0.0, MAX_JITTER_MS)
    }
}
