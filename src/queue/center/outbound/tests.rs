//! Agents' calls on the center's side, in virtual time: a dial becomes a placed call on the
//! right trunk, its progress reaches the agent, its end frees the agent, refusals say why.
use std::collections::BTreeMap;

use super::*;
use crate::agent::protocol::from_agent::{Accept, Dial, Hangup, SetState};
use crate::agent::protocol::TransferStage;
use crate::agent::protocol::{AgentMessage, MediaParams, RequestedState};
use crate::queue::center::CallCommand;
use crate::queue::QueueConfig;

fn queues() -> Arc<BTreeMap<String, QueueConfig>> {
    let text = r#"
        [support]
        skills = ["support"]
        ring_timeout_ms = 10000
        wrap_up_ms = 3000
        max_wait_ms = 600000
        first_announce_ms = 600000
        caller_id = "+4930999000"
    "#;
    Arc::new(toml::from_str(text).unwrap())
}

fn settings(may_dial: bool) -> OutboundSettings {
    let config: crate::config::Config = toml::from_str(
        r#"
        [outbound]
        country_code = "49"
        national_prefix = "0"
        allow = ["+49", "+33"]

        [[trunk]]
        name = "home"
        allow = ["192.0.2.1"]
        route = "ivr:main"
        [trunk.outbound]
        proxy = "sip:carrier.example"
        caller_id = "+4930555000"

        [[trunk]]
        name = "france"
        allow = ["192.0.2.2"]
        route = "ivr:main"
        [trunk.outbound]
        proxy = "sip:fr.example"
        prefixes = ["+33"]
        caller_id = "+4930555000"
        number_format = "national"
        "#,
    )
    .unwrap();
    let mut s = OutboundSettings::from_config(&config);
    s.agents
        .insert("alice".into(), (may_dial, Some("+4930555111".into())));
    s
}

struct World {
    center: Center,
    now: Instant,
}

impl World {
    fn new(may_dial: bool) -> Self {
        let mut center = Center::new(
            queues(),
            Duration::from_secs(15),
            MediaParams::default(),
            rand::SeedableRng::seed_from_u64(7),
        );
        center.set_outbound(CallIds::default(), settings(may_dial));
        center.set_day(20_000);
        let mut world = World {
            center,
            now: Instant::now(),
        };
        world
            .center
            .login(world.now, 1, "alice", &["support".to_string()], None)
            .unwrap();
        world.say(AgentMessage::SetState(SetState {
            state: RequestedState::Available,
            reason: None,
        }));
        world.outputs();
        world
    }

    fn say(&mut self, msg: AgentMessage) {
        self.center.agent_message(self.now, 1, msg);
    }

    fn dial(&mut self, number: &str) -> Vec<Output> {
        self.say(AgentMessage::Dial(Dial {
            number: Some(number.into()),
            callback: None,
            queue: None,
        }));
        self.outputs()
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.center.poll_output()).collect()
    }

    fn state(&self) -> Option<AgentState> {
        self.center.acd().agent_state("alice")
    }
}

fn placed(out: &[Output]) -> Option<&PlaceCall> {
    out.iter().find_map(|o| match o {
        Output::Place(p) => Some(&**p),
        _ => None,
    })
}

fn to_agent(out: &[Output]) -> Vec<&GatewayMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::ToAgent { msg, .. } => Some(msg),
            _ => None,
        })
        .collect()
}

fn dial_failed(out: &[Output]) -> Option<&proto::from_gateway::DialFailed> {
    to_agent(out).into_iter().find_map(|m| match m {
        GatewayMessage::DialFailed(f) => Some(f),
        _ => None,
    })
}

#[test]
fn a_dial_is_placed_on_the_trunk_of_its_number_with_the_agents_caller_id() {
    let mut w = World::new(true);
    let out = w.dial("030 1234567");
    let place = placed(&out).expect("a call to place");
    assert_eq!(place.plan.number.as_str(), "+49301234567");
    assert_eq!(place.plan.trunk, "home");
    assert_eq!(place.plan.caller_id, "+4930555111", "the agent's own");
    // The agent's media is routed before the call is placed, and the agent is told.
    let route = out.iter().position(|o| matches!(o, Output::Route { .. }));
    let place_at = out.iter().position(|o| matches!(o, Output::Place(_)));
    assert!(route < place_at, "{out:?}");
    assert!(
        to_agent(&out).iter().any(|m| matches!(m,
        GatewayMessage::Dialing(d) if d.number == "+49301234567" && d.call == call_id(place.call)))
    );
    assert_eq!(
        w.state(),
        Some(AgentState::Talking {
            call: crate::queue::CallRef(place.call)
        })
    );
    // A French number goes to the French trunk, written the national way.
    let mut w = World::new(true);
    let out = w.dial("+33 1 23 45 67 89");
    let place = placed(&out).unwrap();
    assert_eq!(
        (place.plan.trunk.as_str(), place.plan.dialled.as_str()),
        ("france", "0033123456789")
    );
}

