//! Round trips, the wire shape of messages, versioning and forward compatibility.

use std::collections::BTreeSet;

use serde_json::json;

use super::samples::*;
use crate::agent::protocol::from_agent::Login;
use crate::agent::protocol::from_gateway::{self, OfferCancelled, ResumedCall};
use crate::agent::protocol::*;

fn body_of(frame: &[u8]) -> serde_json::Value {
    serde_json::from_slice(&frame[LENGTH_PREFIX_LEN..]).expect("encoder writes json")
}

#[test]
fn every_agent_message_round_trips() {
    for message in agent_messages() {
        let frame = encoded(&message);
        assert_eq!(decode_one::<AgentMessage>(&frame), Ok(message));
    }
}

#[test]
fn every_gateway_message_round_trips() {
    for message in gateway_messages() {
        let frame = encoded(&message);
        assert_eq!(decode_one::<GatewayMessage>(&frame), Ok(message));
    }
}

#[test]
fn frames_carry_their_body_length_and_the_version_and_type_first() {
    for message in agent_messages() {
        let frame = encoded(&message);
        let length = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(length, frame.len() - LENGTH_PREFIX_LEN);
        let expected_start = format!(r#"{{"v":1,"type":"{}""#, message.type_name());
        assert!(
            frame[LENGTH_PREFIX_LEN..].starts_with(expected_start.as_bytes()),
            "{}",
            String::from_utf8_lossy(&frame)
        );
    }
}

#[test]
fn the_type_lists_name_exactly_the_variants() {
    fn check<M: WireMessage>(samples: Vec<M>) {
        let mut seen = BTreeSet::new();
        for message in &samples {
            let body = body_of(&encoded(message));
            assert_eq!(body["type"], message.type_name());
            seen.insert(message.type_name());
        }
        let listed: BTreeSet<&str> = M::TYPES.iter().copied().collect();
        assert_eq!(seen, listed, "samples must cover every variant once");
        assert_eq!(M::TYPES.len(), samples.len(), "a type is listed twice");
    }
    check(agent_messages());
    check(gateway_messages());
}

/// The hex dump in docs/agent-protocol.md ("An example frame") is this frame byte for byte.
#[test]
fn the_documented_example_frame_is_what_encode_produces() {
    let message = AgentMessage::Accept(from_agent::Accept { call: call() });
    let frame = encoded(&message);
    let documented = "00 00 00 27 7b 22 76 22 3a 31 2c 22 74 79 70 65 \
                      22 3a 22 61 63 63 65 70 74 22 2c 22 63 61 6c 6c \
                      22 3a 22 63 2d 37 66 33 61 22 7d";
    let documented: Vec<u8> = documented
        .split_whitespace()
        .map(|byte| u8::from_str_radix(byte, 16).unwrap())
        .collect();
    assert_eq!(
        frame,
        documented,
        "{}",
        String::from_utf8_lossy(&frame[4..])
    );
    assert_eq!(&frame[4..], br#"{"v":1,"type":"accept","call":"c-7f3a"}"#);
}

#[test]
fn optional_fields_are_left_out_when_absent_and_default_when_missing() {
    let login = Login {
        resume: None,
        ..login()
    };
    let body = body_of(&encoded(&AgentMessage::Login(login.clone())));
    assert!(body.get("resume").is_none(), "{body}");

    let without_skills = json!({"v": 1, "type": "login", "agent": "alice",
        "credential": "pw", "client": "cli/1"});
    let decoded = decode_one::<AgentMessage>(&frame(without_skills.to_string().as_bytes()));
    match decoded {
        Ok(AgentMessage::Login(login)) => {
            assert!(login.skills.is_empty());
            assert_eq!(login.resume, None);
        }
        other => panic!("{other:?}"),
    }

    let no_call = json!({"v": 1, "type": "resumed"});
    assert_eq!(
        decode_one::<GatewayMessage>(&frame(no_call.to_string().as_bytes())),
        Ok(GatewayMessage::Resumed(from_gateway::Resumed {
            call: None
        }))
    );
}

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    let mut welcome = unchecked_json(&GatewayMessage::Welcome(welcome()));
    welcome["added_in_v1_5"] = json!({"nested": [1, 2, 3]});
    welcome["media"]["complexity"] = json!(5);
    assert_eq!(
        decode_one::<GatewayMessage>(&frame(welcome.to_string().as_bytes())),
        Ok(GatewayMessage::Welcome(self::welcome()))
    );

    let mut resumed = unchecked_json(&GatewayMessage::Resumed(from_gateway::Resumed {
        call: Some(resumed_call()),
    }));
    resumed["call"]["recording"] = json!("on");
    let decoded = decode_one::<GatewayMessage>(&frame(resumed.to_string().as_bytes()));
    assert!(
        matches!(
            &decoded,
            Ok(GatewayMessage::Resumed(from_gateway::Resumed {
                call: Some(ResumedCall { held: false, .. })
            }))
        ),
        "{decoded:?}"
    );
}

#[test]
fn reasons_and_codes_this_build_does_not_know_decode_as_other() {
    let cancelled = json!({"v": 1, "type": "offer_cancelled", "call": "c-1",
        "reason": "supervisor_pulled"});
    assert_eq!(
        decode_one::<GatewayMessage>(&frame(cancelled.to_string().as_bytes())),
        Ok(GatewayMessage::OfferCancelled(OfferCancelled {
            call: CallId::new("c-1"),
            reason: CancelReason::Other
        }))
    );
    let ended = json!({"v": 1, "type": "call_ended", "call": "c-1", "reason": "recording_failed"});
    let refused = json!({"v": 1, "type": "login_refused", "reason": "license_exhausted",
        "message": ""});
    let error = json!({"v": 1, "type": "error", "code": "quota", "message": "slow down"});
    for (body, expected) in [
        (
            ended,
            "CallEnded(CallEnded { call: CallId(\"c-1\"), reason: Other })",
        ),
        (
            refused,
            "LoginRefused(LoginRefused { reason: Other, message: \"\" })",
        ),
        (
            error,
            "Error(ErrorReport { code: Other, message: \"slow down\", call: None })",
        ),
    ] {
        let decoded = decode_one::<GatewayMessage>(&frame(body.to_string().as_bytes()));
        assert_eq!(format!("{:?}", decoded.unwrap()), expected);
    }
}

#[test]
fn states_are_a_closed_set() {
    let body = json!({"v": 1, "type": "state", "state": "training"});
    let decoded = decode_one::<GatewayMessage>(&frame(body.to_string().as_bytes()));
    assert!(
        matches!(&decoded, Err(DecodeError::BadMessage { message_type: Some(t), .. }) if t == "state"),
        "{decoded:?}"
    );
    // The agent may only ask for the two states it controls.
    let body = json!({"v": 1, "type": "set_state", "state": "talking"});
    let decoded = decode_one::<AgentMessage>(&frame(body.to_string().as_bytes()));
    assert_eq!(decoded.unwrap_err().code(), ErrorCode::BadMessage);
}

#[test]
fn another_version_is_fatal_and_checked_before_the_type() {
    for version in [json!(2), json!(0), json!(1.0), json!(-1), json!(1e300)] {
        let body = json!({"v": version, "type": "no_such_type_in_v1"});
        let error = decode_one::<AgentMessage>(&frame(body.to_string().as_bytes())).unwrap_err();
        assert!(
            matches!(error, DecodeError::UnsupportedVersion { .. }),
            "{version}: {error:?}"
        );
        assert!(error.is_fatal());
        assert_eq!(error.report().code, ErrorCode::UnsupportedVersion);
    }
}

#[test]
fn a_missing_or_non_numeric_version_is_a_bad_message() {
    for body in [
        json!({"type": "ping", "nonce": 1}),
        json!({"v": "1", "type": "ping", "nonce": 1}),
        json!({"v": null, "type": "ping", "nonce": 1}),
    ] {
        let error = decode_one::<AgentMessage>(&frame(body.to_string().as_bytes())).unwrap_err();
        match &error {
            DecodeError::BadMessage {
                field,
                message_type,
                ..
            } => {
                assert_eq!(field.as_deref(), Some("v"));
                assert_eq!(message_type.as_deref(), Some("ping"));
            }
            other => panic!("{body}: {other:?}"),
        }
        assert!(!error.is_fatal());
    }
}

#[test]
fn an_unknown_type_is_reported_by_name_and_the_stream_carries_on() {
    let mut stream = frame(br#"{"v":1,"type":"screen_share","url":"x"}"#);
    stream.extend(encoded(&AgentMessage::Ping(from_agent::Ping { nonce: 7 })));
    let results = decode_all::<AgentMessage>(&stream);
    assert_eq!(results.len(), 2);
    let error = results[0].clone().unwrap_err();
    assert_eq!(
        error,
        DecodeError::UnknownType {
            message_type: "screen_share".into()
        }
    );
    assert!(!error.is_fatal());
    let report = error.report();
    assert_eq!(report.code, ErrorCode::UnknownType);
    assert!(report.message.contains("\"screen_share\""), "{report:?}");
    assert_eq!(
        results[1],
        Ok(AgentMessage::Ping(from_agent::Ping { nonce: 7 }))
    );
}

#[test]
fn a_message_sent_in_the_wrong_direction_is_an_unknown_type() {
    let welcome = encoded(&GatewayMessage::Welcome(welcome()));
    assert_eq!(
        decode_one::<AgentMessage>(&welcome),
        Err(DecodeError::UnknownType {
            message_type: "welcome".into()
        })
    );
    let login = encoded(&AgentMessage::Login(login()));
    assert_eq!(
        decode_one::<GatewayMessage>(&login).unwrap_err().code(),
        ErrorCode::UnknownType
    );
}

#[test]
fn missing_or_mistyped_fields_are_bad_messages_that_say_which() {
    let body = json!({"v": 1, "type": "accept"});
    let error = decode_one::<AgentMessage>(&frame(body.to_string().as_bytes())).unwrap_err();
    assert_eq!(error.code(), ErrorCode::BadMessage);
    assert!(
        error.to_string().contains("missing field `call`"),
        "{error}"
    );

    let body = json!({"v": 1, "type": "ping", "nonce": "seven"});
    let error = decode_one::<AgentMessage>(&frame(body.to_string().as_bytes())).unwrap_err();
    assert_eq!(error.code(), ErrorCode::BadMessage);
    assert!(error.to_string().starts_with("bad ping message"), "{error}");
}

#[test]
fn a_missing_or_non_string_type_is_a_bad_message_naming_type() {
    for body in [json!({"v": 1, "call": "c"}), json!({"v": 1, "type": 5})] {
        let error = decode_one::<AgentMessage>(&frame(body.to_string().as_bytes())).unwrap_err();
        assert!(
            matches!(&error, DecodeError::BadMessage { field: Some(f), .. } if f == "type"),
            "{error:?}"
        );
    }
}

#[test]
fn debug_output_never_shows_credentials_or_resume_tokens() {
    let login = AgentMessage::Login(login());
    let shown = format!("{login:?}");
    assert!(!shown.contains("correct horse"), "{shown}");
    assert!(!shown.contains("rt-5b0c9e"), "{shown}");
    assert!(shown.contains("alice"), "{shown}");
    let welcome = format!("{:?}", welcome());
    assert!(!welcome.contains("rt-5b0c9e"), "{welcome}");
}

#[test]
fn fatal_codes_are_the_documented_four() {
    let fatal: Vec<ErrorCode> = [
        ErrorCode::BadFrame,
        ErrorCode::BadMessage,
        ErrorCode::UnknownType,
        ErrorCode::UnsupportedVersion,
        ErrorCode::TooManyErrors,
        ErrorCode::ProtocolViolation,
        ErrorCode::UnknownCall,
        ErrorCode::InvalidState,
        ErrorCode::Internal,
        ErrorCode::Other,
    ]
    .into_iter()
    .filter(|code| code.is_fatal())
    .collect();
    assert_eq!(
        fatal,
        [
            ErrorCode::BadFrame,
            ErrorCode::UnsupportedVersion,
            ErrorCode::TooManyErrors,
            ErrorCode::ProtocolViolation
        ]
    );
}

#[test]
fn errors_are_not_answered_with_errors() {
    let bad_error = json!({"v": 1, "type": "error", "code": "internal"});
    let error = decode_one::<AgentMessage>(&frame(bad_error.to_string().as_bytes())).unwrap_err();
    assert!(error.is_about_an_error(), "{error:?}");
    let bad_ping = json!({"v": 1, "type": "ping"});
    let error = decode_one::<AgentMessage>(&frame(bad_ping.to_string().as_bytes())).unwrap_err();
    assert!(!error.is_about_an_error());
}

#[test]
fn requested_states_map_onto_agent_states() {
    assert_eq!(
        AgentState::from(RequestedState::Available),
        AgentState::Available
    );
    assert_eq!(AgentState::from(RequestedState::Away), AgentState::Away);
}

/// The JSON examples in docs/agent-protocol.md are what the encoder writes for those messages.
#[test]
fn every_json_example_in_the_docs_is_exactly_what_encode_writes() {
    let doc = include_str!("../../../../docs/agent-protocol.md");
    let examples: Vec<&str> = doc
        .split("```json\n")
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap().trim())
        .collect();
    assert!(
        examples.len() >= 6,
        "found only {} examples",
        examples.len()
    );
    for example in examples {
        let framed = frame(example.as_bytes());
        // `chat` is a type both ways, with other fields: the example is whichever it is exactly.
        let as_agent = decode_one::<AgentMessage>(&framed).map(|m| encoded(&m));
        let reencoded = match as_agent {
            Ok(bytes) if bytes[4..] == *example.as_bytes() => bytes,
            _ => encoded(&decode_one::<GatewayMessage>(&framed).expect(example)),
        };
        assert_eq!(String::from_utf8_lossy(&reencoded[4..]), example);
    }
}
