//! DTMF: key presses arrive either as RFC 4733 telephone-events or as in-band tones, and
//! carriers often send both for the same press.
//!
//! - [`rfc4733`]: the telephone-event payload, a receiver that reports each press once however
//!   many packets carry it, and a sender for presses going toward the carrier.
//! - [`inband`]: a Goertzel detector for tones in decoded PCM.
//! - [`merge`]: turns the two sources into one digit per press.
//! - [`send`]: presses toward the carrier, as events or tones, one frame at a time.
//!
//! Digits are plain `char`s: `'0'..='9'`, `'*'`, `'#'`, `'A'..='D'`. Generating the tones is
//! [`crate::media::tone`]'s job.

pub mod inband;
pub mod merge;
pub mod rfc4733;
pub mod send;

pub use inband::InbandDetector;
pub use merge::DtmfMerger;
pub use rfc4733::{
    digit_to_event, event_to_digit, Rfc4733Packet, Rfc4733Receiver, Rfc4733Sender, TelephoneEvent,
};
pub use send::{DigitFrame, DigitSender};

/// Errors from DTMF parsing and sending; each names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    #[error("telephone-event payload is {len} bytes, expected exactly 4")]
    PayloadLength { len: usize },
    #[error("{digit:?} is not a dtmf digit (expected 0-9, *, #, A-D)")]
    UnknownDigit { digit: char },
    #[error("dtmf volume {volume} is out of range (0 to 63, meaning 0 to -63 dBm0)")]
    VolumeOutOfRange { volume: u8 },
    #[error("dtmf duration of {duration_units} timestamp units exceeds the 16-bit field (65535)")]
    DurationTooLong { duration_units: u64 },
    #[error("dtmf duration of {duration_units} timestamp units is too short to send")]
    DurationTooShort { duration_units: u64 },
    #[error("packet interval of {ptime_units} timestamp units is invalid")]
    InvalidPtime { ptime_units: u64 },
    #[error("{queued} digits are already waiting to be sent, at most {limit} may wait")]
    QueueFull { queued: usize, limit: usize },
}
