//! Who gets a caller: selection, offers and their outcomes, losing an agent mid-call, errors,
//! snapshots.

use super::*;

// --- selection --------------------------------------------------------------------------------

#[test]
fn the_longest_idle_agent_gets_the_offer() {
    let mut h = Harness::support();
    h.agent("carol", &["support"]);
    h.advance(SECOND);
    h.agent("alice", &["support"]);
    h.advance(SECOND);
    h.agent("bob", &["support"]);
    h.advance(SECOND);

    h.connect(1, "support", "carol");
    h.connect(2, "support", "alice");
    h.end(1);
    // Carol's wrap-up ends at 8 s; she is now the most recently idle.
    h.advance_to(secs(10));
    assert_eq!(h.state("carol"), Some(AgentState::Available));
    h.enqueue(3, "support");
    assert_eq!(h.offered(3).as_deref(), Some("bob"));
    h.enqueue(4, "support");
    assert_eq!(h.offered(4).as_deref(), Some("carol"));
}

#[test]
fn ties_in_idle_time_go_to_the_earlier_login() {
    let mut h = Harness::support();
    for agent in ["zed", "amy", "kim"] {
        h.acd.agent_login(h.now, agent, &["support".into()]);
    }
    for agent in ["kim", "amy", "zed"] {
        h.acd.agent_available(h.now, agent).unwrap();
    }
    h.enqueue(1, "support");
    h.enqueue(2, "support");
    assert_eq!(h.offered(1).as_deref(), Some("zed"));
    assert_eq!(h.offered(2).as_deref(), Some("amy"));
}

#[test]
fn only_agents_with_every_skill_of_the_queue_are_offered() {
    let mut h = Harness::new(&[
        ("billing-de", queue(&["billing", "german"])),
        ("anyone", queue(&[])),
        ("legal", queue(&["legal"])),
    ]);
    h.agent("billing-only", &["billing"]);
    h.advance(SECOND);
    h.agent("german-only", &["german"]);
    h.advance(SECOND);
    h.agent("both-and-more", &["german", "support", "billing"]);
    h.advance(SECOND);

    h.enqueue(1, "billing-de");
    assert_eq!(h.offered(1).as_deref(), Some("both-and-more"));
    h.enqueue(2, "legal");
    assert_eq!(h.offered(2), None, "nobody has the legal skill");
    h.enqueue(3, "anyone");
    assert_eq!(h.offered(3).as_deref(), Some("billing-only"));
    h.enqueue(4, "billing-de");
    assert_eq!(h.offered(4), None, "german-only lacks billing");
    assert_eq!(h.state("german-only"), Some(AgentState::Available));
}

#[test]
fn queues_sharing_agents_serve_the_earliest_caller_first() {
    let mut h = Harness::new(&[("sales", queue(&[])), ("support", queue(&[]))]);
    h.enqueue(1, "support");
    h.advance(SECOND);
    h.enqueue(2, "sales");
    h.enqueue(3, "support");
    h.advance(SECOND);
    h.agent("alice", &[]);
    assert_eq!(h.offered(1).as_deref(), Some("alice"));
    h.agent("bob", &[]);
    assert_eq!(
        h.offered(2).as_deref(),
        Some("bob"),
        "sales caller came before 3"
    );
    assert_eq!(h.acd.position(CallRef(3)), Some(2));
    assert_eq!(h.acd.position(CallRef(2)), Some(1));
}

// --- offers -----------------------------------------------------------------------------------

