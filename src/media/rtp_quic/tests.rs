use proptest::prelude::*;

use super::*;
use crate::media::opus::{OpusConfig, OpusDecoder, FRAME_SAMPLES};

fn flow(value: u64) -> FlowId {
    FlowId::new(value).unwrap()
}

fn encoded(value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write_varint(flow(value), &mut out);
    out
}

#[test]
fn varints_match_the_rfc_9000_examples() {
    // RFC 9000 Appendix A.1 sample encodings.
    assert_eq!(
        read_varint(&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c]).unwrap(),
        (flow(151_288_809_941_952_652), 8)
    );
    assert_eq!(
        read_varint(&[0x9d, 0x7f, 0x3e, 0x7d]).unwrap(),
        (flow(494_878_333), 4)
    );
    assert_eq!(read_varint(&[0x7b, 0xbd]).unwrap(), (flow(15_293), 2));
    assert_eq!(read_varint(&[0x25]).unwrap(), (flow(37), 1));
    // The same value in a longer form than needed is still valid.
    assert_eq!(read_varint(&[0x40, 0x25]).unwrap(), (flow(37), 2));
    assert_eq!(encoded(37), [0x25]);
    assert_eq!(encoded(15_293), [0x7b, 0xbd]);
    assert_eq!(encoded(494_878_333), [0x9d, 0x7f, 0x3e, 0x7d]);
}

#[test]
fn encoding_is_minimal_at_every_length_boundary() {
    for (value, len) in [
        (0, 1),
        (63, 1),
        (64, 2),
        (16_383, 2),
        (16_384, 4),
        ((1 << 30) - 1, 4),
        (1 << 30, 8),
        (MAX_VARINT, 8),
    ] {
        assert_eq!(encoded(value).len(), len, "{value}");
        assert_eq!(varint_len(value), len, "{value}");
        assert_eq!(read_varint(&encoded(value)).unwrap(), (flow(value), len));
    }
}

#[test]
fn flow_ids_stop_at_2_pow_62_minus_1() {
    assert_eq!(FlowId::new(MAX_VARINT), Some(FlowId::MAX));
    assert_eq!(FlowId::new(MAX_VARINT + 1), None);
    assert_eq!(FlowId::new(u64::MAX), None);
    assert_eq!(encoded(MAX_VARINT), [0xff; 8]);
}

#[test]
fn truncated_and_empty_datagrams_are_errors() {
    assert_eq!(parse(&[]), Err(RtpQuicError::Empty));
    assert_eq!(
        parse(&[0x80, 0x01]),
        Err(RtpQuicError::TruncatedVarint {
            needed: 4,
            available: 2
        })
    );
    assert_eq!(parse(&[0x25]), Err(RtpQuicError::NoPacket { flow: 37 }));
}

#[test]
fn framing_round_trips() {
    let rtp_packet = [0x80, 111, 0, 1, 0, 0, 3, 0xc0, 1, 2, 3, 4, 0xfc];
    for value in [0, 37, 16_384, MAX_VARINT] {
        let mut datagram = vec![0xEE];
        frame(flow(value), &rtp_packet, &mut datagram);
        assert_eq!(datagram[0], 0xEE, "frame appends");
        assert_eq!(parse(&datagram[1..]), Ok((flow(value), &rtp_packet[..])));
    }
}

