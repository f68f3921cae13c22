//! The contact center driven in virtual time: agents log in, calls queue, offers ring, agents
//! vanish and come back.
use std::collections::BTreeMap;

use super::*;
use crate::agent::protocol::from_agent::{Accept, Hangup, Reject, SetState};
use crate::agent::protocol::{
    AgentMessage, AgentState as WireState, CallId, ErrorCode, RefusalReason, RequestedState,
};

const GRACE: Duration = Duration::from_secs(15);

fn queues() -> Arc<BTreeMap<String, QueueConfig>> {
    let text = r#"
        [support]
        skills = ["support"]
        ring_timeout_ms = 10000
        wrap_up_ms = 3000
        max_wait_ms = 600000
        first_announce_ms = 600000
    "#;
    Arc::new(toml::from_str(text).unwrap())
}

struct World {
    center: Center,
    now: Instant,
}

impl World {
    fn new() -> Self {
        World {
            center: Center::new(
                queues(),
                GRACE,
                MediaParams::default(),
                rand::SeedableRng::seed_from_u64(7),
            ),
            now: Instant::now(),
        }
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.center.poll_output()).collect()
    }

    fn messages_for(&mut self, conn: ConnId) -> Vec<GatewayMessage> {
        self.outputs()
            .into_iter()
            .filter_map(|o| match o {
                Output::ToAgent { conn: c, msg } if c == conn => Some(msg),
                _ => None,
            })
            .collect()
    }

    fn login(&mut self, conn: ConnId, agent: &str, resume: Option<&str>) -> Vec<Output> {
        self.center
            .login(self.now, conn, agent, &["support".to_string()], resume)
            .unwrap();
        self.outputs()
    }

    /// Logs in and sets available; returns the resume token.
    fn ready(&mut self, conn: ConnId, agent: &str) -> String {
        let out = self.login(conn, agent, None);
        let token = out
            .iter()
            .find_map(|o| match o {
                Output::ToAgent {
                    msg: GatewayMessage::Welcome(w),
                    ..
                } => Some(w.resume_token.expose().to_string()),
                _ => None,
            })
            .expect("welcome");
        self.say(
            conn,
            AgentMessage::SetState(SetState {
                state: RequestedState::Available,
                reason: None,
            }),
        );
        self.outputs();
        token
    }

    /// alice (conn 1) takes caller 7 and then loses her connection. Returns her resume token,
    /// the call's flow and what the loss produced.
    fn agent_lost_mid_call(&mut self) -> (String, u64, Vec<Output>) {
        let token = self.ready(1, "alice");
        self.center
            .enqueue(self.now, 7, "support", "caller")
            .unwrap();
        let offer = offer_of(&self.messages_for(1)).unwrap();
        self.say(1, AgentMessage::Accept(Accept { call: offer.call }));
        self.outputs();
        self.center.connection_lost(self.now, 1);
        (token, offer.flow.0, self.outputs())
    }

    fn say(&mut self, conn: ConnId, msg: AgentMessage) {
        self.center.agent_message(self.now, conn, msg);
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.center.poll_timeout().filter(|t| *t <= end) {
            self.now = t.max(self.now);
            self.center.handle_timeout(self.now);
        }
        self.now = end;
    }
}

fn offer_of(msgs: &[GatewayMessage]) -> Option<proto::from_gateway::Offer> {
    msgs.iter().find_map(|m| match m {
        GatewayMessage::Offer(o) => Some(o.clone()),
        _ => None,
    })
}

#[test]
fn a_fresh_agent_starts_away_and_gets_offers_once_available() {
    let mut w = World::new();
    let out = w.login(1, "alice", None);
    let welcome = out.iter().find_map(|o| match o {
        Output::ToAgent {
            msg: GatewayMessage::Welcome(w),
            ..
        } => Some(w.clone()),
        _ => None,
    });
    assert_eq!(welcome.unwrap().state, WireState::Away);
    w.center.enqueue(w.now, 7, "support", "+15551234").unwrap();
    assert!(
        offer_of(&w.messages_for(1)).is_none(),
        "away agents get no offers"
    );
    w.say(
        1,
        AgentMessage::SetState(SetState {
            state: RequestedState::Available,
            reason: None,
        }),
    );
    let offer = offer_of(&w.messages_for(1)).expect("offered once available");
    assert_eq!(offer.call, call_id(7));
    assert_eq!(offer.caller, "+15551234");
    assert_eq!(offer.ring_timeout_ms, 10_000);
}

#[test]
fn accepting_connects_the_call_and_routes_its_media() {
    let mut w = World::new();
    w.ready(1, "alice");
    w.center.enqueue(w.now, 7, "support", "caller").unwrap();
    let offer = offer_of(&w.messages_for(1)).unwrap();
    w.say(
        1,
        AgentMessage::Accept(Accept {
            call: offer.call.clone(),
        }),
    );
    let out = w.outputs();
    let flow = offer.flow.0;
    assert!(
        out.contains(&Output::Route {
            conn: 1,
            flow,
            call: 7
        }),
        "{out:?}"
    );
    assert!(out.contains(&Output::ToCall {
        call: 7,
        cmd: CallCommand::Connect {
            conn: 1,
            flow,
            agent: "alice".into()
        }
    }));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ToAgent {
            msg: GatewayMessage::Answered(_),
            ..
        }
    )));
}

