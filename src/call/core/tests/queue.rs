//! Queues and agents: the moves between waiting and talking, keys both ways, hold, loss and
//! resume, overflow, and the races between the caller, the agent and the clock.
use std::time::Duration;

use super::*;
use crate::call::core::{Output, ToCenter};
use crate::call::leg::SipSignal;
use crate::events::{CallEvent, EndCause, Side};
use crate::ivr::Action;
use crate::queue::center::CallCommand;
use crate::queue::AcdError;
use crate::route::Destination;
use crate::sip::ua::CallEvent as SipEvent;

/// A caller routed straight to the support queue and waiting there.
fn waiting() -> Harness {
    let mut h = Harness::new("queue:support", Duration::ZERO, 1);
    h.run(FRAME * 10);
    h
}

/// A caller talking to agent alice.
fn talking() -> Harness {
    let mut h = waiting();
    h.connect("alice");
    h.run(FRAME * 10);
    h
}

#[test]
fn the_ivr_sends_the_caller_to_the_queue_which_plays_music() {
    let mut h = Harness::new("ivr:main", Duration::ZERO, 1);
    h.key('0');
    h.run(FRAME * 5);
    assert!(h.events.contains(&CallEvent::LeftIvr {
        digits: "0".into(),
        to: Destination::Queue {
            name: "support".into()
        }
    }));
    assert_eq!(h.enqueued(), ["support"]);
    let from = h.heard.len();
    h.run(Duration::from_secs(1));
    assert!(h.music_share(from) > 0.9, "music on hold while waiting");
}

#[test]
fn an_agent_answers_and_audio_flows_both_ways() {
    let mut h = waiting();
    assert_eq!(h.enqueued(), ["support"]);
    match &h.outputs[0] {
        Output::ToCenter(ToCenter::Enqueue { caller, .. }) => assert_eq!(caller, "+15551234"),
        other => panic!("{other:?}"),
    }
    h.connect("alice");
    assert!(h.events.contains(&CallEvent::AgentAnswered {
        agent: "alice".into()
    }));
    h.run(FRAME * 50);
    assert!(
        h.to_agent() >= 45,
        "the agent hears the caller: {}",
        h.to_agent()
    );
}

#[test]
fn keys_go_both_ways_while_talking() {
    let mut h = talking();
    h.key('4');
    h.run(FRAME * 5);
    let digits: Vec<_> = h
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::ToCenter(ToCenter::CallerDigit(d)) => Some(*d),
            _ => None,
        })
        .collect();
    assert_eq!(digits, ['4'], "the caller's key reaches the agent once");
    h.center(CallCommand::Dtmf {
        digits: "42#".into(),
    });
    assert!(h.events.contains(&CallEvent::Digits {
        side: Side::Agent,
        digits: "42#".into()
    }));
    h.center(CallCommand::Dtmf { digits: "x".into() });
    let agent_keys = h
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                CallEvent::Digits {
                    side: Side::Agent,
                    ..
                }
            )
        })
        .count();
    assert_eq!(agent_keys, 1, "a bad digit is refused, not reported");
}

#[test]
fn a_held_caller_hears_music_and_the_agent_hears_nothing() {
    let mut h = talking();
    h.center(CallCommand::Hold { on: true });
    assert!(h.events.contains(&CallEvent::Held { on: true }));
    let (sent, from) = (h.to_agent(), h.heard.len());
    h.run(Duration::from_secs(1));
    assert_eq!(h.to_agent(), sent, "nothing goes to the agent while held");
    assert!(h.music_share(from) > 0.9);
    h.center(CallCommand::Hold { on: false });
    h.run(FRAME * 20);
    assert!(
        h.to_agent() >= sent + 18,
        "the agent hears the caller again"
    );
}

#[test]
fn a_lost_agent_means_music_until_it_resumes() {
    let mut h = talking();
    h.center(CallCommand::AgentLost);
    assert!(h.events.contains(&CallEvent::AgentLost));
    let (sent, from) = (h.to_agent(), h.heard.len());
    h.run(Duration::from_secs(1));
    assert!(
        h.music_share(from) > 0.9,
        "music while the agent may resume"
    );
    assert_eq!(h.to_agent(), sent);
    h.center(CallCommand::Reconnect { conn: 2, flow: 1 });
    assert!(h.events.contains(&CallEvent::AgentResumed));
    h.run(FRAME * 20);
    assert!(
        h.to_agent() >= sent + 18,
        "talking again on the new connection"
    );
}

