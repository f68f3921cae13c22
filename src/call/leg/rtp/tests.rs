//! Key presses toward the carrier, as a carrier would receive them.
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::media::dtmf::{InbandDetector, Rfc4733Receiver};
use crate::media::g711::G711Law;
use crate::sip::sdp::Direction;

const FRAME: Duration = Duration::from_millis(20);

fn leg(now: Instant, telephone_event_pt: Option<u8>) -> RtpMedia {
    let neg = Negotiated {
        remote_rtp: Some("127.0.0.1:6000".parse().unwrap()),
        remote_rtcp: Some("127.0.0.1:6001".parse().unwrap()),
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event_pt,
        ptime_ms: 20,
        local_direction: Direction::SendRecv,
        srtp: None,
    };
    RtpMedia::new(
        now,
        SystemTime::now(),
        neg,
        true,
        FRAME,
        FRAME * 10,
        &mut StdRng::seed_from_u64(7),
    )
}

/// The RTP packets the leg sends over `frames` frames of a steady speech-like signal.
fn sent_packets(leg: &mut RtpMedia, now: Instant, frames: u32) -> Vec<Vec<u8>> {
    let speech: Vec<i16> = (0..160).map(|i| ((i % 40) as i16 - 20) * 300).collect();
    let mut out = Vec::new();
    for i in 0..frames {
        leg.tick(now + FRAME * i, &speech);
        while let Some(t) = leg.poll_transmit() {
            if !t.rtcp {
                out.push(t.payload);
            }
        }
    }
    out
}

#[test]
fn agent_digits_reach_a_carrier_with_telephone_event_as_one_event_each() {
    let now = Instant::now();
    let mut leg = leg(now, Some(101));
    sent_packets(&mut leg, now, 3);
    leg.send_digits("3#").unwrap();
    let packets = sent_packets(&mut leg, now + FRAME * 3, 30);
    let mut receiver = Rfc4733Receiver::new();
    let mut heard = String::new();
    let mut previous: Option<RtpHeaderSummary> = None;
    for p in &packets {
        let packet = rtp::parse(p).unwrap();
        let h = packet.header;
        if let Some(prev) = previous {
            assert_eq!(h.sequence, prev.sequence.wrapping_add(1), "one numbering");
        }
        if h.payload_type == 101 {
            let event = TelephoneEvent::parse(packet.payload).unwrap();
            heard.extend(receiver.on_packet(h.timestamp, h.marker, &event));
        } else {
            assert_eq!(h.payload_type, 8);
            if let Some(prev) = previous.filter(|p| p.payload_type == 8) {
                assert_eq!(h.timestamp, prev.timestamp.wrapping_add(160));
            }
        }
        previous = Some(RtpHeaderSummary {
            sequence: h.sequence,
            timestamp: h.timestamp,
            payload_type: h.payload_type,
        });
    }
    assert_eq!(heard, "3#");
    let events = packets
        .iter()
        .filter(|p| rtp::parse(p).unwrap().header.payload_type == 101)
        .count();
    assert_eq!(events, 14, "start, updates and three ends for each press");
}

#[derive(Clone, Copy)]
struct RtpHeaderSummary {
    sequence: u16,
    timestamp: u32,
    payload_type: u8,
}

#[test]
fn agent_digits_reach_a_carrier_without_telephone_event_as_tones() {
    let now = Instant::now();
    let mut leg = leg(now, None);
    leg.send_digits("7*").unwrap();
    let packets = sent_packets(&mut leg, now, 30);
    let mut detector = InbandDetector::new(8000);
    let mut heard = String::new();
    for p in &packets {
        let packet = rtp::parse(p).unwrap();
        assert_eq!(packet.header.payload_type, 8);
        let mut pcm = Vec::new();
        G711Law::Alaw.decode(packet.payload, &mut pcm);
        heard.extend(detector.process(&pcm));
    }
    assert_eq!(heard, "7*");
}

#[test]
fn a_bad_digit_is_refused_and_sends_nothing_odd() {
    let now = Instant::now();
    let mut leg = leg(now, Some(101));
    assert!(leg.send_digits("1z").is_err());
    let packets = sent_packets(&mut leg, now, 10);
    assert!(packets
        .iter()
        .all(|p| rtp::parse(p).unwrap().header.payload_type == 8));
}

/// A PCMA packet from the carrier.
fn carrier_packet(seq: u16) -> Vec<u8> {
    let header = rtp::RtpHeader::new(8, seq, u32::from(seq) * 160, 0x1234, seq == 0);
    let mut out = Vec::new();
    rtp::write(&header, &[0xd5; 160], &mut out);
    out
}

#[test]
fn a_carrier_sending_from_port_65535_gets_rtcp_where_its_sdp_said() {
    let start = Instant::now();
    let mut leg = leg(start, Some(101));
    let from: SocketAddr = "127.0.0.1:65535".parse().unwrap();
    let mut rtcp_to = Vec::new();
    for i in 0..600u16 {
        let now = start + FRAME * u32::from(i);
        leg.handle_rtp(now, from, &carrier_packet(i));
        leg.tick(now, &[0; 160]);
        leg.handle_timeout(now);
        while let Some(t) = leg.poll_transmit() {
            if t.rtcp {
                rtcp_to.push(t.to);
            } else {
                assert_eq!(t.to, from, "rtp follows the latched source");
            }
        }
    }
    leg.bye(start + FRAME * 600);
    while let Some(t) = leg.poll_transmit() {
        rtcp_to.push(t.to);
    }
    assert!(
        rtcp_to.len() >= 2,
        "reports and a bye were sent: {rtcp_to:?}"
    );
    let sdp_rtcp: SocketAddr = "127.0.0.1:6001".parse().unwrap();
    assert!(rtcp_to.iter().all(|a| *a == sdp_rtcp), "{rtcp_to:?}");
}

