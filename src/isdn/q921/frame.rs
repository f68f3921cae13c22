//! LAPD frames (ITU-T Q.921 §2–§3) as they cross the D-channel between the HDLC flags, without
//! the FCS (the HDLC controller, or the software span, checks and strips it): a two-octet
//! address (SAPI, C/R, TEI), a control field of one octet (U frames) or two (I and S frames,
//! modulo-128 sequence numbers), and an information field for I, UI, FRMR and XID frames.
//!
//! Decoding never panics on what a peer sends: every malformed frame is an error naming what is
//! wrong, which the link layer counts and drops (Q.921 §5.8.5).

/// The SAPI of call control (Q.931) on the D-channel.
pub const SAPI_CALL_CONTROL: u8 = 0;
/// The SAPI of layer-2 management (TEI assignment; not used on a PRI).
pub const SAPI_MANAGEMENT: u8 = 63;
/// The TEI of a point-to-point PRI.
pub const TEI_PRI: u8 = 0;
/// N201: the most octets an information field may carry.
pub const MAX_INFO: usize = 260;

/// Supervisory frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervisory {
    /// Receive ready: acknowledges up to N(R), ready for more.
    Rr,
    /// Receive not ready: acknowledges up to N(R), busy.
    Rnr,
    /// Reject: asks for retransmission from N(R).
    Rej,
}

/// Unnumbered frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unnumbered {
    /// Set asynchronous balanced mode extended: establishes the link (modulo 128).
    Sabme,
    /// Disconnected mode: the link is not established.
    Dm,
    /// Unnumbered information: a message outside the sequence (broadcasts, TEI management).
    Ui,
    /// Disconnect: releases the link.
    Disc,
    /// Unnumbered acknowledgement of SABME or DISC.
    Ua,
    /// Frame reject: a frame could not be taken, and why (in the information field).
    Frmr,
    /// Exchange identification.
    Xid,
}

impl Unnumbered {
    pub const ALL: [Unnumbered; 7] = [
        Unnumbered::Sabme,
        Unnumbered::Dm,
        Unnumbered::Ui,
        Unnumbered::Disc,
        Unnumbered::Ua,
        Unnumbered::Frmr,
        Unnumbered::Xid,
    ];

    /// The control octet without the P/F bit.
    fn code(self) -> u8 {
        match self {
            Unnumbered::Sabme => 0x6f,
            Unnumbered::Dm => 0x0f,
            Unnumbered::Ui => 0x03,
            Unnumbered::Disc => 0x43,
            Unnumbered::Ua => 0x63,
            Unnumbered::Frmr => 0x87,
            Unnumbered::Xid => 0xaf,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.code() == code)
    }

    /// Whether the frame type carries an information field.
    fn carries_info(self) -> bool {
        matches!(self, Unnumbered::Ui | Unnumbered::Frmr | Unnumbered::Xid)
    }
}

/// What a frame is, past its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Numbered information: N(S), N(R), the poll bit, a layer-3 message.
    Info {
        ns: u8,
        nr: u8,
        poll: bool,
        info: Vec<u8>,
    },
    Supervisory {
        kind: Supervisory,
        nr: u8,
        poll_final: bool,
    },
    Unnumbered {
        kind: Unnumbered,
        poll_final: bool,
        info: Vec<u8>,
    },
}

/// One LAPD frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub sapi: u8,
    /// The C/R bit as sent: a command from the network side and a response from the user side
    /// carry 1 (Q.921 Table 1); [`Frame::is_command`] reads it for a receiver.
    pub cr: bool,
    pub tei: u8,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} octets: shorter than its address and control fields")]
    TooShort(usize),
    #[error("address field extension bits wrong (octets {0:#04x} {1:#04x})")]
    Address(u8, u8),
    #[error("control field {0:#04x} is no LAPD frame type")]
    UnknownControl(u8),
    #[error("{0:?} frame with an information field it must not have ({1} octets)")]
    UnexpectedInfo(&'static str, usize),
    #[error("information field of {0} octets: more than N201 ({MAX_INFO})")]
    InfoTooLong(usize),
    #[error("sequence number {0} out of range 0-127")]
    Sequence(u8),
}

