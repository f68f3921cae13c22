//! What a waiting caller lives through: overflow, announcements, wrap-up of the agent ahead,
//! estimated wait.

use std::time::Duration;

use super::*;

// --- overflow ---------------------------------------------------------------------------------

#[test]
fn overflow_applies_at_exactly_max_wait_and_removes_the_caller() {
    let mut h = Harness::support();
    h.advance(secs(7));
    h.enqueue(1, "support");
    h.advance_to(secs(307) - ms(1));
    assert!(h.overflows().is_empty());
    assert_eq!(h.acd.position(CallRef(1)), Some(1));
    h.advance_to(secs(307));
    assert_eq!(
        h.events_since(secs(307)),
        [(
            secs(307),
            AcdEvent::Overflow {
                call: CallRef(1),
                queue: "support".into(),
                action: Action::Hangup {
                    prompt: Some("goodbye".into())
                }
            }
        )]
    );
    assert_eq!(h.acd.position(CallRef(1)), None);
    assert_eq!(
        h.acd.call_ended(h.now, CallRef(1)),
        Err(AcdError::UnknownCall(CallRef(1)))
    );
    assert_eq!(h.acd.poll_timeout(), None, "nothing left to time");
}

#[test]
fn a_ringing_offer_is_not_cut_off_by_max_wait() {
    let config = QueueConfig {
        max_wait_ms: 60_000,
        ..queue(&[])
    };
    let mut h = Harness::new(&[("q", config)]);
    h.enqueue(1, "q");
    h.enqueue(2, "q");
    h.advance(secs(50));
    h.agent("alice", &[]);
    assert_eq!(h.offered(1).as_deref(), Some("alice"));
    h.advance_to(secs(60));
    assert_eq!(
        h.overflows(),
        [(secs(60), 2)],
        "only the caller without an offer"
    );
    h.advance_to(secs(65));
    assert_eq!(h.overflows(), [(secs(60), 2), (secs(65), 1)]);
    assert_eq!(h.state("alice"), Some(AgentState::Away));
}

#[test]
fn a_caller_past_max_wait_overflows_as_soon_as_their_last_offer_fails() {
    let config = QueueConfig {
        max_wait_ms: 60_000,
        ..queue(&[])
    };
    let mut h = Harness::new(&[("q", config)]);
    h.enqueue(1, "q");
    h.advance(secs(50));
    h.agent("alice", &[]);
    h.advance(secs(12));
    h.reject(1, "alice");
    assert_eq!(
        h.overflows(),
        [(secs(62), 1)],
        "within the rejection itself"
    );
}

#[test]
fn an_agent_freed_at_the_instant_of_max_wait_still_gets_the_caller() {
    let config = QueueConfig {
        max_wait_ms: 60_000,
        ..queue(&[])
    };
    let mut h = Harness::new(&[("q", config)]);
    h.agent("alice", &[]);
    h.advance(secs(5));
    h.connect(1, "q", "alice");
    h.enqueue(2, "q");
    h.advance_to(secs(60));
    h.end(1);
    // Alice's wrap-up ends at 65 s, the moment caller 2 has waited 60 s.
    h.advance_to(secs(65));
    assert_eq!(h.overflows(), []);
    assert_eq!(h.offered(2).as_deref(), Some("alice"));
}

#[test]
fn overflow_carries_the_configured_action() {
    let config = QueueConfig {
        max_wait_ms: 1000,
        overflow: Action::Goto {
            menu: "after-hours".into(),
        },
        ..queue(&[])
    };
    let mut h = Harness::new(&[("q", config)]);
    h.enqueue(1, "q");
    h.advance(SECOND);
    assert!(h.log.contains(&(
        SECOND,
        AcdEvent::Overflow {
            call: CallRef(1),
            queue: "q".into(),
            action: Action::Goto {
                menu: "after-hours".into()
            }
        }
    )));
}

// --- announcements ----------------------------------------------------------------------------

