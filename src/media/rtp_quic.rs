//! Agent media in QUIC datagrams, framed as RTP over QUIC (draft-ietf-avtcore-rtp-over-quic,
//! "RoQ"): each datagram is a flow identifier as a QUIC variable-length integer, then one RTP
//! (or RTCP) packet. The flow identifier says which call the packet belongs to, so one agent
//! connection carries any number of calls without a datagram per call needing its own header.
//!
//! The RTP packets follow RFC 7587 (RTP payload format for Opus): a dynamic payload type (we
//! use [`OPUS_PAYLOAD_TYPE`]) and an RTP clock of 48 kHz whatever rate the codec really runs at,
//! so a 20 ms frame advances the timestamp by 960 although we encode 160 samples at 8 kHz.

use thiserror::Error;

use crate::media::feedback::Feedback;
use crate::media::opus::{is_dtx_packet, OpusEncoder, OpusError, Protection, SAMPLE_RATE};
use crate::media::red::{RedHistory, RED_PAYLOAD_TYPE};
use crate::media::rtcp::RtcpError;
use crate::media::rtp::{self, RtpSender};

/// The dynamic payload type the agent protocol uses for Opus (RFC 7587 leaves it to signalling;
/// 111 is what most WebRTC stacks pick, which keeps captures readable).
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// RFC 7587 §4.1: the RTP clock is always 48 kHz for Opus.
pub const OPUS_RTP_CLOCK_RATE: u32 = 48_000;
/// RFC 7587 §7: the rtpmap always says two channels, even for the mono stream we send
/// (mono is signalled by `stereo=0`, which is the default).
pub const OPUS_SDP_RTPMAP: &str = "opus/48000/2";
/// RTP clock ticks per sample of the 8 kHz PCM we encode.
pub const RTP_TICKS_PER_SAMPLE: u32 = OPUS_RTP_CLOCK_RATE / SAMPLE_RATE;
/// Timestamp advance of one 20 ms frame.
pub const RTP_TICKS_PER_FRAME: u32 = 960;

/// RFC 9000 §16: the two top bits of a varint give its length, leaving 62 bits for the value.
pub const MAX_VARINT: u64 = (1 << 62) - 1;

/// A RoQ flow identifier: any value a QUIC varint can carry. Holding one proves the value is
/// encodable, which is why framing cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(u64);

impl FlowId {
    pub const MAX: FlowId = FlowId(MAX_VARINT);

