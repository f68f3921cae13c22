//! Frames on the control stream: a 4-byte big-endian length N (1 ≤ N ≤ 65536), then N bytes of
//! UTF-8 JSON holding one object with `"v": 1` and a `"type"`.
//!
//! Decoding classifies every failure the way the protocol answers it: framing errors are fatal
//! (once a length is wrong nothing after it can be trusted), while a frame whose body is bad
//! leaves the stream in sync, so the peer gets an `error` and the connection carries on.

use std::marker::PhantomData;

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use super::limits::{printable_prefix, LimitError, MAX_ID_BYTES, MAX_SHORT_TEXT_BYTES};
use super::types::{ErrorCode, ErrorReport};
use super::{
    WireMessage, LENGTH_PREFIX_LEN, MAX_BAD_MESSAGES_IN_A_ROW, MAX_FRAME_LEN, PROTOCOL_VERSION,
};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The message breaks a limit the peer would reject it for.
    #[error("message not sent: {0}")]
    Invalid(#[from] LimitError),
    /// Cannot happen for a message that passed validation (every valid message is far smaller);
    /// kept so a future field without a limit fails here rather than at the peer.
    #[error("message of {length} bytes exceeds the {MAX_FRAME_LEN}-byte frame limit")]
    TooLarge { length: usize },
    #[error("message could not be serialized: {0}")]
    Serialize(String),
}

/// Why a frame did not yield a message. [`DecodeError::is_fatal`] and [`DecodeError::report`]
/// tell the connection what to do and what to send back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("frame length {length} is outside 1..={MAX_FRAME_LEN}")]
    FrameLength { length: u32 },
    #[error("stream ended inside a frame, {buffered} bytes of it received")]
    Truncated { buffered: usize },
    /// The body is not a message: not JSON, not an object, a field missing or mistyped, or a
    /// limit broken. `field` is set when the problem is with one known field.
    #[error(
        "bad {} message: {}{reason}",
        message_type.as_deref().unwrap_or("untyped"),
        field.as_deref().map(|field| format!("field {field}: ")).unwrap_or_default()
    )]
    BadMessage {
        message_type: Option<String>,
        field: Option<String>,
        reason: String,
    },
    #[error("unknown message type {message_type:?}")]
    UnknownType { message_type: String },
    #[error("unsupported protocol version {version}, only {PROTOCOL_VERSION} is spoken here")]
    UnsupportedVersion { version: String },
    #[error("{limit} bad messages in a row, the last: {last}")]
    TooManyBadMessages { limit: u32, last: Box<DecodeError> },
}

impl DecodeError {
    /// Whether the connection must be closed (after sending [`Self::report`]).
    pub fn is_fatal(&self) -> bool {
        self.code().is_fatal()
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::FrameLength { .. } | Self::Truncated { .. } => ErrorCode::BadFrame,
            Self::BadMessage { .. } => ErrorCode::BadMessage,
            Self::UnknownType { .. } => ErrorCode::UnknownType,
            Self::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            Self::TooManyBadMessages { .. } => ErrorCode::TooManyErrors,
        }
    }

    /// The `error` message to answer with. A peer must not answer an `error` with an `error`
    /// (two confused peers would ping-pong forever), so callers skip this when
    /// [`Self::is_about_an_error`] says so.
    pub fn report(&self) -> ErrorReport {
        ErrorReport::new(self.code(), &self.to_string())
    }

    /// Whether the offending message was itself an `error`.
    pub fn is_about_an_error(&self) -> bool {
        match self {
            Self::BadMessage { message_type, .. } => message_type.as_deref() == Some("error"),
            Self::TooManyBadMessages { last, .. } => last.is_about_an_error(),
            _ => false,
        }
    }
}

/// Appends one frame holding `message` to `out`. On error `out` is left as it was.
pub fn encode<M: WireMessage>(message: &M, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    /// Puts `v` first so a reader of a hex dump sees the version before anything else.
    #[derive(Serialize)]
    struct Envelope<'a, M> {
        v: u64,
        #[serde(flatten)]
        message: &'a M,
    }

    message.validate()?;
    let start = out.len();
    out.extend_from_slice(&[0; LENGTH_PREFIX_LEN]);
    let envelope = Envelope {
        v: PROTOCOL_VERSION,
        message,
    };
    if let Err(error) = serde_json::to_writer(&mut *out, &envelope) {
        out.truncate(start);
        return Err(EncodeError::Serialize(error.to_string()));
    }
    let length = out.len() - start - LENGTH_PREFIX_LEN;
    let prefix = match u32::try_from(length) {
        Ok(prefix) if length <= MAX_FRAME_LEN => prefix,
        _ => {
            out.truncate(start);
            return Err(EncodeError::TooLarge { length });
        }
    };
    out[start..start + LENGTH_PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
    Ok(())
}

