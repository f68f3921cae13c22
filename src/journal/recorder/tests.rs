use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::{Recorder, MAX_WRAP_UP};
use crate::events::{
    AgentEvent, CallEvent, CallQuality, EndCause, Event, EventKind, LogoutReason, Side,
};
use crate::journal::RecordType;
use crate::queue::{AgentState, CallRef};
use crate::route::Destination;

const CALL: u64 = 42;

/// Drives a recorder with events at given seconds and keeps what it wrote.
struct Script {
    recorder: Recorder,
    records: Vec<(RecordType, Value)>,
}

impl Script {
    fn new() -> Self {
        let levels = BTreeMap::from([
            ("support".to_string(), Duration::from_secs(20)),
            ("sales".to_string(), Duration::from_secs(30)),
        ]);
        Self {
            recorder: Recorder::new("r1", levels),
            records: Vec::new(),
        }
    }

    fn at(secs: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_595_000) + Duration::from_secs_f64(secs)
    }

    fn call(&mut self, secs: f64, event: CallEvent) {
        self.publish(secs, EventKind::Call { call: CALL, event });
    }

    fn agent(&mut self, secs: f64, agent: &str, event: AgentEvent) {
        let agent = agent.to_string();
        self.publish(secs, EventKind::Agent { agent, event });
    }

    fn state(&mut self, secs: f64, agent: &str, state: AgentState) {
        self.agent(
            secs,
            agent,
            AgentEvent::StateChanged {
                state,
                reason: None,
            },
        );
    }

    fn publish(&mut self, secs: f64, what: EventKind) {
        let event = Event {
            at: Self::at(secs),
            what,
        };
        for out in self.recorder.record(&event) {
            self.records.push((out.kind, out.data));
        }
    }

    fn arrive(&mut self) {
        self.call(
            0.0,
            CallEvent::Arrived {
                trunk: "carrier".into(),
                sip_call_id: "abc@carrier".into(),
                caller: "+4930111".into(),
                callee: "+4930999".into(),
            },
        );
    }

    fn end(&mut self, secs: f64, side: Side, cause: EndCause, answered: bool) {
        let event = CallEvent::Ended {
            side,
            cause,
            answered,
            quality: Box::<CallQuality>::default(),
        };
        self.call(secs, event);
    }

    fn of(&self, kind: RecordType) -> Vec<&Value> {
        self.records
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| v)
            .collect()
    }

    fn only_cdr(&self) -> &Value {
        match &self.of(RecordType::Cdr)[..] {
            [cdr] => cdr,
            other => panic!("one CDR expected, got {other:?}"),
        }
    }
}

fn talking() -> AgentState {
    AgentState::Talking {
        call: CallRef(CALL),
    }
}

fn wrap_up() -> AgentState {
    AgentState::WrapUp {
        until: Instant::now(),
    }
}

#[test]
fn an_answered_call_gets_its_cdr_once_the_agent_has_wrapped_up() {
    let mut s = Script::new();
    s.arrive();
    s.call(0.5, CallEvent::Answered);
    s.call(
        0.5,
        CallEvent::EnteredMenu {
            menu: "main".into(),
        },
    );
    s.call(
        4.0,
        CallEvent::LeftIvr {
            digits: "1".into(),
            to: Destination::Queue {
                name: "support".into(),
            },
        },
    );
    s.call(
        4.0,
        CallEvent::Queued {
            queue: "support".into(),
            position: 2,
        },
    );
    s.call(
        10.0,
        CallEvent::Offered {
            agent: "alice".into(),
        },
    );
    s.state(
        10.0,
        "alice",
        AgentState::Ringing {
            call: CallRef(CALL),
        },
    );
    s.call(
        13.0,
        CallEvent::AgentAnswered {
            agent: "alice".into(),
        },
    );
    s.state(13.0, "alice", talking());
    let code = |code: &str| AgentEvent::Disposition {
        call: CallRef(CALL),
        code: code.into(),
    };
    s.agent(15.0, "alice", code("sale"));
    s.call(20.0, CallEvent::Held { on: true });
    s.call(35.0, CallEvent::Held { on: false });
    s.end(73.0, Side::Caller, EndCause::CallerHungUp, true);
    assert!(
        s.of(RecordType::Cdr).is_empty(),
        "the wrap-up is part of the call"
    );
    s.state(73.1, "alice", wrap_up());
    // Changed during the wrap-up: the last code given counts.
    s.agent(80.0, "alice", code("callback"));
    s.state(103.1, "alice", AgentState::Available);
    s.agent(104.0, "alice", code("too_late"));

    let cdr = s.only_cdr();
    assert_eq!(cdr["call"], "r1-42");
    assert_eq!(cdr["sip_call_id"], "abc@carrier");
    assert_eq!(cdr["caller"], "+4930111");
    assert_eq!(cdr["arrived_at"], "2026-12-06T22:10:00.000Z");
    assert_eq!(cdr["answered_at"], "2026-12-06T22:10:00.500Z");
    assert_eq!(cdr["agent_answered_at"], "2026-12-06T22:10:13.000Z");
    assert_eq!(cdr["ivr"]["menus"], serde_json::json!(["main"]));
    assert_eq!(cdr["ivr"]["digits"], "1");
    assert_eq!(cdr["ivr"]["to"], "queue:support");
    assert_eq!(cdr["queues"][0]["position"], 2);
    assert_eq!(cdr["queues"][0]["waited_ms"], 9000);
    assert_eq!(cdr["queues"][0]["outcome"], "answered");
    assert_eq!(cdr["queues"][0]["within_service_level"], true);
    assert_eq!(cdr["offers"][0]["ring_ms"], 3000);
    assert_eq!(cdr["agent"], "alice");
    assert_eq!(cdr["talk_ms"], 60_000);
    assert_eq!(cdr["hold_ms"], 15_000);
    assert_eq!(cdr["wrap_up_ms"], 30_000);
    assert_eq!(cdr["duration_ms"], 73_000);
    assert_eq!(cdr["ended_by"], "caller");
    assert_eq!(cdr["end_cause"], "caller_hung_up");
    assert_eq!(cdr["disposition"], "callback");
    assert!(cdr["quality"]["carrier"].is_object());

    let outcomes = s.of(RecordType::QueueOutcome);
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0]["outcome"], "answered");
    assert_eq!(outcomes[0]["agent"], "alice");
    assert_eq!(outcomes[0]["service_level_ms"], 20_000);
    // Every event is a record of its own too, in order.
    let events: Vec<_> = s
        .of(RecordType::CallEvent)
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events,
        [
            "arrived",
            "answered",
            "entered_menu",
            "left_ivr",
            "queued",
            "offered",
            "agent_answered",
            "held",
            "held",
            "ended"
        ]
    );
    assert_eq!(s.recorder.open_calls(), 0);
}

