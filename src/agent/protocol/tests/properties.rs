//! Property tests: every valid message round-trips through any chunking, and no input of any
//! shape makes the decoder panic or break its own rules.

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::samples::frame;
use crate::agent::protocol::from_agent::{self, Login, Stats};
use crate::agent::protocol::from_gateway::{self, Offer, ResumedCall, Welcome};
use crate::agent::protocol::limits::DTMF_ALPHABET;
use crate::agent::protocol::*;

/// Up to 16 printable characters of up to 4 bytes each stay within 64 bytes.
fn identifier() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9._-]{1,64}", "\\PC{1,16}",]
}

fn text(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("\\PC{{0,{max_chars}}}")).unwrap()
}

fn call_id() -> impl Strategy<Value = CallId> {
    identifier().prop_map(CallId)
}

fn flow() -> impl Strategy<Value = FlowId> {
    (0..=limits::MAX_FLOW_ID).prop_map(FlowId)
}

fn dtmf_digit() -> impl Strategy<Value = char> {
    proptest::sample::select(DTMF_ALPHABET.chars().collect::<Vec<_>>())
}

fn error_report() -> impl Strategy<Value = ErrorReport> {
    (
        proptest::sample::select(vec![
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
        ]),
        text(256),
        proptest::option::of(call_id()),
    )
        .prop_map(|(code, message, call)| ErrorReport {
            code,
            message,
            call,
        })
}

fn agent_message() -> impl Strategy<Value = AgentMessage> {
    let login = (
        identifier(),
        "\\PC{1,64}",
        vec(identifier(), 0..=32),
        "\\PC{1,32}",
        proptest::option::of("[A-Za-z0-9+/=]{1,256}"),
    )
        .prop_map(|(agent, credential, skills, client, resume)| {
            AgentMessage::Login(Login {
                agent: AgentId(agent),
                credential: Credential::new(credential),
                skills,
                client,
                resume: resume.map(ResumeToken::new),
            })
        });
    let stats = (
        call_id(),
        any::<u32>(),
        0.0f32..=100.0,
        0.0f32..=limits::MAX_JITTER_MS,
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(call, rtt_ms, loss_pct, jitter_ms, packets_received, packets_lost)| {
                AgentMessage::Stats(Stats {
                    call,
                    rtt_ms,
                    loss_pct,
                    jitter_ms,
                    packets_received,
                    packets_lost,
                })
            },
        );
    prop_oneof![
        login,
        prop_oneof![Just(RequestedState::Available), Just(RequestedState::Away)].prop_map(
            |state| {
                AgentMessage::SetState(from_agent::SetState {
                    state,
                    reason: None,
                })
            }
        ),
        call_id().prop_map(|call| AgentMessage::Accept(from_agent::Accept { call })),
        (call_id(), proptest::option::of(text(64)))
            .prop_map(|(call, reason)| AgentMessage::Reject(from_agent::Reject { call, reason })),
        call_id().prop_map(|call| AgentMessage::Hangup(from_agent::Hangup { call })),
        (call_id(), vec(dtmf_digit(), 1..=32)).prop_map(|(call, digits)| {
            AgentMessage::Dtmf(from_agent::Dtmf {
                call,
                digits: digits.into_iter().collect(),
            })
        }),
        (call_id(), any::<bool>())
            .prop_map(|(call, on)| AgentMessage::Hold(from_agent::Hold { call, on })),
        stats,
        (
            prop_oneof![
                "[0-9+() .-]{1,32}".prop_map(|n| (Some(n), None)),
                call_id().prop_map(|c| (None, Some(c))),
            ],
            proptest::option::of(identifier())
        )
            .prop_map(|((number, callback), queue)| {
                AgentMessage::Dial(from_agent::Dial {
                    number,
                    callback,
                    queue,
                })
            }),
        (call_id(), "(queue|agent):[a-z0-9_-]{1,64}")
            .prop_map(|(call, to)| AgentMessage::Transfer(from_agent::Transfer { call, to })),
        (call_id(), "[0-9+() .-]{1,32}")
            .prop_map(|(call, to)| AgentMessage::Consult(from_agent::Consult { call, to })),
        call_id().prop_map(|call| {
            AgentMessage::CompleteTransfer(from_agent::CompleteTransfer { call })
        }),
        call_id()
            .prop_map(|call| AgentMessage::ReturnToCaller(from_agent::ReturnToCaller { call })),
        (
            call_id(),
            proptest::sample::select(vec![
                RecordAction::Start,
                RecordAction::Pause,
                RecordAction::Resume
            ])
        )
            .prop_map(|(call, action)| AgentMessage::Record(from_agent::Record { call, action })),
        (call_id(), supervise_mode())
            .prop_map(|(call, mode)| AgentMessage::Supervise(from_agent::Supervise { call, mode })),
        call_id().prop_map(|call| AgentMessage::Leave(from_agent::Leave { call })),
        (call_id(), proptest::option::of(text(64)))
            .prop_map(|(call, note)| AgentMessage::Help(from_agent::Help { call, note })),
        (
            proptest::option::of(identifier()),
            proptest::option::of(call_id()),
            "\\PC{1,200}"
        )
            .prop_map(|(to, call, text)| AgentMessage::Chat(from_agent::Chat {
                to: to.map(AgentId::new),
                call,
                text
            })),
        any::<u64>().prop_map(|nonce| AgentMessage::Ping(from_agent::Ping { nonce })),
        error_report().prop_map(AgentMessage::Error),
    ]
}

