//! The agent control protocol: the messages a remote agent and the gateway exchange on the one
//! bidirectional QUIC stream the agent opens, and their framing. docs/agent-protocol.md is the
//! specification; this module is its reference implementation, shared by the gateway and the
//! agent client so both ends cannot drift apart.
//!
//! Each direction has its own message enum ([`AgentMessage`], [`GatewayMessage`]) because the
//! same `type` name can carry different fields per direction (`dtmf` from the agent carries a
//! string of digits to play, from the gateway one digit the caller pressed), and because a
//! message arriving in the wrong direction must be reported as `unknown_type`, which a shared
//! enum could not do.
//!
//! The framing is sans-IO: [`encode`] appends a frame to a buffer and [`FrameDecoder`] takes
//! stream bytes in whatever chunks QUIC delivers them. Limits are checked on both sides of the
//! wire, so a peer learns of a field it got wrong by name and we never send what a conforming
//! peer would refuse.

mod framing;
pub mod from_agent;
pub mod from_gateway;
pub mod limits;
mod types;

pub use framing::{decode_payload, encode, DecodeError, EncodeError, FrameDecoder};
pub use from_agent::AgentMessage;
pub use from_gateway::GatewayMessage;
pub use limits::LimitError;
pub use types::{
    AgentId, AgentState, CallId, CancelReason, Codec, Credential, DialFailure, EndReason,
    ErrorCode, ErrorReport, FlowId, MediaParams, RecordAction, RecordingStage, RefusalReason,
    RequestedState, ResumeToken, SessionId, SuperviseMode, TransferStage,
};

/// The ALPN protocol id both ends offer; a connection that negotiates anything else carries no
/// agent traffic. The `/1` names the framing (length-prefixed JSON on one stream, RTP in
/// datagrams), not the message set, which `v` versions.
pub const ALPN: &[u8] = b"trunkgate-agent/1";

/// The `v` of every message this implementation sends and the only one it accepts.
pub const PROTOCOL_VERSION: u64 = 1;

/// Bytes of the big-endian length that precedes each message.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// The largest message body a frame may carry. Far above what the field limits allow a valid
/// message to reach, so it only ever stops a broken or hostile peer from making us buffer
/// megabytes.
pub const MAX_FRAME_LEN: usize = 65_536;

/// How many undecodable messages in a row a peer may send before the connection is closed.
/// One bad message is usually a bug in a field the sender can live without; ten in a row means
/// the peer is not speaking this protocol and every answer we send it is wasted.
pub const MAX_BAD_MESSAGES_IN_A_ROW: u32 = 10;

/// QUIC application error codes for CONNECTION_CLOSE, so the side that did not close can tell a
/// logout from a failure without having read a final message.
pub mod close_code {
    /// The agent logged out, or the gateway ended a session on purpose (no resume follows).
    pub const DONE: u32 = 0;
    /// A fatal protocol error; an `error` message naming it was sent first when possible.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// `login_refused` was sent.
    pub const LOGIN_REFUSED: u32 = 2;
    /// The agent's credential was revoked or an operator removed the agent while logged in.
    pub const REVOKED: u32 = 3;
    /// The gateway is shutting down; the agent may reconnect to it or another gateway later.
    pub const SHUTTING_DOWN: u32 = 4;
}

/// What both message enums share so one framer serves either direction.
pub trait WireMessage: serde::Serialize + serde::de::DeserializeOwned {
    /// Every `type` this direction defines. A name outside this list is `unknown_type` (which the
    /// peer survives), not `bad_message`, so a newer peer's additions do not count as errors.
    const TYPES: &'static [&'static str];

    /// The `type` this message is sent as, for logs and for tests that tie [`Self::TYPES`] to
    /// the enum.
    fn type_name(&self) -> &'static str;

    /// Checks the limits of docs/agent-protocol.md, naming the first field that breaks one.
    fn validate(&self) -> Result<(), LimitError>;
}

#[cfg(test)]
mod tests;
