//! Q.931 messages (ITU-T Q.931 §4, ETSI EN 300 403) as they travel in LAPD I frames: the
//! protocol discriminator, the call reference, the message type, then information elements.
//!
//! Parsing keeps the elements raw ([`RawIe`]): what a message lacks or carries badly is for
//! call control to judge against the message and the call state (§5.8), and to answer with
//! STATUS or RELEASE COMPLETE and the right cause. Only what makes a message unreadable as a
//! whole is an error here, and such a message is ignored (§5.8.1–§5.8.3).

/// The protocol discriminator of Q.931 call control.
pub const DISCRIMINATOR: u8 = 0x08;
/// A PRI's call references are two octets long.
pub const CALL_REF_LEN: usize = 2;

/// The message types a PRI call uses (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Alerting,
    CallProceeding,
    Progress,
    Setup,
    Connect,
    ConnectAcknowledge,
    SetupAcknowledge,
    Disconnect,
    Release,
    ReleaseComplete,
    Restart,
    RestartAcknowledge,
    Status,
    StatusEnquiry,
    Information,
    Notify,
    /// A type this implementation does not know: answered with STATUS, cause 97.
    Other(u8),
}

impl MessageType {
    pub const KNOWN: [MessageType; 16] = [
        MessageType::Alerting,
        MessageType::CallProceeding,
        MessageType::Progress,
        MessageType::Setup,
        MessageType::Connect,
        MessageType::ConnectAcknowledge,
        MessageType::SetupAcknowledge,
        MessageType::Disconnect,
        MessageType::Release,
        MessageType::ReleaseComplete,
        MessageType::Restart,
        MessageType::RestartAcknowledge,
        MessageType::Status,
        MessageType::StatusEnquiry,
        MessageType::Information,
        MessageType::Notify,
    ];

    pub fn code(self) -> u8 {
        match self {
            MessageType::Alerting => 0x01,
            MessageType::CallProceeding => 0x02,
            MessageType::Progress => 0x03,
            MessageType::Setup => 0x05,
            MessageType::Connect => 0x07,
            MessageType::ConnectAcknowledge => 0x0f,
            MessageType::SetupAcknowledge => 0x0d,
            MessageType::Disconnect => 0x45,
            MessageType::Release => 0x4d,
            MessageType::ReleaseComplete => 0x5a,
            MessageType::Restart => 0x46,
            MessageType::RestartAcknowledge => 0x4e,
            MessageType::Status => 0x7d,
            MessageType::StatusEnquiry => 0x75,
            MessageType::Information => 0x7b,
            MessageType::Notify => 0x6e,
            MessageType::Other(code) => code,
        }
    }

    pub fn from_code(code: u8) -> MessageType {
        MessageType::KNOWN
            .into_iter()
            .find(|t| t.code() == code)
            .unwrap_or(MessageType::Other(code))
    }

    /// The name Q.931 gives it, for logs.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Alerting => "ALERTING",
            MessageType::CallProceeding => "CALL PROCEEDING",
            MessageType::Progress => "PROGRESS",
            MessageType::Setup => "SETUP",
            MessageType::Connect => "CONNECT",
            MessageType::ConnectAcknowledge => "CONNECT ACKNOWLEDGE",
            MessageType::SetupAcknowledge => "SETUP ACKNOWLEDGE",
            MessageType::Disconnect => "DISCONNECT",
            MessageType::Release => "RELEASE",
            MessageType::ReleaseComplete => "RELEASE COMPLETE",
            MessageType::Restart => "RESTART",
            MessageType::RestartAcknowledge => "RESTART ACKNOWLEDGE",
            MessageType::Status => "STATUS",
            MessageType::StatusEnquiry => "STATUS ENQUIRY",
            MessageType::Information => "INFORMATION",
            MessageType::Notify => "NOTIFY",
            MessageType::Other(_) => "unknown",
        }
    }
}

/// A call reference (§4.3): its value, and whose it is. The flag on the wire is 0 from the side
/// that chose the value and 1 toward it; here `ours` says it from our side, so the same call
/// has the same `CallRef` in every message we send or receive about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef {
    /// 15 bits; 0 is the global call reference (RESTART).
    pub value: u16,
    /// We chose this value (our outgoing call).
    pub ours: bool,
}

impl CallRef {
    pub const GLOBAL: CallRef = CallRef {
        value: 0,
        ours: false,
    };

    pub fn is_global(self) -> bool {
        self.value == 0
    }
}

/// An information element as it came: its codeset (after shifts), identifier and contents.
/// Single-octet elements have the whole octet as `id` and no contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawIe {
    pub codeset: u8,
    pub id: u8,
    pub body: Vec<u8>,
}

impl RawIe {
    pub fn single_octet(&self) -> bool {
        self.id & 0x80 != 0
    }
}

/// A message: what call control reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub call_ref: CallRef,
    pub kind: MessageType,
    pub ies: Vec<RawIe>,
    /// The last element ran past the end of the message: it is left out, and counts as an
    /// element with bad contents (§5.8.6.2).
    pub truncated: bool,
}