#[test]
fn a_reject_moves_the_offer_to_the_next_agent() {
    let mut w = World::new();
    w.ready(1, "alice");
    w.advance(Duration::from_secs(1));
    w.ready(2, "bob");
    w.center.enqueue(w.now, 7, "support", "caller").unwrap();
    let out = w.outputs();
    let first = out.iter().find_map(|o| match o {
        Output::ToAgent {
            conn,
            msg: GatewayMessage::Offer(_),
        } => Some(*conn),
        _ => None,
    });
    assert_eq!(first, Some(1), "longest idle first");
    w.say(
        1,
        AgentMessage::Reject(Reject {
            call: call_id(7),
            reason: None,
        }),
    );
    assert!(offer_of(&w.messages_for(2)).is_some());
}

#[test]
fn an_agent_that_reconnects_within_grace_gets_its_call_back() {
    let mut w = World::new();
    let (token, flow, out) = w.agent_lost_mid_call();
    assert!(out.contains(&Output::ToCall {
        call: 7,
        cmd: CallCommand::AgentLost
    }));
    assert!(out.contains(&Output::Unroute { conn: 1, flow }));
    w.advance(Duration::from_secs(10));
    let out = w.login(2, "alice", Some(&token));
    let resumed = out.iter().find_map(|o| match o {
        Output::ToAgent {
            conn: 2,
            msg: GatewayMessage::Resumed(r),
        } => Some(r.clone()),
        _ => None,
    });
    assert_eq!(resumed.unwrap().call.unwrap().id, call_id(7));
    assert!(out.contains(&Output::Route {
        conn: 2,
        flow,
        call: 7
    }));
    assert!(out.contains(&Output::ToCall {
        call: 7,
        cmd: CallCommand::Reconnect { conn: 2, flow }
    }));
    w.advance(GRACE * 2);
    assert!(
        !w.outputs().iter().any(|o| matches!(
            o,
            Output::ToCall {
                cmd: CallCommand::Requeued,
                ..
            }
        )),
        "a resumed call is not requeued"
    );
}

#[test]
fn an_agent_gone_past_grace_puts_the_caller_first_for_the_next_agent() {
    let mut w = World::new();
    w.ready(1, "alice");
    w.center
        .enqueue(w.now, 7, "support", "first caller")
        .unwrap();
    let offer = offer_of(&w.messages_for(1)).unwrap();
    w.say(1, AgentMessage::Accept(Accept { call: offer.call }));
    // Another caller arrives and waits (nobody free).
    w.center
        .enqueue(w.now, 8, "support", "second caller")
        .unwrap();
    w.outputs();
    w.center.connection_lost(w.now, 1);
    w.ready(2, "bob");
    // bob is free but busy callers stay with their agent until grace ends: bob gets call 8.
    w.advance(Duration::from_millis(10));
    w.say(2, AgentMessage::Accept(Accept { call: call_id(8) }));
    w.outputs();
    w.say(2, AgentMessage::Hangup(Hangup { call: call_id(8) }));
    w.outputs();
    w.advance(GRACE);
    let out = w.outputs();
    assert!(
        out.contains(&Output::ToCall {
            call: 7,
            cmd: CallCommand::Requeued
        }),
        "{out:?}"
    );
    // bob's wrap-up ended long ago: caller 7, back at the head, is offered to bob at once.
    let to_bob: Vec<GatewayMessage> = out
        .into_iter()
        .filter_map(|o| match o {
            Output::ToAgent { conn: 2, msg } => Some(msg),
            _ => None,
        })
        .collect();
    let offer = offer_of(&to_bob).expect("requeued caller offered");
    assert_eq!(offer.call, call_id(7));
}

#[test]
fn an_offer_says_how_long_the_caller_waited_and_a_wrap_up_how_long_it_lasts() {
    let mut w = World::new();
    w.center.enqueue(w.now, 7, "support", "caller").unwrap();
    w.advance(Duration::from_secs(12));
    let to_alice = |out: Vec<Output>| -> Vec<GatewayMessage> {
        out.into_iter()
            .filter_map(|o| match o {
                Output::ToAgent { conn: 1, msg } => Some(msg),
                _ => None,
            })
            .collect()
    };
    w.login(1, "alice", None);
    w.say(
        1,
        AgentMessage::SetState(SetState {
            state: RequestedState::Available,
            reason: None,
        }),
    );
    let offer = offer_of(&to_alice(w.outputs())).expect("offered");
    assert_eq!(offer.waited_ms, Some(12_000));
    w.say(1, AgentMessage::Accept(Accept { call: call_id(7) }));
    w.outputs();
    w.say(1, AgentMessage::Hangup(Hangup { call: call_id(7) }));
    let wrap_up = to_alice(w.outputs()).into_iter().find_map(|m| match m {
        GatewayMessage::State(s) if s.state == WireState::WrapUp => Some(s),
        _ => None,
    });
    assert_eq!(
        wrap_up.expect("wrap-up").wrap_up_ms,
        Some(3_000),
        "the queue's wrap_up_ms"
    );
}

