//! The information elements a PRI call uses (Q.931 §4.5, ETSI EN 300 403), typed: each reads
//! itself from a [`RawIe`]'s contents and writes itself back. A read that fails says which
//! element and what is wrong with it, for call control to answer with cause 100 (invalid
//! contents) or treat as missing (cause 96) when the message needs it.
use super::message::RawIe;

/// Codeset-0 element identifiers.
pub mod id {
    pub const BEARER_CAPABILITY: u8 = 0x04;
    pub const CAUSE: u8 = 0x08;
    pub const CALL_STATE: u8 = 0x14;
    pub const CHANNEL_ID: u8 = 0x18;
    pub const PROGRESS_INDICATOR: u8 = 0x1e;
    pub const DISPLAY: u8 = 0x28;
    pub const CALLING_NUMBER: u8 = 0x6c;
    pub const CALLED_NUMBER: u8 = 0x70;
    pub const RESTART_INDICATOR: u8 = 0x79;
    /// Single octet.
    pub const SENDING_COMPLETE: u8 = 0xa1;

    /// Every element this implementation reads.
    pub const KNOWN: [u8; 10] = [
        BEARER_CAPABILITY,
        CAUSE,
        CALL_STATE,
        CHANNEL_ID,
        PROGRESS_INDICATOR,
        DISPLAY,
        CALLING_NUMBER,
        CALLED_NUMBER,
        RESTART_INDICATOR,
        SENDING_COMPLETE,
    ];

    pub fn name(id: u8) -> &'static str {
        match id {
            BEARER_CAPABILITY => "bearer capability",
            CAUSE => "cause",
            CALL_STATE => "call state",
            CHANNEL_ID => "channel identification",
            PROGRESS_INDICATOR => "progress indicator",
            DISPLAY => "display",
            CALLING_NUMBER => "calling party number",
            CALLED_NUMBER => "called party number",
            RESTART_INDICATOR => "restart indicator",
            SENDING_COMPLETE => "sending complete",
            _ => "unknown element",
        }
    }
}

/// An element whose contents cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {what}", id::name(*.id))]
pub struct IeError {
    pub id: u8,
    pub what: &'static str,
}

fn bad(id: u8, what: &'static str) -> IeError {
    IeError { id, what }
}

/// Reads octet `i` of element `id`'s contents.
fn octet(body: &[u8], i: usize, id: u8) -> Result<u8, IeError> {
    body.get(i).copied().ok_or(bad(id, "too short"))
}

/// Coding standard bits (7–6) of an octet: ETSI PRI calls use the ITU-T standard only.
fn itu_coding(b: u8, id: u8) -> Result<(), IeError> {
    match b & 0x60 {
        0 => Ok(()),
        _ => Err(bad(id, "coding standard other than ITU-T")),
    }
}

/// G.711's two companding laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    ALaw,
    MuLaw,
}