/// Decodes one frame's body (without its length prefix). The checks run in the order that
/// decides the answer: version before type (a message from a future version may use types we
/// do not know, and the version is the real problem), type before fields (a newer peer's
/// message we cannot parse is `unknown_type`, not `bad_message`).
pub fn decode_payload<M: WireMessage>(payload: &[u8]) -> Result<M, DecodeError> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|error| bad_message(None, None, &error))?;
    let Value::Object(fields) = value else {
        return Err(bad_message(None, None, &"not a json object"));
    };
    let message_type = match fields.get("type") {
        Some(Value::String(name)) => Some(name.clone()),
        _ => None,
    };
    match fields.get("v") {
        Some(Value::Number(version)) if version.as_u64() == Some(PROTOCOL_VERSION) => {}
        Some(Value::Number(version)) => {
            return Err(DecodeError::UnsupportedVersion {
                version: printable_prefix(&version.to_string(), MAX_ID_BYTES),
            })
        }
        Some(_) => return Err(bad_message(message_type, Some("v"), &"must be a number")),
        None => return Err(bad_message(message_type, Some("v"), &"missing")),
    }
    let Some(message_type) = message_type else {
        let reason = if fields.contains_key("type") {
            "must be a string"
        } else {
            "missing"
        };
        return Err(bad_message(None, Some("type"), &reason));
    };
    if !M::TYPES.contains(&message_type.as_str()) {
        return Err(DecodeError::UnknownType {
            message_type: printable_prefix(&message_type, MAX_ID_BYTES),
        });
    }
    let message = M::deserialize(Value::Object(fields))
        .map_err(|error| bad_message(Some(message_type.clone()), None, &error))?;
    message.validate().map_err(|error| {
        bad_message(
            Some(message_type),
            Some(&error.field),
            &error.problem.to_string(),
        )
    })?;
    Ok(message)
}

/// Clips what came from the network: the error ends up in logs and in the `error` we answer.
fn bad_message(
    message_type: Option<String>,
    field: Option<&str>,
    reason: &dyn std::fmt::Display,
) -> DecodeError {
    DecodeError::BadMessage {
        message_type: message_type.map(|name| printable_prefix(&name, MAX_ID_BYTES)),
        field: field.map(|field| printable_prefix(field, MAX_ID_BYTES)),
        reason: printable_prefix(&reason.to_string(), MAX_SHORT_TEXT_BYTES),
    }
}

/// Turns the control stream's bytes, however QUIC chunks them, into messages of one direction.
///
/// Push what the stream delivered, then pop until `None`. After a fatal error the decoder is
/// spent: it drops further input and pops nothing, because the connection is closing.
#[derive(Debug)]
pub struct FrameDecoder<M> {
    buffer: Vec<u8>,
    /// Bytes at the front of `buffer` already popped; removed on the next push so popping a
    /// burst of small frames costs one move, not one per frame.
    consumed: usize,
    bad_in_a_row: u32,
    failed: bool,
    _message: PhantomData<fn() -> M>,
}

impl<M: WireMessage> Default for FrameDecoder<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: WireMessage> FrameDecoder<M> {
    pub fn new() -> Self {
        Self {
            buffer: Vec::new(),
            consumed: 0,
            bad_in_a_row: 0,
            failed: false,
            _message: PhantomData,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if self.consumed > 0 {
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next message or error, or `None` until more bytes arrive. A bad length is reported
    /// as soon as its four bytes are in, without waiting for a body that may never come.
    pub fn pop(&mut self) -> Option<Result<M, DecodeError>> {
        if self.failed {
            return None;
        }
        // `consumed` only grows by whole frames that were in the buffer, and push resets it.
        let pending = &self.buffer[self.consumed..];
        let header: [u8; LENGTH_PREFIX_LEN] = pending.get(..LENGTH_PREFIX_LEN)?.try_into().ok()?;
        let length = u32::from_be_bytes(header);
        let body_len = length as usize;
        if body_len == 0 || body_len > MAX_FRAME_LEN {
            return Some(Err(self.fail(DecodeError::FrameLength { length })));
        }
        let payload = pending.get(LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + body_len)?;
        let decoded = decode_payload::<M>(payload);
        self.consumed += LENGTH_PREFIX_LEN + body_len;
        Some(self.count(decoded))
    }

    /// To call when the stream has ended and `pop` returned `None`: bytes left over are a frame
    /// the peer never finished.
    pub fn finish(&self) -> Result<(), DecodeError> {
        let buffered = self.buffered();
        if self.failed || buffered == 0 {
            Ok(())
        } else {
            Err(DecodeError::Truncated { buffered })
        }
    }

    /// Bytes received but not yet popped.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.consumed
    }

    /// Whether a fatal error was popped; nothing more will come out.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    fn count(&mut self, decoded: Result<M, DecodeError>) -> Result<M, DecodeError> {
        match decoded {
            Ok(message) => {
                self.bad_in_a_row = 0;
                Ok(message)
            }
            // A newer peer's messages are not errors on its part, so they neither count nor
            // reset the count.
            Err(error @ DecodeError::UnknownType { .. }) => Err(error),
            Err(error @ DecodeError::BadMessage { .. }) => {
                self.bad_in_a_row += 1;
                if self.bad_in_a_row >= MAX_BAD_MESSAGES_IN_A_ROW {
                    Err(self.fail(DecodeError::TooManyBadMessages {
                        limit: MAX_BAD_MESSAGES_IN_A_ROW,
                        last: Box::new(error),
                    }))
                } else {
                    Err(error)
                }
            }
            Err(error) => Err(self.fail(error)),
        }
    }

    fn fail(&mut self, error: DecodeError) -> DecodeError {
        self.failed = true;
        self.buffer = Vec::new();
        self.consumed = 0;
        error
    }
}
