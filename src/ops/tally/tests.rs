//! The tally fed by hand-made events with their own stamps: what ops would read at a given time.
use std::time::{Duration, SystemTime};

use super::*;
use crate::events::{AgentLegQuality, CallQuality, EndCause, LegQuality, Side};
use crate::queue::CallRef;
use crate::route::Destination;

const CALL: CallId = 7;

struct Feed {
    tally: Tally,
    t0: SystemTime,
}

impl Feed {
    fn new() -> Feed {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = crate::config::embedded(root).expect("the example config is valid");
        Feed {
            tally: Tally::new(&config),
            t0: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        }
    }

    fn at(&self, secs: u64) -> SystemTime {
        self.t0 + Duration::from_secs(secs)
    }

    fn call(&mut self, secs: u64, call: CallId, event: CallEvent) {
        let event = Event {
            at: self.at(secs),
            what: EventKind::Call { call, event },
        };
        self.tally.handle(&event);
    }

    fn agent(&mut self, secs: u64, event: AgentEvent) {
        let event = Event {
            at: self.at(secs),
            what: EventKind::Agent {
                agent: "demo".into(),
                event,
            },
        };
        self.tally.handle(&event);
    }

    /// A carrier call answered and queued in "support" at `secs`.
    fn queued(&mut self, secs: u64, call: CallId) {
        self.call(
            secs,
            call,
            CallEvent::Arrived {
                trunk: "carrier".into(),
                sip_call_id: format!("{call}@carrier"),
                caller: "+15551234".into(),
                callee: "100".into(),
            },
        );
        self.call(secs, call, CallEvent::Answered);
        let queued = CallEvent::Queued {
            queue: "support".into(),
            position: 1,
        };
        self.call(secs, call, queued);
    }

    fn ended(&mut self, secs: u64, call: CallId, side: Side, cause: EndCause) {
        let quality = CallQuality {
            carrier: LegQuality {
                packets_received: 100,
                packets_sent: 110,
                packets_lost: 3,
                jitter_ms: 2.0,
                jitter_buffer_delay: Some(Duration::from_millis(30)),
                ..LegQuality::default()
            },
            agent: Some(AgentLegQuality {
                packets: 90,
                packets_sent: 80,
                lost: 1,
                jitter_ms: 12.0,
                jitter_buffer_delay: Some(Duration::from_millis(70)),
                ..AgentLegQuality::default()
            }),
            ..CallQuality::default()
        };
        let ended = CallEvent::Ended {
            side,
            cause,
            answered: true,
            quality: Box::new(quality),
        };
        self.call(secs, call, ended);
    }

    fn metrics(&self, secs: u64) -> String {
        self.tally.refresh(self.at(secs), &[("log".into(), 2)]);
        self.tally.metrics().encode()
    }

    fn support(&self, secs: u64) -> QueueView {
        let queues = self.tally.queues(self.at(secs));
        queues.into_iter().find(|q| q.queue == "support").unwrap()
    }
}

fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line {line:?} in:\n{text}"
    );
}

fn agent_answered() -> CallEvent {
    CallEvent::AgentAnswered {
        agent: "demo".into(),
    }
}