fn supervise_mode() -> impl Strategy<Value = SuperviseMode> {
    proptest::sample::select(vec![
        SuperviseMode::Monitor,
        SuperviseMode::Whisper,
        SuperviseMode::Barge,
    ])
}

fn agent_state() -> impl Strategy<Value = AgentState> {
    proptest::sample::select(vec![
        AgentState::Available,
        AgentState::Away,
        AgentState::WrapUp,
        AgentState::Ringing,
        AgentState::Talking,
    ])
}

fn media() -> impl Strategy<Value = MediaParams> {
    (
        96u8..=127,
        proptest::sample::select(vec![8_000u32, 12_000, 16_000, 24_000, 48_000]),
        1u8..=2,
        proptest::sample::select(vec![10u16, 20, 40, 60]),
        6_000u32..=510_000,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(payload_type, sample_rate, channels, frame_ms, bitrate, fec, dtx)| MediaParams {
                codec: Codec::Opus,
                payload_type,
                sample_rate,
                channels,
                frame_ms,
                bitrate,
                fec,
                dtx,
            },
        )
}

fn gateway_message() -> impl Strategy<Value = GatewayMessage> {
    let welcome = (
        identifier(),
        "[A-Za-z0-9+/=]{1,256}",
        any::<u64>(),
        agent_state(),
        media(),
        "\\PC{1,32}",
    )
        .prop_map(|(session, token, resume_grace_ms, state, media, gateway)| {
            GatewayMessage::Welcome(Welcome {
                session: SessionId(session),
                resume_token: ResumeToken::new(token),
                resume_grace_ms,
                state,
                media,
                gateway,
                supervises: Vec::new(),
            })
        });
    let offer = (
        call_id(),
        text(64),
        identifier(),
        1..=limits::MAX_RING_TIMEOUT_MS,
        flow(),
        proptest::option::of(0u64..1 << 40),
    )
        .prop_map(|(call, caller, queue, ring_timeout_ms, flow, waited_ms)| {
            GatewayMessage::Offer(Offer {
                call,
                caller,
                queue,
                ring_timeout_ms,
                flow,
                waited_ms,
            })
        });
    let resumed = proptest::option::of(
        (call_id(), flow(), text(64), identifier(), any::<bool>()).prop_map(
            |(id, flow, caller, queue, held)| ResumedCall {
                id,
                flow,
                caller,
                queue,
                held,
            },
        ),
    )
    .prop_map(|call| GatewayMessage::Resumed(from_gateway::Resumed { call }));
    prop_oneof![
        welcome,
        (
            proptest::sample::select(vec![
                RefusalReason::UnknownAgent,
                RefusalReason::BadCredential,
                RefusalReason::Revoked,
                RefusalReason::AlreadyLoggedIn,
                RefusalReason::UnsupportedVersion,
                RefusalReason::TooManyAttempts,
                RefusalReason::Other,
            ]),
            text(256)
        )
            .prop_map(|(reason, message)| {
                GatewayMessage::LoginRefused(from_gateway::LoginRefused { reason, message })
            }),
        (agent_state(), proptest::option::of(0u64..1 << 40)).prop_map(|(state, wrap_up_ms)| {
            GatewayMessage::State(from_gateway::State { state, wrap_up_ms })
        }),
        offer,
        (
            call_id(),
            proptest::sample::select(vec![
                CancelReason::CallerGone,
                CancelReason::Timeout,
                CancelReason::Taken,
                CancelReason::Other,
            ])
        )
            .prop_map(|(call, reason)| {
                GatewayMessage::OfferCancelled(from_gateway::OfferCancelled { call, reason })
            }),
        (call_id(), flow()).prop_map(|(call, flow)| GatewayMessage::Answered(
            from_gateway::Answered { call, flow }
        )),
        (
            call_id(),
            proptest::sample::select(vec![
                EndReason::CallerHungUp,
                EndReason::AgentHungUp,
                EndReason::Transferred,
                EndReason::Error,
                EndReason::Other,
            ])
        )
            .prop_map(|(call, reason)| GatewayMessage::CallEnded(
                from_gateway::CallEnded { call, reason }
            )),
        resumed,
        (call_id(), dtmf_digit())
            .prop_map(|(call, digit)| GatewayMessage::Dtmf(from_gateway::Dtmf { call, digit })),
        (call_id(), any::<bool>())
            .prop_map(|(call, on)| GatewayMessage::Hold(from_gateway::Hold { call, on })),
        (call_id(), "[+0-9]{1,16}", flow()).prop_map(|(call, number, flow)| {
            GatewayMessage::Dialing(from_gateway::Dialing { call, number, flow })
        }),
        (call_id(), any::<bool>()).prop_map(|(call, early_media)| {
            GatewayMessage::Progress(from_gateway::Progress { call, early_media })
        }),
        (
            proptest::option::of(call_id()),
            proptest::sample::select(vec![
                DialFailure::NotPermitted,
                DialFailure::InvalidNumber,
                DialFailure::NoRoute,
                DialFailure::Limit,
                DialFailure::Busy,
                DialFailure::NoAnswer,
                DialFailure::Rejected,
                DialFailure::NumberUnknown,
                DialFailure::Unreachable,
                DialFailure::Cancelled,
                DialFailure::Other,
            ]),
            text(256)
        )
            .prop_map(|(call, reason, message)| {
                GatewayMessage::DialFailed(from_gateway::DialFailed {
                    call,
                    reason,
                    message,
                })
            }),
        (
            call_id(),
            "\\+[0-9]{1,15}",
            proptest::sample::select(vec![
                TransferStage::Dialing,
                TransferStage::Ringing,
                TransferStage::Answered,
                TransferStage::Ended,
            ]),
            proptest::option::of(proptest::sample::select(vec![
                DialFailure::Busy,
                DialFailure::NoAnswer,
                DialFailure::Unreachable,
            ])),
            proptest::option::of(text(64)),
        )
            .prop_map(|(call, number, state, reason, message)| {
                GatewayMessage::TransferState(from_gateway::TransferState {
                    call,
                    number,
                    state,
                    reason,
                    message,
                })
            }),
        (
            call_id(),
            proptest::sample::select(vec![
                RecordingStage::Off,
                RecordingStage::Recording,
                RecordingStage::Paused
            ])
        )
            .prop_map(
                |(call, state)| GatewayMessage::Recording(from_gateway::Recording { call, state })
            ),
        (call_id(), supervise_mode(), flow()).prop_map(|(call, mode, flow)| {
            GatewayMessage::Supervising(from_gateway::Supervising { call, mode, flow })
        }),
        (call_id(), identifier()).prop_map(|(call, reason)| GatewayMessage::SupervisionEnded(
            from_gateway::SupervisionEnded { call, reason }
        )),
        (
            call_id(),
            identifier(),
            identifier(),
            proptest::option::of(text(64))
        )
            .prop_map(|(call, agent, queue, note)| GatewayMessage::HelpRequested(
                from_gateway::HelpRequested {
                    call,
                    agent: AgentId::new(agent),
                    queue,
                    note
                }
            )),
        (identifier(), proptest::option::of(call_id()), "\\PC{1,200}").prop_map(
            |(from, call, text)| GatewayMessage::Chat(from_gateway::Chat {
                from: AgentId::new(from),
                call,
                text
            })
        ),
        (
            vec(
                (
                    call_id(),
                    identifier(),
                    text(64),
                    proptest::option::of(identifier())
                ),
                0..4
            ),
            vec(
                (identifier(), agent_state(), proptest::option::of(call_id())),
                0..4
            )
        )
            .prop_map(|(calls, agents)| GatewayMessage::Live(from_gateway::Live {
                calls: calls
                    .into_iter()
                    .map(|(call, queue, caller, agent)| from_gateway::LiveCall {
                        call,
                        queue,
                        caller,
                        state: "talking".into(),
                        agent: agent.map(AgentId::new)
                    })
                    .collect(),
                agents: agents
                    .into_iter()
                    .map(|(agent, state, call)| from_gateway::LiveAgent {
                        agent: AgentId::new(agent),
                        state,
                        call
                    })
                    .collect(),
            })),
        // One decimal, as the gateway rounds them (and JSON carries them exactly).
        (
            identifier(),
            0u32..1000,
            proptest::option::of((0u32..=1000).prop_map(|x| f64::from(x) / 10.0))
        )
            .prop_map(|(queue, waiting, pct)| GatewayMessage::Wallboard(
                from_gateway::Wallboard {
                    queues: vec![from_gateway::QueueBoard {
                        queue,
                        waiting,
                        longest_wait_s: 12.5,
                        service_level_s: 20.0,
                        service_level_15m_pct: pct,
                        service_level_day_pct: pct,
                        asa_s: pct,
                        aht_s: None,
                        abandon_rate_pct: pct,
                        answered: u64::from(waiting),
                        abandoned: 0,
                        agents_available: 1,
                        agents_in_call: 2,
                        agents_wrap_up: 0,
                        agents_away: 3,
                    }]
                }
            )),
        error_report().prop_map(GatewayMessage::Error),
        any::<u64>().prop_map(|nonce| GatewayMessage::Pong(from_gateway::Pong { nonce })),
    ]
}

