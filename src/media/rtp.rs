//! RTP packets (RFC 3550 §5) for the carrier media leg, and the sending side's numbering.
//!
//! Parsing borrows from the datagram: the payload of a G.711 packet goes straight to the jitter
//! buffer without a copy. CSRCs, the header extension and padding are skipped but exposed, so a
//! relay can preserve them; a G.711 endpoint sends none of them, which is why plain [`write()`]
//! omits them and [`write_with_extras`] exists for the rare caller that needs them.
//!
//! RTP and RTCP may share one port (RFC 5761): [`looks_like_rtcp`] tells them apart before either
//! parser runs.

use rand::RngCore;
use thiserror::Error;

/// The only RTP version in use; anything else on the wire is not RTP (often STUN or garbage).
pub const RTP_VERSION: u8 = 2;
/// Bytes before the CSRC list: flags, payload type, sequence, timestamp, SSRC.
pub const FIXED_HEADER_LEN: usize = 12;
/// The CC field has four bits.
pub const MAX_CSRCS: usize = 15;

/// The fixed RTP header. `padding`, `extension` and `csrc_count` describe the parsed packet;
/// writers derive them from what they actually emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub version: u8,
    pub padding: bool,
    pub extension: bool,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc_count: u8,
}

impl RtpHeader {
    /// A header with no optional parts, the shape every packet we originate has.
    pub fn new(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32, marker: bool) -> Self {
        Self {
            version: RTP_VERSION,
            padding: false,
            extension: false,
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrc_count: 0,
        }
    }
}

/// A header extension (RFC 3550 §5.3.1): opaque to us, kept so a relay can forward it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    /// The "defined by profile" field, e.g. 0xBEDE for RFC 8285 one-byte extensions.
    pub profile: u16,
    /// Whole 32-bit words, as the length field counts them.
    pub data: &'a [u8],
}

/// A parsed packet borrowing from the datagram it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub header: RtpHeader,
    csrc_bytes: &'a [u8],
    pub extension: Option<HeaderExtension<'a>>,
    /// The media, with CSRCs, extension and padding already cut away.
    pub payload: &'a [u8],
    /// Padding bytes removed from the end, including the count byte itself; 0 without padding.
    pub padding_len: u8,
}

impl<'a> RtpPacket<'a> {
    /// Contributing sources, in wire order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrc_bytes
            .chunks_exact(4)
            // chunks_exact yields exactly 4 bytes, so the conversion cannot fail.
            .map(|word| u32::from_be_bytes(word.try_into().expect("chunk of 4 bytes")))
    }
}

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("rtp packet of {len} bytes is shorter than the 12-byte fixed header")]
    ShorterThanFixedHeader { len: usize },
    #[error("rtp version {version} is not 2")]
    BadVersion { version: u8 },
    #[error("rtp packet of {len} bytes ends inside its list of {csrc_count} csrcs")]
    TruncatedCsrcs { len: usize, csrc_count: u8 },
    #[error("rtp header extension needs {needed} bytes but the packet has only {available} left")]
    TruncatedExtension { needed: usize, available: usize },
    #[error("rtp padding count is 0, but it must at least count its own byte")]
    ZeroPadding,
    #[error("rtp padding count {count} is longer than the {available} bytes after the header")]
    PaddingTooLong { count: u8, available: usize },
}

