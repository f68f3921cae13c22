//! Values both directions share: identifiers, secrets, states, reasons and media parameters.
//!
//! Reason and error-code enums are open: a value this build does not know decodes as `Other`,
//! so a newer gateway can refine why a call ended without old agents rejecting the message
//! that tells them it ended. States and the codec are closed: an agent cannot act on a state
//! or a codec it does not understand, so adding one needs a new protocol version.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::limits::{self, LimitError, MAX_MESSAGE_BYTES};

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// The agent's login name, as configured on the gateway.
    AgentId
);
identifier!(
    /// Names a call on the control stream. Chosen by the gateway and opaque to the agent, so the
    /// gateway may change how it builds them without touching agents.
    CallId
);
identifier!(
    /// Names a login session; it survives a reconnect that resumes it, which is how an agent
    /// tells a resumed session from a fresh one.
    SessionId
);

macro_rules! secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Its `Debug` prints no content, so logging a message never leaks it.
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(secret: impl Into<String>) -> Self {
                Self(secret.into())
            }

            /// Named so every place that reads the secret is easy to find.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(<{} bytes redacted>)"), self.0.len())
            }
        }
    };
}

secret!(
    /// What the agent proves its identity with in `login`: a password or token.
    Credential
);
secret!(
    /// Lets a reconnecting agent take its session (and call) back within the grace period;
    /// whoever holds it can, so it is as secret as the credential.
    ResumeToken
);

/// Identifies one call's media inside the connection's QUIC datagrams: the QUIC varint that
/// precedes each RTP packet (draft-ietf-avtcore-rtp-over-quic). Chosen by the gateway, unique
/// within one connection and never reused in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FlowId(pub u64);

impl FlowId {
    pub(crate) fn validate(self, field: &str) -> Result<(), LimitError> {
        limits::within(field, self.0, 0, limits::MAX_FLOW_ID)
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The agent's state as the gateway's queue sees it; the gateway announces every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Ready for offers.
    Available,
    /// Logged in but not taking calls.
    Away,
    /// After a call, before the next offer: time for notes.
    WrapUp,
    /// An offer is outstanding.
    Ringing,
    /// On a call (held or not).
    Talking,
}

/// The states an agent may ask for; the others follow from calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestedState {
    Available,
    Away,
}

impl From<RequestedState> for AgentState {
    fn from(requested: RequestedState) -> Self {
        match requested {
            RequestedState::Available => Self::Available,
            RequestedState::Away => Self::Away,
        }
    }
}

/// Why `login` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    UnknownAgent,
    BadCredential,
    Revoked,
    AlreadyLoggedIn,
    UnsupportedVersion,
    /// Too many failed logins from this address (for this agent): try again in a minute.
    TooManyAttempts,
    /// A reason this build does not know.
    #[serde(other)]
    Other,
}

/// Why an offer went away before the agent accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The caller hung up while it rang.
    CallerGone,
    /// The agent did not accept within `ring_timeout_ms`.
    Timeout,
    /// Another agent accepted it first.
    Taken,
    #[serde(other)]
    Other,
}

/// Why a `dial` did not become a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialFailure {
    /// Refused before anything was sent: outbound calls not configured, the agent may not
    /// dial, or is on a call already.
    NotPermitted,
    /// Not a number the dial plan understands (letters, too short, too long).
    InvalidNumber,
    /// No trunk carries the number.
    NoRoute,
    /// A fraud limit: the destination is blocked or not allowed, or a call count, hourly
    /// rate or daily minutes ran out. `message` names the limit.
    Limit,
    Busy,
    NoAnswer,
    Rejected,
    NumberUnknown,
    Unreachable,
    /// The agent hung up before the answer.
    Cancelled,
    #[serde(other)]
    Other,
}

/// Where a transfer to a number stands (`transfer_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStage {
    Dialing,
    Ringing,
    Answered,
    Ended,
    #[serde(other)]
    Other,
}

/// What an agent asks of its call's recording (`record`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordAction {
    /// Start recording a call whose policy is `on_demand`.
    Start,
    /// Record silence from now on (a card number is being read), until `resume`.
    Pause,
    Resume,
}

/// How a supervisor takes part in a call (`supervise`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuperviseMode {
    /// Hears the caller and the agent; nobody hears the supervisor.
    Monitor,
    /// Hears both; the agent hears the supervisor, the caller does not.
    Whisper,
    /// A three-way call: everybody hears everybody.
    Barge,
    #[serde(other)]
    Other,
}

impl SuperviseMode {
    pub fn code(self) -> &'static str {
        match self {
            SuperviseMode::Monitor => "monitor",
            SuperviseMode::Whisper => "whisper",
            SuperviseMode::Barge => "barge",
            SuperviseMode::Other => "other",
        }
    }
}

