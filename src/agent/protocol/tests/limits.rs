//! Every limit of docs/agent-protocol.md, at the limit and one past it, on both sides of the wire.

use std::fmt::Debug;

use super::samples::*;
use crate::agent::protocol::from_agent::{self, Login, Reject, Stats};
use crate::agent::protocol::from_gateway::{self, Offer, Resumed, ResumedCall, Welcome};
use crate::agent::protocol::limits::*;
use crate::agent::protocol::*;

/// A valid message survives encode and decode unchanged.
#[track_caller]
fn accepted<M: WireMessage + Debug + PartialEq + Clone>(message: M) {
    let frame = encoded(&message);
    assert_eq!(decode_one::<M>(&frame), Ok(message));
}

/// An invalid message is refused by the encoder, and by the decoder when a careless peer sends
/// it anyway, both naming `field`.
#[track_caller]
fn refused<M: WireMessage + Debug>(message: M, field: &str) {
    let mut out = Vec::new();
    match encode(&message, &mut out) {
        Err(EncodeError::Invalid(error)) => assert_eq!(error.field, field, "{error}"),
        other => panic!("encode of {message:?} gave {other:?}"),
    }
    assert!(out.is_empty());
    match decode_one::<M>(&unchecked_frame(&message)) {
        Err(error @ DecodeError::BadMessage { .. }) => {
            let DecodeError::BadMessage { field: named, .. } = &error else {
                unreachable!()
            };
            assert_eq!(named.as_deref(), Some(field), "{error}");
            assert!(error.to_string().contains(field), "{error}");
            assert!(!error.is_fatal());
        }
        other => panic!("decode of {message:?} gave {other:?}"),
    }
}

fn login_with(change: impl FnOnce(&mut Login)) -> AgentMessage {
    let mut login = login();
    change(&mut login);
    AgentMessage::Login(login)
}

fn welcome_with(change: impl FnOnce(&mut Welcome)) -> GatewayMessage {
    let mut welcome = welcome();
    change(&mut welcome);
    GatewayMessage::Welcome(welcome)
}

fn offer_with(change: impl FnOnce(&mut Offer)) -> GatewayMessage {
    let mut offer = offer();
    change(&mut offer);
    GatewayMessage::Offer(offer)
}

fn stats_with(change: impl FnOnce(&mut Stats)) -> AgentMessage {
    let mut stats = stats();
    change(&mut stats);
    AgentMessage::Stats(stats)
}

fn resumed_with(change: impl FnOnce(&mut ResumedCall)) -> GatewayMessage {
    let mut call = resumed_call();
    change(&mut call);
    GatewayMessage::Resumed(Resumed { call: Some(call) })
}

fn accept(call: &str) -> AgentMessage {
    AgentMessage::Accept(from_agent::Accept {
        call: CallId::new(call),
    })
}

fn agent_dtmf(digits: &str) -> AgentMessage {
    AgentMessage::Dtmf(from_agent::Dtmf {
        call: call(),
        digits: digits.into(),
    })
}

#[test]
fn agent_id_is_one_to_64_bytes_without_control_characters() {
    accepted(login_with(|l| {
        l.agent = AgentId::new("a".repeat(MAX_ID_BYTES))
    }));
    refused(
        login_with(|l| l.agent = AgentId::new("a".repeat(65))),
        "agent",
    );
    refused(login_with(|l| l.agent = AgentId::new("")), "agent");
    refused(login_with(|l| l.agent = AgentId::new("ali\nce")), "agent");
    refused(
        login_with(|l| l.agent = AgentId::new("ali\u{85}ce")),
        "agent",
    );
}

#[test]
fn lengths_are_counted_in_utf8_bytes() {
    // 16 four-byte characters are exactly 64 bytes; 17 are over, though only 17 characters.
    accepted(login_with(|l| l.agent = AgentId::new("😀".repeat(16))));
    refused(
        login_with(|l| l.agent = AgentId::new("😀".repeat(17))),
        "agent",
    );
}

#[test]
fn credential_is_one_to_256_bytes() {
    accepted(login_with(|l| {
        l.credential = Credential::new("p".repeat(256))
    }));
    refused(
        login_with(|l| l.credential = Credential::new("p".repeat(257))),
        "credential",
    );
    refused(
        login_with(|l| l.credential = Credential::new("")),
        "credential",
    );
}

#[test]
fn skills_are_at_most_32_of_at_most_64_bytes() {
    let skills = |count: usize, len: usize| (0..count).map(|i| format!("{i:0>len$}")).collect();
    accepted(login_with(|l| l.skills = skills(MAX_SKILLS, MAX_ID_BYTES)));
    accepted(login_with(|l| l.skills = Vec::new()));
    refused(login_with(|l| l.skills = skills(33, 4)), "skills");
    refused(login_with(|l| l.skills[1] = "s".repeat(65)), "skills[1]");
    refused(login_with(|l| l.skills[0] = String::new()), "skills[0]");
}

