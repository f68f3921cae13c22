//! The core in virtual time: each test plays the gateway's side message by message and checks
//! what the agent sends, emits and does with media, as a person reading its output would.
use std::time::{Duration, Instant};

use crate::agent::protocol::{
    close_code,
    from_agent::{Accept, Disposition, Hangup, SetState},
    from_gateway::{
        Answered, CallEnded, Hold, LoginRefused, Offer, OfferCancelled, Resumed, ResumedCall,
        State, Welcome,
    },
    AgentId, AgentMessage, AgentState, CallId, Credential, DecodeError, EndReason, ErrorCode,
    FlowId, FrameDecoder, GatewayMessage, MediaParams, RefusalReason, RequestedState, ResumeToken,
    SessionId,
};
use crate::client::args::Behaviour;
use crate::client::core::{
    Action, AgentCore, Command, CoreConfig, Exit, Loss, StopReason, LOGIN_TIMEOUT,
    RECONNECT_INTERVAL, STATS_INTERVAL,
};
use crate::client::events::Event;

fn config(behaviour: Behaviour) -> CoreConfig {
    CoreConfig {
        agent: AgentId::new("alice"),
        credential: Credential::new("secret"),
        skills: vec!["sales".into()],
        behaviour,
    }
}

/// As `--auto-answer` sets it up: available again at once after each call.
fn auto(delay_ms: u64) -> Behaviour {
    Behaviour {
        auto_answer: Some(Duration::from_millis(delay_ms)),
        wrap_up: Some(Duration::ZERO),
        ..Behaviour::default()
    }
}

fn drain(core: &mut AgentCore) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

fn sent(actions: &[Action]) -> Vec<AgentMessage> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn events(actions: &[Action]) -> Vec<Event> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn exit(actions: &[Action]) -> Option<Exit> {
    actions.iter().find_map(|a| match a {
        Action::Exit(e) => Some(e.clone()),
        _ => None,
    })
}

fn welcome(session: &str, token: &str) -> GatewayMessage {
    GatewayMessage::Welcome(Welcome {
        session: SessionId::new(session),
        resume_token: ResumeToken::new(token),
        resume_grace_ms: 15_000,
        state: AgentState::Away,
        media: MediaParams::default(),
        gateway: "trunkgate/test".into(),
        supervises: Vec::new(),
    })
}

fn offer(call: &str, flow: u64) -> GatewayMessage {
    GatewayMessage::Offer(Offer {
        call: CallId::new(call),
        caller: "Bob <+4930123456>".into(),
        queue: "sales".into(),
        ring_timeout_ms: 20_000,
        flow: FlowId(flow),
        waited_ms: None,
    })
}

fn answered(call: &str, flow: u64) -> GatewayMessage {
    GatewayMessage::Answered(Answered {
        call: CallId::new(call),
        flow: FlowId(flow),
    })
}

fn call_ended(call: &str) -> GatewayMessage {
    GatewayMessage::CallEnded(CallEnded {
        call: CallId::new(call),
        reason: EndReason::CallerHungUp,
    })
}

fn set_available() -> AgentMessage {
    AgentMessage::SetState(SetState {
        state: RequestedState::Available,
        reason: None,
    })
}

/// A core that has connected and been welcomed at `t0`, its actions drained.
fn logged_in(behaviour: Behaviour) -> (AgentCore, Instant) {
    let t0 = Instant::now();
    let mut core = AgentCore::new(t0, config(behaviour));
    assert_eq!(drain(&mut core), vec![Action::Connect { at: t0 }]);
    let login = core.connected(t0);
    let AgentMessage::Login(login) = login else {
        panic!("first message is not a login: {login:?}");
    };
    assert_eq!(login.agent.as_str(), "alice");
    assert_eq!(login.credential.expose(), "secret");
    assert_eq!(login.skills, vec!["sales".to_string()]);
    assert!(login.client.starts_with("trunkgate-agent/"));
    assert_eq!(login.resume, None);
    core.handle_message(t0, welcome("s1", "token-1"));
    let actions = drain(&mut core);
    assert_eq!(sent(&actions), vec![set_available()]);
    assert!(matches!(
        &events(&actions)[..],
        [Event::Welcome { session, resumed: false, .. }] if session == "s1"
    ));
    (core, t0)
}