/// Where a call's recording stands (`recording`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStage {
    Off,
    Recording,
    Paused,
    #[serde(other)]
    Other,
}

/// Why an answered call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    CallerHungUp,
    AgentHungUp,
    Transferred,
    Error,
    #[serde(other)]
    Other,
}

/// The `code` of an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A frame length outside 1..=65536, or a stream that ended inside a frame. Fatal.
    BadFrame,
    /// Not JSON, not an object, a field missing or of the wrong type, or a limit broken.
    BadMessage,
    /// A `type` the receiver does not know (in that direction).
    UnknownType,
    /// A `v` other than 1. Fatal.
    UnsupportedVersion,
    /// Ten `bad_message`s in a row. Fatal.
    TooManyErrors,
    /// A well-formed message that breaks the lifecycle, e.g. anything but `login` first. Fatal.
    ProtocolViolation,
    /// The message names a call the receiver does not have (often a race with its end).
    UnknownCall,
    /// The message does not fit the agent's current state, e.g. `accept` while not ringing.
    InvalidState,
    /// The receiver failed; the message may succeed if sent again later.
    Internal,
    /// The sender may not do this: a supervisor's command from an agent, a call in a queue the
    /// supervisor does not supervise.
    NotPermitted,
    /// A code this build does not know.
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// Whether the sender of this code closes the connection right after the `error`.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            Self::BadFrame
                | Self::UnsupportedVersion
                | Self::TooManyErrors
                | Self::ProtocolViolation
        )
    }
}

/// The `error` message, in both directions. Its shape (`type`, `code`, `message`) is frozen
/// across protocol versions so a peer can always tell why it is being dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    pub code: ErrorCode,
    /// For people reading logs; programs act on `code`.
    pub message: String,
    /// The call the failed message named, when it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallId>,
}

impl ErrorReport {
    /// Cuts and cleans `message` so the report is always valid to send, whatever untrusted
    /// text (a peer's unknown type name, a parser's complaint) went into it.
    pub fn new(code: ErrorCode, message: &str) -> Self {
        Self {
            code,
            message: limits::printable_prefix(message, MAX_MESSAGE_BYTES),
            call: None,
        }
    }

    pub fn about_call(mut self, call: CallId) -> Self {
        self.call = Some(call);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), LimitError> {
        limits::text("message", &self.message, 0, MAX_MESSAGE_BYTES)?;
        if let Some(call) = &self.call {
            limits::identifier("call", call.as_str())?;
        }
        Ok(())
    }
}

/// The one codec on the agent link; G.711 legs are transcoded at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    Opus,
}

/// How media on every flow of this connection is encoded, announced once in `welcome` so
/// offers need not repeat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaParams {
    pub codec: Codec,
    /// The RTP payload type both directions use.
    pub payload_type: u8,
    /// The rate the Opus encoder and decoder run at. Not the RTP clock, which is always 48 kHz
    /// for Opus (RFC 7587 §4.1).
    pub sample_rate: u32,
    pub channels: u8,
    /// Audio per RTP packet.
    pub frame_ms: u16,
    /// Target encoder bit rate in bits per second.
    pub bitrate: u32,
    /// Whether senders use Opus in-band forward error correction.
    pub fec: bool,
    /// Whether senders stop sending during silence (Opus DTX). The RTP timestamp then jumps
    /// while sequence numbers stay contiguous, so a receiver plays silence rather than
    /// concealing loss.
    pub dtx: bool,
}

impl Default for MediaParams {
    /// Narrowband Opus at telephone quality: the carrier legs are G.711 at 8 kHz, so a higher
    /// rate would spend bits on bandwidth that is not there, and the encoder runs without a
    /// resampler in the call path.
    fn default() -> Self {
        Self {
            codec: Codec::Opus,
            payload_type: 111,
            sample_rate: 8_000,
            channels: 1,
            frame_ms: 20,
            bitrate: 24_000,
            fec: true,
            dtx: false,
        }
    }
}

impl MediaParams {
    pub(crate) fn validate(&self) -> Result<(), LimitError> {
        // Dynamic payload types (RFC 3551 §6): static ones name other codecs.
        limits::within("media.payload_type", self.payload_type, 96, 127)?;
        limits::one_of(
            "media.sample_rate",
            self.sample_rate,
            &[8_000, 12_000, 16_000, 24_000, 48_000],
        )?;
        limits::one_of("media.channels", self.channels, &[1, 2])?;
        // Opus frame durations a whole number of milliseconds long (RFC 6716 §2.1.4).
        limits::one_of("media.frame_ms", self.frame_ms, &[10, 20, 40, 60])?;
        // libopus's supported bit-rate range.
        limits::within("media.bitrate", self.bitrate, 6_000, 510_000)
    }
}
