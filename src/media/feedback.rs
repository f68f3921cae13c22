//! Receiver → sender feedback on the agent link, so each sender protects its audio as much as the
//! other end's network needs and no more (both directions, sans-IO).
//!
//! Once a second, and at once when it wants more protection, a receiver sends a compound RTCP
//! packet in the call's flow (RoQ carries RTCP beside RTP): a receiver report (RFC 3550 §6.4.2:
//! fraction lost, cumulative loss, jitter) and an APP packet (§6.7, name [`APP_NAME`]) with the
//! redundancy span it asks for and how many frames its listener has not heard since the last
//! report ([`Feedback::concealed`], for [`crate::media::link_health`]). The receiver chooses
//! the span because only it sees how its
//! losses bunch: [`LossMonitor`] asks for as many frames back as the longest burst of the last
//! [`LOSS_WINDOW_FRAMES`] (up to [`MAX_REQUESTED_SPAN`]), and for none after that long without a
//! loss. The sender applies it ([`crate::media::rtp_quic::OpusRtpSender::apply_feedback`]):
//! RFC 2198 copies over the span, and Opus's own in-band FEC and bitrate set to suit.
//!
//! Feedback is not RTCP's 5-second report cycle: a call must react within a second or two of
//! its network turning lossy. It is sent without SDES (RFC 5506 reduced-size style): both ends
//! are ours and already know each other's stream from the call's signalling.

use crate::media::rtcp::{self, parse_compound, ReceiverReport, ReportBlock, RtcpPacket};

/// RTCP APP (RFC 3550 §6.7).
pub const PACKET_TYPE_APP: u8 = 204;
/// "trunkgate redundancy".
pub const APP_NAME: [u8; 4] = *b"TGRD";
/// Subtype of the redundancy request (the APP packet's count field).
const SUBTYPE_REDUNDANCY: u8 = 0;
/// Frames of history the receiver judges its losses by: 10 s of 20 ms frames.
pub const LOSS_WINDOW_FRAMES: u64 = 500;
/// The longest span a receiver asks for. Copies further back need the receiver to hold that much
/// more audio: five frames keep its buffer within about 120 ms on a steady link, and then only
/// while its bursts run that long (bursts of five rebuilt whole instead of two frames concealed
/// in each; docs/quality.md).
pub const MAX_REQUESTED_SPAN: u8 = 5;
/// The span a new stream asks for before it has seen a loss: what the receiver's starting delay
/// ([`crate::media::opus_rx::INITIAL_DELAY`], 80 ms) already holds, so it costs no delay.
pub const NEW_STREAM_SPAN: u8 = 3;

/// What a receiver tells the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feedback {
    /// The receiver's own SSRC (its sending stream's), as RTCP wants a sender of the report.
    pub reporter_ssrc: u32,
    pub report: ReportBlock,
    /// How many frames back the receiver wants packets to repeat; 0 for no redundancy.
    pub span: u8,
    /// Frames the receiver concealed since its previous report (lost or late with nothing to
    /// stand in for them, or its buffer ran dry), at most 255: what its listener did not hear.
    /// A receiver that predates the field sends 0.
    pub concealed: u8,
}

impl Feedback {
    /// Appends the compound packet.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        ReceiverReport {
            ssrc: self.reporter_ssrc,
            reports: vec![self.report],
        }
        .write_to(out);
        let mut body = Vec::with_capacity(12);
        body.extend_from_slice(&self.reporter_ssrc.to_be_bytes());
        body.extend_from_slice(&APP_NAME);
        body.extend_from_slice(&[self.span, self.concealed, 0, 0]);
        RtcpPacket::Other {
            packet_type: PACKET_TYPE_APP,
            count: SUBTYPE_REDUNDANCY,
            body,
        }
        .write_to(out);
    }

    /// Reads a compound packet; `None` unless it holds both parts (a peer that sends plain RTCP
    /// asks for nothing).
    pub fn parse(packet: &[u8]) -> Result<Option<Self>, rtcp::RtcpError> {
        let mut report = None;
        let mut request = None;
        for part in parse_compound(packet)? {
            match part {
                RtcpPacket::ReceiverReport(rr) => {
                    report = rr.reports.first().map(|block| (rr.ssrc, *block));
                }
                RtcpPacket::Other {
                    packet_type: PACKET_TYPE_APP,
                    count: SUBTYPE_REDUNDANCY,
                    body,
                } if body.get(4..8) == Some(&APP_NAME[..]) => {
                    request = body
                        .get(8)
                        .map(|&span| (span, body.get(9).copied().unwrap_or(0)));
                }
                _ => {}
            }
        }
        Ok(match (report, request) {
            (Some((reporter_ssrc, report)), Some((span, concealed))) => Some(Self {
                reporter_ssrc,
                report,
                span,
                concealed,
            }),
            _ => None,
        })
    }
}

/// The receiver's view of its network losses: every frame's packet arrived or not (a frame
/// rebuilt from a redundant copy still counts as lost here), and the redundancy that asks for.
#[derive(Debug, Clone, Default)]
pub struct LossMonitor {
    frames: u64,
    /// Frame index at which each recent burst ended, and its length, oldest first.
    bursts: std::collections::VecDeque<(u64, u64)>,
    run: u64,
    /// Frames and losses since the last report, for its fraction lost.
    interval: (u64, u64),
    total_lost: u64,
}