/// Offers `c7` on flow 4 and, for an auto-answering core, has the gateway answer it at `at`.
fn talking(core: &mut AgentCore, at: Instant) {
    core.handle_message(at, offer("c7", 4));
    core.handle_timeout(at);
    let actions = drain(core);
    assert!(sent(&actions).contains(&AgentMessage::Accept(Accept {
        call: CallId::new("c7")
    })));
    core.handle_message(at, answered("c7", 4));
    let actions = drain(core);
    assert!(actions.contains(&Action::StartMedia {
        call: CallId::new("c7"),
        flow: FlowId(4)
    }));
}

#[test]
fn auto_answer_accepts_after_the_configured_delay() {
    let (mut core, t0) = logged_in(auto(300));
    core.handle_message(t0, offer("c7", 4));
    let actions = drain(&mut core);
    assert!(sent(&actions).is_empty(), "accepted before the delay");
    assert!(
        matches!(&events(&actions)[..], [Event::Offer { call, caller, .. }]
        if call == "c7" && caller == "Bob <+4930123456>")
    );
    assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_millis(300)));

    core.handle_timeout(t0 + Duration::from_millis(299));
    assert!(sent(&drain(&mut core)).is_empty());
    core.handle_timeout(t0 + Duration::from_millis(300));
    let actions = drain(&mut core);
    assert_eq!(
        sent(&actions),
        vec![AgentMessage::Accept(Accept {
            call: CallId::new("c7")
        })]
    );
    assert_eq!(events(&actions), vec![Event::Accept { call: "c7".into() }]);
}

#[test]
fn an_offer_cancelled_before_the_delay_is_not_accepted() {
    let (mut core, t0) = logged_in(auto(300));
    core.handle_message(t0, offer("c7", 4));
    core.handle_message(
        t0 + Duration::from_millis(100),
        GatewayMessage::OfferCancelled(OfferCancelled {
            call: CallId::new("c7"),
            reason: crate::agent::protocol::CancelReason::CallerGone,
        }),
    );
    drain(&mut core);
    assert_eq!(core.poll_timeout(), None);
    core.handle_timeout(t0 + Duration::from_secs(1));
    assert!(sent(&drain(&mut core)).is_empty());
}

#[test]
fn answered_starts_media_and_call_ended_stops_it_and_makes_the_agent_available() {
    let (mut core, t0) = logged_in(auto(0));
    talking(&mut core, t0);
    core.handle_message(t0 + Duration::from_secs(3), call_ended("c7"));
    let actions = drain(&mut core);
    assert_eq!(
        actions,
        vec![
            Action::EndMedia {
                call: CallId::new("c7"),
                reason: "caller_hung_up".into()
            },
            Action::Send(set_available()),
        ]
    );
    assert_eq!(core.calls_ended(), 1);
    assert!(!core.is_finished());
}

#[test]
fn the_agent_exits_after_the_configured_number_of_calls() {
    let (mut core, t0) = logged_in(Behaviour {
        calls: Some(2),
        ..auto(0)
    });
    talking(&mut core, t0);
    core.handle_message(t0, call_ended("c7"));
    assert_eq!(exit(&drain(&mut core)), None);
    talking(&mut core, t0);
    core.handle_message(t0, call_ended("c7"));
    let actions = drain(&mut core);
    assert_eq!(exit(&actions), Some(Exit::CallsDone));
    assert_eq!(Exit::CallsDone.code(), 0);
    assert!(
        !sent(&actions).contains(&set_available()),
        "a leaving agent should not ask for calls"
    );
}

#[test]
fn hangup_rebind_and_stats_timers_run_from_the_answer() {
    let (mut core, t0) = logged_in(Behaviour {
        hangup_after: Some(Duration::from_millis(2_000)),
        rebind_after: Some(Duration::from_millis(500)),
        ..auto(0)
    });
    let answered_at = t0 + Duration::from_millis(100);
    talking(&mut core, answered_at);
    assert_eq!(
        core.poll_timeout(),
        Some(answered_at + Duration::from_millis(500))
    );
    core.handle_timeout(answered_at + Duration::from_millis(500));
    assert_eq!(drain(&mut core), vec![Action::Rebind]);
    core.handle_timeout(answered_at + Duration::from_millis(2_000));
    let actions = drain(&mut core);
    assert_eq!(
        sent(&actions),
        vec![AgentMessage::Hangup(Hangup {
            call: CallId::new("c7")
        })]
    );
    // Neither fires twice; the stats timer is what remains.
    assert_eq!(core.poll_timeout(), Some(answered_at + STATS_INTERVAL));
    core.handle_timeout(answered_at + STATS_INTERVAL);
    assert_eq!(
        drain(&mut core),
        vec![Action::SendStats {
            call: CallId::new("c7")
        }]
    );
}