#[test]
fn announcements_come_at_5_s_then_every_30_s_with_current_positions() {
    let mut h = Harness::support();
    h.enqueue(1, "support");
    h.enqueue(2, "support");
    h.advance(SECOND);
    h.enqueue(3, "support");
    h.advance_to(secs(10));
    assert_eq!(
        h.announcements(),
        [(secs(5), 1, 1), (secs(5), 2, 2), (secs(6), 3, 3)]
    );
    h.end(1);
    h.advance_to(secs(40));
    assert_eq!(h.announcements()[3..], [(secs(35), 2, 1), (secs(36), 3, 2)]);
    h.end(2);
    h.advance_to(secs(100));
    assert_eq!(h.announcements()[5..], [(secs(66), 3, 1), (secs(96), 3, 1)]);
    let Some((_, AcdEvent::Announce { prompts, .. })) = h.log.last() else {
        panic!("last event is an announcement");
    };
    assert_eq!(
        prompts,
        &["queue-position", "number-1", "queue-thanks"],
        "no wait estimate without any handled call"
    );
}

#[test]
fn no_announcement_plays_while_an_offer_rings() {
    let mut h = Harness::support();
    h.enqueue(1, "support");
    h.advance_to(secs(30));
    h.agent("alice", &["support"]);
    h.advance_to(secs(100));
    let times: Vec<Duration> = h.announcements().iter().map(|a| a.0).collect();
    // 35 s falls inside alice's ring (30–45 s) and is skipped; the schedule stays on its grid.
    assert_eq!(times, [secs(5), secs(65), secs(95)]);
}

#[test]
fn announcements_can_be_switched_off() {
    let config = QueueConfig {
        announce_every_ms: 0,
        ..queue(&[])
    };
    let mut h = Harness::new(&[("q", config)]);
    h.enqueue(1, "q");
    h.advance_to(secs(299));
    assert!(h.announcements().is_empty());
    assert_eq!(h.acd.poll_timeout(), Some(h.base + secs(300)));
}

#[test]
fn a_late_shell_gets_one_announcement_not_a_burst() {
    let mut h = Harness::support();
    h.enqueue(1, "support");
    h.now = h.base + secs(100);
    h.acd.handle_timeout(h.now);
    h.collect();
    assert_eq!(h.announcements().len(), 1);
    assert_eq!(h.acd.poll_timeout(), Some(h.base + secs(125)));
}

#[test]
fn twenty_callers_and_no_agents_wait_hear_announcements_and_overflow_in_order() {
    let mut h = Harness::support();
    for call in 0..20 {
        h.enqueue(call, "support");
        assert_eq!(
            h.acd.caller_state(CallRef(call)),
            Some(CallerState::Waiting {
                queue: "support".into(),
                position: call as usize + 1
            })
        );
        h.advance(SECOND);
    }
    assert_eq!(h.acd.queue_config("support").unwrap().moh, "moh");
    h.advance_to(secs(300) - ms(1));
    assert!(h.overflows().is_empty(), "nobody leaves before max wait");
    assert!(h.offers().is_empty());
    let snapshot = h.acd.snapshot(h.now);
    assert_eq!(snapshot.queues["support"].waiting, 20);
    assert_eq!(snapshot.queues["support"].staffed_agents, 0);
    for call in 0..20u64 {
        let heard: Vec<(Duration, usize)> = h
            .announcements()
            .into_iter()
            .filter(|a| a.1 == call)
            .map(|a| (a.0, a.2))
            .collect();
        let expected: Vec<(Duration, usize)> = (0..10)
            .map(|n| (secs(call + 5 + 30 * n), call as usize + 1))
            .collect();
        assert_eq!(heard, expected, "caller {call}");
    }
    h.advance_to(secs(400));
    let expected: Vec<(Duration, u64)> = (0..20).map(|call| (secs(300 + call), call)).collect();
    assert_eq!(h.overflows(), expected);
    assert_eq!(h.acd.snapshot(h.now).queues["support"].waiting, 0);
    assert_eq!(h.acd.poll_timeout(), None);
}

// --- wrap-up and estimated wait ---------------------------------------------------------------