#[test]
fn while_it_dials_the_agent_gets_no_offers_and_a_refusal_frees_it_for_them() {
    let mut w = World::new(true);
    let out = w.dial("030 1234567");
    let call = placed(&out).unwrap().call;
    w.center
        .enqueue(w.now, 900, "support", "+4930111222")
        .unwrap();
    assert!(
        !to_agent(&w.outputs())
            .iter()
            .any(|m| matches!(m, GatewayMessage::Offer(_))),
        "no offer while dialling"
    );
    w.center.placed_progress(w.now, call, Progress::Ringing);
    assert!(matches!(
        to_agent(&w.outputs())[..],
        [GatewayMessage::Progress(proto::from_gateway::Progress {
            early_media: false,
            ..
        })]
    ));
    w.center.placed_ended(w.now, call, Some(Unanswered::Busy));
    let out = w.outputs();
    let failed = dial_failed(&out).expect("dial_failed");
    assert_eq!(
        (failed.call.clone(), failed.reason),
        (Some(call_id(call)), DialFailure::Busy)
    );
    assert!(out.iter().any(|o| matches!(o, Output::Unroute { .. })));
    // Available again, with no wrap-up after an unanswered call: the waiting caller rings.
    assert!(
        to_agent(&out)
            .iter()
            .any(|m| matches!(m, GatewayMessage::Offer(_))),
        "{out:?}"
    );
}

#[test]
fn an_answered_call_ends_in_the_agents_wrap_up_and_back_to_away_if_it_was_away() {
    let mut w = World::new(true);
    w.say(AgentMessage::SetState(SetState {
        state: RequestedState::Away,
        reason: Some("callbacks".into()),
    }));
    w.outputs();
    w.say(AgentMessage::Dial(Dial {
        number: Some("030 1234567".into()),
        callback: None,
        queue: Some("support".into()),
    }));
    let out = w.outputs();
    let call = placed(&out).unwrap().call;
    assert_eq!(
        placed(&out).unwrap().plan.caller_id,
        "+4930999000",
        "the queue's"
    );
    w.center.placed_progress(w.now, call, Progress::Answered);
    assert!(to_agent(&w.outputs())
        .iter()
        .any(|m| matches!(m, GatewayMessage::Answered(_))));
    // The callee hangs up: the agent is told and wraps up as the queue says, then is away.
    w.center.placed_ended(w.now, call, None);
    let out = w.outputs();
    assert!(to_agent(&out)
        .iter()
        .any(|m| matches!(m, GatewayMessage::CallEnded(_))));
    assert!(matches!(w.state(), Some(AgentState::WrapUp { .. })));
    let later = w.now + Duration::from_secs(4);
    w.center.handle_timeout(later);
    assert_eq!(w.state(), Some(AgentState::Away));
}

#[test]
fn a_callback_calls_the_caller_of_an_earlier_call() {
    let (mut w, call) = talking_to_a_caller(true);
    w.say(AgentMessage::Hangup(Hangup { call: call.clone() }));
    w.outputs();
    w.say(AgentMessage::Dial(Dial {
        number: None,
        callback: Some(call),
        queue: None,
    }));
    let out = w.outputs();
    let place = placed(&out).expect("a call to place");
    assert_eq!(place.plan.number.as_str(), "+4930111222");
    assert_eq!(
        place.plan.caller_id, "+4930999000",
        "the original queue's caller id"
    );
    // A call the gateway never had is no callback.
    let mut w = World::new(true);
    w.say(AgentMessage::Dial(Dial {
        number: None,
        callback: Some(call_id(4242)),
        queue: None,
    }));
    let out = w.outputs();
    assert_eq!(
        dial_failed(&out).unwrap().reason,
        DialFailure::InvalidNumber
    );
}

