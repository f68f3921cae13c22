//! The event bus as a subscriber inside the daemon's process sees it during real calls: each
//! call's typed events tell its story in order and end with its quality figures, and an observer
//! that never reads loses only its own events (counted) while the calls' audio keeps its pace.
use std::time::Duration;

use trunkgate::events::{AgentEvent, CallEvent, CallId, EndCause, EventKind, Side};
use trunkgate::route::Destination;
use trunkgate_integration::agent::{demo_args_at, AgentProcess};
use trunkgate_integration::in_process::{InProcess, Recorder};
use trunkgate_integration::relay::{Relay, RelayConfig};
use trunkgate_integration::{Baresip, Sipp, TestConfig, DEMO_CREDENTIAL};

/// Each pattern matches an event after the one the pattern before it matched.
macro_rules! assert_story {
    ($events:expr, $($pattern:pat),+ $(,)?) => {{
        let events = &$events;
        let mut at = 0;
        $(
            match events[at..].iter().position(|e| matches!(e, $pattern)) {
                Some(i) => at += i + 1,
                None => panic!(
                    "{} not found after event {at} in:\n{events:#?}",
                    stringify!($pattern)
                ),
            }
        )+
        let _ = at;
    }};
}

/// The call on whose bus `matches` first held.
fn call_where(recorder: &Recorder, matches: impl Fn(&CallEvent) -> bool) -> CallId {
    let found = recorder.events().iter().find_map(|e| match &e.what {
        EventKind::Call { call, event } if matches(event) => Some(*call),
        _ => None,
    });
    found.unwrap_or_else(|| panic!("no such call in:\n{}", recorder.dump()))
}

fn agent_state(event: &EventKind, wanted: &str) -> bool {
    matches!(event, EventKind::Agent { event: AgentEvent::StateChanged { state, .. }, .. } if state.name() == wanted)
}