/// What a call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Speech,
    Audio3k1,
    /// Data or video: not a call for this gateway (cause 65).
    Other(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BearerCapability {
    pub transfer: Transfer,
    /// False for anything but 64 kbit/s circuit mode.
    pub circuit_64k: bool,
    /// Layer 1 user information; none given means the network's default (A-law on E1).
    pub law: Option<Law>,
}

impl BearerCapability {
    pub fn speech(law: Law) -> Self {
        BearerCapability {
            transfer: Transfer::Speech,
            circuit_64k: true,
            law: Some(law),
        }
    }

    pub fn read(body: &[u8]) -> Result<Self, IeError> {
        let id = id::BEARER_CAPABILITY;
        let b3 = octet(body, 0, id)?;
        itu_coding(b3, id)?;
        let transfer = match b3 & 0x1f {
            0x00 => Transfer::Speech,
            0x10 => Transfer::Audio3k1,
            other => Transfer::Other(other),
        };
        let b4 = octet(body, 1, id)?;
        let circuit_64k = b4 & 0x7f == 0x10;
        // Octet 4.1 (rate multiplier) follows only for multirate.
        let mut i = 2;
        if b4 & 0x80 == 0 {
            i += 1;
        }
        let law = match body.get(i) {
            Some(&b5) if b5 & 0x60 == 0x20 => match b5 & 0x1f {
                0x02 => Some(Law::MuLaw),
                0x03 => Some(Law::ALaw),
                _ => None,
            },
            Some(_) => return Err(bad(id, "octet 5 is not layer 1 information")),
            None => None,
        };
        Ok(BearerCapability {
            transfer,
            circuit_64k,
            law,
        })
    }

    pub fn write(&self) -> RawIe {
        let transfer = match self.transfer {
            Transfer::Speech => 0x00,
            Transfer::Audio3k1 => 0x10,
            Transfer::Other(code) => code & 0x1f,
        };
        let mut body = vec![0x80 | transfer, 0x90];
        match self.law {
            Some(Law::ALaw) => body.push(0xa3),
            Some(Law::MuLaw) => body.push(0xa2),
            None => {}
        }
        raw(id::BEARER_CAPABILITY, body)
    }
}

/// Which B-channel a call is on (or asks for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// No channel (yet).
    None,
    /// Any channel the other side likes.
    Any,
    /// This channel: on an E1, the timeslot (1–15, 17–31).
    Channel(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelId {
    /// Only this channel will do; otherwise it is preferred.
    pub exclusive: bool,
    pub selection: Selection,
}

impl ChannelId {
    pub fn exclusive(channel: u8) -> Self {
        ChannelId {
            exclusive: true,
            selection: Selection::Channel(channel),
        }
    }

    pub fn read(body: &[u8]) -> Result<Self, IeError> {
        let id = id::CHANNEL_ID;
        let b3 = octet(body, 0, id)?;
        if b3 & 0x20 == 0 {
            return Err(bad(id, "a basic-rate channel on a primary-rate interface"));
        }
        let mut i = 1;
        if b3 & 0x40 != 0 {
            // An explicit interface identifier: skip it (one interface per D-channel here).
            while octet(body, i, id)? & 0x80 == 0 {
                i += 1;
            }
            i += 1;
        }
        let exclusive = b3 & 0x08 != 0;
        let selection = match b3 & 0x03 {
            0 => Selection::None,
            3 => Selection::Any,
            1 => {
                let b = octet(body, i, id)?;
                itu_coding(b, id)?;
                if b & 0x10 != 0 {
                    return Err(bad(id, "a channel map (only channel numbers are read)"));
                }
                if b & 0x0f != 0x03 {
                    return Err(bad(id, "channel type other than B-channel"));
                }
                let channel = octet(body, i + 1, id)? & 0x7f;
                if channel == 0 {
                    return Err(bad(id, "channel number 0"));
                }
                Selection::Channel(channel)
            }
            _ => return Err(bad(id, "reserved channel selection")),
        };
        Ok(ChannelId {
            exclusive,
            selection,
        })
    }

    pub fn write(&self) -> RawIe {
        let exclusive = if self.exclusive { 0x08 } else { 0 };
        let body = match self.selection {
            Selection::None => vec![0xa0 | exclusive],
            Selection::Any => vec![0xa3 | exclusive],
            Selection::Channel(n) => vec![0xa1 | exclusive, 0x83, 0x80 | (n & 0x7f)],
        };
        raw(id::CHANNEL_ID, body)
    }
}

/// Type of number (§4.5.10, bits 7–5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberType {
    Unknown,
    International,
    National,
    NetworkSpecific,
    Subscriber,
    Abbreviated,
    Reserved,
}

impl NumberType {
    fn code(self) -> u8 {
        match self {
            NumberType::Unknown => 0,
            NumberType::International => 1,
            NumberType::National => 2,
            NumberType::NetworkSpecific => 3,
            NumberType::Subscriber => 4,
            NumberType::Abbreviated => 6,
            NumberType::Reserved => 7,
        }
    }

    fn from_code(code: u8) -> Self {
        match code & 0x07 {
            1 => NumberType::International,
            2 => NumberType::National,
            3 => NumberType::NetworkSpecific,
            4 => NumberType::Subscriber,
            6 => NumberType::Abbreviated,
            7 | 5 => NumberType::Reserved,
            _ => NumberType::Unknown,
        }
    }
}

/// Numbering plan (bits 4–1): the two a PRI uses, and the rest as they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberingPlan {
    Unknown,
    /// E.164.
    Isdn,
    Private,
    #[serde(skip)]
    Other(u8),
}