#[test]
fn an_unanswered_offer_moves_on_at_the_ring_timeout_and_sets_the_agent_away() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.advance(SECOND);
    h.agent("bob", &["support"]);
    h.advance(SECOND);
    h.enqueue(1, "support");
    assert_eq!(
        h.offers(),
        [(secs(2), 1, "alice".to_string())],
        "one offer, to the longest idle"
    );
    h.advance_to(secs(17) - ms(1));
    assert_eq!(h.offered(1).as_deref(), Some("alice"), "still ringing");
    h.advance_to(secs(17));
    assert_eq!(
        h.withdrawals(),
        [(
            secs(17),
            1,
            "alice".to_string(),
            WithdrawReason::RingTimeout
        )]
    );
    assert_eq!(h.offers()[1], (secs(17), 1, "bob".to_string()));
    assert_eq!(
        h.state("alice"),
        Some(AgentState::Away),
        "a missing agent stops taking ring time"
    );
    h.enqueue(2, "support");
    assert_eq!(h.offered(2), None, "alice is away, bob is ringing");
    h.advance_to(secs(32));
    assert_eq!(h.state("bob"), Some(AgentState::Away));
    assert_eq!(
        h.acd.caller_state(CallRef(1)),
        Some(CallerState::Waiting {
            queue: "support".into(),
            position: 1
        })
    );
    assert_eq!(h.offers().len(), 2, "nobody left to offer");
}

#[test]
fn a_declined_offer_goes_to_the_next_agent_and_the_decliner_stays_available() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.advance(SECOND);
    h.agent("bob", &["support"]);
    h.advance(SECOND);
    h.enqueue(1, "support");
    h.enqueue(2, "support");
    assert_eq!(h.offered(1).as_deref(), Some("alice"));
    assert_eq!(h.offered(2).as_deref(), Some("bob"));
    h.advance(SECOND);
    h.reject(1, "alice");
    assert_eq!(
        h.withdrawals(),
        [(secs(3), 1, "alice".into(), WithdrawReason::Rejected)]
    );
    assert_eq!(
        h.offered(1),
        None,
        "not offered to alice again, and bob is busy"
    );
    h.enqueue(3, "support");
    assert_eq!(
        h.offered(3).as_deref(),
        Some("alice"),
        "alice is still available"
    );
    h.reject(2, "bob");
    assert_eq!(h.offered(1).as_deref(), Some("bob"), "bob is free for 1");
    assert_eq!(
        h.offered(2),
        None,
        "bob declined 2, alice is ringing with 3"
    );
    h.accept(3, "alice");
    h.end(3);
    h.advance(secs(5));
    assert_eq!(h.offered(2).as_deref(), Some("alice"));
}

#[test]
fn declining_does_not_cost_the_agent_their_place_in_line() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.advance(SECOND);
    h.agent("bob", &["support"]);
    h.advance(SECOND);
    h.agent("carol", &["support"]);
    h.enqueue(1, "support");
    h.advance(SECOND);
    h.reject(1, "alice");
    assert_eq!(h.offered(1).as_deref(), Some("bob"));
    h.enqueue(2, "support");
    assert_eq!(
        h.offered(2).as_deref(),
        Some("alice"),
        "idle since 0 s, longer than carol"
    );
}

#[test]
fn an_answer_after_the_offer_was_withdrawn_is_refused() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.enqueue(1, "support");
    h.advance(secs(15));
    assert_eq!(
        h.acd.offer_accepted(h.now, CallRef(1), "alice"),
        Err(AcdError::NoSuchOffer {
            call: CallRef(1),
            agent: "alice".into()
        })
    );
    assert_eq!(
        h.acd.offer_rejected(h.now, CallRef(1), "bob"),
        Err(AcdError::NoSuchOffer {
            call: CallRef(1),
            agent: "bob".into()
        })
    );
}

#[test]
fn a_caller_hanging_up_while_ringing_withdraws_the_offer() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.advance(SECOND);
    h.agent("bob", &["support"]);
    h.enqueue(1, "support");
    h.advance(secs(3));
    h.end(1);
    assert_eq!(
        h.withdrawals(),
        [(secs(4), 1, "alice".into(), WithdrawReason::CallerGone)]
    );
    assert_eq!(h.state("alice"), Some(AgentState::Available));
    assert_eq!(h.acd.caller_state(CallRef(1)), None);
    h.advance(secs(20));
    assert_eq!(
        h.withdrawals().len(),
        1,
        "no ring timeout for a gone caller"
    );
    h.enqueue(2, "support");
    assert_eq!(
        h.offered(2).as_deref(),
        Some("alice"),
        "ringing is not work: alice keeps her place in line"
    );
}

