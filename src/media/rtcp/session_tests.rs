//! RtcpSession driven in virtual time: one session alone against its timer, and two sessions
//! talking over an in-memory link with delay and loss.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::mock::StepRng;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::media::rtp::{RtpHeader, RtpSender};

const A_SSRC: u32 = 0xaaaa_0001;
const B_SSRC: u32 = 0xbbbb_0002;
const FRAME: Duration = Duration::from_millis(20);

/// Yields the unit value 0.5 every time, so every interval is exactly the configured one.
fn exact_intervals() -> StepRng {
    StepRng::new(1 << 63, 0)
}

fn wall_clock(unix_secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_secs)
}

fn session(ssrc: u32, now: Instant) -> RtcpSession {
    RtcpSession::new(
        RtcpConfig::g711(ssrc, format!("{ssrc:08x}@test")),
        now,
        wall_clock(1_700_000_000),
        exact_intervals(),
    )
}

/// Runs the timer to its next deadline and returns the packets of the report it produced.
fn next_report(session: &mut RtcpSession) -> (Instant, Vec<RtcpPacket>) {
    let due = session.poll_timeout().expect("timer armed");
    session.handle_timeout(due);
    let datagram = session.poll_transmit().expect("report due");
    assert_eq!(session.poll_transmit(), None, "one report per deadline");
    (due, parse_compound(&datagram).unwrap())
}

fn sender_report(packets: &[RtcpPacket]) -> &SenderReport {
    match &packets[0] {
        RtcpPacket::SenderReport(report) => report,
        other => panic!("expected a sender report first, got {other:?}"),
    }
}

fn receiver_report(packets: &[RtcpPacket]) -> &ReceiverReport {
    match &packets[0] {
        RtcpPacket::ReceiverReport(report) => report,
        other => panic!("expected a receiver report first, got {other:?}"),
    }
}

#[test]
fn first_report_comes_after_half_an_interval_then_every_interval() {
    let base = Instant::now();
    let mut session = session(A_SSRC, base);
    assert_eq!(
        session.poll_timeout(),
        Some(base + Duration::from_millis(2500))
    );

    session.handle_timeout(base + Duration::from_millis(2499));
    assert_eq!(session.poll_transmit(), None, "not due yet");

    session.handle_timeout(base + Duration::from_millis(2500));
    assert!(session.poll_transmit().is_some());
    assert_eq!(
        session.poll_timeout(),
        Some(base + Duration::from_millis(7500))
    );

    // A late wake-up schedules the next report from when it actually went out.
    session.handle_timeout(base + Duration::from_millis(8000));
    assert!(session.poll_transmit().is_some());
    assert_eq!(
        session.poll_timeout(),
        Some(base + Duration::from_millis(13_000))
    );
}

#[test]
fn intervals_are_randomised_between_half_and_one_and_a_half_times() {
    let base = Instant::now();
    let config = RtcpConfig::g711(A_SSRC, "a@test");
    let mut lowest = RtcpSession::new(config.clone(), base, wall_clock(0), StepRng::new(0, 0));
    assert_eq!(
        lowest.poll_timeout(),
        Some(base + Duration::from_millis(1250))
    );
    next_report(&mut lowest);
    assert_eq!(
        lowest.poll_timeout(),
        Some(base + Duration::from_millis(3750))
    );

    let mut highest = RtcpSession::new(
        config.clone(),
        base,
        wall_clock(0),
        StepRng::new(u64::MAX, 0),
    );
    let (first, _) = next_report(&mut highest);
    let interval = highest.poll_timeout().unwrap() - first;
    assert!(interval <= Duration::from_millis(7500) && interval > Duration::from_millis(7499));

    let mut random = RtcpSession::new(config, base, wall_clock(0), StdRng::seed_from_u64(7));
    let (mut previous, _) = next_report(&mut random);
    let mut total = Duration::ZERO;
    for _ in 0..1000 {
        let (due, _) = next_report(&mut random);
        let interval = due - previous;
        assert!(interval >= Duration::from_millis(2500) && interval <= Duration::from_millis(7500));
        total += interval;
        previous = due;
    }
    let mean = total / 1000;
    assert!(
        mean > Duration::from_millis(4800) && mean < Duration::from_millis(5200),
        "mean interval {mean:?}"
    );
}

#[test]
fn silent_leg_sends_receiver_report_with_cname() {
    let base = Instant::now();
    let mut session = session(A_SSRC, base);
    let (_, packets) = next_report(&mut session);
    assert_eq!(
        packets,
        vec![
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: A_SSRC,
                reports: vec![]
            }),
            RtcpPacket::SourceDescription(SourceDescription {
                chunks: vec![SdesChunk::with_cname(A_SSRC, "aaaa0001@test")]
            }),
        ]
    );
}