#[test]
fn after_a_call_the_agent_wraps_up_then_takes_the_next_caller() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.connect(1, "support", "alice");
    h.enqueue(2, "support");
    h.advance(secs(60));
    h.end(1);
    assert_eq!(
        h.state("alice"),
        Some(AgentState::WrapUp {
            until: h.base + secs(65)
        })
    );
    h.advance_to(secs(65) - ms(1));
    assert_eq!(h.offered(2), None, "no offers during wrap-up");
    h.advance_to(secs(65));
    assert_eq!(h.offers().last(), Some(&(secs(65), 2, "alice".to_string())));
}

#[test]
fn wrap_up_can_end_early_or_lead_to_away() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.connect(1, "support", "alice");
    h.end(1);
    h.acd.agent_available(h.now, "alice").unwrap();
    assert_eq!(h.state("alice"), Some(AgentState::Available));

    h.connect(2, "support", "alice");
    h.acd.agent_away(h.now, "alice").unwrap();
    assert_eq!(
        h.state("alice"),
        Some(AgentState::Talking { call: CallRef(2) }),
        "going away waits for the call to end"
    );
    h.end(2);
    h.enqueue(3, "support");
    h.advance(secs(5));
    assert_eq!(h.state("alice"), Some(AgentState::Away));
    assert_eq!(h.offered(3), None);
}

#[test]
fn zero_wrap_up_makes_the_agent_available_at_once() {
    let config = QueueConfig {
        wrap_up_ms: 0,
        ..queue(&[])
    };
    let mut h = Harness::new(&[("q", config)]);
    h.agent("alice", &[]);
    h.connect(1, "q", "alice");
    h.enqueue(2, "q");
    h.end(1);
    assert_eq!(h.offered(2).as_deref(), Some("alice"));
}

#[test]
fn estimated_wait_is_position_times_average_handle_time_over_staffed_agents() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.agent("bob", &["support"]);
    h.enqueue(9, "support");
    h.end(9);
    h.connect(1, "support", "alice");
    h.connect(2, "support", "bob");
    h.enqueue(3, "support");
    assert_eq!(
        h.acd.estimated_wait(CallRef(3)),
        None,
        "no call handled yet"
    );

    h.advance(secs(55));
    h.end(1); // 55 s talk + 5 s wrap-up = 60 s
    h.advance(secs(5));
    assert_eq!(h.offered(3).as_deref(), Some("alice"));
    h.accept(3, "alice");
    h.advance(secs(55));
    h.end(2); // 115 s + 5 s = 120 s
    h.enqueue(4, "support");
    h.enqueue(5, "support");
    h.enqueue(6, "support");
    assert_eq!(h.offered(4), None, "bob is wrapping up");
    // Average 90 s, two staffed agents: 45 s per position.
    assert_eq!(h.acd.estimated_wait(CallRef(4)), Some(secs(45)));
    assert_eq!(h.acd.estimated_wait(CallRef(6)), Some(secs(135)));
    assert_eq!(
        h.acd.snapshot(h.now).queues["support"].average_handle_time,
        Some(secs(90))
    );

    h.acd.agent_away(h.now, "bob").unwrap();
    assert_eq!(h.acd.estimated_wait(CallRef(6)), Some(secs(270)));
    h.acd.agent_logout(h.now, "alice").unwrap();
    assert_eq!(h.acd.estimated_wait(CallRef(6)), None, "nobody staffed");
}

#[test]
fn announcements_say_the_estimated_wait_in_minutes() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.connect(1, "support", "alice");
    h.advance(secs(85));
    h.end(1); // 90 s handle time
    h.advance_to(secs(90));
    // Alice is staffed but busy, so callers wait with a known estimate.
    h.connect(100, "support", "alice");
    h.enqueue(2, "support");
    h.enqueue(3, "support");
    h.advance(secs(6));
    let prompts: Vec<Vec<String>> = h
        .log
        .iter()
        .filter_map(|(_, event)| match event {
            AcdEvent::Announce { prompts, .. } => Some(prompts.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        prompts,
        [
            vec![
                "queue-position",
                "number-1",
                "queue-wait",
                "number-2",
                "minutes",
                "queue-thanks"
            ],
            vec![
                "queue-position",
                "number-2",
                "queue-wait",
                "number-3",
                "minutes",
                "queue-thanks"
            ],
        ]
    );
}