impl Frame {
    /// Whether the frame is a command, for a receiver on the `network` side or not (Q.921
    /// Table 1: commands from the user side carry C/R 0, from the network side 1).
    pub fn is_command(&self, receiver_is_network: bool) -> bool {
        // A network receiver hears the user side: command = 0.
        self.cr != receiver_is_network
    }

    /// The C/R bit for a frame the `network` side (or the user side) sends as a command or a
    /// response.
    pub fn cr_bit(sender_is_network: bool, command: bool) -> bool {
        sender_is_network == command
    }

    /// Decodes a frame (without its FCS).
    pub fn parse(bytes: &[u8]) -> Result<Frame, FrameError> {
        if bytes.len() < 3 {
            return Err(FrameError::TooShort(bytes.len()));
        }
        let (a1, a2) = (bytes[0], bytes[1]);
        if a1 & 0x01 != 0 || a2 & 0x01 != 1 {
            return Err(FrameError::Address(a1, a2));
        }
        let sapi = a1 >> 2;
        let cr = a1 & 0x02 != 0;
        let tei = a2 >> 1;
        let c1 = bytes[2];
        let kind = if c1 & 0x01 == 0 {
            // I frame: N(S) in octet 1, N(R) and P in octet 2.
            let c2 = *bytes.get(3).ok_or(FrameError::TooShort(bytes.len()))?;
            let info = bytes[4..].to_vec();
            if info.len() > MAX_INFO {
                return Err(FrameError::InfoTooLong(info.len()));
            }
            Kind::Info {
                ns: c1 >> 1,
                nr: c2 >> 1,
                poll: c2 & 0x01 != 0,
                info,
            }
        } else if c1 & 0x03 == 0x01 {
            let c2 = *bytes.get(3).ok_or(FrameError::TooShort(bytes.len()))?;
            let kind = match c1 {
                0x01 => Supervisory::Rr,
                0x05 => Supervisory::Rnr,
                0x09 => Supervisory::Rej,
                other => return Err(FrameError::UnknownControl(other)),
            };
            if bytes.len() > 4 {
                return Err(FrameError::UnexpectedInfo("supervisory", bytes.len() - 4));
            }
            Kind::Supervisory {
                kind,
                nr: c2 >> 1,
                poll_final: c2 & 0x01 != 0,
            }
        } else {
            let kind = Unnumbered::from_code(c1 & !0x10).ok_or(FrameError::UnknownControl(c1))?;
            let info = bytes[3..].to_vec();
            if !kind.carries_info() && !info.is_empty() {
                return Err(FrameError::UnexpectedInfo("unnumbered", info.len()));
            }
            if info.len() > MAX_INFO {
                return Err(FrameError::InfoTooLong(info.len()));
            }
            Kind::Unnumbered {
                kind,
                poll_final: c1 & 0x10 != 0,
                info,
            }
        };
        Ok(Frame {
            sapi,
            cr,
            tei,
            kind,
        })
    }

    /// Encodes the frame (without an FCS) onto `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        out.push((self.sapi & 0x3f) << 2 | u8::from(self.cr) << 1);
        out.push((self.tei & 0x7f) << 1 | 0x01);
        match &self.kind {
            Kind::Info { ns, nr, poll, info } => {
                for n in [*ns, *nr] {
                    if n > 127 {
                        return Err(FrameError::Sequence(n));
                    }
                }
                if info.len() > MAX_INFO {
                    return Err(FrameError::InfoTooLong(info.len()));
                }
                out.push(ns << 1);
                out.push(nr << 1 | u8::from(*poll));
                out.extend_from_slice(info);
            }
            Kind::Supervisory {
                kind,
                nr,
                poll_final,
            } => {
                if *nr > 127 {
                    return Err(FrameError::Sequence(*nr));
                }
                out.push(match kind {
                    Supervisory::Rr => 0x01,
                    Supervisory::Rnr => 0x05,
                    Supervisory::Rej => 0x09,
                });
                out.push(nr << 1 | u8::from(*poll_final));
            }
            Kind::Unnumbered {
                kind,
                poll_final,
                info,
            } => {
                if !kind.carries_info() && !info.is_empty() {
                    return Err(FrameError::UnexpectedInfo("unnumbered", info.len()));
                }
                if info.len() > MAX_INFO {
                    return Err(FrameError::InfoTooLong(info.len()));
                }
                out.push(kind.code() | u8::from(*poll_final) << 4);
                out.extend_from_slice(info);
            }
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(8);
        self.write(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