/// Parses one RTP packet; any byte string yields either a packet or an error, never a panic.
pub fn parse(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let Some((fixed, after_fixed)) = buf.split_first_chunk::<FIXED_HEADER_LEN>() else {
        return Err(RtpError::ShorterThanFixedHeader { len: buf.len() });
    };
    let version = fixed[0] >> 6;
    if version != RTP_VERSION {
        return Err(RtpError::BadVersion { version });
    }
    let header = RtpHeader {
        version,
        padding: fixed[0] & 0x20 != 0,
        extension: fixed[0] & 0x10 != 0,
        marker: fixed[1] & 0x80 != 0,
        payload_type: fixed[1] & 0x7f,
        sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
        timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        csrc_count: fixed[0] & 0x0f,
    };

    let csrc_len = usize::from(header.csrc_count) * 4;
    if after_fixed.len() < csrc_len {
        return Err(RtpError::TruncatedCsrcs {
            len: buf.len(),
            csrc_count: header.csrc_count,
        });
    }
    // Length checked just above.
    let (csrc_bytes, mut rest) = after_fixed.split_at(csrc_len);

    let mut extension = None;
    if header.extension {
        let Some((ext_header, after_ext_header)) = rest.split_first_chunk::<4>() else {
            return Err(RtpError::TruncatedExtension {
                needed: 4,
                available: rest.len(),
            });
        };
        let profile = u16::from_be_bytes([ext_header[0], ext_header[1]]);
        let data_len = usize::from(u16::from_be_bytes([ext_header[2], ext_header[3]])) * 4;
        if after_ext_header.len() < data_len {
            return Err(RtpError::TruncatedExtension {
                needed: 4 + data_len,
                available: rest.len(),
            });
        }
        // Length checked just above.
        let (data, after_ext) = after_ext_header.split_at(data_len);
        extension = Some(HeaderExtension { profile, data });
        rest = after_ext;
    }

    let mut padding_len = 0;
    if header.padding {
        // The padding flag promises at least the count byte; an empty remainder breaks that.
        let Some(&count) = rest.last() else {
            return Err(RtpError::PaddingTooLong {
                count: 0,
                available: 0,
            });
        };
        if count == 0 {
            return Err(RtpError::ZeroPadding);
        }
        if usize::from(count) > rest.len() {
            return Err(RtpError::PaddingTooLong {
                count,
                available: rest.len(),
            });
        }
        padding_len = count;
        // count <= rest.len() was checked just above.
        rest = &rest[..rest.len() - usize::from(count)];
    }

    Ok(RtpPacket {
        header,
        csrc_bytes,
        extension,
        payload: rest,
        padding_len,
    })
}

/// Appends a packet with no CSRCs, extension or padding: what a G.711 endpoint sends.
/// The header's `padding`, `extension` and `csrc_count` are ignored (written as absent) and
/// `payload_type` keeps its low 7 bits, the width of the field.
pub fn write(header: &RtpHeader, payload: &[u8], out: &mut Vec<u8>) {
    write_with_extras(header, &RtpExtras::default(), payload, out);
}

/// The optional parts of a packet, for callers that forward or test them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpExtras<'a> {
    /// At most [`MAX_CSRCS`] are written; the CC field cannot count more.
    pub csrcs: &'a [u32],
    /// Data is zero-filled to a word boundary, because the length field counts words.
    pub extension: Option<HeaderExtension<'a>>,
    /// Total padding bytes including the count byte; 0 for none.
    pub padding_len: u8,
}

/// Appends a packet carrying `extras`; the header's flag and count fields are derived from them.
pub fn write_with_extras(
    header: &RtpHeader,
    extras: &RtpExtras<'_>,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let csrcs = &extras.csrcs[..extras.csrcs.len().min(MAX_CSRCS)];
    let padded = extras.padding_len > 0;
    let mut first = RTP_VERSION << 6;
    if padded {
        first |= 0x20;
    }
    if extras.extension.is_some() {
        first |= 0x10;
    }
    // At most 15 after the cut above, so it fits the four-bit field.
    first |= csrcs.len() as u8;
    out.push(first);
    out.push((u8::from(header.marker) << 7) | (header.payload_type & 0x7f));
    out.extend_from_slice(&header.sequence.to_be_bytes());
    out.extend_from_slice(&header.timestamp.to_be_bytes());
    out.extend_from_slice(&header.ssrc.to_be_bytes());
    for csrc in csrcs {
        out.extend_from_slice(&csrc.to_be_bytes());
    }
    if let Some(extension) = extras.extension {
        let max_data_len = usize::from(u16::MAX) * 4;
        let data = &extension.data[..extension.data.len().min(max_data_len)];
        let words = data.len().div_ceil(4);
        out.extend_from_slice(&extension.profile.to_be_bytes());
        // At most u16::MAX words after the cut above.
        out.extend_from_slice(&(words as u16).to_be_bytes());
        out.extend_from_slice(data);
        out.resize(out.len() + (words * 4 - data.len()), 0);
    }
    out.extend_from_slice(payload);
    if padded {
        out.resize(out.len() + usize::from(extras.padding_len) - 1, 0);
        out.push(extras.padding_len);
    }
}