#[test]
fn a_caller_who_hangs_up_waiting_is_abandoned_and_judged_against_the_service_level() {
    let mut s = Script::new();
    s.arrive();
    s.call(0.2, CallEvent::Answered);
    s.call(
        0.2,
        CallEvent::Queued {
            queue: "support".into(),
            position: 1,
        },
    );
    s.call(
        5.0,
        CallEvent::Offered {
            agent: "bob".into(),
        },
    );
    s.end(25.2, Side::Caller, EndCause::CallerHungUp, true);
    let cdr = s.only_cdr();
    assert_eq!(cdr["queues"][0]["outcome"], "abandoned");
    assert_eq!(cdr["queues"][0]["waited_ms"], 25_000);
    assert_eq!(cdr["queues"][0]["within_service_level"], false);
    assert_eq!(cdr["offers"][0]["answered"], false);
    assert_eq!(cdr["offers"][0]["ring_ms"], 20_200);
    assert_eq!(cdr["agent"], Value::Null);
    assert_eq!(cdr["wrap_up_ms"], Value::Null);
    let outcomes = s.of(RecordType::QueueOutcome);
    assert_eq!(outcomes[0]["outcome"], "abandoned");
    assert_eq!(outcomes[0]["agent"], Value::Null);
}

#[test]
fn an_overflow_then_a_drain_are_two_waits_with_their_own_outcomes() {
    let mut s = Script::new();
    s.arrive();
    s.call(
        0.0,
        CallEvent::Queued {
            queue: "support".into(),
            position: 3,
        },
    );
    s.call(
        60.0,
        CallEvent::Overflowed {
            queue: "support".into(),
            to: Destination::Queue {
                name: "sales".into(),
            },
        },
    );
    s.call(
        60.0,
        CallEvent::Queued {
            queue: "sales".into(),
            position: 1,
        },
    );
    s.end(70.0, Side::Gateway, EndCause::Shutdown, true);
    let cdr = s.only_cdr();
    let waits = cdr["queues"].as_array().unwrap();
    assert_eq!(waits.len(), 2);
    assert_eq!(waits[0]["outcome"], "overflowed");
    assert_eq!(waits[0]["within_service_level"], Value::Null);
    assert_eq!(waits[1]["queue"], "sales");
    assert_eq!(waits[1]["outcome"], "drained");
    assert_eq!(waits[1]["waited_ms"], 10_000);
    assert_eq!(cdr["end_cause"], "shutdown");
    assert_eq!(s.of(RecordType::QueueOutcome).len(), 2);
}

