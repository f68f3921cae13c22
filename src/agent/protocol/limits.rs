//! The size and alphabet limits of every field, and the checks that enforce them.
//!
//! Lengths count UTF-8 bytes, not characters: bytes are what bound memory, and every
//! implementation counts them the same way. No string may contain control characters (Unicode
//! category Cc: C0, DEL, C1), so nothing a peer sends can forge a line in a log. With control
//! characters gone, JSON escaping at most doubles a string (`"` and `\`), which keeps every
//! valid message far below [`super::MAX_FRAME_LEN`].

use std::fmt;

use thiserror::Error;

/// Agent ids, call ids, session ids, queue names and skill names.
pub const MAX_ID_BYTES: usize = 64;
/// `login.credential`.
pub const MAX_CREDENTIAL_BYTES: usize = 256;
/// `login.resume` and `welcome.resume_token`.
pub const MAX_RESUME_TOKEN_BYTES: usize = 256;
/// Entries in `login.skills`.
pub const MAX_SKILLS: usize = 32;
/// `login.client` and `welcome.gateway`: a name/version string.
pub const MAX_SOFTWARE_BYTES: usize = 128;
/// `offer.caller` (a display name and number) and `reject.reason`.
pub const MAX_SHORT_TEXT_BYTES: usize = 256;
/// `error.message` and `login_refused.message`.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Digits in one agent `dtmf` message.
pub const MAX_DTMF_DIGITS: usize = 32;
/// The DTMF alphabet (RFC 4733 events 0–15).
pub const DTMF_ALPHABET: &str = "0123456789*#ABCD";
/// Flow ids travel as QUIC variable-length integers in every media datagram (RFC 9000 §16).
pub const MAX_FLOW_ID: u64 = (1 << 62) - 1;
/// `offer.ring_timeout_ms`: ten minutes is beyond any queue's ring time.
pub const MAX_RING_TIMEOUT_MS: u64 = 600_000;
/// `dial.number` and `dialing.number`: a number as typed, with spaces and dashes.
pub const MAX_NUMBER_BYTES: usize = 32;
/// `transfer.to`: `queue:` or `agent:` and an identifier.
pub const MAX_TRANSFER_TARGET_BYTES: usize = 80;
/// `chat.text`: a few lines of text.
pub const MAX_CHAT_BYTES: usize = 1024;
/// Entries in each list of `live`: calls and agents of a supervisor's queues.
pub const MAX_LIVE_ENTRIES: usize = 512;
/// `stats.jitter_ms`: a minute of jitter is no longer a measurement but a broken clock.
pub const MAX_JITTER_MS: f32 = 60_000.0;

/// A field that breaks a limit. `field` is the JSON path (`skills[3]`, `media.bitrate`) so the
/// `bad_message` answer tells the sender exactly what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("field {field}: {problem}")]
pub struct LimitError {
    pub field: String,
    pub problem: LimitProblem,
}

/// What is wrong with the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitProblem {
    Empty,
    TooLong { bytes: usize, max: usize },
    ControlCharacter { at_byte: usize },
    TooMany { count: usize, max: usize },
    NotDtmf { found: char },
    OutOfRange { value: String, allowed: String },
}

impl fmt::Display for LimitProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "must not be empty"),
            Self::TooLong { bytes, max } => write!(f, "{bytes} bytes, at most {max} allowed"),
            Self::ControlCharacter { at_byte } => {
                write!(f, "control character at byte {at_byte}")
            }
            Self::TooMany { count, max } => write!(f, "{count} entries, at most {max} allowed"),
            Self::NotDtmf { found } => {
                write!(f, "{found:?} is not a dtmf digit ({DTMF_ALPHABET})")
            }
            Self::OutOfRange { value, allowed } => write!(f, "{value} is outside {allowed}"),
        }
    }
}

pub(crate) fn problem(field: impl Into<String>, problem: LimitProblem) -> LimitError {
    LimitError {
        field: field.into(),
        problem,
    }
}

/// Identifiers must name something, so they may not be empty.
pub(crate) fn identifier(field: &str, value: &str) -> Result<(), LimitError> {
    text(field, value, 1, MAX_ID_BYTES)
}

pub(crate) fn text(field: &str, value: &str, min: usize, max: usize) -> Result<(), LimitError> {
    if value.len() < min {
        return Err(problem(field, LimitProblem::Empty));
    }
    if value.len() > max {
        return Err(problem(
            field,
            LimitProblem::TooLong {
                bytes: value.len(),
                max,
            },
        ));
    }
    if let Some((at_byte, _)) = value.char_indices().find(|(_, c)| c.is_control()) {
        return Err(problem(field, LimitProblem::ControlCharacter { at_byte }));
    }
    Ok(())
}

pub(crate) fn dtmf_digit(field: &str, digit: char) -> Result<(), LimitError> {
    if DTMF_ALPHABET.contains(digit) {
        Ok(())
    } else {
        Err(problem(field, LimitProblem::NotDtmf { found: digit }))
    }
}

pub(crate) fn dtmf_digits(field: &str, digits: &str) -> Result<(), LimitError> {
    if digits.is_empty() {
        return Err(problem(field, LimitProblem::Empty));
    }
    // Counted in characters here: a non-DTMF character is reported as such rather than as a
    // multi-byte length overrun.
    if let Some(found) = digits.chars().find(|c| !DTMF_ALPHABET.contains(*c)) {
        return Err(problem(field, LimitProblem::NotDtmf { found }));
    }
    if digits.len() > MAX_DTMF_DIGITS {
        return Err(problem(
            field,
            LimitProblem::TooLong {
                bytes: digits.len(),
                max: MAX_DTMF_DIGITS,
            },
        ));
    }
    Ok(())
}

pub(crate) fn count(field: &str, count: usize, max: usize) -> Result<(), LimitError> {
    if count > max {
        Err(problem(field, LimitProblem::TooMany { count, max }))
    } else {
        Ok(())
    }
}

/// `allowed` is how the range reads in the error, e.g. `0..=100`.
pub(crate) fn within<T: PartialOrd + fmt::Display>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), LimitError> {
    // Written so NaN, which compares false with everything, lands in the error branch.
    if value >= min && value <= max {
        Ok(())
    } else {
        Err(problem(
            field,
            LimitProblem::OutOfRange {
                value: value.to_string(),
                allowed: format!("{min}..={max}"),
            },
        ))
    }
}

pub(crate) fn one_of<T: PartialEq + fmt::Display>(
    field: &str,
    value: T,
    allowed: &[T],
) -> Result<(), LimitError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        let listed: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        Err(problem(
            field,
            LimitProblem::OutOfRange {
                value: value.to_string(),
                allowed: format!("{{{}}}", listed.join(", ")),
            },
        ))
    }
}

/// Makes untrusted text safe to log and to send back in an `error`: at most `max_bytes` (cut on
/// a character boundary, marked with `…`), control characters replaced by U+FFFD.
pub fn printable_prefix(text: &str, max_bytes: usize) -> String {
    const ELLIPSIS: char = '…';
    let mut out = String::with_capacity(text.len().min(max_bytes));
    for c in text.chars() {
        let c = if c.is_control() { '\u{FFFD}' } else { c };
        if out.len() + c.len_utf8() > max_bytes {
            while out.len() + ELLIPSIS.len_utf8() > max_bytes {
                if out.pop().is_none() {
                    return out;
                }
            }
            out.push(ELLIPSIS);
            return out;
        }
        out.push(c);
    }
    out
}