impl NumberingPlan {
    fn code(self) -> u8 {
        match self {
            NumberingPlan::Unknown => 0,
            NumberingPlan::Isdn => 1,
            NumberingPlan::Private => 9,
            NumberingPlan::Other(code) => code & 0x0f,
        }
    }

    fn from_code(code: u8) -> Self {
        match code & 0x0f {
            0 => NumberingPlan::Unknown,
            1 => NumberingPlan::Isdn,
            9 => NumberingPlan::Private,
            other => NumberingPlan::Other(other),
        }
    }
}

/// Whether the calling number may be shown to the called party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presentation {
    Allowed,
    Restricted,
    NotAvailable,
}

/// A called or calling party number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyNumber {
    pub number_type: NumberType,
    pub plan: NumberingPlan,
    /// Calling numbers only; none given means allowed.
    pub presentation: Option<Presentation>,
    /// Screening indicator (bits 2–1 of octet 3a): 0 user-provided not screened, 3
    /// network-provided.
    pub screening: u8,
    pub digits: String,
}

impl PartyNumber {
    pub fn new(digits: &str) -> Self {
        PartyNumber {
            number_type: NumberType::Unknown,
            plan: NumberingPlan::Isdn,
            presentation: None,
            screening: 0,
            digits: digits.to_string(),
        }
    }

    pub fn read(id: u8, body: &[u8]) -> Result<Self, IeError> {
        let b3 = octet(body, 0, id)?;
        let mut i = 1;
        let mut presentation = None;
        let mut screening = 0;
        if b3 & 0x80 == 0 {
            if id == id::CALLED_NUMBER {
                return Err(bad(id, "octet 3a in a called party number"));
            }
            let b3a = octet(body, 1, id)?;
            presentation = Some(match (b3a >> 5) & 0x03 {
                0 => Presentation::Allowed,
                1 => Presentation::Restricted,
                2 => Presentation::NotAvailable,
                _ => return Err(bad(id, "reserved presentation indicator")),
            });
            screening = b3a & 0x03;
            i = 2;
        }
        let digits = &body[i..];
        if digits
            .iter()
            .any(|&c| !(c.is_ascii_digit() || c == b'*' || c == b'#' || c == b'+'))
        {
            return Err(bad(id, "a character other than 0-9 * # +"));
        }
        Ok(PartyNumber {
            number_type: NumberType::from_code(b3 >> 4),
            plan: NumberingPlan::from_code(b3),
            presentation,
            screening,
            // Checked ASCII above.
            digits: digits.iter().map(|&c| c as char).collect(),
        })
    }

    pub fn write(&self, id: u8) -> RawIe {
        let b3 = (self.number_type.code() << 4) | self.plan.code();
        let mut body = Vec::with_capacity(self.digits.len() + 2);
        match self.presentation {
            Some(presentation) if id == id::CALLING_NUMBER => {
                body.push(b3);
                let p = match presentation {
                    Presentation::Allowed => 0,
                    Presentation::Restricted => 1,
                    Presentation::NotAvailable => 2,
                };
                body.push(0x80 | (p << 5) | (self.screening & 0x03));
            }
            _ => body.push(0x80 | b3),
        }
        body.extend(
            self.digits
                .bytes()
                .filter(|c| c.is_ascii_digit() || matches!(c, b'*' | b'#' | b'+')),
        );
        raw(id, body)
    }
}

/// Where a cause or progress was generated (§4.5.12, bits 4–1).
pub mod location {
    pub const USER: u8 = 0;
    pub const PRIVATE_LOCAL: u8 = 1;
    pub const PUBLIC_LOCAL: u8 = 2;
    pub const TRANSIT: u8 = 3;
    pub const PUBLIC_REMOTE: u8 = 4;
    pub const PRIVATE_REMOTE: u8 = 5;
    pub const INTERNATIONAL: u8 = 7;
    pub const BEYOND_INTERWORKING: u8 = 10;
}

/// Why a call ended or a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub location: u8,
    /// The cause value (Q.850).
    pub value: u8,
    /// Diagnostics: for causes 96, 99 and 100, the identifiers of the elements concerned.
    pub diagnostic: Vec<u8>,
}

impl Cause {
    pub fn new(location: u8, value: u8) -> Self {
        Cause {
            location,
            value,
            diagnostic: Vec::new(),
        }
    }