#[test]
fn a_ping_is_answered_with_its_nonce() {
    let mut w = World::new();
    w.ready(1, "alice");
    w.say(1, AgentMessage::Ping(proto::from_agent::Ping { nonce: 42 }));
    let out = w.outputs();
    assert!(
        out.contains(&Output::ToAgent {
            conn: 1,
            msg: GatewayMessage::Pong(proto::from_gateway::Pong { nonce: 42 })
        }),
        "{out:?}"
    );
}

#[test]
fn the_agents_hangup_ends_the_call_on_both_sides() {
    let mut w = World::new();
    w.ready(1, "alice");
    w.center.enqueue(w.now, 7, "support", "caller").unwrap();
    w.outputs();
    w.say(1, AgentMessage::Accept(Accept { call: call_id(7) }));
    w.outputs();
    w.say(1, AgentMessage::Hangup(Hangup { call: call_id(7) }));
    let out = w.outputs();
    assert!(out.contains(&Output::ToCall {
        call: 7,
        cmd: CallCommand::AgentHungUp
    }));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ToAgent {
            msg: GatewayMessage::CallEnded(_),
            ..
        }
    )));
    assert!(out.iter().any(|o| matches!(o, Output::ToAgent { msg: GatewayMessage::State(s), .. } if s.state == WireState::WrapUp)));
}

#[test]
fn a_caller_hanging_up_while_ringing_cancels_the_offer() {
    let mut w = World::new();
    w.ready(1, "alice");
    w.center.enqueue(w.now, 7, "support", "caller").unwrap();
    w.outputs();
    w.center.caller_gone(w.now, 7);
    let msgs = w.messages_for(1);
    assert!(msgs.iter().any(|m| matches!(m, GatewayMessage::OfferCancelled(c) if c.reason == CancelReason::CallerGone)), "{msgs:?}");
}

#[test]
fn a_second_login_is_refused_and_unknown_calls_are_errors() {
    let mut w = World::new();
    w.ready(1, "alice");
    assert_eq!(
        w.center.login(w.now, 2, "alice", &[], None),
        Err(RefusalReason::AlreadyLoggedIn)
    );
    w.say(
        1,
        AgentMessage::Accept(Accept {
            call: CallId::new("c999"),
        }),
    );
    let msgs = w.messages_for(1);
    assert!(msgs
        .iter()
        .any(|m| matches!(m, GatewayMessage::Error(e) if e.code == ErrorCode::UnknownCall)));
}

#[test]
fn a_ring_timeout_moves_on_and_sets_the_silent_agent_away() {
    let mut w = World::new();
    w.ready(1, "alice");
    w.center.enqueue(w.now, 7, "support", "caller").unwrap();
    w.outputs();
    w.advance(Duration::from_secs(10));
    let msgs = w.messages_for(1);
    assert!(
        msgs.iter().any(
            |m| matches!(m, GatewayMessage::OfferCancelled(c) if c.reason == CancelReason::Timeout)
        ),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| matches!(m, GatewayMessage::State(s) if s.state == WireState::Away)),
        "{msgs:?}"
    );
}

/// Alice (conn 1) talking to caller 7; returns the call id and Alice's resume token.
fn talking(w: &mut World) -> (CallId, String) {
    let token = w.ready(1, "alice");
    w.center.enqueue(w.now, 7, "support", "caller").unwrap();
    let offer = offer_of(&w.messages_for(1)).unwrap();
    w.say(
        1,
        AgentMessage::Accept(Accept {
            call: offer.call.clone(),
        }),
    );
    w.outputs();
    (offer.call, token)
}

#[test]
fn digits_travel_both_ways_between_caller_and_agent() {
    use crate::agent::protocol::from_agent::Dtmf;
    let mut w = World::new();
    let (call, _) = talking(&mut w);
    w.center.caller_dtmf(7, '5');
    assert_eq!(
        w.messages_for(1),
        vec![GatewayMessage::Dtmf(proto::from_gateway::Dtmf {
            call: call.clone(),
            digit: '5'
        })]
    );
    w.say(
        1,
        AgentMessage::Dtmf(Dtmf {
            call,
            digits: "12#".into(),
        }),
    );
    assert_eq!(
        w.outputs(),
        vec![Output::ToCall {
            call: 7,
            cmd: CallCommand::Dtmf {
                digits: "12#".into()
            }
        }]
    );
}