/// Why a message cannot be read at all (it is ignored, §5.8.1–§5.8.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("too short for a Q.931 message ({0} octets)")]
    TooShort(usize),
    #[error("protocol discriminator {0:#04x} is not Q.931's")]
    Discriminator(u8),
    #[error("call reference of {0} octets (a PRI's are 2)")]
    CallRefLength(usize),
    #[error("message type octet {0:#04x} has its top bit set")]
    MessageType(u8),
}

impl Message {
    pub fn new(call_ref: CallRef, kind: MessageType) -> Message {
        Message {
            call_ref,
            kind,
            ies: Vec::new(),
            truncated: false,
        }
    }

    /// Adds an element of codeset 0.
    pub fn with(mut self, id: u8, body: Vec<u8>) -> Message {
        self.push(id, body);
        self
    }

    /// Adds an element as a typed element wrote it.
    pub fn with_ie(mut self, ie: RawIe) -> Message {
        self.ies.push(ie);
        self
    }

    pub fn push(&mut self, id: u8, body: Vec<u8>) {
        self.ies.push(RawIe {
            codeset: 0,
            id,
            body,
        });
    }

    /// The first codeset-0 element `id`.
    pub fn ie(&self, id: u8) -> Option<&RawIe> {
        self.ies.iter().find(|ie| ie.codeset == 0 && ie.id == id)
    }

    pub fn parse(bytes: &[u8]) -> Result<Message, MessageError> {
        let Some(&[discriminator, len_octet]) = bytes.get(..2) else {
            return Err(MessageError::TooShort(bytes.len()));
        };
        if discriminator != DISCRIMINATOR {
            return Err(MessageError::Discriminator(discriminator));
        }
        let ref_len = usize::from(len_octet & 0x0f);
        if len_octet & 0xf0 != 0 || ref_len != CALL_REF_LEN {
            return Err(MessageError::CallRefLength(ref_len));
        }
        let Some(&[hi, lo, kind]) = bytes.get(2..5) else {
            return Err(MessageError::TooShort(bytes.len()));
        };
        if kind & 0x80 != 0 {
            return Err(MessageError::MessageType(kind));
        }
        let call_ref = CallRef {
            value: u16::from_be_bytes([hi & 0x7f, lo]),
            // Flag 1: sent toward the side that chose the value, which is us.
            ours: hi & 0x80 != 0,
        };
        let mut message = Message::new(call_ref, MessageType::from_code(kind));
        let mut codeset = 0;
        let mut rest = &bytes[5..];
        while let Some((&id, tail)) = rest.split_first() {
            if id & 0x80 != 0 {
                // Single octet: a shift (0x9_) changes the codeset, locking or for the next
                // element only; the others (sending complete, more data) are elements.
                rest = tail;
                if id & 0xf0 == 0x90 {
                    let to = id & 0x07;
                    if id & 0x08 != 0 {
                        if let Some((&next, _)) = rest.split_first() {
                            let (ie, after) = match take_ie(to, next, &rest[1..]) {
                                Some(taken) => taken,
                                None => {
                                    message.truncated = true;
                                    break;
                                }
                            };
                            message.ies.push(ie);
                            rest = after;
                        }
                    } else {
                        codeset = to;
                    }
                    continue;
                }
                message.ies.push(RawIe {
                    codeset,
                    id,
                    body: Vec::new(),
                });
                continue;
            }
            match take_ie(codeset, id, tail) {
                Some((ie, after)) => {
                    message.ies.push(ie);
                    rest = after;
                }
                None => {
                    message.truncated = true;
                    break;
                }
            }
        }
        Ok(message)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.push(DISCRIMINATOR);
        out.push(CALL_REF_LEN as u8);
        let [hi, lo] = (self.call_ref.value & 0x7fff).to_be_bytes();
        // Flag 0 from the side that chose the value.
        out.push(hi | if self.call_ref.ours { 0 } else { 0x80 });
        out.push(lo);
        out.push(self.kind.code() & 0x7f);
        for ie in &self.ies {
            if ie.codeset != 0 {
                // Non-locking, for this element only: the rest stay in codeset 0.
                out.push(0x98 | (ie.codeset & 0x07));
            }
            out.push(ie.id);
            if !ie.single_octet() {
                let len = ie.body.len().min(255);
                out.push(len as u8);
                out.extend_from_slice(&ie.body[..len]);
            }
        }
        out
    }
}

/// A variable-length element `id` from `tail` (its length octet, then contents): the element
/// and what follows, or `None` if it runs past the end.
fn take_ie(codeset: u8, id: u8, tail: &[u8]) -> Option<(RawIe, &[u8])> {
    if id & 0x80 != 0 {
        // A single-octet element after a non-locking shift.
        return Some((
            RawIe {
                codeset,
                id,
                body: Vec::new(),
            },
            tail,
        ));
    }
    let (&len, tail) = tail.split_first()?;
    let body = tail.get(..usize::from(len))?;
    Some((
        RawIe {
            codeset,
            id,
            body: body.to_vec(),
        },
        &tail[usize::from(len)..],
    ))
}