#[test]
fn login_refused_exits_with_code_2_and_prints_the_reason() {
    let t0 = Instant::now();
    let mut core = AgentCore::new(t0, config(auto(0)));
    drain(&mut core);
    core.connected(t0);
    core.handle_message(
        t0,
        GatewayMessage::LoginRefused(LoginRefused {
            reason: RefusalReason::BadCredential,
            message: "wrong credential".into(),
        }),
    );
    let actions = drain(&mut core);
    assert_eq!(
        events(&actions),
        vec![Event::LoginRefused {
            reason: "bad_credential".into(),
            message: "wrong credential".into()
        }]
    );
    let exit = exit(&actions).expect("no exit");
    assert_eq!(exit.code(), 2);
    // The close that follows changes nothing.
    core.connection_lost(
        t0,
        Loss::Closed {
            code: close_code::LOGIN_REFUSED.into(),
            reason: "".into(),
        },
    );
    assert!(drain(&mut core).is_empty());
}

#[test]
fn a_lost_connection_is_resumed_with_the_token_and_the_call_moves_to_the_new_flow() {
    let (mut core, t0) = logged_in(auto(0));
    talking(&mut core, t0);
    let lost_at = t0 + Duration::from_secs(2);
    core.connection_lost(
        lost_at,
        Loss::Lost {
            error: "timed out".into(),
        },
    );
    let actions = drain(&mut core);
    assert_eq!(actions.last(), Some(&Action::Connect { at: lost_at }));
    assert!(matches!(
        &events(&actions)[..],
        [Event::ConnectionLost { .. }]
    ));

    let AgentMessage::Login(login) = core.connected(lost_at) else {
        panic!("not a login");
    };
    assert_eq!(
        login.resume.map(|t| t.expose().to_string()),
        Some("token-1".into())
    );
    core.handle_message(lost_at, welcome("s1", "token-2"));
    core.handle_message(
        lost_at,
        GatewayMessage::Resumed(Resumed {
            call: Some(ResumedCall {
                id: CallId::new("c7"),
                flow: FlowId(9),
                caller: "Bob".into(),
                queue: "sales".into(),
                held: false,
            }),
        }),
    );
    let actions = drain(&mut core);
    assert!(
        sent(&actions).is_empty(),
        "a resumed agent changes no state: {actions:?}"
    );
    assert!(actions.contains(&Action::MoveMedia { flow: FlowId(9) }));
    assert!(events(&actions).contains(&Event::Resumed {
        call: Some(("c7".into(), 9))
    }));
    assert!(matches!(
        &events(&actions)[0],
        Event::Welcome { resumed: true, .. }
    ));

    // The next loss presents the new token.
    core.connection_lost(lost_at, Loss::Lost { error: "x".into() });
    drain(&mut core);
    let AgentMessage::Login(login) = core.connected(lost_at) else {
        panic!("not a login");
    };
    assert_eq!(
        login.resume.map(|t| t.expose().to_string()),
        Some("token-2".into())
    );
}