#[test]
fn an_ivr_call_and_a_queued_call_with_a_lost_and_resumed_agent_tell_their_stories() {
    let gw = InProcess::start(&TestConfig::default().to_toml());
    let recorder = gw.record();
    let relay = Relay::start(RelayConfig::new(gw.daemon().quic)).unwrap();
    let fingerprint = gw.daemon().fingerprint.to_string();
    let extra = ["--hangup-after-ms", "20000", "--duration-secs", "60"];
    let agent = AgentProcess::start(
        &demo_args_at(relay.addr(), &fingerprint, &extra),
        DEMO_CREDENTIAL,
    );
    let limit = Duration::from_secs(15);
    recorder.expect("agent available", limit, |e| agent_state(e, "available"));

    // A caller presses 0 in the menu, waits in the queue and talks with the agent, who hangs up.
    let target = gw.sip_udp();
    let queued = std::thread::spawn(move || {
        Sipp::scenario("uac_queue0.xml")
            .target(target)
            .timeout(Duration::from_secs(60))
            .run()
    });
    recorder.expect("agent answered", limit, |e| {
        matches!(
            e,
            EventKind::Call {
                event: CallEvent::AgentAnswered { .. },
                ..
            }
        )
    });
    // Talk time, then the agent's network goes dark until the gateway declares it lost.
    std::thread::sleep(Duration::from_secs(2));
    relay.blackhole(true);
    // Meanwhile another caller goes through the menu and presses 9.
    Sipp::scenario("uac_dtmf9.xml")
        .target(target)
        .timeout(Duration::from_secs(40))
        .run()
        .assert_success();
    recorder.expect("agent lost", limit, |e| {
        matches!(
            e,
            EventKind::Call {
                event: CallEvent::AgentLost,
                ..
            }
        )
    });
    relay.blackhole(false);
    recorder.expect("agent resumed", limit, |e| {
        matches!(
            e,
            EventKind::Call {
                event: CallEvent::AgentResumed,
                ..
            }
        )
    });
    queued.join().unwrap().assert_success();
    recorder.expect("agent wrapping up", limit, |e| agent_state(e, "wrap_up"));
    drop(agent);

    let ivr = call_where(
        &recorder,
        |e| matches!(e, CallEvent::Digits { side: Side::Caller, digits } if digits == "9"),
    );
    let events = recorder.of_call(ivr);
    assert_story!(
        events,
        CallEvent::Arrived { .. },
        CallEvent::Answered,
        CallEvent::EnteredMenu { .. },
        CallEvent::Digits {
            side: Side::Caller,
            ..
        },
        CallEvent::LeftIvr {
            to: Destination::Hangup { .. },
            ..
        },
        CallEvent::Ended {
            side: Side::Gateway,
            cause: EndCause::IvrHangup,
            answered: true,
            ..
        },
    );
    let Some(CallEvent::Ended { quality, .. }) = events.last() else {
        panic!("the IVR call's last event is its end: {events:#?}");
    };
    assert!(quality.carrier.packets_received > 50, "{quality:?}");
    assert!(quality.carrier.packets_sent > 50, "{quality:?}");
    assert_eq!(quality.agent, None, "no agent took the IVR call");

    let queue = call_where(&recorder, |e| matches!(e, CallEvent::AgentAnswered { .. }));
    let events = recorder.of_call(queue);
    assert_story!(
        events,
        CallEvent::Arrived { .. },
        CallEvent::Answered,
        CallEvent::EnteredMenu { .. },
        CallEvent::Digits {
            side: Side::Caller,
            ..
        },
        CallEvent::LeftIvr {
            to: Destination::Queue { .. },
            ..
        },
        CallEvent::Queued { position: 1, .. },
        CallEvent::Offered { .. },
        CallEvent::AgentAnswered { .. },
        CallEvent::AgentAudio { flowing: false },
        CallEvent::AgentLost,
        CallEvent::AgentResumed,
        CallEvent::Ended {
            side: Side::Agent,
            cause: EndCause::AgentHungUp,
            answered: true,
            ..
        },
    );
    assert!(
        !events.iter().any(|e| matches!(e, CallEvent::Requeued)),
        "a resumed call is never requeued: {events:#?}"
    );
    let Some(CallEvent::Ended { quality, .. }) = events.last() else {
        panic!("the queued call's last event is its end: {events:#?}");
    };
    let agent = quality.agent.as_ref().expect("the agent's leg quality");
    assert!(
        agent.packets > 300,
        "the agent's audio reached the call: {agent:?}"
    );

    let agent_events: Vec<AgentEvent> = recorder
        .events()
        .iter()
        .filter_map(|e| match &e.what {
            EventKind::Agent { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect();
    assert_story!(
        agent_events,
        AgentEvent::LoggedIn { resumed: false },
        AgentEvent::StateChanged { .. },
        AgentEvent::ConnectionLost,
        AgentEvent::LoggedIn { resumed: true },
    );
}

#[test]
fn an_observer_that_never_reads_delays_no_audio_and_its_losses_are_counted() {
    let config = TestConfig {
        route: "queue:support".into(),
        ..TestConfig::default()
    };
    let gw = InProcess::start(&config.to_toml());
    let recorder = gw.record();
    // Never read: full at once, it drops every event after the first.
    let stalled = gw.daemon().bus.observe("stalled", 1);
    let fingerprint = gw.daemon().fingerprint.to_string();
    // The agent's keys mid-call are events the call's own task publishes into the full feed.
    let extra = [
        "--send-dtmf",
        "12",
        "--dtmf-after-ms",
        "1500",
        "--calls",
        "1",
        "--duration-secs",
        "30",
    ];
    let agent = AgentProcess::start(
        &demo_args_at(gw.daemon().quic, &fingerprint, &extra),
        DEMO_CREDENTIAL,
    );
    let limit = Duration::from_secs(15);
    recorder.expect("agent available", limit, |e| agent_state(e, "available"));
    let caller = Baresip::new("caller")
        .dial(format!("sip:100@{}", gw.sip_udp()))
        .duration(Duration::from_secs(5))
        .run();
    assert!(caller.call_established(), "{}", caller.log);
    agent.expect(&["event=call_ended"], limit);
    let call = call_where(&recorder, |e| matches!(e, CallEvent::AgentAnswered { .. }));
    let events = recorder.of_call(call);
    assert!(
        events.iter().any(|e| matches!(
            e,
            CallEvent::Digits {
                side: Side::Agent,
                ..
            }
        )),
        "the agent's keys were published mid-call: {events:#?}"
    );
    let Some(CallEvent::Ended { quality, .. }) = events.last() else {
        panic!("the call's last event is its end: {events:#?}");
    };
    println!(
        "stalled observer: {} events dropped; the call's frames were at most {} ms late",
        stalled.dropped(),
        quality.frame_delay_max.as_millis()
    );
    // Blocked on the feed even once, the call's task would have handled its frames a burst late.
    assert!(
        quality.frame_delay_max < Duration::from_millis(100),
        "{quality:?}"
    );
    assert!(
        stalled.dropped() > 0,
        "the stalled observer's losses are counted"
    );
    let stats = gw.daemon().bus.stats();
    let feed = |name: &str| {
        stats
            .iter()
            .find(|s| s.name == name)
            .expect("a feed")
            .clone()
    };
    let (stalled_stats, recorded) = (feed("stalled"), feed("test recorder"));
    assert_eq!(stalled_stats.pending, 1, "{stalled_stats:?}");
    assert_eq!(
        stalled_stats.delivered + stalled_stats.dropped,
        recorded.delivered,
        "every event was offered to both feeds"
    );
    assert_eq!(recorded.dropped, 0, "a lossless feed never drops");
}
