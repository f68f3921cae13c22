//! Sender report, packet type 200 (RFC 3550 §6.4.1).

use super::{
    begin_packet, finish_packet, read_u32, require, NtpTimestamp, ReportBlock, RtcpError,
    MAX_COUNT, PACKET_TYPE_SENDER_REPORT,
};

/// Sent instead of an RR by a participant that sent RTP since its last report, so receivers can
/// map RTP time to wall-clock time and compute round-trip time from the NTP timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderReport {
    pub ssrc: u32,
    pub ntp_time: NtpTimestamp,
    /// The same instant as `ntp_time`, on the media clock.
    pub rtp_time: u32,
    pub packet_count: u32,
    /// Payload octets only, as RFC 3550 counts them.
    pub octet_count: u32,
    /// At most [`MAX_COUNT`] are written.
    pub reports: Vec<ReportBlock>,
}

impl SenderReport {
    const SENDER_INFO_LEN: usize = 24;

    /// Profile-specific extensions after the blocks are ignored: RFC 3551 defines none.
    pub(super) fn parse_body(count: u8, body: &[u8]) -> Result<Self, RtcpError> {
        let count = usize::from(count);
        require(
            "sender report",
            body,
            Self::SENDER_INFO_LEN + count * ReportBlock::LEN,
        )?;
        let word = |index: usize| {
            read_u32(body, index * 4).ok_or(RtcpError::Truncated {
                part: "sender report",
                needed: Self::SENDER_INFO_LEN,
                available: body.len(),
            })
        };
        let ntp_time = NtpTimestamp((u64::from(word(1)?) << 32) | u64::from(word(2)?));
        Ok(Self {
            ssrc: word(0)?,
            ntp_time,
            rtp_time: word(3)?,
            packet_count: word(4)?,
            octet_count: word(5)?,
            // `require` above guarantees the sender info is there.
            reports: ReportBlock::parse_many(&body[Self::SENDER_INFO_LEN..], count)?,
        })
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        let reports = &self.reports[..self.reports.len().min(MAX_COUNT)];
        let start = begin_packet(out, reports.len(), PACKET_TYPE_SENDER_REPORT);
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.ntp_time.0.to_be_bytes());
        for word in [self.rtp_time, self.packet_count, self.octet_count] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        for report in reports {
            report.write_to(out);
        }
        finish_packet(out, start);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_compound, RtcpPacket};
    use super::*;

    fn block(ssrc: u32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 25,
            cumulative_lost: 1234,
            extended_highest_sequence: 0x0001_0005,
            jitter: 42,
            last_sender_report: 0xb705_2000,
            delay_since_last_sender_report: 0x0005_4000,
        }
    }

    #[test]
    fn sender_report_with_blocks_round_trips_with_the_rfc_layout() {
        let report = SenderReport {
            ssrc: 0x1111_2222,
            ntp_time: NtpTimestamp(0xe000_0001_8000_0000),
            rtp_time: 160_000,
            packet_count: 1000,
            octet_count: 160_000,
            reports: vec![block(7), block(8)],
        };
        let mut out = Vec::new();
        report.write_to(&mut out);
        assert_eq!(out.len(), 4 + 24 + 2 * 24);
        assert_eq!(&out[..4], &[0x82, 200, 0, 18], "RC=2, length 19 words - 1");
        assert_eq!(
            parse_compound(&out).unwrap(),
            vec![RtcpPacket::SenderReport(report)]
        );
    }

    #[test]
    fn sender_report_missing_a_block_is_truncated() {
        let report = SenderReport {
            reports: vec![block(1)],
            ..Default::default()
        };
        let mut out = Vec::new();
        report.write_to(&mut out);
        // Claim two blocks while carrying one.
        out[0] = 0x82;
        assert_eq!(
            parse_compound(&out),
            Err(RtcpError::Truncated {
                part: "sender report",
                needed: 72,
                available: 48
            })
        );
    }

    #[test]
    fn more_than_31_blocks_are_cut_to_what_the_count_field_holds() {
        let report = SenderReport {
            reports: (0..40).map(block).collect(),
            ..Default::default()
        };
        let mut out = Vec::new();
        report.write_to(&mut out);
        let [RtcpPacket::SenderReport(parsed)] = &parse_compound(&out).unwrap()[..] else {
            panic!("expected one sender report");
        };
        assert_eq!(parsed.reports.len(), 31);
    }
}