#[test]
fn reconnects_every_500_ms_until_the_grace_period_ends_then_exits_1() {
    let (mut core, t0) = logged_in(auto(0));
    core.connection_lost(
        t0,
        Loss::Lost {
            error: "reset".into(),
        },
    );
    assert_eq!(drain(&mut core).last(), Some(&Action::Connect { at: t0 }));
    let mut now = t0;
    let mut attempts = 1;
    loop {
        core.connection_lost(
            now,
            Loss::Lost {
                error: "unreachable".into(),
            },
        );
        let actions = drain(&mut core);
        match actions.last() {
            Some(Action::Connect { at }) => {
                assert_eq!(*at, now + RECONNECT_INTERVAL);
                now = *at;
                attempts += 1;
            }
            Some(Action::Exit(exit)) => {
                assert_eq!(*exit, Exit::ResumeFailed);
                assert_eq!(exit.code(), 1);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // 15 s of grace at one attempt per 500 ms.
    assert_eq!(attempts, 30);
    assert!(now < t0 + Duration::from_secs(15));
}

#[test]
fn a_fresh_session_after_the_grace_period_ends_the_old_call() {
    let (mut core, t0) = logged_in(auto(0));
    talking(&mut core, t0);
    core.connection_lost(
        t0,
        Loss::Lost {
            error: "gone".into(),
        },
    );
    drain(&mut core);
    core.connected(t0);
    core.handle_message(t0, welcome("s2", "token-9"));
    let actions = drain(&mut core);
    assert!(actions.contains(&Action::EndMedia {
        call: CallId::new("c7"),
        reason: "lost".into()
    }));
    assert!(sent(&actions).contains(&set_available()));
}

#[test]
fn resumed_without_the_call_ends_it() {
    let (mut core, t0) = logged_in(auto(0));
    talking(&mut core, t0);
    core.connection_lost(
        t0,
        Loss::Lost {
            error: "gone".into(),
        },
    );
    drain(&mut core);
    core.connected(t0);
    core.handle_message(t0, welcome("s1", "token-2"));
    core.handle_message(t0, GatewayMessage::Resumed(Resumed { call: None }));
    let actions = drain(&mut core);
    assert!(events(&actions).contains(&Event::Resumed { call: None }));
    assert!(actions.contains(&Action::EndMedia {
        call: CallId::new("c7"),
        reason: "lost".into()
    }));
}

#[test]
fn a_connection_lost_before_any_welcome_is_a_failure_not_a_resume() {
    let t0 = Instant::now();
    let mut core = AgentCore::new(t0, config(auto(0)));
    drain(&mut core);
    core.connection_lost(
        t0,
        Loss::Lost {
            error: "connection refused".into(),
        },
    );
    assert_eq!(exit(&drain(&mut core)), Some(Exit::ConnectFailed));
}

#[test]
fn no_welcome_within_the_login_timeout_fails_the_first_connection() {
    let t0 = Instant::now();
    let mut core = AgentCore::new(t0, config(auto(0)));
    drain(&mut core);
    core.connected(t0);
    assert_eq!(core.poll_timeout(), Some(t0 + LOGIN_TIMEOUT));
    core.handle_timeout(t0 + LOGIN_TIMEOUT);
    assert_eq!(exit(&drain(&mut core)), Some(Exit::ConnectFailed));
}

#[test]
fn gateway_close_codes_decide_whether_to_come_back() {
    for (code, expected) in [
        (close_code::REVOKED, Some(Exit::Revoked)),
        (close_code::DONE, Some(Exit::Closed { code: 0 })),
        (close_code::PROTOCOL_ERROR, Some(Exit::ProtocolError)),
        // Not a code of the protocol: the connection is just lost, and resumed.
        (7, None),
    ] {
        let (mut core, t0) = logged_in(auto(0));
        core.connection_lost(
            t0,
            Loss::Closed {
                code: code.into(),
                reason: "bye".into(),
            },
        );
        let actions = drain(&mut core);
        assert_eq!(exit(&actions), expected, "close code {code}");
        if expected.is_none() {
            assert_eq!(actions.last(), Some(&Action::Connect { at: t0 }));
        }
    }
    assert_eq!(Exit::Revoked.code(), 2);
}

#[test]
fn a_bad_frame_is_fatal_and_answered_with_bad_frame() {
    let (mut core, _) = logged_in(auto(0));
    let mut decoder = FrameDecoder::<GatewayMessage>::new();
    decoder.push(&[0, 0, 0, 0]);
    let error = decoder
        .pop()
        .expect("a result")
        .expect_err("length 0 is not a frame");
    core.handle_decode_error(error);
    let actions = drain(&mut core);
    let [AgentMessage::Error(report)] = &sent(&actions)[..] else {
        panic!("no error sent: {actions:?}");
    };
    assert_eq!(report.code, ErrorCode::BadFrame);
    assert_eq!(exit(&actions), Some(Exit::ProtocolError));
    assert_eq!(Exit::ProtocolError.code(), 1);
}

#[test]
fn a_bad_message_after_welcome_is_answered_and_survived() {
    let (mut core, _) = logged_in(auto(0));
    let mut decoder = FrameDecoder::<GatewayMessage>::new();
    let body = br#"{"v":1,"type":"state","state":"dancing"}"#;
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    decoder.push(&frame);
    let error: DecodeError = decoder.pop().expect("a result").expect_err("bad state");
    core.handle_decode_error(error);
    let actions = drain(&mut core);
    assert!(
        matches!(&sent(&actions)[..], [AgentMessage::Error(r)] if r.code == ErrorCode::BadMessage)
    );
    assert!(matches!(&events(&actions)[..], [Event::BadMessage { .. }]));
    assert_eq!(exit(&actions), None);
}

#[test]
fn anything_but_welcome_first_is_a_protocol_violation() {
    let t0 = Instant::now();
    let mut core = AgentCore::new(t0, config(auto(0)));
    drain(&mut core);
    core.connected(t0);
    core.handle_message(t0, offer("c1", 1));
    let actions = drain(&mut core);
    assert!(
        matches!(&sent(&actions)[..], [AgentMessage::Error(r)] if r.code == ErrorCode::ProtocolViolation)
    );
    assert_eq!(exit(&actions), Some(Exit::ProtocolError));
}

#[test]
fn interactive_commands_drive_the_call() {
    let (mut core, t0) = logged_in(Behaviour::default());
    core.handle_message(t0, offer("c7", 4));
    assert!(
        sent(&drain(&mut core)).is_empty(),
        "interactive agents do not auto-answer"
    );
    assert_eq!(core.poll_timeout(), None);
    core.handle_command(Command::Accept);
    assert_eq!(
        sent(&drain(&mut core)),
        vec![AgentMessage::Accept(Accept {
            call: CallId::new("c7")
        })]
    );
    core.handle_message(t0, answered("c7", 4));
    drain(&mut core);
    core.handle_command(Command::Dtmf("12#".into()));
    assert!(matches!(&sent(&drain(&mut core))[..], [AgentMessage::Dtmf(d)] if d.digits == "12#"));
    core.handle_command(Command::Dtmf("12X".into()));
    assert!(matches!(
        &events(&drain(&mut core))[..],
        [Event::CommandError { .. }]
    ));
    core.handle_command(Command::Hangup);
    assert!(matches!(
        &sent(&drain(&mut core))[..],
        [AgentMessage::Hangup(_)]
    ));
    core.handle_command(Command::Accept);
    assert!(
        matches!(&events(&drain(&mut core))[..], [Event::CommandError { error }] if error.contains("no call"))
    );
    core.handle_command(Command::Quit);
    assert_eq!(exit(&drain(&mut core)), Some(Exit::Quit));
}

#[test]
fn after_a_call_the_disposition_is_sent_and_the_wrap_up_lasts_as_long_as_asked() {
    let (mut core, t0) = logged_in(Behaviour {
        wrap_up: Some(Duration::from_secs(5)),
        disposition: Some("resolved".into()),
        ..auto(0)
    });
    talking(&mut core, t0);
    let ended = t0 + Duration::from_secs(3);
    core.handle_message(ended, call_ended("c7"));
    assert_eq!(
        sent(&drain(&mut core)),
        vec![AgentMessage::Disposition(Disposition {
            call: CallId::new("c7"),
            code: "resolved".into()
        })],
        "the code goes out at once; available waits for the wrap-up"
    );
    assert_eq!(core.poll_timeout(), Some(ended + Duration::from_secs(5)));
    core.handle_timeout(ended + Duration::from_millis(4_999));
    assert!(sent(&drain(&mut core)).is_empty());
    core.handle_timeout(ended + Duration::from_secs(5));
    assert_eq!(sent(&drain(&mut core)), vec![set_available()]);
    assert_eq!(core.poll_timeout(), None, "once");
}

#[test]
fn an_interactive_agent_stays_in_wrap_up_and_codes_its_last_call() {
    let (mut core, t0) = logged_in(Behaviour::default());
    core.handle_command(Command::Disposition("sale".into()));
    assert!(
        matches!(&events(&drain(&mut core))[..], [Event::CommandError { error }] if error.contains("no call"))
    );
    core.handle_message(t0, offer("c7", 4));
    core.handle_command(Command::Accept);
    core.handle_message(t0, answered("c7", 4));
    drain(&mut core);
    core.handle_message(t0 + Duration::from_secs(3), call_ended("c7"));
    assert!(
        sent(&drain(&mut core)).is_empty(),
        "no code given, and not available until the agent says so"
    );
    assert_eq!(core.poll_timeout(), None);
    core.handle_command(Command::Disposition("sale".into()));
    assert_eq!(
        sent(&drain(&mut core)),
        vec![AgentMessage::Disposition(Disposition {
            call: CallId::new("c7"),
            code: "sale".into()
        })]
    );
    core.handle_command(Command::SetState(
        RequestedState::Away,
        Some("lunch".into()),
    ));
    assert_eq!(
        sent(&drain(&mut core)),
        vec![AgentMessage::SetState(SetState {
            state: RequestedState::Away,
            reason: Some("lunch".into())
        })]
    );
}

#[test]
fn reject_declines_the_ringing_call() {
    let (mut core, t0) = logged_in(Behaviour::default());
    core.handle_message(t0, offer("c7", 4));
    drain(&mut core);
    core.handle_command(Command::Reject);
    assert!(
        matches!(&sent(&drain(&mut core))[..], [AgentMessage::Reject(r)] if r.call.as_str() == "c7")
    );
    core.handle_command(Command::Reject);
    assert!(matches!(
        &events(&drain(&mut core))[..],
        [Event::CommandError { .. }]
    ));
}

#[test]
fn stopping_mid_call_hangs_up_first() {
    let (mut core, t0) = logged_in(auto(0));
    talking(&mut core, t0);
    core.stop(StopReason::Duration);
    let actions = drain(&mut core);
    assert!(matches!(&sent(&actions)[..], [AgentMessage::Hangup(_)]));
    let exit = exit(&actions).expect("no exit");
    assert_eq!((exit.code(), exit.name()), (0, "duration"));
    assert!(exit.logs_out());
}

#[test]
fn hold_from_the_gateway_holds_the_media() {
    let (mut core, t0) = logged_in(auto(0));
    talking(&mut core, t0);
    core.handle_message(
        t0,
        GatewayMessage::Hold(Hold {
            call: CallId::new("c7"),
            on: true,
        }),
    );
    assert!(drain(&mut core).contains(&Action::HoldMedia { on: true }));
}

#[test]
fn state_messages_are_printed_with_their_wire_names() {
    let (mut core, t0) = logged_in(auto(0));
    core.handle_message(t0, GatewayMessage::State(State::new(AgentState::WrapUp)));
    assert_eq!(
        events(&drain(&mut core)),
        vec![Event::State {
            state: "wrap_up".into()
        }]
    );
}

#[test]
fn unsupported_gateway_media_is_refused_at_welcome() {
    let t0 = Instant::now();
    let mut core = AgentCore::new(t0, config(auto(0)));
    drain(&mut core);
    core.connected(t0);
    let GatewayMessage::Welcome(mut w) = welcome("s1", "t") else {
        unreachable!()
    };
    w.media.sample_rate = 48_000;
    core.handle_message(t0, GatewayMessage::Welcome(w));
    let actions = drain(&mut core);
    assert!(events(&actions)
        .iter()
        .any(|e| matches!(e, Event::MediaError { error } if error.contains("48000"))));
    assert_eq!(exit(&actions), Some(Exit::UnsupportedMedia));
}

#[test]
fn commands_parse_from_typed_lines() {
    assert_eq!(Command::parse("a"), Ok(Some(Command::Accept)));
    assert_eq!(Command::parse("  h  "), Ok(Some(Command::Hangup)));
    assert_eq!(
        Command::parse("d 12*#a"),
        Ok(Some(Command::Dtmf("12*#A".into())))
    );
    assert_eq!(
        Command::parse("s away"),
        Ok(Some(Command::SetState(RequestedState::Away, None)))
    );
    assert_eq!(
        Command::parse("s away lunch"),
        Ok(Some(Command::SetState(
            RequestedState::Away,
            Some("lunch".into())
        )))
    );
    assert_eq!(
        Command::parse("code sale"),
        Ok(Some(Command::Disposition("sale".into())))
    );
    assert!(Command::parse("s available now").is_err());
    assert!(Command::parse("code").is_err());
    assert_eq!(Command::parse(""), Ok(None));
    assert!(Command::parse("s busy").is_err());
    assert!(Command::parse("d").is_err());
    assert!(Command::parse("a now").is_err());
    assert_eq!(Command::parse("hold on"), Ok(Some(Command::Hold(true))));
    assert_eq!(Command::parse("hold off"), Ok(Some(Command::Hold(false))));
    assert!(Command::parse("hold").is_err());
}

#[test]
fn supervisor_help_chat_and_recording_commands_parse_from_typed_lines() {
    use crate::agent::protocol::{RecordAction, SuperviseMode};
    assert_eq!(
        Command::parse("monitor c7"),
        Ok(Some(Command::Supervise(
            SuperviseMode::Monitor,
            Some("c7".into())
        )))
    );
    assert_eq!(
        Command::parse("barge"),
        Ok(Some(Command::Supervise(SuperviseMode::Barge, None)))
    );
    assert_eq!(Command::parse("leave"), Ok(Some(Command::Leave)));
    assert_eq!(Command::parse("calls"), Ok(Some(Command::Calls)));
    assert_eq!(
        Command::parse("help  the caller  is angry "),
        Ok(Some(Command::Help(Some("the caller  is angry".into()))))
    );
    assert_eq!(Command::parse("help"), Ok(Some(Command::Help(None))));
    assert_eq!(
        Command::parse("chat @alice offer the voucher"),
        Ok(Some(Command::Chat(
            Some("alice".into()),
            "offer the voucher".into()
        )))
    );
    assert_eq!(
        Command::parse("chat can you listen in?"),
        Ok(Some(Command::Chat(None, "can you listen in?".into())))
    );
    assert!(Command::parse("chat").is_err());
    assert!(Command::parse("chat @alice").is_err());
    assert_eq!(
        Command::parse("record pause"),
        Ok(Some(Command::Record(RecordAction::Pause)))
    );
    assert!(Command::parse("record").is_err());
}

#[test]
fn dtmf_and_hold_timers_run_from_the_answer_and_fire_once() {
    use crate::agent::protocol::from_agent::{Dtmf, Hold as HoldRequest};
    let (mut core, t0) = logged_in(Behaviour {
        send_dtmf: Some((Duration::from_millis(300), "12#".into())),
        hold: Some((
            Duration::from_millis(1_000),
            Some(Duration::from_millis(500)),
        )),
        ..auto(0)
    });
    talking(&mut core, t0);
    let call = CallId::new("c7");
    assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_millis(300)));
    core.handle_timeout(t0 + Duration::from_millis(300));
    assert_eq!(
        sent(&drain(&mut core)),
        vec![AgentMessage::Dtmf(Dtmf {
            call: call.clone(),
            digits: "12#".into()
        })]
    );
    core.handle_timeout(t0 + Duration::from_millis(1_000));
    assert_eq!(
        sent(&drain(&mut core)),
        vec![AgentMessage::Hold(HoldRequest {
            call: call.clone(),
            on: true
        })]
    );
    core.handle_timeout(t0 + Duration::from_millis(1_500));
    assert_eq!(
        sent(&drain(&mut core)),
        vec![AgentMessage::Hold(HoldRequest { call, on: false })]
    );
    assert_eq!(core.poll_timeout(), Some(t0 + STATS_INTERVAL));
}

#[test]
fn typed_hold_and_digits_need_an_answered_call() {
    let (mut core, t0) = logged_in(auto(0));
    core.handle_command(Command::Hold(true));
    core.handle_command(Command::Dtmf("5".into()));
    let errors = drain(&mut core)
        .into_iter()
        .filter(|a| matches!(a, Action::Emit(Event::CommandError { .. })))
        .count();
    assert_eq!(errors, 2);
    talking(&mut core, t0);
    core.handle_command(Command::Dtmf("5X".into()));
    assert!(
        sent(&drain(&mut core)).is_empty(),
        "an invalid digit is refused before it is sent"
    );
}