#[test]
fn an_agent_past_its_grace_puts_the_caller_back_in_the_queue_for_the_next_agent() {
    let mut h = talking();
    h.center(CallCommand::AgentLost);
    h.run(Duration::from_secs(1));
    h.center(CallCommand::Requeued);
    assert!(h.events.contains(&CallEvent::Requeued));
    h.connect("bob");
    assert!(h.events.contains(&CallEvent::AgentAnswered {
        agent: "bob".into()
    }));
    assert_eq!(h.enqueued().len(), 1, "still the one queue entry");
}

#[test]
fn a_silent_agent_gives_the_caller_music_not_dead_air() {
    let mut h = talking();
    let from = h.heard.len();
    h.run(Duration::from_secs(2));
    assert!(
        h.events.contains(&CallEvent::AgentAudio { flowing: false }),
        "{:?}",
        h.events
    );
    assert!(h.music_share(from + 8000 * 11 / 10) > 0.9);
}

#[test]
fn announcements_play_over_the_music_while_waiting() {
    let mut h = waiting();
    h.center(CallCommand::Announce {
        prompts: vec!["queue-unavailable".into()],
    });
    assert!(h.events.contains(&CallEvent::Announced {
        prompts: vec!["queue-unavailable".into()]
    }));
    let from = h.heard.len();
    h.run(FRAME * 2);
    assert!(
        h.heard[from..].iter().all(|s| (s + 3000).abs() < 200),
        "the announcement"
    );
    let from = h.heard.len();
    h.run(FRAME * 10);
    assert!(h.music_share(from) > 0.9, "then the music again");
}

#[test]
fn overflow_into_a_hangup_says_goodbye_and_leaves_the_queue() {
    let mut h = waiting();
    h.center(CallCommand::Overflow {
        action: Action::Hangup {
            prompt: Some("queue-unavailable".into()),
        },
    });
    assert!(h.events.contains(&CallEvent::Overflowed {
        queue: "support".into(),
        to: Destination::Hangup {
            prompt: Some("queue-unavailable".into())
        }
    }));
    h.run(FRAME);
    assert_eq!(h.ended(), None, "not before the goodbye is heard");
    h.run(FRAME * 5);
    assert_eq!(h.ended(), Some((Side::Gateway, EndCause::QueueHangup)));
    assert_eq!(h.signals.last(), Some(&SipSignal::Hangup));
    assert_eq!(h.left_center(), 0, "the center already let go at overflow");
}

#[test]
fn overflow_into_a_menu_takes_the_caller_to_the_ivr() {
    let mut h = waiting();
    h.center(CallCommand::Overflow {
        action: Action::Goto {
            menu: "main".into(),
        },
    });
    assert!(h.events.contains(&CallEvent::EnteredMenu {
        menu: "main".into()
    }));
    h.key('0');
    h.run(FRAME * 5);
    assert_eq!(h.enqueued(), ["support", "support"], "and may queue again");
}

#[test]
fn a_queue_that_refuses_the_caller_says_so_and_hangs_up() {
    let mut h = waiting();
    h.center(CallCommand::Refused {
        reason: AcdError::UnknownQueue("support".into()),
    });
    h.run(FRAME * 20);
    assert_eq!(h.ended(), Some((Side::Gateway, EndCause::QueueHangup)));
    assert_eq!(h.left_center(), 0, "the center never had it");
}

#[test]
fn the_agent_hanging_up_ends_the_call() {
    let mut h = talking();
    h.center(CallCommand::AgentHungUp);
    assert_eq!(h.ended(), Some((Side::Agent, EndCause::AgentHungUp)));
    assert_eq!(h.signals.last(), Some(&SipSignal::Hangup));
    assert_eq!(h.left_center(), 0, "the center ended it");
    let quality = h.events.iter().find_map(|e| match e {
        CallEvent::Ended { quality, .. } => Some(quality.clone()),
        _ => None,
    });
    let quality = quality.unwrap();
    assert!(quality.carrier.packets_received > 0 && quality.carrier.packets_sent > 0);
    assert!(quality.agent.is_some(), "the agent leg's stats are kept");
}

/// Talking, then on hold at the agent's request.
fn held_by_the_agent() -> Harness {
    let mut h = talking();
    h.center(CallCommand::Hold { on: true });
    h.run(FRAME * 10);
    h
}

/// Talking, then on hold at the carrier's request (a re-INVITE with `inactive`).
fn held_by_the_carrier() -> Harness {
    let mut h = talking();
    h.sip(SipEvent::ReInvite {
        call: 7,
        offer: Some(offer_with("inactive")),
    });
    h.run_with(FRAME * 10, false);
    h
}

/// Talking, then the agent's connection is gone: music while the center waits for a resume.
fn agent_lost() -> Harness {
    let mut h = talking();
    h.center(CallCommand::AgentLost);
    h.run(FRAME * 10);
    h
}