#[test]
fn sender_report_only_while_we_send() {
    let base = Instant::now();
    let mut session = session(A_SSRC, base);
    session.on_rtp_sent(base + Duration::from_secs(1), 160, 1000);
    session.on_rtp_sent(base + Duration::from_millis(1020), 160, 1160);

    let (due, packets) = next_report(&mut session);
    let report = sender_report(&packets);
    assert_eq!((report.packet_count, report.octet_count), (2, 320));
    // 1.48 s after the last packet's timestamp 1160, at 8 kHz.
    assert_eq!(report.rtp_time, 1160 + 11_840);
    assert_eq!(
        report.ntp_time,
        NtpTimestamp::from_system_time(wall_clock(1_700_000_000) + (due - base))
    );
    assert!(matches!(packets[1], RtcpPacket::SourceDescription(_)));

    let (_, packets) = next_report(&mut session);
    receiver_report(&packets);
    assert_eq!(session.stats().packets_sent, 2);
    assert_eq!(session.stats().octets_sent, 320);
}

#[test]
fn report_block_describes_what_we_received() {
    let base = Instant::now();
    let mut session = session(B_SSRC, base);
    // 20 ms frames with sequence 5 missing and sequence 3 duplicated.
    for (index, sequence) in [1u16, 2, 3, 3, 4, 6, 7].into_iter().enumerate() {
        let header = RtpHeader::new(0, sequence, u32::from(sequence) * 160, A_SSRC, false);
        let at = base + FRAME * index as u32;
        session.on_rtp_received(at, &header, 160);
    }
    let (_, packets) = next_report(&mut session);
    let report = receiver_report(&packets);
    assert_eq!(report.reports.len(), 1);
    let block = report.reports[0];
    assert_eq!(block.ssrc, A_SSRC);
    assert_eq!(block.extended_highest_sequence, 7);
    assert_eq!(block.cumulative_lost, 1);
    assert_eq!(block.fraction_lost, 36, "1 of 7 expected = 36.6/256");
    assert_eq!(
        (
            block.last_sender_report,
            block.delay_since_last_sender_report
        ),
        (0, 0)
    );

    let stats = session.stats();
    assert_eq!(stats.packets_received, 7);
    assert_eq!(stats.octets_received, 7 * 160);
    assert_eq!(stats.duplicates, 1);
    assert_eq!(stats.packets_lost, 1);
    assert_eq!(stats.fraction_lost, 36.0 / 256.0);

    // Nothing heard since: the next report has no block.
    let (_, packets) = next_report(&mut session);
    assert!(receiver_report(&packets).reports.is_empty());
}

#[test]
fn duplicate_verdict_reaches_the_caller() {
    let base = Instant::now();
    let mut session = session(B_SSRC, base);
    let header = RtpHeader::new(0, 9, 0, A_SSRC, false);
    assert_eq!(
        session.on_rtp_received(base, &header, 160),
        SequenceVerdict::First
    );
    assert_eq!(
        session.on_rtp_received(base, &header, 160),
        SequenceVerdict::Duplicate
    );
}

#[test]
fn report_echoes_the_peers_sender_report_with_the_time_we_held_it() {
    let base = Instant::now();
    let mut session = session(B_SSRC, base);
    let peer_ntp = NtpTimestamp(0xe8a1_2345_8000_0000);
    let mut datagram = Vec::new();
    SenderReport {
        ssrc: A_SSRC,
        ntp_time: peer_ntp,
        ..Default::default()
    }
    .write_to(&mut datagram);
    session
        .on_rtcp(base + Duration::from_millis(500), &datagram)
        .unwrap();
    session.on_rtp_received(
        base + Duration::from_millis(600),
        &RtpHeader::new(0, 1, 0, A_SSRC, false),
        160,
    );

    let (due, packets) = next_report(&mut session);
    assert_eq!(due, base + Duration::from_millis(2500));
    let block = receiver_report(&packets).reports[0];
    assert_eq!(block.last_sender_report, 0x2345_8000);
    assert_eq!(block.delay_since_last_sender_report, 2 << 16, "held 2 s");
}