#[test]
fn only_the_agent_on_the_call_may_send_it_digits_or_hold_it() {
    use crate::agent::protocol::from_agent::{Dtmf, Hold};
    let mut w = World::new();
    let (call, _) = talking(&mut w);
    w.ready(2, "bob");
    w.say(
        2,
        AgentMessage::Dtmf(Dtmf {
            call: call.clone(),
            digits: "9".into(),
        }),
    );
    w.say(2, AgentMessage::Hold(Hold { call, on: true }));
    let out = w.outputs();
    assert!(
        !out.iter().any(|o| matches!(o, Output::ToCall { .. })),
        "{out:?}"
    );
    let errors = out
        .iter()
        .filter(|o| {
            matches!(o, Output::ToAgent { conn: 2, msg: GatewayMessage::Error(e) }
                if e.code == ErrorCode::InvalidState)
        })
        .count();
    assert_eq!(errors, 2);
}

#[test]
fn hold_is_confirmed_and_survives_a_resume() {
    use crate::agent::protocol::from_agent::Hold;
    let mut w = World::new();
    let (call, token) = talking(&mut w);
    w.say(
        1,
        AgentMessage::Hold(Hold {
            call: call.clone(),
            on: true,
        }),
    );
    let out = w.outputs();
    assert!(out.contains(&Output::ToCall {
        call: 7,
        cmd: CallCommand::Hold { on: true }
    }));
    assert!(out.contains(&Output::ToAgent {
        conn: 1,
        msg: GatewayMessage::Hold(proto::from_gateway::Hold {
            call: call.clone(),
            on: true
        })
    }));
    // Asking again changes nothing but is answered the same way.
    w.say(
        1,
        AgentMessage::Hold(Hold {
            call: call.clone(),
            on: true,
        }),
    );
    let out = w.outputs();
    assert!(!out.iter().any(|o| matches!(o, Output::ToCall { .. })));
    assert_eq!(out.len(), 1);

    w.center.connection_lost(w.now, 1);
    w.outputs();
    let out = w.login(2, "alice", Some(&token));
    let resumed = out.iter().find_map(|o| match o {
        Output::ToAgent {
            msg: GatewayMessage::Resumed(r),
            ..
        } => r.call.clone(),
        _ => None,
    });
    assert!(resumed.unwrap().held, "the resumed call is still held");
    let reconnect = out.iter().position(|o| {
        matches!(
            o,
            Output::ToCall {
                cmd: CallCommand::Reconnect { .. },
                ..
            }
        )
    });
    let hold = out.iter().position(|o| {
        *o == Output::ToCall {
            call: 7,
            cmd: CallCommand::Hold { on: true },
        }
    });
    assert!(
        reconnect.unwrap() < hold.unwrap(),
        "held again after the reconnect"
    );

    w.say(2, AgentMessage::Hold(Hold { call, on: false }));
    assert!(w.outputs().contains(&Output::ToCall {
        call: 7,
        cmd: CallCommand::Hold { on: false }
    }));
}

#[test]
fn stats_are_taken_from_the_agent_on_the_call_only() {
    use crate::agent::protocol::from_agent::Stats;
    let mut w = World::new();
    let (call, _) = talking(&mut w);
    let report = Stats {
        call: call.clone(),
        rtt_ms: 42,
        loss_pct: 1.5,
        jitter_ms: 3.0,
        packets_received: 500,
        packets_lost: 8,
    };
    w.say(1, AgentMessage::Stats(report.clone()));
    assert!(w.outputs().is_empty(), "a stats report needs no answer");
    assert_eq!(w.center.calls[&7].agent_view, Some(report.clone()));
    w.say(
        1,
        AgentMessage::Stats(Stats {
            call: CallId::new("c999"),
            ..report
        }),
    );
    assert!(matches!(
        &w.messages_for(1)[..],
        [GatewayMessage::Error(e)] if e.code == ErrorCode::UnknownCall
    ));
}

#[test]
fn a_reload_that_revokes_a_talking_agent_logs_it_out_and_requeues_its_caller() {
    let mut w = World::new();
    talking(&mut w);
    w.ready(2, "bob");
    w.outputs();
    let queues = queues();
    w.center
        .reconfigure(w.now, queues, MediaParams::default(), &|a| a != "alice");
    let out = w.outputs();
    assert!(
        out.contains(&Output::Close {
            conn: 1,
            code: proto::close_code::REVOKED,
            reason: "agent revoked",
        }),
        "{out:?}"
    );
    let to_call: Vec<&CallCommand> = out
        .iter()
        .filter_map(|o| match o {
            Output::ToCall { call: 7, cmd } => Some(cmd),
            _ => None,
        })
        .collect();
    assert_eq!(to_call.first(), Some(&&CallCommand::AgentLost), "{out:?}");
    assert!(to_call.contains(&&CallCommand::Requeued), "{out:?}");
    let events: Vec<EventKind> = std::iter::from_fn(|| w.center.poll_event()).collect();
    assert!(events.contains(&EventKind::Agent {
        agent: "alice".into(),
        event: AgentEvent::LoggedOut {
            reason: LogoutReason::Revoked
        }
    }));
    // Bob, still allowed, is offered the requeued caller.
    let to_bob: Vec<GatewayMessage> = out
        .iter()
        .filter_map(|o| match o {
            Output::ToAgent { conn: 2, msg } => Some(msg.clone()),
            _ => None,
        })
        .collect();
    assert!(offer_of(&to_bob).is_some(), "bob gets the caller: {out:?}");
}