/// RTCP packet types 192–223 occupy the second byte where RTP has marker + payload types 64–95,
/// which RFC 5761 §4 forbids for RTP when the two share a port. Checking the whole range rather
/// than only SR..APP (200–204) also routes XR (207) and feedback (205/206) to the RTCP parser.
pub fn looks_like_rtcp(buf: &[u8]) -> bool {
    match buf {
        [first, second, ..] => first >> 6 == RTP_VERSION && (192..=223).contains(second),
        _ => false,
    }
}

/// Numbers the packets of one outgoing stream. Start values are random (RFC 3550 §5.1) so a
/// restarted call cannot be confused with the old one and plaintext attacks get no known start.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    next_sequence: u16,
    next_timestamp: u32,
    talkspurt_pending: bool,
}

impl RtpSender {
    /// The first packet is the start of a talk-spurt, so it carries the marker.
    pub fn new(ssrc: u32, first_sequence: u16, first_timestamp: u32) -> Self {
        Self {
            ssrc,
            next_sequence: first_sequence,
            next_timestamp: first_timestamp,
            talkspurt_pending: true,
        }
    }

    /// Draws the start sequence number and timestamp from `rng`.
    pub fn with_random_start(ssrc: u32, rng: &mut impl RngCore) -> Self {
        // Truncating a random u32 keeps the sequence uniformly random.
        let first_sequence = rng.next_u32() as u16;
        Self::new(ssrc, first_sequence, rng.next_u32())
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// The media time, in clock units, of the next frame.
    pub fn next_timestamp(&self) -> u32 {
        self.next_timestamp
    }

    /// Header for a frame of `samples` clock units starting now; the media clock then moves past
    /// it. The marker is set if `marker` asks for it or a talk-spurt is starting (first packet or
    /// first after [`skip_silence`](Self::skip_silence)).
    pub fn next_header(&mut self, payload_type: u8, samples: u32, marker: bool) -> RtpHeader {
        let header = self.next_header_with_timestamp(payload_type, self.next_timestamp, marker);
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
        header
    }

    /// Header for a packet whose timestamp the caller chooses, as RFC 4733 events need (all
    /// packets of one event carry its start time). Advances only the sequence number.
    pub fn next_header_with_timestamp(
        &mut self,
        payload_type: u8,
        timestamp: u32,
        marker: bool,
    ) -> RtpHeader {
        let header = RtpHeader::new(
            payload_type,
            self.next_sequence,
            timestamp,
            self.ssrc,
            marker || self.talkspurt_pending,
        );
        self.talkspurt_pending = false;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        header
    }

    /// Lets media time pass without sending (silence suppression); the receiver learns of the gap
    /// from the timestamp jump, and the next packet is marked as a talk-spurt start.
    pub fn skip_silence(&mut self, samples: u32) {
        self.advance_timestamp(samples);
        self.talkspurt_pending = true;
    }

    /// Lets media time pass without marking a new talk-spurt, e.g. while an RFC 4733 event
    /// occupied the stream.
    pub fn advance_timestamp(&mut self, samples: u32) {
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
    }
}

#[cfg(test)]
mod tests;
