//! RTCP (RFC 3550 §6) for the carrier media leg: the packets, and a sans-IO session that keeps the
//! statistics both ends report to each other.
//!
//! One file per packet type, as in str0m's `rtp/rtcp/`: [`SenderReport`], [`ReceiverReport`]
//! (both carrying [`ReportBlock`]s), [`SourceDescription`] and [`Goodbye`]. [`parse_compound`]
//! walks a datagram of several packets; [`ReceptionStats`] is the per-source arithmetic of RFC 3550 A.1,
//! A.3 and A.8; [`RtcpSession`] decides when to report and what the peer told us.
//!
//! Parsed packets own their data: RTCP arrives every few seconds, so copying is cheaper than the
//! lifetimes borrowing would spread through the session.

mod bye;
mod compound;
mod ntp;
mod receiver_report;
mod reception;
mod report_block;
mod sdes;
mod sender_report;
mod session;
#[cfg(test)]
mod session_tests;

use thiserror::Error;

pub use bye::Goodbye;
pub use compound::{parse_compound, write_compound, RtcpPacket};
pub use ntp::{round_trip_time, NtpTimestamp};
pub use receiver_report::ReceiverReport;
pub use reception::{ReceptionStats, SequenceVerdict};
pub use report_block::ReportBlock;
pub use sdes::{SdesChunk, SdesItem, SourceDescription, SDES_CNAME};
pub use sender_report::SenderReport;
pub use session::{PeerReport, RtcpConfig, RtcpEvent, RtcpSession, RtcpStats};

pub const PACKET_TYPE_SENDER_REPORT: u8 = 200;
pub const PACKET_TYPE_RECEIVER_REPORT: u8 = 201;
pub const PACKET_TYPE_SOURCE_DESCRIPTION: u8 = 202;
pub const PACKET_TYPE_GOODBYE: u8 = 203;

/// The five-bit count field of the common header bounds report blocks, chunks and BYE sources.
pub const MAX_COUNT: usize = 31;

/// Why a datagram is not a usable RTCP compound packet. Nothing from a rejected datagram is
/// recorded: a half-understood report would skew the statistics.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtcpError {
    #[error("rtcp datagram is empty")]
    Empty,
    #[error("rtcp packet of {len} bytes is shorter than the 4-byte common header")]
    ShorterThanHeader { len: usize },
    #[error("rtcp version {version} is not 2")]
    BadVersion { version: u8 },
    #[error("rtcp packet declares {declared} bytes but only {available} remain in the datagram")]
    LengthBeyondDatagram { declared: usize, available: usize },
    #[error("rtcp padding count is 0, but it must at least count its own byte")]
    ZeroPadding,
    #[error("rtcp padding count {count} is longer than the {available}-byte packet body")]
    PaddingTooLong { count: u8, available: usize },
    #[error("rtcp packet type {packet_type} is padded but not last in its compound packet")]
    PaddingNotLast { packet_type: u8 },
    #[error("rtcp {part} needs {needed} bytes but only {available} are there")]
    Truncated {
        part: &'static str,
        needed: usize,
        available: usize,
    },
}

/// Reads a big-endian u32 at `offset`; callers check the length first, so None means a bug in
/// that check, which they turn into [`RtcpError::Truncated`] rather than a panic.
fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let word = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes(word.try_into().ok()?))
}

/// Fails with [`RtcpError::Truncated`] unless `bytes` holds at least `needed` bytes.
fn require(part: &'static str, bytes: &[u8], needed: usize) -> Result<(), RtcpError> {
    if bytes.len() < needed {
        return Err(RtcpError::Truncated {
            part,
            needed,
            available: bytes.len(),
        });
    }
    Ok(())
}

/// Writes a common header with a placeholder length; returns where the packet starts so
/// [`finish_packet`] can fill the length in once the body is known.
fn begin_packet(out: &mut Vec<u8>, count: usize, packet_type: u8) -> usize {
    let start = out.len();
    // Callers cap count at MAX_COUNT, so it fits the five-bit field.
    out.push(0x80 | (count.min(MAX_COUNT) as u8));
    out.push(packet_type);
    out.extend_from_slice(&[0, 0]);
    start
}

/// Zero-fills to a word boundary and writes the length field (words minus one).
fn finish_packet(out: &mut Vec<u8>, start: usize) {
    let unaligned = (out.len() - start) % 4;
    if unaligned != 0 {
        out.resize(out.len() + 4 - unaligned, 0);
    }
    let words_minus_one = (out.len() - start) / 4 - 1;
    // Our packets are far below 256 KiB: at most 31 blocks, chunks or sources of bounded size.
    let length = u16::try_from(words_minus_one).unwrap_or(u16::MAX);
    out[start + 2..start + 4].copy_from_slice(&length.to_be_bytes());
}
