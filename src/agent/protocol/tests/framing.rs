//! The length-prefixed framing and the decoder's handling of a byte stream.

use super::samples::*;
use crate::agent::protocol::from_agent::Ping;
use crate::agent::protocol::*;

fn ping(nonce: u64) -> AgentMessage {
    AgentMessage::Ping(Ping { nonce })
}

#[test]
fn a_zero_length_is_fatal() {
    let mut decoder = FrameDecoder::<AgentMessage>::new();
    decoder.push(&[0, 0, 0, 0]);
    decoder.push(&encoded(&ping(1)));
    let error = decoder.pop().unwrap().unwrap_err();
    assert_eq!(error, DecodeError::FrameLength { length: 0 });
    assert!(error.is_fatal());
    assert_eq!(error.report().code, ErrorCode::BadFrame);
    assert!(decoder.has_failed());
    assert_eq!(
        decoder.pop(),
        None,
        "nothing after a bad length can be trusted"
    );
}

#[test]
fn a_length_over_the_limit_is_fatal_as_soon_as_the_header_is_in() {
    for length in [MAX_FRAME_LEN as u32 + 1, u32::MAX] {
        let mut decoder = FrameDecoder::<GatewayMessage>::new();
        decoder.push(&length.to_be_bytes());
        assert_eq!(
            decoder.pop(),
            Some(Err(DecodeError::FrameLength { length })),
            "must not wait for a body of {length} bytes"
        );
        decoder.push(&[b' '; 100]);
        assert_eq!(decoder.buffered(), 0, "a failed decoder keeps nothing");
        assert_eq!(decoder.pop(), None);
    }
}

#[test]
fn a_frame_of_exactly_the_maximum_length_is_accepted() {
    // JSON allows whitespace after the object: pad a real message to the limit.
    let mut body = br#"{"v":1,"type":"ping","nonce":3}"#.to_vec();
    body.resize(MAX_FRAME_LEN, b' ');
    assert_eq!(decode_one::<AgentMessage>(&frame(&body)), Ok(ping(3)));
}

#[test]
fn a_partial_header_waits_for_the_rest() {
    let frame = encoded(&ping(9));
    let mut decoder = FrameDecoder::<AgentMessage>::new();
    decoder.push(&frame[..3]);
    assert_eq!(decoder.pop(), None);
    assert_eq!(decoder.buffered(), 3);
    decoder.push(&frame[3..]);
    assert_eq!(decoder.pop(), Some(Ok(ping(9))));
    assert_eq!(decoder.pop(), None);
    assert_eq!(decoder.finish(), Ok(()));
}

#[test]
fn a_message_split_into_single_bytes_decodes_once_complete() {
    let message = AgentMessage::Login(login());
    let frame = encoded(&message);
    let mut decoder = FrameDecoder::<AgentMessage>::new();
    for (index, byte) in frame.iter().enumerate() {
        assert_eq!(decoder.pop(), None, "complete after only {index} bytes?");
        decoder.push(&[*byte]);
    }
    assert_eq!(decoder.pop(), Some(Ok(message)));
    assert_eq!(decoder.pop(), None);
}

#[test]
fn two_messages_in_one_push_come_out_in_order() {
    let mut bytes = encoded(&ping(1));
    bytes.extend(encoded(&ping(2)));
    assert_eq!(
        decode_all::<AgentMessage>(&bytes),
        vec![Ok(ping(1)), Ok(ping(2))]
    );
}

#[test]
fn a_push_may_end_inside_the_next_frame() {
    let mut bytes = encoded(&ping(1));
    bytes.extend(encoded(&ping(2)));
    let cut = bytes.len() - 5;
    let mut decoder = FrameDecoder::<AgentMessage>::new();
    decoder.push(&bytes[..cut]);
    assert_eq!(decoder.pop(), Some(Ok(ping(1))));
    assert_eq!(decoder.pop(), None);
    decoder.push(&bytes[cut..]);
    assert_eq!(decoder.pop(), Some(Ok(ping(2))));
    assert_eq!(decoder.buffered(), 0);
}

#[test]
fn a_stream_that_ends_inside_a_frame_is_reported_by_finish() {
    let frame = encoded(&ping(5));
    let mut decoder = FrameDecoder::<AgentMessage>::new();
    decoder.push(&frame[..frame.len() - 1]);
    assert_eq!(decoder.pop(), None);
    let error = decoder.finish().unwrap_err();
    assert_eq!(
        error,
        DecodeError::Truncated {
            buffered: frame.len() - 1
        }
    );
    assert_eq!(error.code(), ErrorCode::BadFrame);
}