#[test]
fn an_agent_going_away_or_logging_out_while_ringing_passes_the_caller_on() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.advance(SECOND);
    h.agent("bob", &["support"]);
    h.advance(SECOND);
    h.agent("carol", &["support"]);
    h.enqueue(1, "support");
    h.acd.agent_away(h.now, "alice").unwrap();
    h.collect();
    assert_eq!(h.offered(1).as_deref(), Some("bob"));
    h.acd.agent_logout(h.now, "bob").unwrap();
    h.collect();
    assert_eq!(h.offered(1).as_deref(), Some("carol"));
    assert_eq!(h.state("bob"), None);
    let reasons: Vec<WithdrawReason> = h.withdrawals().into_iter().map(|w| w.3).collect();
    assert_eq!(
        reasons,
        [WithdrawReason::AgentAway, WithdrawReason::AgentLoggedOut]
    );
}

// --- agent loss -------------------------------------------------------------------------------

#[test]
fn a_caller_whose_agent_vanished_is_offered_first_to_the_next_free_agent() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.agent("bob", &["support"]);
    h.connect(1, "support", "alice");
    h.connect(2, "support", "bob");
    h.enqueue(3, "support");
    h.enqueue(4, "support");
    h.advance(secs(60));

    // Alice's link is gone and its resume grace has run out.
    h.acd.requeue_at_head(h.now, CallRef(1)).unwrap();
    h.collect();
    assert!(h.log.iter().any(|(at, event)| *at == secs(60)
        && *event
            == AcdEvent::CallerRequeued {
                call: CallRef(1),
                queue: "support".into(),
                agent: "alice".into()
            }));
    assert_eq!(h.state("alice"), Some(AgentState::Away));
    assert_eq!(
        h.acd.caller_state(CallRef(1)),
        Some(CallerState::Waiting {
            queue: "support".into(),
            position: 1
        }),
        "at the head, not the tail"
    );
    assert_eq!(h.acd.position(CallRef(3)), Some(2));
    assert_eq!(h.acd.position(CallRef(4)), Some(3));

    h.advance(SECOND);
    h.end(2);
    h.advance(secs(5));
    assert_eq!(h.offers().last(), Some(&(secs(66), 1, "bob".to_string())));
}

#[test]
fn a_requeued_caller_goes_ahead_of_callers_who_arrived_before_them() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.enqueue(1, "support");
    h.reject(1, "alice");
    h.advance(SECOND);
    h.connect(2, "support", "alice");
    h.advance(SECOND);
    h.acd.requeue_at_head(h.now, CallRef(2)).unwrap();
    assert_eq!(h.acd.position(CallRef(2)), Some(1));
    assert_eq!(h.acd.position(CallRef(1)), Some(2));
}

#[test]
fn a_requeued_caller_is_offered_at_once_when_an_agent_is_free() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.connect(1, "support", "alice");
    h.enqueue(2, "support");
    h.advance(secs(30));
    h.agent("bob", &["support"]);
    assert_eq!(h.offered(2).as_deref(), Some("bob"));
    h.accept(2, "bob");
    h.agent("carol", &["support"]);
    h.advance(secs(30));

    // Logging out a talking agent is the same loss.
    h.acd.agent_logout(h.now, "alice").unwrap();
    h.collect();
    assert_eq!(h.offers().last(), Some(&(secs(60), 1, "carol".to_string())));
    assert_eq!(h.state("alice"), None);
    assert!(h.log.contains(&(
        secs(60),
        AcdEvent::AgentStateChanged {
            agent: "alice".into(),
            state: AgentState::LoggedOut
        }
    )));
}