/// The agent's resume and the end of its grace fall on the same instant: whichever the center
/// takes first, the call is either the agent's again or back in the queue, never both.
#[test]
fn a_resume_at_the_very_end_of_grace_gives_one_outcome_whichever_comes_first() {
    let to_call_7 = |out: &[Output]| -> Vec<CallCommand> {
        out.iter()
            .filter_map(|o| match o {
                Output::ToCall { call: 7, cmd } => Some(cmd.clone()),
                _ => None,
            })
            .collect()
    };

    // The grace timer first: the caller is requeued; the late token is a fresh login.
    let mut w = World::new();
    let (token, _, _) = w.agent_lost_mid_call();
    w.advance(GRACE);
    let mut out = w.outputs();
    out.extend(w.login(2, "alice", Some(&token)));
    assert_eq!(to_call_7(&out), [CallCommand::Requeued], "{out:?}");
    assert!(
        !out.iter().any(|o| matches!(
            o,
            Output::ToAgent {
                msg: GatewayMessage::Resumed(_),
                ..
            }
        )),
        "{out:?}"
    );
    // The caller waits once: the agent, available again, is offered that call.
    w.say(
        2,
        AgentMessage::SetState(SetState {
            state: RequestedState::Available,
            reason: None,
        }),
    );
    assert_eq!(
        offer_of(&w.messages_for(2)).map(|o| o.call),
        Some(call_id(7))
    );

    // The login first, at the same instant: the agent has its call back and no requeue follows.
    let mut w = World::new();
    let (token, flow, _) = w.agent_lost_mid_call();
    w.now += GRACE;
    let out = w.login(2, "alice", Some(&token));
    assert_eq!(
        to_call_7(&out),
        [CallCommand::Reconnect { conn: 2, flow }],
        "{out:?}"
    );
    w.center.handle_timeout(w.now);
    w.advance(GRACE * 2);
    assert_eq!(to_call_7(&w.outputs()), [], "the session is live again");
}

fn agent_events(w: &mut World) -> Vec<AgentEvent> {
    std::iter::from_fn(|| w.center.poll_event())
        .filter_map(|e| match e {
            EventKind::Agent { event, .. } => Some(event),
            _ => None,
        })
        .collect()
}

fn errors_for(w: &mut World, conn: ConnId) -> Vec<ErrorCode> {
    w.messages_for(conn)
        .into_iter()
        .filter_map(|m| match m {
            GatewayMessage::Error(e) => Some(e.code),
            _ => None,
        })
        .collect()
}