#[test]
fn client_is_one_to_128_bytes() {
    accepted(login_with(|l| l.client = "c".repeat(128)));
    refused(login_with(|l| l.client = "c".repeat(129)), "client");
    refused(login_with(|l| l.client = String::new()), "client");
}

#[test]
fn resume_token_is_one_to_256_bytes() {
    accepted(login_with(|l| {
        l.resume = Some(ResumeToken::new("r".repeat(256)))
    }));
    refused(
        login_with(|l| l.resume = Some(ResumeToken::new("r".repeat(257)))),
        "resume",
    );
    refused(
        login_with(|l| l.resume = Some(ResumeToken::new(""))),
        "resume",
    );
    accepted(welcome_with(|w| {
        w.resume_token = ResumeToken::new("r".repeat(256))
    }));
    refused(
        welcome_with(|w| w.resume_token = ResumeToken::new("r".repeat(257))),
        "resume_token",
    );
}

#[test]
fn call_ids_are_one_to_64_bytes() {
    accepted(accept(&"c".repeat(64)));
    refused(accept(&"c".repeat(65)), "call");
    refused(accept(""), "call");
    refused(
        GatewayMessage::CallEnded(from_gateway::CallEnded {
            call: CallId::new("c".repeat(65)),
            reason: EndReason::Error,
        }),
        "call",
    );
}

#[test]
fn reject_reason_is_at_most_256_bytes() {
    let reject = |reason: &str| {
        AgentMessage::Reject(Reject {
            call: call(),
            reason: Some(reason.into()),
        })
    };
    accepted(reject(&"r".repeat(256)));
    accepted(reject(""));
    refused(reject(&"r".repeat(257)), "reason");
}

#[test]
fn agent_dtmf_is_one_to_32_digits_from_the_dtmf_alphabet() {
    accepted(agent_dtmf(DTMF_ALPHABET));
    accepted(agent_dtmf(&"5".repeat(MAX_DTMF_DIGITS)));
    refused(agent_dtmf(&"5".repeat(33)), "digits");
    refused(agent_dtmf(""), "digits");
    refused(agent_dtmf("12x"), "digits");
    refused(agent_dtmf("a"), "digits");
    refused(agent_dtmf("1 2"), "digits");
}

#[test]
fn gateway_dtmf_is_one_digit_from_the_dtmf_alphabet() {
    let dtmf = |digit| {
        GatewayMessage::Dtmf(from_gateway::Dtmf {
            call: call(),
            digit,
        })
    };
    for digit in DTMF_ALPHABET.chars() {
        accepted(dtmf(digit));
    }
    refused(dtmf('E'), "digit");
    // JSON cannot carry two digits in a `char`: that is a type error, not a limit.
    let body = r#"{"v":1,"type":"dtmf","call":"c","digit":"12"}"#;
    let error = decode_one::<GatewayMessage>(&frame(body.as_bytes())).unwrap_err();
    assert_eq!(error.code(), ErrorCode::BadMessage);
}

#[test]
fn stats_rates_are_finite_and_in_range() {
    accepted(stats_with(|s| s.loss_pct = 100.0));
    accepted(stats_with(|s| s.loss_pct = 0.0));
    refused(stats_with(|s| s.loss_pct = 100.5), "loss_pct");
    refused(stats_with(|s| s.loss_pct = -0.5), "loss_pct");
    accepted(stats_with(|s| s.jitter_ms = MAX_JITTER_MS));
    refused(stats_with(|s| s.jitter_ms = 60_001.0), "jitter_ms");
    refused(stats_with(|s| s.jitter_ms = -1.0), "jitter_ms");
    // JSON has no NaN, so the encoder must catch it rather than send `null`.
    let mut out = Vec::new();
    let error = encode(&stats_with(|s| s.loss_pct = f32::NAN), &mut out).unwrap_err();
    assert!(
        matches!(&error, EncodeError::Invalid(e) if e.field == "loss_pct"),
        "{error}"
    );
    let error = encode(&stats_with(|s| s.jitter_ms = f32::INFINITY), &mut out).unwrap_err();
    assert!(
        matches!(&error, EncodeError::Invalid(e) if e.field == "jitter_ms"),
        "{error}"
    );
}

#[test]
fn error_and_refusal_messages_are_at_most_1024_bytes() {
    let report = |message: String| ErrorReport {
        code: ErrorCode::Internal,
        message,
        call: None,
    };
    accepted(GatewayMessage::Error(report("m".repeat(1024))));
    accepted(AgentMessage::Error(report(String::new())));
    refused(GatewayMessage::Error(report("m".repeat(1025))), "message");
    refused(AgentMessage::Error(report("m".repeat(1025))), "message");
    let refusal = |message: String| {
        GatewayMessage::LoginRefused(from_gateway::LoginRefused {
            reason: RefusalReason::Revoked,
            message,
        })
    };
    accepted(refusal("m".repeat(1024)));
    refused(refusal("m".repeat(1025)), "message");
}