    /// `None` above [`MAX_VARINT`].
    pub const fn new(value: u64) -> Option<Self> {
        if value <= MAX_VARINT {
            Some(Self(value))
        } else {
            None
        }
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for FlowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why the receiver's feedback could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FeedbackError {
    #[error("feedback: {0}")]
    Rtcp(#[from] RtcpError),
    #[error("feedback: {0}")]
    Opus(#[from] OpusError),
}

/// Why a datagram is not a RoQ packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpQuicError {
    #[error("quic datagram is empty: no flow identifier")]
    Empty,
    #[error("quic varint needs {needed} bytes but the datagram has only {available}")]
    TruncatedVarint { needed: usize, available: usize },
    #[error("quic datagram for flow {flow} holds no rtp packet after its flow identifier")]
    NoPacket { flow: u64 },
}

/// Bytes the minimal encoding of `value` takes (1, 2, 4 or 8).
pub const fn varint_len(value: u64) -> usize {
    if value < 1 << 6 {
        1
    } else if value < 1 << 14 {
        2
    } else if value < 1 << 30 {
        4
    } else {
        8
    }
}

/// Appends the shortest encoding of `value` (RFC 9000 §16 lets senders choose any length; the
/// shortest keeps every audio datagram as small as possible).
pub fn write_varint(value: FlowId, out: &mut Vec<u8>) {
    let value = value.get();
    match varint_len(value) {
        // Each arm's range was established by varint_len, so the casts keep every bit.
        1 => out.push(value as u8),
        2 => out.extend_from_slice(&(0x4000 | value as u16).to_be_bytes()),
        4 => out.extend_from_slice(&(0x8000_0000 | value as u32).to_be_bytes()),
        _ => out.extend_from_slice(&(0xc000_0000_0000_0000 | value).to_be_bytes()),
    }
}

/// Reads one varint from the front of `buf`: its value and the bytes it took. Every length form
/// is accepted, minimal or not, as RFC 9000 §16 requires of receivers.
pub fn read_varint(buf: &[u8]) -> Result<(FlowId, usize), RtpQuicError> {
    let Some(&first) = buf.first() else {
        return Err(RtpQuicError::Empty);
    };
    let len = 1usize << (first >> 6);
    let Some(bytes) = buf.get(..len) else {
        return Err(RtpQuicError::TruncatedVarint {
            needed: len,
            available: buf.len(),
        });
    };
    let value = bytes
        .iter()
        .skip(1)
        .fold(u64::from(first & 0x3f), |value, &byte| {
            (value << 8) | u64::from(byte)
        });
    // At most 62 value bits were read, which is exactly FlowId's range.
    Ok((FlowId(value), len))
}

/// Appends one datagram: `flow`'s identifier, then `rtp_packet`.
pub fn frame(flow: FlowId, rtp_packet: &[u8], out: &mut Vec<u8>) {
    out.reserve(varint_len(flow.get()) + rtp_packet.len());
    write_varint(flow, out);
    out.extend_from_slice(rtp_packet);
}

/// Splits a datagram into its flow and the packet after it (RTP or RTCP: tell them apart with
/// [`rtp::looks_like_rtcp`]). Any byte string yields a result or an error, never a panic.
pub fn parse(datagram: &[u8]) -> Result<(FlowId, &[u8]), RtpQuicError> {
    let (flow, used) = read_varint(datagram)?;
    // read_varint only succeeds when `used` bytes exist.
    let packet = &datagram[used..];
    if packet.is_empty() {
        return Err(RtpQuicError::NoPacket { flow: flow.get() });
    }
    Ok((flow, packet))
}

/// The sending side of one Opus flow: numbers packets and writes them straight into datagrams
/// (behind the flow id), or as bare RTP packets when the transport frames them itself.
#[derive(Debug, Clone)]
pub struct OpusRtpSender {
    flow: Option<FlowId>,
    rtp: RtpSender,
    /// The frames just sent, repeated in each packet while the receiver asks for redundancy.
    red: RedHistory,
}

/// What [`OpusRtpSender::encode_datagram`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// A datagram was appended.
    Datagram,
    /// DTX judged the frame silent: nothing was appended, the RTP clock moved on, and the next
    /// packet will carry the marker of a new talk-spurt.
    Silence,
}

impl OpusRtpSender {
    pub fn new(flow: FlowId, rtp: RtpSender) -> Self {
        Self {
            flow: Some(flow),
            rtp,
            red: RedHistory::default(),
        }
    }

    /// Bare RTP packets, no flow id: for a transport that frames them itself.
    pub fn rtp_only(rtp: RtpSender) -> Self {
        Self {
            flow: None,
            rtp,
            red: RedHistory::default(),
        }
    }

    /// The same stream on another flow (after a resume), its numbering and redundancy kept.
    pub fn move_to_flow(&mut self, flow: FlowId) {
        self.flow = Some(flow);
    }

    /// How many frames back packets repeat earlier frames (RFC 2198, [`RedHistory`]); 0 sends
    /// plain Opus packets.
    pub fn set_redundancy(&mut self, span: usize) {
        self.red.set_span(span);
    }

    pub fn redundancy(&self) -> usize {
        self.red.span()
    }