#[test]
fn a_caller_answered_in_time_counts_toward_service_level_and_asa() {
    let mut f = Feed::new();
    f.queued(0, CALL);
    f.call(5, CALL, agent_answered());
    f.ended(65, CALL, Side::Caller, EndCause::CallerHungUp);
    let q = f.support(70);
    assert_eq!((q.answered, q.abandoned, q.waiting), (1, 0, 0));
    assert_eq!(q.service_level_pct, Some(100.0));
    assert_eq!(q.asa_s, Some(5.0));
    assert_eq!(q.service_level_s, 20.0);
    assert!(f.tally.calls(f.at(70)).is_empty(), "the call is over");
    let text = f.metrics(70);
    has(
        &text,
        r#"trunkgate_calls_started_total{direction="inbound",trunk="carrier"} 1"#,
    );
    has(
        &text,
        r#"trunkgate_calls_ended_total{cause="caller_hung_up",direction="inbound",side="caller",trunk="carrier"} 1"#,
    );
    has(
        &text,
        r#"trunkgate_calls_active{direction="inbound",trunk="carrier"} 0"#,
    );
    has(
        &text,
        r#"trunkgate_queue_calls_total{outcome="answered",queue="support"} 1"#,
    );
    has(
        &text,
        r#"trunkgate_queue_answered_within_service_level_total{queue="support"} 1"#,
    );
    has(
        &text,
        r#"trunkgate_queue_wait_seconds_sum{outcome="answered",queue="support"} 5"#,
    );
    has(
        &text,
        r#"trunkgate_agent_talk_seconds_sum{queue="support"} 60"#,
    );
    has(
        &text,
        r#"trunkgate_rtp_packets_lost_total{leg="carrier"} 3"#,
    );
    has(
        &text,
        r#"trunkgate_call_answered_seconds_count{trunk="carrier"} 1"#,
    );
    has(&text, r#"trunkgate_event_feed_dropped{feed="log"} 2"#);
    // Each leg's jitter and the delay its jitter buffer added, in the buckets they fall in.
    has(
        &text,
        r#"trunkgate_jitter_buffer_delay_seconds_bucket{leg="carrier",le="0.04"} 1"#,
    );
    has(
        &text,
        r#"trunkgate_jitter_buffer_delay_seconds_bucket{leg="agent",le="0.04"} 0"#,
    );
    has(
        &text,
        r#"trunkgate_jitter_buffer_delay_seconds_bucket{leg="agent",le="0.08"} 1"#,
    );
    has(
        &text,
        r#"trunkgate_rtp_jitter_seconds_sum{leg="agent"} 0.012"#,
    );
    has(
        &text,
        r#"trunkgate_rtp_packets_received_total{leg="agent"} 90"#,
    );
    has(&text, r#"trunkgate_rtp_packets_sent_total{leg="agent"} 80"#);
}

#[test]
fn a_caller_who_hangs_up_waiting_is_abandoned_and_one_answered_late_misses_service_level() {
    let mut f = Feed::new();
    f.queued(0, 1);
    f.queued(0, 2);
    f.ended(40, 1, Side::Caller, EndCause::CallerHungUp);
    f.call(30, 2, agent_answered());
    let q = f.support(45);
    assert_eq!((q.answered, q.abandoned), (1, 1));
    assert_eq!(q.service_level_pct, Some(0.0), "answered after 30 s of 20");
    assert_eq!(q.abandon_rate_pct, Some(50.0));
    let text = f.metrics(45);
    has(
        &text,
        r#"trunkgate_queue_calls_total{outcome="abandoned",queue="support"} 1"#,
    );
    has(
        &text,
        r#"trunkgate_queue_wait_seconds_sum{outcome="abandoned",queue="support"} 40"#,
    );
    has(
        &text,
        r#"trunkgate_calls_active{direction="inbound",trunk="carrier"} 1"#,
    );
}

#[test]
fn waiting_callers_and_agents_show_what_they_do_now() {
    let mut f = Feed::new();
    f.agent(0, AgentEvent::LoggedIn { resumed: false });
    f.agent(
        1,
        AgentEvent::StateChanged {
            state: AgentState::Available,
            reason: None,
        },
    );
    f.queued(10, CALL);
    let calls = f.tally.calls(f.at(25));
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].state, CallState::Waiting);
    assert_eq!(calls[0].queue.as_deref(), Some("support"));
    assert_eq!(calls[0].waiting_s, Some(15.0));
    let q = f.support(25);
    assert_eq!((q.waiting, q.longest_wait_s), (1, 15.0));
    assert_eq!((q.agents_available, q.agents_busy), (1, 0));
    has(
        &f.metrics(25),
        r#"trunkgate_queue_longest_wait_seconds{queue="support"} 15"#,
    );

    f.call(26, CALL, agent_answered());
    let talking = AgentState::Talking {
        call: CallRef(CALL),
    };
    f.agent(
        26,
        AgentEvent::StateChanged {
            state: talking,
            reason: None,
        },
    );
    let agents = f.tally.agents(f.at(30));
    assert_eq!(agents[0].state, "talking");
    assert_eq!(agents[0].call, Some(CALL));
    assert_eq!(f.support(30).agents_busy, 1);
    let text = f.metrics(30);
    has(&text, r#"trunkgate_agents{state="talking"} 1"#);
    has(&text, r#"trunkgate_agents{state="available"} 0"#);
    has(
        &text,
        r#"trunkgate_queue_callers_waiting{queue="support"} 0"#,
    );

    f.agent(31, AgentEvent::ConnectionLost);
    f.call(31, CALL, CallEvent::AgentLost);
    assert!(!f.tally.agents(f.at(32))[0].connected);
    assert_eq!(f.tally.calls(f.at(32))[0].state, CallState::AgentLost);
    has(
        &f.metrics(32),
        r#"trunkgate_agents_connected{connected="0"} 1"#,
    );
    f.agent(33, AgentEvent::LoggedIn { resumed: true });
    f.call(33, CALL, CallEvent::AgentResumed);
    assert_eq!(f.tally.calls(f.at(34))[0].state, CallState::Talking);
    has(&f.metrics(34), "trunkgate_agent_resumes_total 1");
}

#[test]
fn an_overflow_leaves_the_queue_and_is_counted_with_its_wait() {
    let mut f = Feed::new();
    f.queued(0, CALL);
    let overflow = CallEvent::Overflowed {
        queue: "support".into(),
        to: Destination::Hangup { prompt: None },
    };
    f.call(300, CALL, overflow);
    let q = f.support(301);
    assert_eq!((q.waiting, q.overflowed, q.answered), (0, 1, 0));
    f.ended(305, CALL, Side::Gateway, EndCause::QueueHangup);
    assert_eq!(f.support(306).abandoned, 0, "an overflow is no abandon");
    has(
        &f.metrics(306),
        r#"trunkgate_queue_wait_seconds_sum{outcome="overflowed",queue="support"} 300"#,
    );
}

#[test]
fn events_of_calls_it_never_saw_arrive_are_ignored() {
    let mut f = Feed::new();
    f.call(0, 99, agent_answered());
    f.ended(1, 99, Side::Caller, EndCause::CallerHungUp);
    assert!(f.tally.calls(f.at(2)).is_empty());
    has(
        &f.metrics(2),
        r#"trunkgate_calls_ended_total{cause="caller_hung_up",direction="inbound",side="caller",trunk="carrier"} 0"#,
    );
}

#[test]
fn a_requeued_callers_talk_is_counted_once_and_its_new_wait_from_the_requeue() {
    let mut f = Feed::new();
    f.queued(0, CALL);
    f.call(2, CALL, agent_answered());
    f.call(12, CALL, CallEvent::AgentLost);
    f.call(27, CALL, CallEvent::Requeued);
    assert_eq!(f.tally.calls(f.at(30))[0].waiting_s, Some(3.0));
    f.ended(40, CALL, Side::Caller, EndCause::CallerHungUp);
    let text = f.metrics(41);
    has(
        &text,
        r#"trunkgate_agent_talk_seconds_count{queue="support"} 1"#,
    );
    has(
        &text,
        r#"trunkgate_agent_talk_seconds_sum{queue="support"} 25"#,
    );
    has(
        &text,
        r#"trunkgate_queue_wait_seconds_sum{outcome="abandoned",queue="support"} 13"#,
    );
}

#[test]
fn configured_trunks_and_queues_have_their_counters_at_zero_from_the_start() {
    let f = Feed::new();
    let text = f.metrics(0);
    has(
        &text,
        r#"trunkgate_calls_started_total{direction="inbound",trunk="carrier"} 0"#,
    );
    has(
        &text,
        r#"trunkgate_queue_calls_total{outcome="refused",queue="support"} 0"#,
    );
    has(
        &text,
        r#"trunkgate_queue_answered_within_service_level_total{queue="support"} 0"#,
    );
}