/// Pushes `bytes` cut at `cuts` (indices taken modulo the length), popping after every push.
fn decode_chunked<M: WireMessage>(bytes: &[u8], cuts: &[usize]) -> Vec<Result<M, DecodeError>> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|cut| cut % (bytes.len() + 1))
        .chain([0, bytes.len()])
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut decoder = FrameDecoder::<M>::new();
    let mut results = Vec::new();
    for window in points.windows(2) {
        decoder.push(&bytes[window[0]..window[1]]);
        while let Some(result) = decoder.pop() {
            results.push(result);
        }
    }
    let _ = decoder.finish();
    results
}

/// The decoder's promises, whatever the input: nothing after a fatal error, at most
/// `MAX_BAD_MESSAGES_IN_A_ROW - 1` recoverable bad messages in a row, and every error
/// producing an `error` message that can be sent.
fn check_decoder_rules<M: WireMessage>(results: &[Result<M, DecodeError>]) {
    let mut bad_in_a_row = 0;
    for (index, result) in results.iter().enumerate() {
        match result {
            Ok(message) => {
                bad_in_a_row = 0;
                assert_eq!(
                    message.validate(),
                    Ok(()),
                    "decoded messages meet every limit"
                );
            }
            Err(error) => {
                if error.is_fatal() {
                    assert_eq!(index, results.len() - 1, "results after a fatal error");
                }
                if error.code() == ErrorCode::BadMessage {
                    bad_in_a_row += 1;
                    assert!(bad_in_a_row < MAX_BAD_MESSAGES_IN_A_ROW);
                }
                let mut out = Vec::new();
                encode(&GatewayMessage::Error(error.report()), &mut out)
                    .expect("every error report can be sent");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn agent_messages_round_trip_through_any_chunking(
        messages in vec(agent_message(), 1..6),
        cuts in vec(any::<usize>(), 0..20),
    ) {
        let mut bytes = Vec::new();
        for message in &messages {
            encode(message, &mut bytes).unwrap();
        }
        let decoded: Vec<_> = decode_chunked::<AgentMessage>(&bytes, &cuts)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(decoded, messages);
    }

    #[test]
    fn gateway_messages_round_trip_through_any_chunking(
        messages in vec(gateway_message(), 1..6),
        cuts in vec(any::<usize>(), 0..20),
    ) {
        let mut bytes = Vec::new();
        for message in &messages {
            encode(message, &mut bytes).unwrap();
        }
        let decoded: Vec<_> = decode_chunked::<GatewayMessage>(&bytes, &cuts)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(decoded, messages);
    }

    #[test]
    fn arbitrary_bytes_in_arbitrary_chunks_never_panic(
        bytes in vec(any::<u8>(), 0..2048),
        cuts in vec(any::<usize>(), 0..40),
    ) {
        check_decoder_rules(&decode_chunked::<AgentMessage>(&bytes, &cuts));
        check_decoder_rules(&decode_chunked::<GatewayMessage>(&bytes, &cuts));
    }

    /// Random bytes rarely get past the length check; these frames always do.
    #[test]
    fn arbitrary_bodies_in_well_formed_frames_never_panic(
        bodies in vec(vec(any::<u8>(), 1..256), 1..30),
        cuts in vec(any::<usize>(), 0..20),
    ) {
        let bytes: Vec<u8> = bodies.iter().flat_map(|body| frame(body)).collect();
        check_decoder_rules(&decode_chunked::<AgentMessage>(&bytes, &cuts));
        check_decoder_rules(&decode_chunked::<GatewayMessage>(&bytes, &cuts));
    }

    /// Random JSON rarely names a real type; these objects do, with fields of the right names
    /// and random values, which is where the interesting parser paths are.
    #[test]
    fn plausible_json_never_panics_and_decodes_only_valid_messages(
        type_index in any::<prop::sample::Index>(),
        fields in vec((field_name(), json_value()), 0..12),
        nested in vec((field_name(), json_value()), 0..6),
    ) {
        let all_types: Vec<&str> = AgentMessage::TYPES.iter()
            .chain(GatewayMessage::TYPES)
            .copied()
            .collect();
        let mut object = serde_json::Map::new();
        object.insert("v".into(), json!(1));
        object.insert("type".into(), json!(type_index.get(&all_types)));
        for (name, value) in fields {
            object.insert(name.into(), value);
        }
        let nested: serde_json::Map<String, Value> =
            nested.into_iter().map(|(name, value)| (name.to_string(), value)).collect();
        for holder in ["media", "call"] {
            if object.get(holder).is_some_and(|value| value.is_object()) {
                object.insert(holder.into(), Value::Object(nested.clone()));
            }
        }
        let body = Value::Object(object).to_string();
        let bytes = frame(body.as_bytes());
        check_decoder_rules(&decode_chunked::<AgentMessage>(&bytes, &[]));
        check_decoder_rules(&decode_chunked::<GatewayMessage>(&bytes, &[]));
    }
}

fn field_name() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "v",
        "type",
        "agent",
        "credential",
        "skills",
        "client",
        "resume",
        "state",
        "call",
        "reason",
        "digits",
        "digit",
        "on",
        "rtt_ms",
        "loss_pct",
        "jitter_ms",
        "packets_received",
        "packets_lost",
        "nonce",
        "session",
        "resume_token",
        "resume_grace_ms",
        "media",
        "gateway",
        "message",
        "caller",
        "queue",
        "ring_timeout_ms",
        "flow",
        "code",
        "id",
        "held",
        "codec",
        "payload_type",
        "sample_rate",
        "channels",
        "frame_ms",
        "bitrate",
        "fec",
    ])
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("opus".to_string()),
            Just("available".to_string()),
            Just("timeout".to_string()),
            Just("#".to_string()),
            "\\PC{0,8}",
            ".{0,8}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::from),
            vec((field_name(), inner), 0..6).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(name, value)| (name.to_string(), value))
                        .collect(),
                )
            }),
        ]
    })
}