#[test]
fn round_trip_time_from_lsr_and_dlsr_in_a_receiver_report() {
    let base = Instant::now();
    let mut session = session(A_SSRC, base);
    session.on_rtp_sent(base, 160, 0);
    let (sent_at, packets) = next_report(&mut session);
    let lsr = sender_report(&packets).ntp_time.middle_32();

    // The peer held our SR for 1 s and its RR arrives 1.25 s after we sent the SR: 250 ms away.
    let mut rr = Vec::new();
    ReceiverReport {
        ssrc: B_SSRC,
        reports: vec![ReportBlock {
            ssrc: A_SSRC,
            fraction_lost: 64,
            cumulative_lost: 12,
            extended_highest_sequence: 0x0001_0010,
            jitter: 160,
            last_sender_report: lsr,
            delay_since_last_sender_report: 1 << 16,
        }],
    }
    .write_to(&mut rr);
    let received_at = sent_at + Duration::from_millis(1250);
    session.on_rtcp(received_at, &rr).unwrap();

    let stats = session.stats();
    let round_trip = stats.round_trip_ms.expect("round trip known");
    assert!(
        (round_trip - 250.0).abs() < 0.05,
        "round trip {round_trip} ms"
    );
    assert_eq!(
        stats.peer,
        Some(PeerReport {
            fraction_lost: 0.25,
            cumulative_lost: 12,
            extended_highest_sequence: 0x0001_0010,
            jitter_ms: 20.0,
            received_at,
        })
    );
}

#[test]
fn lsr_we_never_sent_gives_no_round_trip() {
    let base = Instant::now();
    let mut session = session(A_SSRC, base);
    let mut rr = Vec::new();
    ReceiverReport {
        ssrc: B_SSRC,
        reports: vec![ReportBlock {
            ssrc: A_SSRC,
            last_sender_report: 0x1234_5678,
            delay_since_last_sender_report: 1,
            ..Default::default()
        }],
    }
    .write_to(&mut rr);
    session.on_rtcp(base + Duration::from_secs(1), &rr).unwrap();
    assert_eq!(session.stats().round_trip_ms, None);
    assert!(
        session.stats().peer.is_some(),
        "the rest of the block still counts"
    );
}

#[test]
fn blocks_about_other_sources_are_not_about_us() {
    let base = Instant::now();
    let mut session = session(A_SSRC, base);
    let mut rr = Vec::new();
    ReceiverReport {
        ssrc: B_SSRC,
        reports: vec![ReportBlock {
            ssrc: 0x5555,
            fraction_lost: 200,
            ..Default::default()
        }],
    }
    .write_to(&mut rr);
    session.on_rtcp(base, &rr).unwrap();
    assert_eq!(session.stats().peer, None);
}

#[test]
fn malformed_datagram_is_rejected_whole() {
    let base = Instant::now();
    let mut session = session(A_SSRC, base);
    let mut datagram = Vec::new();
    ReceiverReport {
        ssrc: B_SSRC,
        reports: vec![ReportBlock {
            ssrc: A_SSRC,
            fraction_lost: 10,
            ..Default::default()
        }],
    }
    .write_to(&mut datagram);
    // A second packet whose length runs past the datagram.
    datagram.extend_from_slice(&[0x81, 202, 0, 9, 0, 0, 0, 1]);
    assert_eq!(
        session.on_rtcp(base, &datagram),
        Err(RtcpError::LengthBeyondDatagram {
            declared: 40,
            available: 8
        })
    );
    assert_eq!(
        session.stats().peer,
        None,
        "the valid RR beside it is not recorded"
    );
}

#[test]
fn bye_ends_the_session_and_reaches_the_peer() {
    let base = Instant::now();
    let mut a = session(A_SSRC, base);
    let mut b = session(B_SSRC, base);
    let mut sender = RtpSender::new(A_SSRC, 100, 0);
    for frame in 0..10u32 {
        let at = base + FRAME * frame;
        let header = sender.next_header(0, 160, false);
        a.on_rtp_sent(at, 160, header.timestamp);
        b.on_rtp_received(at, &header, 160);
    }
    a.handle_timeout(base + Duration::from_millis(2500));
    // One more frame after that report, so the final report is an SR again.
    let last_frame_at = base + Duration::from_millis(2900);
    let header = sender.next_header(0, 160, false);
    a.on_rtp_sent(last_frame_at, 160, header.timestamp);
    b.on_rtp_received(last_frame_at, &header, 160);
    let goodbye_at = base + Duration::from_secs(3);
    let datagram = a.bye(goodbye_at, Some("hangup"));
    assert_eq!(a.poll_transmit(), None, "the queued report is superseded");
    assert_eq!(a.poll_timeout(), None);
    a.handle_timeout(goodbye_at + Duration::from_secs(60));
    assert_eq!(a.poll_transmit(), None);

    let packets = parse_compound(&datagram).unwrap();
    assert_eq!(packets.len(), 3);
    sender_report(&packets);
    assert!(matches!(packets[1], RtcpPacket::SourceDescription(_)));
    assert_eq!(
        packets[2],
        RtcpPacket::Goodbye(Goodbye {
            sources: vec![A_SSRC],
            reason: Some("hangup".into())
        })
    );

    let before = b.stats();
    b.on_rtcp(goodbye_at, &datagram).unwrap();
    assert_eq!(
        b.poll_event(),
        Some(RtcpEvent::Goodbye {
            ssrc: A_SSRC,
            reason: Some("hangup".into())
        })
    );
    assert_eq!(b.poll_event(), None);
    let after = b.stats();
    assert_eq!(
        after.packets_received, before.packets_received,
        "totals survive the source"
    );
    assert_eq!(after.octets_received, before.octets_received);
    let (_, packets) = next_report(&mut b);
    assert!(
        receiver_report(&packets).reports.is_empty(),
        "no block for a departed source"
    );
}