    /// An RTCP packet from the receiver: its feedback ([`crate::media::feedback`]) sets how
    /// this stream is protected — RFC 2198 copies over the span it asks for, and `encoder`'s
    /// FEC, bitrate and expected loss to suit, and comes back for what else it says. Other RTCP
    /// changes nothing.
    pub fn apply_feedback(
        &mut self,
        encoder: &mut OpusEncoder,
        rtcp: &[u8],
    ) -> Result<Option<Feedback>, FeedbackError> {
        let Some(feedback) = Feedback::parse(rtcp)? else {
            return Ok(None);
        };
        if feedback.report.ssrc != self.rtp.ssrc() {
            // About a stream we no longer send (before a resume, say).
            return Ok(None);
        }
        let span = usize::from(feedback.span);
        self.set_redundancy(span);
        let protection = if self.red.span() > 0 {
            Protection::Redundant
        } else {
            Protection::InBand
        };
        // fraction_lost is in 1/256ths; the quotient is at most 99.
        let loss_pct = (u16::from(feedback.report.fraction_lost) * 100 / 256) as u8;
        encoder.protect(protection, loss_pct)?;
        Ok(Some(feedback))
    }

    pub fn flow(&self) -> Option<FlowId> {
        self.flow
    }

    pub fn rtp(&self) -> &RtpSender {
        &self.rtp
    }

    /// Encodes `pcm` (8 kHz, normally one 20 ms frame) directly behind the flow id and RTP
    /// header in `out`, so the packet is never copied. On error `out` and the numbering are
    /// unchanged, so the receiver sees no gap.
    pub fn encode_datagram(
        &mut self,
        encoder: &mut OpusEncoder,
        pcm: &[i16],
        out: &mut Vec<u8>,
    ) -> Result<Sent, OpusError> {
        let start = out.len();
        let numbering = self.rtp.clone();
        let ticks = rtp_ticks(pcm.len());
        if let Some(flow) = self.flow {
            write_varint(flow, out);
        }
        let redundant = self.red.repeats();
        let payload_type = if redundant {
            RED_PAYLOAD_TYPE
        } else {
            OPUS_PAYLOAD_TYPE
        };
        let header = self.rtp.next_header(payload_type, ticks, false);
        rtp::write(&header, &[], out);
        if redundant {
            self.red.write_before_primary(out);
        }
        let payload_start = out.len();
        if let Err(e) = encoder.encode(pcm, out) {
            out.truncate(start);
            self.rtp = numbering;
            return Err(e);
        }
        if encoder.dtx() && is_dtx_packet(&out[payload_start..]) {
            out.truncate(start);
            self.rtp = numbering;
            self.rtp.skip_silence(ticks);
            self.red.forget();
            return Ok(Sent::Silence);
        }
        // Only whole 20 ms frames can be repeated: the receiver places a copy by its distance.
        if ticks == RTP_TICKS_PER_FRAME {
            self.red.remember(&out[payload_start..]);
        } else {
            self.red.forget();
        }
        Ok(Sent::Datagram)
    }

    /// Lets `samples` (8 kHz) of media time pass unsent, as while the call is held: the
    /// receiver sees the gap in the timestamps and a new talk-spurt after it.
    pub fn skip(&mut self, samples: usize) {
        self.rtp.skip_silence(rtp_ticks(samples));
        self.red.forget();
    }

    /// Appends a datagram for an already encoded Opus packet. The timestamp advances by the
    /// packet's own duration (one 20 ms frame if its TOC is unreadable).
    pub fn datagram(&mut self, opus_packet: &[u8], out: &mut Vec<u8>) {
        let ticks =
            crate::media::opus::packet_samples(opus_packet).map_or(RTP_TICKS_PER_FRAME, rtp_ticks);
        if let Some(flow) = self.flow {
            write_varint(flow, out);
        }
        let header = self.rtp.next_header(OPUS_PAYLOAD_TYPE, ticks, false);
        rtp::write(&header, opus_packet, out);
        self.red.forget();
    }
}

/// RTP clock ticks for `samples` at 8 kHz; saturates far beyond any real frame.
fn rtp_ticks(samples: usize) -> u32 {
    u32::try_from(samples)
        .unwrap_or(u32::MAX)
        .saturating_mul(RTP_TICKS_PER_SAMPLE)
}

#[cfg(test)]
mod tests;