#[test]
fn refusals_say_why_and_are_events() {
    let mut w = World::new(false);
    let out = w.dial("030 1234567");
    assert!(placed(&out).is_none());
    assert_eq!(dial_failed(&out).unwrap().reason, DialFailure::NotPermitted);
    let events: Vec<_> = std::iter::from_fn(|| w.center.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(e,
        crate::events::EventKind::Agent { event: AgentEvent::DialRefused { reason, .. }, .. }
            if reason == "not_permitted")));
    let mut w = World::new(true);
    for (number, reason) in [
        ("0044 20 7946 0958", DialFailure::Limit),
        ("0900 123456", DialFailure::Limit),
        ("hello", DialFailure::InvalidNumber),
    ] {
        let out = w.dial(number);
        assert_eq!(
            dial_failed(&out).map(|f| f.reason),
            Some(reason),
            "{number}"
        );
        assert_eq!(
            w.state(),
            Some(AgentState::Available),
            "{number}: nothing changed"
        );
    }
    // On a call already: refused, the call goes on.
    let call = placed(&w.dial("030 1234567")).unwrap().call;
    let out = w.dial("030 7654321");
    let failed = dial_failed(&out).unwrap();
    assert_eq!(failed.reason, DialFailure::NotPermitted);
    assert!(failed.message.contains("on a call"), "{}", failed.message);
    assert_eq!(
        w.state(),
        Some(AgentState::Talking {
            call: crate::queue::CallRef(call)
        })
    );
}

/// alice talking to the caller of call 900 in support.
fn talking_to_a_caller(may_dial: bool) -> (World, proto::CallId) {
    let mut w = World::new(may_dial);
    w.center
        .enqueue(w.now, 900, "support", "+4930111222")
        .unwrap();
    let offer = to_agent(&w.outputs())
        .into_iter()
        .find_map(|m| match m {
            GatewayMessage::Offer(o) => Some(o.clone()),
            _ => None,
        })
        .unwrap();
    w.say(AgentMessage::Accept(Accept {
        call: offer.call.clone(),
    }));
    w.outputs();
    (w, offer.call)
}

fn transfer_out(out: &[Output]) -> Option<(&PlaceCall, bool)> {
    out.iter().find_map(|o| match o {
        Output::ToCall {
            call: 900,
            cmd: CallCommand::TransferOut { onward, attended },
        } => Some((&**onward, *attended)),
        _ => None,
    })
}