#[test]
fn ssrc_change_keeps_totals_and_reports_the_new_source() {
    let base = Instant::now();
    let mut session = session(B_SSRC, base);
    let old = 0x0101;
    let new = 0x0202;
    for (index, sequence) in [1u16, 2, 4, 5].into_iter().enumerate() {
        let header = RtpHeader::new(0, sequence, 0, old, false);
        session.on_rtp_received(base + FRAME * index as u32, &header, 160);
    }
    next_report(&mut session);
    for (index, sequence) in [9000u16, 9001, 9003].into_iter().enumerate() {
        let header = RtpHeader::new(0, sequence, 0, new, false);
        session.on_rtp_received(
            base + Duration::from_secs(3) + FRAME * index as u32,
            &header,
            80,
        );
    }
    session
        .on_rtcp(
            base + Duration::from_secs(4),
            &write_compound(&[RtcpPacket::SourceDescription(SourceDescription {
                chunks: vec![SdesChunk::with_cname(new, "sbc-2@carrier")],
            })]),
        )
        .unwrap();
    let stats = session.stats();
    assert_eq!(stats.packets_received, 7);
    assert_eq!(stats.octets_received, 4 * 160 + 3 * 80);
    assert_eq!(stats.packets_lost, 2);
    assert_eq!(stats.remote_cname.as_deref(), Some("sbc-2@carrier"));

    let (_, packets) = next_report(&mut session);
    let blocks = &receiver_report(&packets).reports;
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].ssrc, new);
    assert_eq!(blocks[0].extended_highest_sequence, 9003);
}

/// Two sessions and A's media over an in-memory link. A talks, B listens; RTCP flows both ways.
struct Link {
    now: Instant,
    a: RtcpSession,
    b: RtcpSession,
    a_media: RtpSender,
    frames_sent: u32,
    /// Drops A's n-th frame when this says so.
    drop_frame: fn(u32) -> bool,
    /// One-way delay of A's n-th frame; RTCP always takes `rtcp_delay`.
    media_delay: fn(u32) -> Duration,
    rtcp_delay: Duration,
    in_flight: Vec<(Instant, InFlight)>,
}

enum InFlight {
    RtpToB(RtpHeader),
    RtcpToB(Vec<u8>),
    RtcpToA(Vec<u8>),
}

impl Link {
    fn new(base: Instant, b_wall_clock: SystemTime) -> Self {
        Self {
            now: base,
            a: session(A_SSRC, base),
            b: RtcpSession::new(
                RtcpConfig::g711(B_SSRC, "b@test"),
                base,
                b_wall_clock,
                exact_intervals(),
            ),
            a_media: RtpSender::new(A_SSRC, 65_500, 4_000_000_000),
            frames_sent: 0,
            drop_frame: |_| false,
            media_delay: |_| Duration::from_millis(40),
            rtcp_delay: Duration::from_millis(40),
            in_flight: Vec::new(),
        }
    }

    /// A sends `frames` frames, one per 20 ms tick, while both timers run; then the link drains.
    fn talk(&mut self, frames: u32) {
        for _ in 0..frames {
            let header = self.a_media.next_header(0, 160, false);
            self.a.on_rtp_sent(self.now, 160, header.timestamp);
            let frame = self.frames_sent;
            self.frames_sent += 1;
            if !(self.drop_frame)(frame) {
                let arrival = self.now + (self.media_delay)(frame);
                self.in_flight.push((arrival, InFlight::RtpToB(header)));
            }
            self.tick();
        }
        for _ in 0..10 {
            self.tick();
        }
    }

