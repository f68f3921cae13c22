//! Key presses toward the carrier, as a carrier would receive them.
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::media::dtmf::{InbandDetector, Rfc4733Receiver};
use crate::sip::sdp::Direction;

const FRAME: Duration = Duration::from_millis(20);

fn leg(now: Instant, telephone_event_pt: Option<u8>) -> CarrierLeg {
    let neg = Negotiated {
        remote_rtp: Some("127.0.0.1:6000".parse().unwrap()),
        remote_rtcp: Some("127.0.0.1:6001".parse().unwrap()),
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event_pt,
        ptime_ms: 20,
        local_direction: Direction::SendRecv,
    };
    CarrierLeg::new(now, SystemTime::now(), neg, true, FRAME, FRAME * 10)
}

/// The RTP packets the leg sends over `frames` frames of a steady speech-like signal.
fn sent_packets(leg: &mut CarrierLeg, now: Instant, frames: u32) -> Vec<Vec<u8>> {
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