fn transfer_states(out: &[Output]) -> Vec<proto::from_gateway::TransferState> {
    to_agent(out)
        .into_iter()
        .filter_map(|m| match m {
            GatewayMessage::TransferState(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_transfer_to_a_number_is_a_call_out_and_ends_the_agents_part_when_joined() {
    let (mut w, call) = talking_to_a_caller(true);
    w.say(AgentMessage::Transfer(proto::from_agent::Transfer {
        call: call.clone(),
        to: "0301234567".into(),
    }));
    let out = w.outputs();
    let (place, attended) = transfer_out(&out).expect("the call is told to transfer");
    assert!(!attended);
    assert_eq!(place.plan.number.as_str(), "+49301234567");
    assert_eq!(place.plan.trunk, "home");
    assert_eq!(place.plan.caller_id, "+4930999000", "the queue's caller id");
    let onward = place.call;
    assert_ne!(onward, 900, "the target's leg has its own reference");
    assert_eq!(w.center.outbound.limits.trunk_calls("home"), 1, "counted");
    let states = transfer_states(&out);
    assert_eq!(states[0].state, TransferStage::Dialing);
    assert_eq!(states[0].number, "+49301234567");
    // A second transfer, or one to a queue, waits for this one.
    w.say(AgentMessage::Transfer(proto::from_agent::Transfer {
        call: call.clone(),
        to: "queue:support".into(),
    }));
    assert!(transfer_out(&w.outputs()).is_none());
    w.center.transfer_progress(w.now, 900, Progress::Ringing);
    assert_eq!(
        transfer_states(&w.outputs())[0].state,
        TransferStage::Ringing
    );
    w.center.transfer_progress(w.now, 900, Progress::Answered);
    w.center.transfer_done(w.now, 900);
    let out = w.outputs();
    assert!(to_agent(&out).iter().any(|m| matches!(m,
        GatewayMessage::CallEnded(e) if e.reason == proto::EndReason::Transferred)));
    assert!(matches!(w.state(), Some(AgentState::WrapUp { .. })));
    let events: Vec<_> = std::iter::from_fn(|| w.center.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(e,
        crate::events::EventKind::Call { call: 900, event: crate::events::CallEvent::Transferred { to, .. } }
            if to == "+49301234567")));
    // The target's leg stays counted until it ends.
    assert_eq!(w.center.outbound.limits.trunk_calls("home"), 1);
    w.center
        .onward_ended(w.now + Duration::from_secs(60), 900, onward, None);
    assert_eq!(w.center.outbound.limits.trunk_calls("home"), 0);
    assert!(
        w.center.outbound.limits.minutes_today(w.now) >= 1,
        "its minutes count"
    );
}

#[test]
fn a_consult_that_fails_or_is_returned_gives_the_agent_its_caller_back() {
    let (mut w, call) = talking_to_a_caller(true);
    w.say(AgentMessage::Consult(proto::from_agent::Consult {
        call: call.clone(),
        to: "0301234567".into(),
    }));
    let out = w.outputs();
    let (place, attended) = transfer_out(&out).unwrap();
    assert!(attended);
    let onward = place.call;
    // The caller hears music already: no hold now.
    w.say(AgentMessage::Hold(proto::from_agent::Hold {
        call: call.clone(),
        on: true,
    }));
    let out = w.outputs();
    assert!(to_agent(&out).iter().any(|m| matches!(m,
        GatewayMessage::Error(e) if e.message.contains("transfer is under way"))));
    assert!(!out.iter().any(|o| matches!(o, Output::ToCall { .. })));
    // Nothing to complete before the target answers.
    w.say(AgentMessage::CompleteTransfer(
        proto::from_agent::CompleteTransfer { call: call.clone() },
    ));
    let out = w.outputs();
    assert!(
        !out.iter().any(|o| matches!(o, Output::ToCall { .. })),
        "{out:?}"
    );
    // Busy: the agent hears why and has its caller.
    w.center
        .onward_ended(w.now, 900, onward, Some(Unanswered::Busy));
    let states = transfer_states(&w.outputs());
    assert_eq!(states[0].state, TransferStage::Ended);
    assert_eq!(states[0].reason, Some(DialFailure::Busy));
    assert!(matches!(w.state(), Some(AgentState::Talking { .. })));
    assert_eq!(w.center.outbound.limits.trunk_calls("home"), 0);
    // Again, answered, and the agent returns to the caller.
    w.say(AgentMessage::Consult(proto::from_agent::Consult {
        call: call.clone(),
        to: "0301234567".into(),
    }));
    let onward = transfer_out(&w.outputs()).unwrap().0.call;
    w.center.transfer_progress(w.now, 900, Progress::Answered);
    w.say(AgentMessage::ReturnToCaller(
        proto::from_agent::ReturnToCaller { call: call.clone() },
    ));
    assert!(w.outputs().iter().any(|o| matches!(
        o,
        Output::ToCall {
            call: 900,
            cmd: CallCommand::ReturnToCaller
        }
    )));
    w.center.onward_ended(w.now, 900, onward, None);
    assert_eq!(transfer_states(&w.outputs())[0].state, TransferStage::Ended);
    // Or answered and completed.
    w.say(AgentMessage::Consult(proto::from_agent::Consult {
        call: call.clone(),
        to: "0301234567".into(),
    }));
    w.outputs();
    w.center.transfer_progress(w.now, 900, Progress::Answered);
    w.say(AgentMessage::CompleteTransfer(
        proto::from_agent::CompleteTransfer { call },
    ));
    assert!(w.outputs().iter().any(|o| matches!(
        o,
        Output::ToCall {
            call: 900,
            cmd: CallCommand::CompleteTransfer
        }
    )));
}

#[test]
fn an_agent_who_may_not_dial_may_not_transfer_out_and_limits_apply() {
    let (mut w, call) = talking_to_a_caller(false);
    w.say(AgentMessage::Transfer(proto::from_agent::Transfer {
        call: call.clone(),
        to: "0301234567".into(),
    }));
    let out = w.outputs();
    assert!(transfer_out(&out).is_none());
    assert!(to_agent(&out).iter().any(|m| matches!(m,
        GatewayMessage::Error(e) if e.message.contains("may not place outbound calls"))));
    let events: Vec<_> = std::iter::from_fn(|| w.center.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(e,
        crate::events::EventKind::Agent { event: AgentEvent::DialRefused { reason, .. }, .. }
            if reason == "not_permitted")));
    let (mut w, call) = talking_to_a_caller(true);
    for number in ["0900 123456", "0044 20 7946 0958"] {
        w.say(AgentMessage::Consult(proto::from_agent::Consult {
            call: call.clone(),
            to: number.into(),
        }));
        let out = w.outputs();
        assert!(transfer_out(&out).is_none(), "{number}");
        assert!(to_agent(&out).iter().any(|m| matches!(m,
            GatewayMessage::Error(e) if e.message.contains("transfer to"))));
    }
    assert!(matches!(w.state(), Some(AgentState::Talking { .. })));
}