#[test]
fn rtcp_goes_to_the_port_above_the_latched_rtp_source() {
    let start = Instant::now();
    let mut leg = leg(start, Some(101));
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    leg.handle_rtp(start, from, &carrier_packet(0));
    leg.bye(start);
    let t = leg.poll_transmit().expect("an rtcp bye");
    assert!(t.rtcp);
    assert_eq!(t.to, "127.0.0.1:40001".parse().unwrap());
}

/// A sine sent by the carrier in `packet_ms` packets; returns what the leg plays out.
fn receive_sine(packet_ms: u32) -> (Vec<i16>, crate::media::jitter::JitterStats) {
    let mut now = Instant::now();
    let mut leg = leg(now, Some(101));
    let from: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let samples = (8 * packet_ms) as usize;
    let sine =
        |n: usize| (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * n as f64 / 8000.0).sin()) as i16;
    let (mut seq, mut ts, mut n) = (1u16, 0u32, 0usize);
    let mut heard = Vec::new();
    let mut next_packet = now;
    for _ in 0..150 {
        // 3 s of 20 ms ticks; packets go out on their own clock.
        while next_packet <= now {
            let pcm: Vec<i16> = (n..n + samples).map(sine).collect();
            n += samples;
            let mut payload = Vec::new();
            G711Law::Alaw.encode(&pcm, &mut payload);
            let mut buf = Vec::new();
            rtp::write(
                &rtp::RtpHeader::new(8, seq, ts, 7, false),
                &payload,
                &mut buf,
            );
            leg.handle_rtp(now, from, &buf);
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(samples as u32);
            next_packet += Duration::from_millis(packet_ms.into());
        }
        now += Duration::from_millis(20);
        heard.extend_from_slice(leg.tick(now, &[0; 160]));
    }
    (heard, leg.jitter_stats())
}

/// Largest sample-to-sample jump in the steady part: a clean 440 Hz sine at 8000 peak moves
/// at most ~2800 per sample; a splice or a gap jumps far more.
fn worst_step(pcm: &[i16]) -> i32 {
    pcm[1000..]
        .windows(2)
        .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
        .max()
        .unwrap()
}

#[test]
fn carrier_packets_of_20ms_play_out_clean() {
    let (heard, stats) = receive_sine(20);
    assert!(worst_step(&heard) < 3500, "step {}", worst_step(&heard));
    assert_eq!(stats.concealed, 0);
}

#[test]
fn carrier_packets_of_30ms_on_a_20ms_call_play_out_clean() {
    // SDP said ptime 20, the carrier sends 30 ms: every sample must still be played, in order.
    let (heard, stats) = receive_sine(30);
    assert!(worst_step(&heard) < 3500, "step {}", worst_step(&heard));
    // 30 ms packets pulled by a 20 ms clock arrive at uneven intervals from the buffer's point
    // of view; it may conceal once while it learns that, never lose a packet.
    assert_eq!(stats.lost, 0, "{stats:?}");
    assert!(stats.concealed <= 1, "{stats:?}");
}

/// A carrier that sends its key presses on an SSRC of their own, interleaved with the audio
/// (RFC 4733 allows it; some SBCs do it): one press is one digit, and the audio plays on.
#[test]
fn events_on_their_own_ssrc_between_audio_packets_give_one_digit_and_keep_the_audio() {
    let mut now = Instant::now();
    let mut leg = leg(now, Some(101));
    let from: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let audio = |seq: u16| {
        let mut buf = Vec::new();
        let header = rtp::RtpHeader::new(8, seq, u32::from(seq) * 160, 0xa0d1, seq == 0);
        rtp::write(&header, &[0xd5; 160], &mut buf);
        buf
    };
    // Key 5 pressed for 100 ms: updates every 20 ms, then the end packet three times, all with
    // the press's start timestamp on the event stream's own clock and SSRC.
    let event = |seq: u16, duration: u16, end: bool| {
        let mut payload = Vec::new();
        TelephoneEvent {
            event: 5,
            end,
            volume: 10,
            duration,
        }
        .write(&mut payload);
        let mut buf = Vec::new();
        let header = rtp::RtpHeader::new(101, 9000 + seq, 777_000, 0xe7e7, seq == 0);
        rtp::write(&header, &payload, &mut buf);
        buf
    };
    let mut digits = String::new();
    for k in 0..40u16 {
        leg.handle_rtp(now, from, &audio(k));
        if (10..18).contains(&k) {
            let n = k - 10;
            let end = n >= 5;
            leg.handle_rtp(now, from, &event(n, 160 * (n.min(5) + 1), end));
        }
        now += FRAME;
        leg.tick(now, &[0; 160]);
        while let Some(d) = leg.poll_digit() {
            digits.push(d);
        }
    }
    assert_eq!(digits, "5");
    let jitter = leg.jitter_stats();
    assert_eq!(
        jitter.received, 40,
        "the audio never started over: {jitter:?}"
    );
    assert_eq!(jitter.restarts, 0);
}