#[test]
fn a_disposition_names_the_last_call_during_it_or_its_wrap_up_and_no_later() {
    use crate::agent::protocol::from_agent::Disposition;
    let mut w = World::new();
    w.ready(1, "alice");
    w.center.enqueue(w.now, 7, "support", "caller").unwrap();
    let offer = offer_of(&w.messages_for(1)).unwrap();
    let code = |call: &str, code: &str| {
        AgentMessage::Disposition(Disposition {
            call: CallId::new(call),
            code: code.into(),
        })
    };
    w.say(1, code("c7", "early"));
    assert_eq!(
        errors_for(&mut w, 1),
        [ErrorCode::UnknownCall],
        "not answered yet"
    );
    w.say(1, AgentMessage::Accept(Accept { call: offer.call }));
    w.outputs();
    agent_events(&mut w);
    w.say(1, code("c7", "sale"));
    w.center.caller_gone(w.now, 7);
    w.outputs();
    w.say(1, code("c7", "callback"));
    w.say(1, code("c8", "other"));
    assert_eq!(
        errors_for(&mut w, 1),
        [ErrorCode::UnknownCall],
        "c8 is not hers"
    );
    let codes: Vec<(u64, String)> = agent_events(&mut w)
        .into_iter()
        .filter_map(|e| match e {
            AgentEvent::Disposition { call, code } => Some((call.0, code)),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [(7, "sale".into()), (7, "callback".into())]);
    // The wrap-up (3 s) runs out: too late for a code.
    w.advance(Duration::from_secs(4));
    w.outputs();
    w.say(1, code("c7", "late"));
    assert_eq!(errors_for(&mut w, 1), [ErrorCode::InvalidState]);
}

#[test]
fn going_away_carries_the_reason_and_a_new_reason_is_a_new_state_record() {
    let mut w = World::new();
    w.ready(1, "alice");
    agent_events(&mut w);
    let away = |reason: Option<&str>| {
        AgentMessage::SetState(SetState {
            state: RequestedState::Away,
            reason: reason.map(str::to_string),
        })
    };
    w.say(1, away(Some("lunch")));
    w.say(1, away(Some("lunch")));
    w.say(1, away(Some("training")));
    w.say(
        1,
        AgentMessage::SetState(SetState {
            state: RequestedState::Available,
            reason: Some("ignored".into()),
        }),
    );
    let states: Vec<(String, Option<String>)> = agent_events(&mut w)
        .into_iter()
        .filter_map(|e| match e {
            AgentEvent::StateChanged { state, reason } => Some((state.name().into(), reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            ("away".into(), Some("lunch".into())),
            ("away".into(), Some("training".into())),
            ("available".into(), None),
        ]
    );
}

#[test]
fn an_away_reason_ends_when_the_agent_is_back_and_does_not_label_a_later_missed_offer() {
    let mut w = World::new();
    w.ready(1, "alice");
    let set = |state, reason: Option<&str>| {
        AgentMessage::SetState(SetState {
            state,
            reason: reason.map(str::to_string),
        })
    };
    w.say(1, set(RequestedState::Away, Some("lunch")));
    w.say(1, set(RequestedState::Available, None));
    agent_events(&mut w);
    // An offer rings out: the queue sets her away, with no reason of hers.
    w.center.enqueue(w.now, 7, "support", "caller").unwrap();
    w.outputs();
    w.advance(Duration::from_secs(11));
    let aways: Vec<Option<String>> = agent_events(&mut w)
        .into_iter()
        .filter_map(|e| match e {
            AgentEvent::StateChanged {
                state: AgentState::Away,
                reason,
            } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(aways, [None]);
}

#[test]
fn a_blind_transfer_ends_the_agents_part_and_offers_the_caller_again_or_says_why_not() {
    use crate::agent::protocol::from_agent::Transfer;
    let mut w = World::new();
    w.ready(1, "alice");
    w.center.enqueue(w.now, 7, "support", "+4930111").unwrap();
    let offer = offer_of(&w.messages_for(1)).unwrap();
    w.say(
        1,
        AgentMessage::Accept(Accept {
            call: offer.call.clone(),
        }),
    );
    w.outputs();
    let transfer = |w: &mut World, to: &str| {
        w.say(
            1,
            AgentMessage::Transfer(Transfer {
                call: offer.call.clone(),
                to: to.into(),
            }),
        );
        w.outputs()
    };
    for (to, why) in [
        ("queue:nowhere", "unknown queue"),
        ("agent:bob", "not logged in"),
        ("agent:alice", "yourself"),
        ("+4930123456", "may not place outbound calls"),
    ] {
        let out = transfer(&mut w, to);
        let error = out.iter().find_map(|o| match o {
            Output::ToAgent {
                msg: GatewayMessage::Error(e),
                ..
            } => Some(e.message.clone()),
            _ => None,
        });
        assert!(
            error.as_deref().is_some_and(|m| m.contains(why)),
            "{to}: {out:?}"
        );
        assert!(
            !out.iter().any(|o| matches!(o, Output::ToCall { .. })),
            "{to}: the call goes on as it was"
        );
    }
    // bob logs in: the transfer to him is offered to him alone.
    w.ready(2, "bob");
    let out = transfer(&mut w, "agent:bob");
    assert!(out.iter().any(|o| matches!(o,
        Output::ToAgent { conn: 1, msg: GatewayMessage::CallEnded(e) }
            if e.reason == proto::EndReason::Transferred)));
    assert!(
        out.iter().any(|o| matches!(o,
        Output::ToCall { call: 7, cmd: CallCommand::Transferred { queue } } if queue == "support"))
    );
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::ToAgent {
                conn: 2,
                msg: GatewayMessage::Offer(_)
            }
        )),
        "{out:?}"
    );
    assert!(matches!(
        w.center.acd().agent_state("alice"),
        Some(AgentState::WrapUp { .. })
    ));
}

/// Supervisors: sam supervises `support`; alice (support) and bob (sales) are agents.
mod supervisors {
    use super::*;
    use crate::agent::protocol::from_agent::{Chat, Help, Leave, Supervise};
    use crate::agent::protocol::{AgentId, SuperviseMode};
    use crate::events::{AgentEvent, CallEvent, EventKind};

    const SAM: ConnId = 9;

    fn world() -> World {
        let text = r#"
            [support]
            skills = ["support"]
            first_announce_ms = 600000
            [sales]
            skills = ["sales"]
            first_announce_ms = 600000
        "#;
        let mut w = World::new();
        w.center.reconfigure(
            w.now,
            Arc::new(toml::from_str(text).unwrap()),
            MediaParams::default(),
            &|_| true,
        );
        w
    }

    /// sam logged in; alice talking to caller 7 in support. Returns sam's messages so far.
    fn talking(w: &mut World) -> Vec<GatewayMessage> {
        w.center
            .supervisor_login(SAM, "sam", &["support".to_string()])
            .unwrap();
        let mut sam = w.messages_for(SAM);
        w.ready(1, "alice");
        w.center.enqueue(w.now, 7, "support", "+4930111").unwrap();
        let offer = offer_of(&w.messages_for(1)).unwrap();
        w.say(1, AgentMessage::Accept(Accept { call: offer.call }));
        sam.extend(w.messages_for(SAM));
        sam
    }

    fn supervise(mode: SuperviseMode) -> AgentMessage {
        AgentMessage::Supervise(Supervise {
            call: CallId::new("c7"),
            mode,
        })
    }

    fn errors(msgs: &[GatewayMessage]) -> Vec<(ErrorCode, String)> {
        msgs.iter()
            .filter_map(|m| match m {
                GatewayMessage::Error(e) => Some((e.code, e.message.clone())),
                _ => None,
            })
            .collect()
    }

    fn refusals(w: &mut World) -> Vec<(String, String)> {
        std::iter::from_fn(|| w.center.poll_event())
            .filter_map(|e| match e {
                EventKind::Agent {
                    agent,
                    event: AgentEvent::Refused { what, .. },
                } => Some((agent, what)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_supervisor_takes_no_calls_and_sees_its_queues_calls_and_agents() {
        let mut w = world();
        let sam = talking(&mut w);
        let welcome = sam.iter().find_map(|m| match m {
            GatewayMessage::Welcome(w) => Some(w.clone()),
            _ => None,
        });
        assert_eq!(welcome.unwrap().supervises, vec!["support".to_string()]);
        assert!(offer_of(&sam).is_none(), "no offer for a supervisor");
        let live = sam
            .iter()
            .rev()
            .find_map(|m| match m {
                GatewayMessage::Live(l) => Some(l.clone()),
                _ => None,
            })
            .expect("live views pushed");
        assert_eq!(live.calls.len(), 1);
        assert_eq!(live.calls[0].state, "talking");
        assert_eq!(live.calls[0].agent, Some(AgentId::new("alice")));
        assert_eq!(live.agents.len(), 1);
        assert_eq!(live.agents[0].state, WireState::Talking);
        // A call in sales is none of its business.
        w.center.enqueue(w.now, 8, "sales", "+4930222").unwrap();
        let after = w.messages_for(SAM);
        assert!(
            !after.iter().any(|m| matches!(m, GatewayMessage::Live(_))),
            "nothing changed in support: {after:?}"
        );
    }

    #[test]
    fn monitor_then_whisper_then_leave_route_one_flow_and_tell_the_call() {
        let mut w = world();
        talking(&mut w);
        w.say(SAM, supervise(SuperviseMode::Monitor));
        let out = w.outputs();
        let flow = out
            .iter()
            .find_map(|o| match o {
                Output::RouteSupervisor {
                    conn: SAM,
                    flow,
                    call: 7,
                } => Some(*flow),
                _ => None,
            })
            .expect("the supervisor's flow is routed to the call");
        assert!(out.contains(&Output::ToCall {
            call: 7,
            cmd: CallCommand::Supervise {
                supervisor: "sam".into(),
                mode: SuperviseMode::Monitor
            }
        }));
        assert!(out.iter().any(|o| matches!(o, Output::ToAgent {
            conn: SAM,
            msg: GatewayMessage::Supervising(s)
        } if s.flow.0 == flow && s.mode == SuperviseMode::Monitor)));
        w.say(SAM, supervise(SuperviseMode::Whisper));
        let out = w.outputs();
        assert!(
            !out.iter()
                .any(|o| matches!(o, Output::RouteSupervisor { .. })),
            "a mode change keeps the flow"
        );
        assert!(out.iter().any(|o| matches!(
            o,
            Output::ToCall {
                cmd: CallCommand::Supervise {
                    mode: SuperviseMode::Whisper,
                    ..
                },
                ..
            }
        )));
        w.say(
            SAM,
            AgentMessage::Leave(Leave {
                call: CallId::new("c7"),
            }),
        );
        let out = w.outputs();
        assert!(out.contains(&Output::Unroute { conn: SAM, flow }));
        assert!(out.contains(&Output::ToCall {
            call: 7,
            cmd: CallCommand::Unsupervise
        }));
        assert!(out.iter().any(|o| matches!(o, Output::ToAgent {
            msg: GatewayMessage::SupervisionEnded(e),
            ..
        } if e.reason == "left")));
    }

    #[test]
    fn the_end_of_the_call_takes_the_supervisor_out() {
        let mut w = world();
        talking(&mut w);
        w.say(SAM, supervise(SuperviseMode::Barge));
        w.outputs();
        w.center.caller_gone(w.now, 7);
        let out = w.outputs();
        assert!(out.iter().any(|o| matches!(o, Output::ToAgent {
            conn: SAM,
            msg: GatewayMessage::SupervisionEnded(e)
        } if e.reason == "call_ended")));
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Unroute { conn: SAM, .. })));
    }

    #[test]
    fn a_queue_not_supervised_and_a_supervisors_command_from_an_agent_are_refused() {
        let mut w = world();
        talking(&mut w);
        w.ready(2, "bob-sales");
        w.center.enqueue(w.now, 8, "sales", "+4930222").unwrap();
        w.outputs();
        refusals(&mut w);
        w.say(
            SAM,
            AgentMessage::Supervise(Supervise {
                call: CallId::new("c8"),
                mode: SuperviseMode::Monitor,
            }),
        );
        let sam = w.messages_for(SAM);
        let errs = errors(&sam);
        assert_eq!(errs.len(), 1, "{sam:?}");
        assert_eq!(errs[0].0, ErrorCode::NotPermitted);
        assert!(errs[0].1.contains("sales") && errs[0].1.contains("does not supervise"));
        assert_eq!(refusals(&mut w), vec![("sam".into(), "supervise".into())]);

        w.say(1, supervise(SuperviseMode::Barge));
        let alice = w.messages_for(1);
        let errs = errors(&alice);
        assert_eq!(errs[0].0, ErrorCode::NotPermitted);
        assert!(errs[0].1.contains("not a supervisor"), "{errs:?}");
        assert_eq!(refusals(&mut w), vec![("alice".into(), "supervise".into())]);
    }

    #[test]
    fn help_and_chat_reach_the_supervisors_of_the_agents_queue_only() {
        let mut w = world();
        talking(&mut w);
        w.center
            .supervisor_login(10, "sue", &["sales".to_string()])
            .unwrap();
        w.outputs();
        std::iter::from_fn(|| w.center.poll_event()).for_each(drop);
        w.say(
            1,
            AgentMessage::Help(Help {
                call: CallId::new("c7"),
                note: Some("refund?".into()),
            }),
        );
        let out = w.outputs();
        let told: Vec<ConnId> = out
            .iter()
            .filter_map(|o| match o {
                Output::ToAgent {
                    conn,
                    msg: GatewayMessage::HelpRequested(h),
                } if h.agent.as_str() == "alice" && h.note.as_deref() == Some("refund?") => {
                    Some(*conn)
                }
                _ => None,
            })
            .collect();
        assert_eq!(told, vec![SAM], "sam supervises support; sue does not");
        let events: Vec<EventKind> = std::iter::from_fn(|| w.center.poll_event()).collect();
        assert!(events.iter().any(|e| matches!(
            e,
            EventKind::Call {
                call: 7,
                event: CallEvent::HelpRequested { supervisors: 1, .. }
            }
        )));

        w.say(
            1,
            AgentMessage::Chat(Chat {
                to: None,
                call: None,
                text: "can you listen in?".into(),
            }),
        );
        let sam = w.messages_for(SAM);
        assert!(sam.iter().any(|m| matches!(m,
            GatewayMessage::Chat(c) if c.from.as_str() == "alice" && c.text == "can you listen in?")));
        w.say(
            SAM,
            AgentMessage::Chat(Chat {
                to: Some(AgentId::new("alice")),
                call: Some(CallId::new("c7")),
                text: "on my way".into(),
            }),
        );
        let alice = w.messages_for(1);
        assert!(alice.iter().any(|m| matches!(m,
            GatewayMessage::Chat(c) if c.from.as_str() == "sam" && c.text == "on my way")));
        let chats: Vec<(String, Vec<String>)> = std::iter::from_fn(|| w.center.poll_event())
            .filter_map(|e| match e {
                EventKind::Agent {
                    agent,
                    event: AgentEvent::Chat { to, .. },
                } => Some((agent, to)),
                _ => None,
            })
            .collect();
        assert_eq!(
            chats,
            vec![
                ("alice".into(), vec!["sam".into()]),
                ("sam".into(), vec!["alice".into()])
            ]
        );
        // sue may not chat to alice, who is not in sales.
        w.say(
            10,
            AgentMessage::Chat(Chat {
                to: Some(AgentId::new("alice")),
                call: None,
                text: "hi".into(),
            }),
        );
        let errs = errors(&w.messages_for(10));
        assert_eq!(errs[0].0, ErrorCode::NotPermitted, "{errs:?}");
    }
}

#[test]
fn a_supervisor_revoked_by_a_reload_is_closed_and_out_of_its_call() {
    use crate::agent::protocol::from_agent::Supervise;
    use crate::agent::protocol::SuperviseMode;
    let mut w = World::new();
    w.center
        .supervisor_login(9, "sam", &["support".to_string()])
        .unwrap();
    w.ready(1, "alice");
    w.center.enqueue(w.now, 7, "support", "+4930111").unwrap();
    let offer = offer_of(&w.messages_for(1)).unwrap();
    w.say(1, AgentMessage::Accept(Accept { call: offer.call }));
    w.say(
        9,
        AgentMessage::Supervise(Supervise {
            call: CallId::new("c7"),
            mode: SuperviseMode::Monitor,
        }),
    );
    w.outputs();
    w.center
        .reconfigure(w.now, queues(), MediaParams::default(), &|id| id != "sam");
    let out = w.outputs();
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Close { conn: 9, .. })));
    assert!(out.contains(&Output::ToCall {
        call: 7,
        cmd: CallCommand::Unsupervise
    }));
}