#[test]
fn error_report_new_always_makes_a_sendable_report() {
    let report = ErrorReport::new(ErrorCode::Internal, &"é\u{7}".repeat(2000));
    assert!(report.message.len() <= MAX_MESSAGE_BYTES);
    assert!(!report.message.contains('\u{7}'));
    accepted(GatewayMessage::Error(report));
}

#[test]
fn welcome_session_and_gateway_name_are_bounded() {
    accepted(welcome_with(|w| w.session = SessionId::new("s".repeat(64))));
    refused(
        welcome_with(|w| w.session = SessionId::new("s".repeat(65))),
        "session",
    );
    accepted(welcome_with(|w| w.gateway = "g".repeat(128)));
    refused(welcome_with(|w| w.gateway = "g".repeat(129)), "gateway");
    refused(welcome_with(|w| w.gateway = String::new()), "gateway");
}

#[test]
fn media_parameters_are_ones_opus_can_run_with() {
    accepted(welcome_with(|w| w.media.payload_type = 96));
    accepted(welcome_with(|w| w.media.payload_type = 127));
    refused(
        welcome_with(|w| w.media.payload_type = 95),
        "media.payload_type",
    );
    refused(
        welcome_with(|w| w.media.payload_type = 128),
        "media.payload_type",
    );
    accepted(welcome_with(|w| w.media.sample_rate = 48_000));
    refused(
        welcome_with(|w| w.media.sample_rate = 44_100),
        "media.sample_rate",
    );
    accepted(welcome_with(|w| w.media.channels = 2));
    refused(welcome_with(|w| w.media.channels = 0), "media.channels");
    accepted(welcome_with(|w| w.media.frame_ms = 60));
    refused(welcome_with(|w| w.media.frame_ms = 25), "media.frame_ms");
    accepted(welcome_with(|w| w.media.bitrate = 6_000));
    accepted(welcome_with(|w| w.media.bitrate = 510_000));
    refused(welcome_with(|w| w.media.bitrate = 5_999), "media.bitrate");
    refused(welcome_with(|w| w.media.bitrate = 510_001), "media.bitrate");
}

#[test]
fn offer_fields_are_bounded() {
    accepted(offer_with(|o| o.caller = String::new()));
    accepted(offer_with(|o| o.caller = "c".repeat(256)));
    refused(offer_with(|o| o.caller = "c".repeat(257)), "caller");
    refused(
        offer_with(|o| o.caller = "Bob\r\nX-Injected: 1".into()),
        "caller",
    );
    accepted(offer_with(|o| o.queue = "q".repeat(64)));
    refused(offer_with(|o| o.queue = "q".repeat(65)), "queue");
    refused(offer_with(|o| o.queue = String::new()), "queue");
    accepted(offer_with(|o| o.ring_timeout_ms = MAX_RING_TIMEOUT_MS));
    refused(offer_with(|o| o.ring_timeout_ms = 0), "ring_timeout_ms");
    refused(
        offer_with(|o| o.ring_timeout_ms = MAX_RING_TIMEOUT_MS + 1),
        "ring_timeout_ms",
    );
}

#[test]
fn flow_ids_fit_a_quic_varint() {
    accepted(offer_with(|o| o.flow = FlowId(MAX_FLOW_ID)));
    accepted(offer_with(|o| o.flow = FlowId(0)));
    refused(offer_with(|o| o.flow = FlowId(MAX_FLOW_ID + 1)), "flow");
    refused(
        GatewayMessage::Answered(from_gateway::Answered {
            call: call(),
            flow: FlowId(u64::MAX),
        }),
        "flow",
    );
    refused(resumed_with(|c| c.flow = FlowId(1 << 62)), "call.flow");
}

#[test]
fn a_resumed_call_is_checked_field_by_field() {
    refused(resumed_with(|c| c.id = CallId::new("")), "call.id");
    refused(resumed_with(|c| c.caller = "c".repeat(257)), "call.caller");
    refused(resumed_with(|c| c.queue = "q".repeat(65)), "call.queue");
}

#[test]
fn the_largest_valid_login_fits_a_frame_with_room_to_spare() {
    // `"` and `\` are the characters JSON escapes most expensively once control characters
    // are excluded: two bytes each.
    let worst = |len: usize| "\"".repeat(len);
    let login = AgentMessage::Login(Login {
        agent: AgentId::new(worst(MAX_ID_BYTES)),
        credential: Credential::new(worst(MAX_CREDENTIAL_BYTES)),
        skills: vec![worst(MAX_ID_BYTES); MAX_SKILLS],
        client: worst(MAX_SOFTWARE_BYTES),
        resume: Some(ResumeToken::new(worst(MAX_RESUME_TOKEN_BYTES))),
    });
    let frame = encoded(&login);
    assert!(frame.len() < MAX_FRAME_LEN / 8, "{} bytes", frame.len());
    assert_eq!(decode_one::<AgentMessage>(&frame), Ok(login));
}
