//! Receiver report, packet type 201 (RFC 3550 §6.4.2).

use super::{
    begin_packet, finish_packet, read_u32, require, ReportBlock, RtcpError, MAX_COUNT,
    PACKET_TYPE_RECEIVER_REPORT,
};

/// Sent by a participant that has not sent RTP since its last report; may carry no blocks at all
/// when nothing was heard either, which still keeps the peer's RTCP liveness alive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverReport {
    pub ssrc: u32,
    /// At most [`MAX_COUNT`] are written.
    pub reports: Vec<ReportBlock>,
}

impl ReceiverReport {
    pub(super) fn parse_body(count: u8, body: &[u8]) -> Result<Self, RtcpError> {
        let count = usize::from(count);
        require("receiver report", body, 4 + count * ReportBlock::LEN)?;
        let ssrc = read_u32(body, 0).ok_or(RtcpError::Truncated {
            part: "receiver report",
            needed: 4,
            available: body.len(),
        })?;
        Ok(Self {
            ssrc,
            // `require` above guarantees at least 4 bytes.
            reports: ReportBlock::parse_many(&body[4..], count)?,
        })
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        let reports = &self.reports[..self.reports.len().min(MAX_COUNT)];
        let start = begin_packet(out, reports.len(), PACKET_TYPE_RECEIVER_REPORT);
        out.extend_from_slice(&self.ssrc.to_be_bytes());
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

    #[test]
    fn empty_receiver_report_is_eight_bytes() {
        let mut out = Vec::new();
        ReceiverReport {
            ssrc: 0xcafe_babe,
            reports: vec![],
        }
        .write_to(&mut out);
        assert_eq!(out, [0x80, 201, 0, 1, 0xca, 0xfe, 0xba, 0xbe]);
    }

    #[test]
    fn receiver_report_with_blocks_round_trips() {
        let report = ReceiverReport {
            ssrc: 9,
            reports: vec![
                ReportBlock {
                    ssrc: 1,
                    fraction_lost: 255,
                    cumulative_lost: -1,
                    extended_highest_sequence: 3 << 16,
                    jitter: 80,
                    last_sender_report: 0,
                    delay_since_last_sender_report: 0,
                },
                ReportBlock {
                    ssrc: 2,
                    ..Default::default()
                },
            ],
        };
        let mut out = Vec::new();
        report.write_to(&mut out);
        assert_eq!(out[0], 0x82);
        assert_eq!(
            parse_compound(&out).unwrap(),
            vec![RtcpPacket::ReceiverReport(report)]
        );
    }
}