#[test]
fn bad_bodies_are_recoverable_and_the_next_frame_still_decodes() {
    let bodies: [&[u8]; 5] = [
        b"{not json",
        b"[1,2,3]",
        b"\"just a string\"",
        b"{\"v\":1,\"type\":\"ping\",\"nonce\":\xff}",
        b"{\"v\":1,\"type\":\"ping\",\"nonce\":1} trailing",
    ];
    for body in bodies {
        let mut bytes = frame(body);
        bytes.extend(encoded(&ping(2)));
        let results = decode_all::<AgentMessage>(&bytes);
        assert_eq!(results.len(), 2, "{results:?}");
        let error = results[0].clone().unwrap_err();
        assert_eq!(error.code(), ErrorCode::BadMessage, "{error}");
        assert!(!error.is_fatal());
        assert_eq!(results[1], Ok(ping(2)));
    }
}

#[test]
fn invalid_utf8_is_a_bad_message() {
    let body = b"{\"v\":1,\"type\":\"accept\",\"call\":\"c-\xc3\x28\"}";
    let error = decode_one::<AgentMessage>(&frame(body)).unwrap_err();
    assert_eq!(error.code(), ErrorCode::BadMessage);
}

#[test]
fn the_tenth_bad_message_in_a_row_is_fatal() {
    let mut bytes = Vec::new();
    for _ in 0..MAX_BAD_MESSAGES_IN_A_ROW {
        bytes.extend(frame(b"garbage"));
    }
    bytes.extend(encoded(&ping(1)));
    let results = decode_all::<AgentMessage>(&bytes);
    assert_eq!(results.len(), MAX_BAD_MESSAGES_IN_A_ROW as usize);
    for early in &results[..9] {
        assert!(!early.clone().unwrap_err().is_fatal());
    }
    let last = results[9].clone().unwrap_err();
    assert!(
        matches!(&last, DecodeError::TooManyBadMessages { limit: 10, .. }),
        "{last:?}"
    );
    assert!(last.is_fatal());
    assert_eq!(last.report().code, ErrorCode::TooManyErrors);
}

#[test]
fn a_good_message_resets_the_bad_message_count() {
    let mut bytes = Vec::new();
    for round in 0..3 {
        for _ in 1..MAX_BAD_MESSAGES_IN_A_ROW {
            bytes.extend(frame(b"garbage"));
        }
        bytes.extend(encoded(&ping(round)));
    }
    let results = decode_all::<AgentMessage>(&bytes);
    assert_eq!(results.len(), 3 * MAX_BAD_MESSAGES_IN_A_ROW as usize);
    assert!(results.iter().all(|result| match result {
        Ok(_) => true,
        Err(error) => !error.is_fatal(),
    }));
}

#[test]
fn unknown_types_do_not_count_towards_the_bad_message_limit() {
    let mut bytes = Vec::new();
    for _ in 0..50 {
        bytes.extend(frame(br#"{"v":1,"type":"from_the_future"}"#));
    }
    bytes.extend(encoded(&ping(1)));
    let results = decode_all::<AgentMessage>(&bytes);
    assert_eq!(results.len(), 51);
    assert_eq!(results[50], Ok(ping(1)));
}

#[test]
fn a_fatal_version_error_stops_the_decoder() {
    let mut bytes = frame(br#"{"v":2,"type":"ping","nonce":1}"#);
    bytes.extend(encoded(&ping(2)));
    let results = decode_all::<AgentMessage>(&bytes);
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].clone().unwrap_err().is_fatal());
}

#[test]
fn encoding_appends_and_leaves_the_buffer_alone_on_error() {
    let mut out = b"existing".to_vec();
    encode(&ping(1), &mut out).unwrap();
    assert!(out.starts_with(b"existing"));
    assert_eq!(
        decode_one::<AgentMessage>(&out[b"existing".len()..]),
        Ok(ping(1))
    );

    let before = out.clone();
    let invalid = AgentMessage::Accept(from_agent::Accept {
        call: CallId::new(""),
    });
    let error = encode(&invalid, &mut out).unwrap_err();
    assert!(matches!(&error, EncodeError::Invalid(LimitError { field, .. }) if field == "call"));
    assert_eq!(out, before);
}

#[test]
fn a_long_unknown_type_name_is_clipped_in_the_error_and_its_report() {
    let name = "x".repeat(10_000);
    let body = format!(r#"{{"v":1,"type":"{name}"}}"#);
    let error = decode_one::<AgentMessage>(&frame(body.as_bytes())).unwrap_err();
    let DecodeError::UnknownType { message_type } = &error else {
        panic!("{error:?}")
    };
    assert!(
        message_type.len() <= limits::MAX_ID_BYTES,
        "{}",
        message_type.len()
    );
    assert!(message_type.ends_with('…'));
    let mut out = Vec::new();
    encode(&GatewayMessage::Error(error.report()), &mut out).expect("reports always encode");
}

#[test]
fn control_characters_from_the_peer_never_reach_the_report() {
    let body = "{\"v\":1,\"type\":\"evil\\nINFO forged log line\"}";
    let error = decode_one::<AgentMessage>(&frame(body.as_bytes())).unwrap_err();
    let report = error.report();
    assert!(!report.message.contains('\n'), "{report:?}");
    assert!(report.message.contains("evil\u{FFFD}INFO"), "{report:?}");
}