#[test]
fn a_bye_in_every_phase_ends_the_call_and_tells_the_center_once() {
    type Phase = fn() -> Harness;
    let phases: [(&str, Phase); 5] = [
        ("waiting", waiting),
        ("talking", talking),
        ("held by the agent", held_by_the_agent),
        ("held by the carrier", held_by_the_carrier),
        ("agent lost", agent_lost),
    ];
    for (name, make) in phases {
        let mut h = make();
        let signals = h.signals.len();
        h.bye();
        assert_eq!(
            h.ended(),
            Some((Side::Caller, EndCause::CallerHungUp)),
            "{name}"
        );
        assert_eq!(h.left_center(), 1, "{name}");
        h.run(Duration::from_secs(1));
        assert_eq!((h.ends(), h.left_center()), (1, 1), "{name}: once");
        assert!(
            !h.signals[signals..].contains(&SipSignal::Hangup),
            "{name}: no BYE of ours after the caller's"
        );
    }
}

#[test]
fn a_bye_while_the_goodbye_plays_ends_the_call_at_once() {
    let mut h = waiting();
    h.center(CallCommand::Overflow {
        action: Action::Hangup {
            prompt: Some("queue-unavailable".into()),
        },
    });
    h.run(FRAME);
    let signals = h.signals.len();
    h.bye();
    assert_eq!(h.ended(), Some((Side::Caller, EndCause::CallerHungUp)));
    h.run(Duration::from_secs(1));
    assert_eq!(h.ends(), 1);
    assert_eq!(h.left_center(), 0, "the center let go at overflow");
    assert!(!h.signals[signals..].contains(&SipSignal::Hangup));
}

#[test]
fn an_agent_answering_as_the_caller_hangs_up_is_ignored() {
    let mut h = waiting();
    h.bye();
    h.connect("alice");
    h.center(CallCommand::Hold { on: true });
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, CallEvent::AgentAnswered { .. })));
    assert_eq!((h.ends(), h.left_center()), (1, 1));
    assert!(h.call.poll_timeout().is_none());
}

#[test]
fn a_cancel_while_an_agent_is_offered_leaves_the_queue() {
    let mut h = Harness::new("queue:support", Duration::from_secs(3), 1);
    // Ringing: not yet in the queue; the caller gives up.
    h.run(Duration::from_secs(1));
    h.sip(crate::sip::ua::CallEvent::Ended {
        call: 7,
        reason: crate::sip::ua::EndReason::Cancelled,
    });
    assert!(h.enqueued().is_empty() && h.left_center() == 0);
    // Answered and offered: the caller hangs up while the agent's phone rings.
    let mut h = waiting();
    h.run(FRAME * 5);
    h.bye();
    assert_eq!(h.left_center(), 1, "the center withdraws the offer");
    h.connect("alice");
    assert_eq!(h.ends(), 1);
}

#[test]
fn a_resume_arriving_as_the_grace_expires_leaves_one_consistent_call() {
    // The center requeues first, then a late reconnect for the old session arrives.
    let mut h = talking();
    h.center(CallCommand::AgentLost);
    h.center(CallCommand::Requeued);
    h.center(CallCommand::Reconnect { conn: 2, flow: 1 });
    h.run(FRAME * 10);
    assert_eq!(h.ended(), None);
    // Or the reconnect wins and the requeue that follows puts the caller back to waiting.
    let mut h = talking();
    h.center(CallCommand::AgentLost);
    h.center(CallCommand::Reconnect { conn: 2, flow: 1 });
    h.center(CallCommand::Requeued);
    let (sent, from) = (h.to_agent(), h.heard.len());
    h.run(Duration::from_secs(1));
    assert_eq!(h.to_agent(), sent, "waiting: nothing goes to an agent");
    assert!(h.music_share(from) > 0.9);
}

#[test]
fn a_late_wake_up_catches_up_every_frame_and_the_end_reports_how_late() {
    let mut h = talking();
    let sent = h.packets.len();
    // The task was starved for 300 ms: every frame due meanwhile is handled at once.
    h.now += Duration::from_millis(300);
    h.call.handle_timeout(h.now);
    h.collect();
    assert_eq!(h.packets.len() - sent, 15, "one packet per frame due");
    h.run(FRAME * 5);
    h.bye();
    let quality = h
        .events
        .iter()
        .find_map(|e| match e {
            CallEvent::Ended { quality, .. } => Some(quality.clone()),
            _ => None,
        })
        .expect("ended");
    assert!(
        quality.frame_delay_max >= Duration::from_millis(280),
        "{quality:?}"
    );
}
