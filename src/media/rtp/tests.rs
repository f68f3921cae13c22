use super::*;
use proptest::prelude::*;

const PCMU: u8 = 0;

fn sample_header() -> RtpHeader {
    RtpHeader::new(PCMU, 0x1234, 0xdead_beef, 0x0102_0304, true)
}

#[test]
fn fixed_header_is_laid_out_as_in_rfc_3550() {
    let mut out = Vec::new();
    write(&sample_header(), &[0xff, 0x7f], &mut out);
    assert_eq!(
        out,
        [0x80, 0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xff, 0x7f]
    );
}

#[test]
fn write_then_parse_gives_back_header_and_payload() {
    let header = RtpHeader::new(8, 65535, u32::MAX, 7, false);
    let mut out = Vec::new();
    write(&header, &[1, 2, 3], &mut out);
    let packet = parse(&out).unwrap();
    assert_eq!(packet.header, header);
    assert_eq!(packet.payload, &[1, 2, 3]);
    assert_eq!(packet.csrcs().count(), 0);
    assert_eq!(packet.extension, None);
    assert_eq!(packet.padding_len, 0);
}

#[test]
fn plain_write_omits_optional_parts_even_if_the_header_claims_them() {
    let mut header = sample_header();
    header.padding = true;
    header.extension = true;
    header.csrc_count = 3;
    let mut out = Vec::new();
    write(&header, &[9; 160], &mut out);
    assert_eq!(out.len(), FIXED_HEADER_LEN + 160);
    let parsed = parse(&out).unwrap();
    assert_eq!(parsed.header, sample_header());
}

#[test]
fn csrcs_extension_and_padding_are_cut_from_the_payload() {
    // Hand-built: V=2 P=1 X=1 CC=2, PT 0, then 2 CSRCs, a 1-word extension, payload, 3 pad.
    let mut buf = vec![0xb2, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    buf.extend_from_slice(&[0, 0, 0, 0x11, 0, 0, 0, 0x22]);
    buf.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]);
    buf.extend_from_slice(&[0x55, 0x66]);
    buf.extend_from_slice(&[0, 0, 3]);
    let packet = parse(&buf).unwrap();
    assert!(packet.header.padding && packet.header.extension);
    assert_eq!(packet.header.csrc_count, 2);
    assert_eq!(packet.csrcs().collect::<Vec<_>>(), [0x11, 0x22]);
    assert_eq!(
        packet.extension,
        Some(HeaderExtension {
            profile: 0xbede,
            data: &[0x10, 0xaa, 0, 0]
        })
    );
    assert_eq!(packet.payload, &[0x55, 0x66]);
    assert_eq!(packet.padding_len, 3);
}