#[test]
fn sender_numbers_opus_packets_on_the_48_khz_clock() {
    let mut encoder = OpusEncoder::new(&OpusConfig::default()).unwrap();
    let mut sender = OpusRtpSender::new(flow(9), RtpSender::new(0x1234, 65_535, 1000));
    let mut decoder = OpusDecoder::new().unwrap();
    let mut previous: Option<rtp::RtpHeader> = None;
    for n in 0..3 {
        let mut datagram = Vec::new();
        let sent = sender
            .encode_datagram(&mut encoder, &[100; FRAME_SAMPLES], &mut datagram)
            .unwrap();
        assert_eq!(sent, Sent::Datagram);
        let (got_flow, packet) = parse(&datagram).unwrap();
        assert_eq!(got_flow, flow(9));
        let packet = rtp::parse(packet).unwrap();
        assert_eq!(packet.header.payload_type, OPUS_PAYLOAD_TYPE);
        assert_eq!(packet.header.ssrc, 0x1234);
        assert_eq!(packet.header.marker, n == 0, "marker only on the first");
        if let Some(previous) = previous {
            assert_eq!(packet.header.sequence, previous.sequence.wrapping_add(1));
            assert_eq!(
                packet.header.timestamp,
                previous.timestamp.wrapping_add(RTP_TICKS_PER_FRAME)
            );
        }
        let mut pcm = Vec::new();
        assert_eq!(decoder.decode(packet.payload, &mut pcm).unwrap(), 160);
        previous = Some(packet.header);
    }
    assert_eq!(sender.rtp().next_timestamp(), 1000 + 3 * 960);

    // An already encoded packet is framed with its own duration.
    let mut forty_ms = Vec::new();
    encoder.encode(&[0; 320], &mut forty_ms).unwrap();
    let mut datagram = Vec::new();
    sender.datagram(&forty_ms, &mut datagram);
    let (_, packet) = parse(&datagram).unwrap();
    assert_eq!(rtp::parse(packet).unwrap().payload, &forty_ms[..]);
    assert_eq!(sender.rtp().next_timestamp(), 1000 + 5 * 960);
}

#[test]
fn a_failed_encode_leaves_no_gap_in_the_numbering() {
    let mut encoder = OpusEncoder::new(&OpusConfig::default()).unwrap();
    let mut sender = OpusRtpSender::new(flow(1), RtpSender::new(1, 10, 0));
    let mut datagram = vec![1, 2, 3];
    assert!(sender
        .encode_datagram(&mut encoder, &[0; 100], &mut datagram)
        .is_err());
    assert_eq!(datagram, [1, 2, 3]);
    assert_eq!(sender.rtp().next_sequence(), 10);
    assert_eq!(sender.rtp().next_timestamp(), 0);
}

#[test]
fn dtx_silence_is_not_sent_and_the_next_packet_is_marked() {
    let mut encoder = OpusEncoder::new(&OpusConfig {
        dtx: true,
        ..OpusConfig::default()
    })
    .unwrap();
    let mut sender = OpusRtpSender::new(flow(1), RtpSender::new(1, 0, 0));
    let mut silent_frames = 0u32;
    for _ in 0..50 {
        let mut datagram = Vec::new();
        let sent = sender
            .encode_datagram(&mut encoder, &[0; FRAME_SAMPLES], &mut datagram)
            .unwrap();
        if sent == Sent::Silence {
            assert!(datagram.is_empty());
            silent_frames += 1;
        }
    }
    assert!(silent_frames > 30, "{silent_frames}");
    // Every frame moved the clock, sent or not.
    assert_eq!(sender.rtp().next_timestamp(), 50 * 960);
    let loud = crate::media::opus::tests::voice_like(FRAME_SAMPLES, 1);
    let mut datagram = Vec::new();
    sender
        .encode_datagram(&mut encoder, &loud, &mut datagram)
        .unwrap();
    let (_, packet) = parse(&datagram).unwrap();
    assert!(rtp::parse(packet).unwrap().header.marker);
}

/// The copies the packet in `datagram` carries, as frames back (none for plain Opus).
fn copies_in(datagram: &[u8]) -> Vec<u16> {
    let (_, packet) = parse(datagram).unwrap();
    let packet = rtp::parse(packet).unwrap();
    if packet.header.payload_type != RED_PAYLOAD_TYPE {
        return Vec::new();
    }
    let red = crate::media::red::parse(packet.payload).unwrap();
    red.redundant
        .iter()
        .flatten()
        .map(|c| c.frames_back)
        .collect()
}