impl LossMonitor {
    /// A monitor for a stream just starting: it asks for [`NEW_STREAM_SPAN`] frames of
    /// redundancy for its first [`LOSS_WINDOW_FRAMES`], as if a burst that long had just ended.
    /// A call's first losses come before any report could have asked for copies, and a word
    /// lost in the greeting is what callers notice (measured: one concealment there cost 0.3
    /// PESQ). Where nothing is lost it lapses like any burst; the cost is three copies of each
    /// frame (72 kbit/s) for ten seconds.
    pub fn for_new_stream() -> Self {
        Self {
            bursts: [(0, u64::from(NEW_STREAM_SPAN))].into(),
            ..Self::default()
        }
    }

    /// One frame played: `lost` if its own packet never came in time.
    pub fn frame(&mut self, lost: bool) {
        self.frames += 1;
        self.interval.0 += 1;
        if lost {
            self.run += 1;
            self.interval.1 += 1;
            self.total_lost += 1;
        } else if self.run > 0 {
            self.bursts.push_back((self.frames, self.run));
            self.run = 0;
        }
        while self
            .bursts
            .front()
            .is_some_and(|&(end, _)| end + LOSS_WINDOW_FRAMES <= self.frames)
        {
            self.bursts.pop_front();
        }
    }

    /// The span to ask for: the longest recent burst (the one under way included).
    pub fn wanted_span(&self) -> u8 {
        let longest = self
            .bursts
            .iter()
            .map(|&(_, len)| len)
            .chain([self.run])
            .max()
            .unwrap_or(0);
        // At most MAX_REQUESTED_SPAN after the min.
        longest.min(u64::from(MAX_REQUESTED_SPAN)) as u8
    }

    pub fn total_lost(&self) -> u64 {
        self.total_lost
    }

    /// RFC 3550's fraction lost since the last call, in 1/256ths, starting a new interval.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let (frames, lost) = std::mem::take(&mut self.interval);
        if frames == 0 {
            return 0;
        }
        // lost <= frames, so the quotient is at most 256; the min keeps it in the field.
        (lost * 256 / frames).min(255) as u8
    }
}

#[cfg(test)]
mod loop_tests;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_survives_the_wire() {
        let feedback = Feedback {
            reporter_ssrc: 7,
            report: ReportBlock {
                ssrc: 9,
                fraction_lost: 13,
                cumulative_lost: 40,
                extended_highest_sequence: 70_000,
                jitter: 480,
                ..ReportBlock::default()
            },
            span: 3,
            concealed: 12,
        };
        let mut out = Vec::new();
        feedback.write_to(&mut out);
        assert!(crate::media::rtp::looks_like_rtcp(&out));
        assert_eq!(
            out.len(),
            8 + 24 + 16,
            "rr with one block, app with 4 bytes"
        );
        assert_eq!(Feedback::parse(&out), Ok(Some(feedback)));
        // The desk's tests (src/desk/page/tests/protection.test.mjs) pin the same bytes.
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "81c9000700000007000000090d00002800011170000001e00000000000000000\
             80cc00030000000754475244030c0000"
        );
    }

    #[test]
    fn plain_rtcp_asks_for_nothing_and_garbage_is_an_error() {
        let mut rr = Vec::new();
        ReceiverReport {
            ssrc: 1,
            reports: vec![ReportBlock::default()],
        }
        .write_to(&mut rr);
        assert_eq!(Feedback::parse(&rr), Ok(None));
        assert!(Feedback::parse(&[0x80, 204, 0, 9]).is_err());
    }

    #[test]
    fn the_span_follows_the_longest_recent_burst_and_lapses() {
        let mut monitor = LossMonitor::default();
        assert_eq!(monitor.wanted_span(), 0);
        monitor.frame(true);
        assert_eq!(monitor.wanted_span(), 1, "a burst under way already counts");
        monitor.frame(true);
        monitor.frame(false);
        assert_eq!(monitor.wanted_span(), 2);
        for _ in 0..8 {
            monitor.frame(true);
        }
        monitor.frame(false);
        assert_eq!(monitor.wanted_span(), MAX_REQUESTED_SPAN, "capped");
        for _ in 0..LOSS_WINDOW_FRAMES {
            monitor.frame(false);
        }
        assert_eq!(monitor.wanted_span(), 0, "ten seconds without a loss");
        assert_eq!(monitor.total_lost(), 10);
    }

    #[test]
    fn a_new_stream_asks_for_copies_until_ten_clean_seconds() {
        let mut monitor = LossMonitor::for_new_stream();
        assert_eq!(monitor.wanted_span(), NEW_STREAM_SPAN, "before any frame");
        for _ in 1..LOSS_WINDOW_FRAMES {
            monitor.frame(false);
        }
        assert_eq!(monitor.wanted_span(), NEW_STREAM_SPAN);
        monitor.frame(false);
        assert_eq!(monitor.wanted_span(), 0);
        assert_eq!(monitor.total_lost(), 0, "nothing was really lost");
        assert_eq!(monitor.take_fraction_lost(), 0);
    }

    #[test]
    fn fraction_lost_covers_the_interval_since_the_last_report() {
        let mut monitor = LossMonitor::default();
        for i in 0..100 {
            monitor.frame(i % 4 == 0);
        }
        assert_eq!(monitor.take_fraction_lost(), 64, "a quarter is 64/256");
        assert_eq!(monitor.take_fraction_lost(), 0);
    }
}
