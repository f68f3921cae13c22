//! The reception report block (RFC 3550 §6.4.1) that SR and RR packets carry, one per source.

use super::{read_u32, require, RtcpError};

/// What one receiver says about one source it hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Share of packets lost since the previous report, in 1/256ths.
    pub fraction_lost: u8,
    /// Signed on the wire (24 bits): duplicates can push it below zero. Values outside the 24-bit
    /// range are clamped when written.
    pub cumulative_lost: i32,
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from the source; 0 if none.
    pub last_sender_report: u32,
    /// Time since that SR was received, in 1/65536 s; 0 if none.
    pub delay_since_last_sender_report: u32,
}

impl ReportBlock {
    pub const LEN: usize = 24;

    const CUMULATIVE_LOST_MIN: i32 = -0x80_0000;
    const CUMULATIVE_LOST_MAX: i32 = 0x7f_ffff;

    pub(super) fn parse(bytes: &[u8]) -> Result<Self, RtcpError> {
        require("report block", bytes, Self::LEN)?;
        let word = |index: usize| {
            read_u32(bytes, index * 4).ok_or(RtcpError::Truncated {
                part: "report block",
                needed: Self::LEN,
                available: bytes.len(),
            })
        };
        let loss_word = word(1)?;
        // Shifting the 24-bit field to the top and back sign-extends it.
        let cumulative_lost = ((loss_word << 8) as i32) >> 8;
        Ok(Self {
            ssrc: word(0)?,
            fraction_lost: (loss_word >> 24) as u8,
            cumulative_lost,
            extended_highest_sequence: word(2)?,
            jitter: word(3)?,
            last_sender_report: word(4)?,
            delay_since_last_sender_report: word(5)?,
        })
    }

    pub(super) fn write_to(&self, out: &mut Vec<u8>) {
        let lost = self
            .cumulative_lost
            .clamp(Self::CUMULATIVE_LOST_MIN, Self::CUMULATIVE_LOST_MAX);
        let loss_word = (u32::from(self.fraction_lost) << 24) | (lost as u32 & 0x00ff_ffff);
        for word in [
            self.ssrc,
            loss_word,
            self.extended_highest_sequence,
            self.jitter,
            self.last_sender_report,
            self.delay_since_last_sender_report,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }

    /// Parses `count` consecutive blocks from the start of `bytes`.
    pub(super) fn parse_many(bytes: &[u8], count: usize) -> Result<Vec<Self>, RtcpError> {
        require("report blocks", bytes, count * Self::LEN)?;
        bytes
            .chunks_exact(Self::LEN)
            .take(count)
            .map(Self::parse)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_cumulative_loss_survives_the_24_bit_field() {
        let block = ReportBlock {
            ssrc: 1,
            fraction_lost: 0x40,
            cumulative_lost: -3,
            ..Default::default()
        };
        let mut out = Vec::new();
        block.write_to(&mut out);
        assert_eq!(&out[4..8], &[0x40, 0xff, 0xff, 0xfd]);
        assert_eq!(ReportBlock::parse(&out).unwrap(), block);
    }

    #[test]
    fn cumulative_loss_beyond_24_bits_is_clamped() {
        let mut out = Vec::new();
        ReportBlock {
            cumulative_lost: 10_000_000,
            ..Default::default()
        }
        .write_to(&mut out);
        assert_eq!(ReportBlock::parse(&out).unwrap().cumulative_lost, 0x7f_ffff);
        out.clear();
        ReportBlock {
            cumulative_lost: -10_000_000,
            ..Default::default()
        }
        .write_to(&mut out);
        assert_eq!(
            ReportBlock::parse(&out).unwrap().cumulative_lost,
            -0x80_0000
        );
    }

    #[test]
    fn short_block_is_an_error() {
        assert_eq!(
            ReportBlock::parse(&[0; 23]),
            Err(RtcpError::Truncated {
                part: "report block",
                needed: 24,
                available: 23
            })
        );
    }
}