    pub fn read(body: &[u8]) -> Result<Self, IeError> {
        let id = id::CAUSE;
        let b3 = octet(body, 0, id)?;
        let mut i = 1;
        if b3 & 0x80 == 0 {
            // Octet 3a: a recommendation; only its presence matters.
            octet(body, 1, id)?;
            i = 2;
        }
        let b4 = octet(body, i, id)?;
        if b4 & 0x80 == 0 {
            return Err(bad(id, "cause value without its extension bit"));
        }
        Ok(Cause {
            location: b3 & 0x0f,
            value: b4 & 0x7f,
            diagnostic: body[i + 1..].to_vec(),
        })
    }

    pub fn write(&self) -> RawIe {
        let mut body = vec![0x80 | (self.location & 0x0f), 0x80 | (self.value & 0x7f)];
        body.extend_from_slice(&self.diagnostic);
        raw(id::CAUSE, body)
    }
}

/// Progress description 8: the call's progress is heard in-band on the B-channel.
pub const PROGRESS_INBAND: u8 = 8;
/// Progress description 1: the call left ISDN; more may be heard in-band.
pub const PROGRESS_NOT_END_TO_END: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressIndicator {
    pub location: u8,
    pub description: u8,
}

impl ProgressIndicator {
    pub fn read(body: &[u8]) -> Result<Self, IeError> {
        let id = id::PROGRESS_INDICATOR;
        let b3 = octet(body, 0, id)?;
        let b4 = octet(body, 1, id)?;
        Ok(ProgressIndicator {
            location: b3 & 0x0f,
            description: b4 & 0x7f,
        })
    }

    /// The far end's audio can be heard before the answer.
    pub fn inband(&self) -> bool {
        matches!(
            self.description,
            PROGRESS_INBAND | PROGRESS_NOT_END_TO_END | 2 | 3
        )
    }

    pub fn write(&self) -> RawIe {
        raw(
            id::PROGRESS_INDICATOR,
            vec![
                0x80 | (self.location & 0x0f),
                0x80 | (self.description & 0x7f),
            ],
        )
    }
}

/// The display element's text: printable IA5 (ASCII); anything else is refused.
pub fn read_display(body: &[u8]) -> Result<String, IeError> {
    // Some networks put a display-type octet first (top bit set): skip it.
    let text = match body.first() {
        Some(b) if b & 0x80 != 0 => &body[1..],
        _ => body,
    };
    if text.iter().any(|c| !(0x20..0x7f).contains(c)) {
        return Err(bad(id::DISPLAY, "a character that is not printable IA5"));
    }
    Ok(text.iter().map(|&c| c as char).collect())
}

pub fn write_display(text: &str) -> RawIe {
    // ETSI allows 82 characters at most.
    let body = text
        .bytes()
        .filter(|c| (0x20..0x7f).contains(c))
        .take(82)
        .collect();
    raw(id::DISPLAY, body)
}

/// The call state value (§4.5.7) a STATUS carries.
pub fn read_call_state(body: &[u8]) -> Result<u8, IeError> {
    let b3 = octet(body, 0, id::CALL_STATE)?;
    Ok(b3 & 0x3f)
}

pub fn write_call_state(state: u8) -> RawIe {
    raw(id::CALL_STATE, vec![state & 0x3f])
}

/// What a RESTART covers (§4.5.21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartClass {
    /// The channels named in the message's channel identification.
    Channels,
    /// Every channel of the interface.
    Interface,
}

pub fn read_restart_class(body: &[u8]) -> Result<RestartClass, IeError> {
    let id = id::RESTART_INDICATOR;
    match octet(body, 0, id)? & 0x07 {
        0 => Ok(RestartClass::Channels),
        6 | 7 => Ok(RestartClass::Interface),
        _ => Err(bad(id, "reserved restart class")),
    }
}

pub fn write_restart_class(class: RestartClass) -> RawIe {
    let code = match class {
        RestartClass::Channels => 0,
        RestartClass::Interface => 7,
    };
    raw(id::RESTART_INDICATOR, vec![0x80 | code])
}

fn raw(id: u8, body: Vec<u8>) -> RawIe {
    RawIe {
        codeset: 0,
        id,
        body,
    }
}

#[cfg(test)]
mod tests;