#[test]
fn copies_repeat_only_frames_sent_just_before_in_the_same_run() {
    let mut encoder = OpusEncoder::new(&OpusConfig::default()).unwrap();
    let mut sender = OpusRtpSender::new(flow(1), RtpSender::new(1, 0, 0));
    sender.set_redundancy(3);
    let voice = crate::media::opus::tests::voice_like(10 * FRAME_SAMPLES, 2);
    let mut frames = voice.chunks_exact(FRAME_SAMPLES);
    let mut send = |sender: &mut OpusRtpSender, frame: &[i16]| {
        let mut datagram = Vec::new();
        sender
            .encode_datagram(&mut encoder, frame, &mut datagram)
            .unwrap();
        copies_in(&datagram)
    };
    let mut next = || frames.next().unwrap();
    assert_eq!(send(&mut sender, next()), Vec::<u16>::new());
    assert_eq!(send(&mut sender, next()), [1]);
    assert_eq!(send(&mut sender, next()), [2, 1]);
    assert_eq!(send(&mut sender, next()), [3, 2, 1]);
    // Held for a frame: the media time moved on, so the old frames are no longer just before.
    sender.skip(FRAME_SAMPLES);
    assert_eq!(send(&mut sender, next()), Vec::<u16>::new());
    assert_eq!(send(&mut sender, next()), [1]);
}

#[test]
fn feedback_about_another_stream_or_without_a_request_changes_nothing() {
    use crate::media::feedback::Feedback;
    use crate::media::rtcp::ReportBlock;
    let mut encoder = OpusEncoder::new(&OpusConfig::default()).unwrap();
    let mut sender = OpusRtpSender::new(flow(1), RtpSender::new(0xabc, 0, 0));
    let request = |ssrc: u32, span: u8| {
        let mut out = Vec::new();
        Feedback {
            reporter_ssrc: 1,
            report: ReportBlock {
                ssrc,
                fraction_lost: 26,
                ..ReportBlock::default()
            },
            span,
            concealed: 0,
        }
        .write_to(&mut out);
        out
    };
    sender
        .apply_feedback(&mut encoder, &request(0x999, 3))
        .unwrap();
    assert_eq!(sender.redundancy(), 0, "not our stream");
    sender
        .apply_feedback(&mut encoder, &request(0xabc, 2))
        .unwrap();
    assert_eq!(sender.redundancy(), 2);
    assert_eq!(encoder.protection(), Protection::Redundant);
    sender
        .apply_feedback(&mut encoder, &request(0xabc, 0))
        .unwrap();
    assert_eq!(
        (sender.redundancy(), encoder.protection()),
        (0, Protection::InBand)
    );
    assert!(sender
        .apply_feedback(&mut encoder, &[0x80, 201, 0, 9])
        .is_err());
}

proptest! {
    #[test]
    fn every_flow_id_round_trips(value in 0..=MAX_VARINT, rtp_len in 1usize..64) {
        let flow = flow(value);
        let packet = vec![0x80; rtp_len];
        let mut datagram = Vec::new();
        frame(flow, &packet, &mut datagram);
        prop_assert_eq!(datagram.len(), varint_len(value) + rtp_len);
        prop_assert_eq!(parse(&datagram), Ok((flow, &packet[..])));
    }

    #[test]
    fn every_length_form_decodes_to_the_same_value(value in 0..=MAX_VARINT, form in 0u32..4) {
        let len = 1usize << form;
        prop_assume!(len >= varint_len(value));
        let mut bytes = value.to_be_bytes()[8 - len..].to_vec();
        bytes[0] |= (form as u8) << 6;
        prop_assert_eq!(read_varint(&bytes), Ok((flow(value), len)));
    }

    #[test]
    fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok((flow, packet)) = parse(&bytes) {
            prop_assert!(!packet.is_empty());
            prop_assert_eq!(varint_len(flow.get()) <= bytes.len() - packet.len(), true);
        }
    }
}