#[test]
fn an_agent_lost_for_good_puts_the_caller_back_and_the_next_agent_gets_the_call() {
    let mut s = Script::new();
    s.arrive();
    s.call(
        0.0,
        CallEvent::Queued {
            queue: "support".into(),
            position: 1,
        },
    );
    s.call(
        1.0,
        CallEvent::Offered {
            agent: "alice".into(),
        },
    );
    s.call(
        2.0,
        CallEvent::AgentAnswered {
            agent: "alice".into(),
        },
    );
    s.state(2.0, "alice", talking());
    s.call(12.0, CallEvent::AgentLost);
    s.agent(12.0, "alice", AgentEvent::ConnectionLost);
    s.call(42.0, CallEvent::Requeued);
    s.agent(
        42.0,
        "alice",
        AgentEvent::LoggedOut {
            reason: LogoutReason::Gone,
        },
    );
    s.call(
        43.0,
        CallEvent::Offered {
            agent: "bob".into(),
        },
    );
    s.call(
        45.0,
        CallEvent::AgentAnswered {
            agent: "bob".into(),
        },
    );
    s.state(45.0, "bob", talking());
    s.end(105.0, Side::Agent, EndCause::AgentHungUp, true);
    // Bob has no wrap-up: straight back to available.
    s.state(105.0, "bob", AgentState::Available);
    let cdr = s.only_cdr();
    assert_eq!(cdr["agent"], "bob");
    assert_eq!(cdr["agent_lost"], 1);
    assert_eq!(cdr["requeued"], 1);
    assert_eq!(cdr["talk_ms"], 40_000 + 60_000);
    assert_eq!(cdr["wrap_up_ms"], 0);
    assert_eq!(cdr["agent_answered_at"], "2026-12-06T22:10:02.000Z");
    let waits = cdr["queues"].as_array().unwrap();
    assert_eq!(waits.len(), 2);
    assert_eq!(waits[1]["waited_ms"], 3000);
    assert_eq!(cdr["offers"].as_array().unwrap().len(), 2);
    let logout = s
        .of(RecordType::AgentEvent)
        .into_iter()
        .find(|e| e["event"] == "logged_out")
        .cloned()
        .unwrap();
    assert_eq!(logout["reason"], "connection_lost");
}

#[test]
fn an_agent_already_available_when_the_call_ends_does_not_hold_the_cdr_back() {
    let mut s = Script::new();
    s.arrive();
    s.call(
        1.0,
        CallEvent::AgentAnswered {
            agent: "alice".into(),
        },
    );
    s.state(1.0, "alice", talking());
    s.state(9.0, "alice", AgentState::Available);
    s.end(9.0, Side::Agent, EndCause::AgentHungUp, true);
    assert_eq!(s.only_cdr()["wrap_up_ms"], 0);
}

#[test]
fn a_cdr_still_waiting_for_a_wrap_up_is_written_at_shutdown_or_after_an_hour() {
    let mut s = Script::new();
    s.arrive();
    s.call(
        1.0,
        CallEvent::AgentAnswered {
            agent: "alice".into(),
        },
    );
    s.state(1.0, "alice", talking());
    s.end(9.0, Side::Agent, EndCause::AgentHungUp, true);
    s.state(9.0, "alice", wrap_up());
    assert!(s.recorder.expire(Script::at(60.0)).is_empty());
    let flushed = s.recorder.flush(Script::at(20.0));
    assert_eq!(flushed.len(), 1);
    assert_eq!(flushed[0].data["wrap_up_ms"], 11_000);

    let mut s = Script::new();
    s.arrive();
    s.call(
        1.0,
        CallEvent::AgentAnswered {
            agent: "alice".into(),
        },
    );
    s.end(9.0, Side::Agent, EndCause::AgentHungUp, true);
    let late = Script::at(9.0) + MAX_WRAP_UP;
    assert_eq!(s.recorder.expire(late).len(), 1);
    assert_eq!(s.recorder.open_calls(), 0);
}

#[test]
fn agent_records_say_who_did_what_and_on_which_call() {
    let mut s = Script::new();
    s.agent(0.0, "alice", AgentEvent::LoggedIn { resumed: false });
    s.agent(
        1.0,
        "alice",
        AgentEvent::StateChanged {
            state: AgentState::Away,
            reason: Some("lunch".into()),
        },
    );
    s.state(2.0, "alice", AgentState::Available);
    s.state(3.0, "alice", AgentState::Ringing { call: CallRef(7) });
    s.agent(
        4.0,
        "alice",
        AgentEvent::LoggedOut {
            reason: LogoutReason::Revoked,
        },
    );
    let records = s.of(RecordType::AgentEvent);
    assert_eq!(records[0]["event"], "logged_in");
    assert_eq!(records[0]["resumed"], false);
    assert_eq!(records[1]["state"], "away");
    assert_eq!(records[1]["reason"], "lunch");
    assert_eq!(records[2]["state"], "available");
    assert!(records[2].get("reason").is_none());
    assert_eq!(records[3]["state"], "ringing");
    assert_eq!(records[3]["call"], "r1-7");
    assert_eq!(records[4]["reason"], "revoked");
}