    fn tick(&mut self) {
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        while let Some(datagram) = self.a.poll_transmit() {
            self.in_flight
                .push((self.now + self.rtcp_delay, InFlight::RtcpToB(datagram)));
        }
        while let Some(datagram) = self.b.poll_transmit() {
            self.in_flight
                .push((self.now + self.rtcp_delay, InFlight::RtcpToA(datagram)));
        }
        self.now += FRAME;
        self.in_flight.sort_by_key(|(arrival, _)| *arrival);
        let due = self
            .in_flight
            .iter()
            .take_while(|(arrival, _)| *arrival <= self.now)
            .count();
        for (arrival, item) in self.in_flight.drain(..due) {
            match item {
                InFlight::RtpToB(header) => {
                    self.b.on_rtp_received(arrival, &header, 160);
                }
                InFlight::RtcpToB(datagram) => self.b.on_rtcp(arrival, &datagram).unwrap(),
                InFlight::RtcpToA(datagram) => self.a.on_rtcp(arrival, &datagram).unwrap(),
            }
        }
    }
}

#[test]
fn round_trip_between_two_sessions_with_unsynchronised_clocks() {
    let base = Instant::now();
    // B's wall clock is an hour and a bit off: LSR/DLSR must not care.
    let mut link = Link::new(base, wall_clock(1_700_003_600) + Duration::from_millis(123));
    link.talk(600);
    let round_trip = link.a.stats().round_trip_ms.expect("round trip measured");
    assert!(
        (round_trip - 80.0).abs() < 0.1,
        "round trip {round_trip} ms"
    );
    assert_eq!(
        link.b.stats().round_trip_ms,
        None,
        "B never sent media, so never an SR"
    );
    assert_eq!(
        link.b.stats().remote_cname.as_deref(),
        Some("aaaa0001@test")
    );
}

#[test]
fn loss_across_the_sequence_wrap_is_seen_by_both_ends() {
    let base = Instant::now();
    let mut link = Link::new(base, wall_clock(1_700_000_000));
    link.drop_frame = |frame| frame % 10 == 5; // 10 %, sequence starts at 65500 and wraps
    link.talk(600);

    let b = link.b.stats();
    assert_eq!(b.packets_received, 540);
    assert_eq!(b.octets_received, 540 * 160);
    assert_eq!(b.packets_lost, 60);
    assert!(
        (b.fraction_lost - 0.1).abs() < 0.01,
        "fraction {}",
        b.fraction_lost
    );

    let a = link.a.stats();
    assert_eq!(a.packets_sent, 600);
    let peer = a.peer.expect("B reported on A");
    assert!(
        (peer.fraction_lost - 0.1).abs() < 0.01,
        "fraction {}",
        peer.fraction_lost
    );
    assert!(
        peer.extended_highest_sequence > 0x0001_0000,
        "wrapped into the next cycle"
    );
    // The peer's count covers the frames up to the highest sequence it had seen when reporting.
    let frames_covered = peer.extended_highest_sequence - 65_500 + 1;
    let dropped_among_them = (0..frames_covered).filter(|frame| frame % 10 == 5).count();
    assert_eq!(peer.cumulative_lost as usize, dropped_among_them);
}

#[test]
fn alternating_delay_shows_up_as_jitter_at_both_ends() {
    let base = Instant::now();
    let mut link = Link::new(base, wall_clock(1_700_000_000));
    // 40 ms then 50 ms: every transit difference is 10 ms, so jitter converges on 10 ms.
    link.media_delay = |frame| Duration::from_millis(if frame % 2 == 0 { 40 } else { 50 });
    link.talk(600);
    let b = link.b.stats();
    assert!(
        (b.jitter_ms - 10.0).abs() < 0.01,
        "jitter {} ms",
        b.jitter_ms
    );
    assert_eq!(b.packets_lost, 0);
    let peer = link.a.stats().peer.unwrap();
    assert!(
        (peer.jitter_ms - 10.0).abs() < 0.2,
        "reported jitter {} ms",
        peer.jitter_ms
    );
}

#[test]
fn steady_link_has_no_jitter_and_no_loss() {
    let base = Instant::now();
    let mut link = Link::new(base, wall_clock(1_700_000_000));
    link.talk(300);
    let b = link.b.stats();
    assert_eq!(
        (b.packets_received, b.packets_lost, b.duplicates),
        (300, 0, 0)
    );
    assert_eq!(b.jitter_ms, 0.0);
    assert_eq!(link.a.stats().peer.unwrap().fraction_lost, 0.0);
}