#[test]
fn padding_may_consume_the_whole_payload() {
    let mut buf = vec![0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    buf.extend_from_slice(&[0, 0, 0, 4]);
    let packet = parse(&buf).unwrap();
    assert_eq!(packet.payload, &[] as &[u8]);
    assert_eq!(packet.padding_len, 4);
}

#[test]
fn padding_longer_than_the_payload_is_rejected() {
    let mut buf = vec![0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    buf.extend_from_slice(&[0xaa, 0, 5]);
    assert_eq!(
        parse(&buf),
        Err(RtpError::PaddingTooLong {
            count: 5,
            available: 3
        })
    );
}

#[test]
fn zero_padding_count_and_missing_count_byte_are_rejected() {
    let mut buf = vec![0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    assert_eq!(
        parse(&buf),
        Err(RtpError::PaddingTooLong {
            count: 0,
            available: 0
        })
    );
    buf.extend_from_slice(&[0xaa, 0]);
    assert_eq!(parse(&buf), Err(RtpError::ZeroPadding));
}

#[test]
fn truncated_packets_name_what_is_missing() {
    assert_eq!(
        parse(&[0x80; 11]),
        Err(RtpError::ShorterThanFixedHeader { len: 11 })
    );
    // CC=3 but only one CSRC present.
    let mut buf = vec![0x83, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 9];
    assert_eq!(
        parse(&buf),
        Err(RtpError::TruncatedCsrcs {
            len: 16,
            csrc_count: 3
        })
    );
    // X=1 with an extension header claiming 2 words but carrying 1.
    buf[0] = 0x90;
    buf.truncate(12);
    buf.extend_from_slice(&[0xbe, 0xde, 0, 2, 1, 2, 3, 4]);
    assert_eq!(
        parse(&buf),
        Err(RtpError::TruncatedExtension {
            needed: 12,
            available: 8
        })
    );
    buf.truncate(14);
    assert_eq!(
        parse(&buf),
        Err(RtpError::TruncatedExtension {
            needed: 4,
            available: 2
        })
    );
}

#[test]
fn versions_other_than_2_are_rejected() {
    for (first, version) in [(0x00, 0), (0x40, 1), (0xc0, 3)] {
        let buf = [first, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        assert_eq!(parse(&buf), Err(RtpError::BadVersion { version }));
    }
}

#[test]
fn errors_name_the_offending_value() {
    assert_eq!(
        RtpError::BadVersion { version: 1 }.to_string(),
        "rtp version 1 is not 2"
    );
    assert_eq!(
        RtpError::PaddingTooLong {
            count: 9,
            available: 4
        }
        .to_string(),
        "rtp padding count 9 is longer than the 4 bytes after the header"
    );
}

#[test]
fn rtcp_is_told_apart_from_rtp_on_a_shared_port() {
    let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
    let sr = [0x81, 200, 0, 7];
    let bye = [0x81, 203, 0, 1];
    assert!(looks_like_rtcp(&rr));
    assert!(looks_like_rtcp(&sr));
    assert!(looks_like_rtcp(&bye));
    // Extended reports and feedback share the range RFC 5761 reserves.
    assert!(looks_like_rtcp(&[0x80, 207, 0, 1]));
    assert!(looks_like_rtcp(&[0x81, 205, 0, 2]));
    // Edges: marker + PT 63 (191) and marker + PT 96 (224) are RTP.
    assert!(looks_like_rtcp(&[0x80, 192]) && looks_like_rtcp(&[0x80, 223]));
    assert!(!looks_like_rtcp(&[0x80, 191]) && !looks_like_rtcp(&[0x80, 224]));
    let mut pcmu = Vec::new();
    write(&sample_header(), &[0; 160], &mut pcmu);
    assert!(!looks_like_rtcp(&pcmu));
    // Dynamic payload type 101 (telephone-event) with the marker: 0x80 | 101 = 229.
    let mut event = Vec::new();
    write(&RtpHeader::new(101, 1, 1, 1, true), &[0; 4], &mut event);
    assert!(!looks_like_rtcp(&event));
    assert!(!looks_like_rtcp(&[0x80]));
    assert!(
        !looks_like_rtcp(&[0x00, 200, 0, 1]),
        "version 0 is STUN-like"
    );
}

#[test]
fn sender_advances_sequence_and_timestamp_per_frame_and_wraps() {
    let mut sender = RtpSender::new(0xabcd, 65534, u32::MAX - 159);
    let first = sender.next_header(PCMU, 160, false);
    assert_eq!(
        (first.sequence, first.timestamp, first.ssrc),
        (65534, u32::MAX - 159, 0xabcd)
    );
    assert!(first.marker, "first packet starts a talk-spurt");
    let second = sender.next_header(PCMU, 160, false);
    assert_eq!((second.sequence, second.timestamp), (65535, 0));
    assert!(!second.marker);
    let third = sender.next_header(PCMU, 160, false);
    assert_eq!((third.sequence, third.timestamp), (0, 160));
}

#[test]
fn sender_marks_the_first_packet_after_silence() {
    let mut sender = RtpSender::new(1, 100, 1000);
    sender.next_header(PCMU, 160, false);
    sender.skip_silence(800);
    let after_silence = sender.next_header(PCMU, 160, false);
    assert_eq!(after_silence.sequence, 101, "silence sends nothing");
    assert_eq!(after_silence.timestamp, 1000 + 160 + 800);
    assert!(after_silence.marker);
    assert!(!sender.next_header(PCMU, 160, false).marker);
    assert!(
        sender.next_header(PCMU, 160, true).marker,
        "explicit marker"
    );
}

#[test]
fn events_share_a_timestamp_while_sequence_advances() {
    let mut sender = RtpSender::new(1, 10, 5000);
    sender.next_header(PCMU, 160, false);
    let event_start = sender.next_timestamp();
    let a = sender.next_header_with_timestamp(101, event_start, true);
    let b = sender.next_header_with_timestamp(101, event_start, false);
    sender.advance_timestamp(320);
    let audio = sender.next_header(PCMU, 160, false);
    assert_eq!((a.sequence, b.sequence, audio.sequence), (11, 12, 13));
    assert_eq!((a.timestamp, b.timestamp), (5160, 5160));
    assert_eq!(audio.timestamp, 5480);
    assert!(!audio.marker);
}

#[test]
fn random_start_comes_from_the_injected_source() {
    let mut rng = rand::rngs::mock::StepRng::new(0x0001_2345_0006_789a, 0);
    let mut sender = RtpSender::with_random_start(42, &mut rng);
    let header = sender.next_header(PCMU, 160, false);
    assert_eq!(header.sequence, 0x789a);
    assert_eq!(header.timestamp, 0x0006_789a);
    assert_eq!(header.ssrc, 42);
}

fn any_header() -> impl Strategy<Value = RtpHeader> {
    (
        any::<bool>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(marker, payload_type, sequence, timestamp, ssrc)| {
            RtpHeader::new(payload_type, sequence, timestamp, ssrc, marker)
        })
}

proptest! {
    #[test]
    fn any_header_and_payload_round_trip(
        header in any_header(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut out = Vec::new();
        write(&header, &payload, &mut out);
        let packet = parse(&out).unwrap();
        prop_assert_eq!(packet.header, header);
        prop_assert_eq!(packet.payload, &payload[..]);
    }

    #[test]
    fn any_packet_with_extras_round_trips(
        header in any_header(),
        csrcs in proptest::collection::vec(any::<u32>(), 0..=MAX_CSRCS),
        extension in proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..5).prop_map(|words| {
            words.iter().flat_map(|w| [*w; 4]).collect::<Vec<u8>>()
        }))),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        padding_len in any::<u8>(),
    ) {
        let extras = RtpExtras {
            csrcs: &csrcs,
            extension: extension.as_ref().map(|(profile, data)| HeaderExtension { profile: *profile, data }),
            padding_len,
        };
        let mut out = Vec::new();
        write_with_extras(&header, &extras, &payload, &mut out);
        let packet = parse(&out).unwrap();
        let expected_header = RtpHeader {
            padding: padding_len > 0,
            extension: extension.is_some(),
            csrc_count: csrcs.len() as u8,
            ..header
        };
        prop_assert_eq!(packet.header, expected_header);
        prop_assert_eq!(packet.csrcs().collect::<Vec<_>>(), csrcs.clone());
        prop_assert_eq!(packet.extension, extras.extension);
        prop_assert_eq!(packet.payload, &payload[..]);
        prop_assert_eq!(packet.padding_len, padding_len);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(packet) = parse(&bytes) {
            // Whatever parsed must lie inside the buffer it came from.
            prop_assert!(packet.payload.len() + FIXED_HEADER_LEN <= bytes.len());
        }
        let _ = looks_like_rtcp(&bytes);
    }

    #[test]
    fn bytes_after_a_valid_fixed_header_never_panic(
        first in 0x80u8..0xc0,
        rest in proptest::collection::vec(any::<u8>(), 11..120),
    ) {
        let mut bytes = vec![first];
        bytes.extend_from_slice(&rest);
        let _ = parse(&bytes);
    }
}