#[test]
fn a_requeued_caller_gets_a_fresh_max_wait() {
    let mut h = Harness::support();
    h.agent("alice", &["support"]);
    h.advance(secs(290));
    h.connect(1, "support", "alice");
    h.enqueue(2, "support");
    h.advance(secs(20));
    h.acd.requeue_at_head(h.now, CallRef(1)).unwrap();
    h.advance_to(secs(600));
    assert_eq!(h.overflows(), [(secs(590), 2)]);
    h.advance_to(secs(610));
    assert_eq!(h.overflows(), [(secs(590), 2), (secs(610), 1)]);
}

#[test]
fn requeue_needs_a_connected_call() {
    let mut h = Harness::support();
    h.enqueue(1, "support");
    assert_eq!(
        h.acd.requeue_at_head(h.now, CallRef(1)),
        Err(AcdError::NotConnected(CallRef(1)))
    );
    assert_eq!(
        h.acd.requeue_at_head(h.now, CallRef(9)),
        Err(AcdError::UnknownCall(CallRef(9)))
    );
}

// --- errors and snapshot ----------------------------------------------------------------------

#[test]
fn misuse_is_refused_with_an_error_naming_the_value() {
    let mut h = Harness::support();
    let error = h.acd.enqueue(h.now, CallRef(1), "sales").unwrap_err();
    assert_eq!(error.to_string(), "unknown queue \"sales\"");
    h.enqueue(1, "support");
    assert_eq!(
        h.acd.enqueue(h.now, CallRef(1), "support"),
        Err(AcdError::CallAlreadyQueued(CallRef(1)))
    );
    let error = h.acd.agent_available(h.now, "ghost").unwrap_err();
    assert_eq!(error.to_string(), "unknown agent \"ghost\"");
    assert!(h.acd.agent_away(h.now, "ghost").is_err());
    assert!(h.acd.agent_logout(h.now, "ghost").is_err());
}

#[test]
fn login_starts_away_and_a_second_login_keeps_the_call() {
    let mut h = Harness::support();
    h.acd.agent_login(h.now, "alice", &["support".into()]);
    assert_eq!(h.state("alice"), Some(AgentState::Away));
    h.enqueue(1, "support");
    assert_eq!(h.offered(1), None, "away agents are not offered calls");
    h.acd.agent_available(h.now, "alice").unwrap();
    h.accept(1, "alice");
    h.acd
        .agent_login(h.now, "alice", &["support".into(), "sales".into()]);
    assert_eq!(
        h.state("alice"),
        Some(AgentState::Talking { call: CallRef(1) })
    );
}

#[test]
fn the_snapshot_counts_callers_and_agents_per_queue() {
    let mut h = Harness::new(&[("support", queue(&["support"])), ("sales", queue(&[]))]);
    h.agent("alice", &["support"]);
    h.agent("bob", &[]);
    h.acd.agent_login(h.now, "carol", &["support".into()]);
    h.connect(1, "support", "alice");
    h.enqueue(2, "sales");
    h.advance(secs(3));
    h.enqueue(3, "support");
    h.advance(secs(2));
    let snapshot = h.acd.snapshot(h.now);
    let support = &snapshot.queues["support"];
    assert_eq!(
        (support.waiting, support.ringing, support.connected),
        (1, 0, 1)
    );
    assert_eq!(support.longest_wait, Some(secs(2)));
    assert_eq!((support.staffed_agents, support.available_agents), (1, 0));
    let sales = &snapshot.queues["sales"];
    assert_eq!((sales.waiting, sales.ringing, sales.connected), (1, 1, 0));
    assert_eq!(sales.longest_wait, Some(secs(5)));
    assert_eq!(snapshot.agents["carol"], AgentState::Away);
    assert_eq!(
        snapshot.agents["bob"],
        AgentState::Ringing { call: CallRef(2) }
    );
}
