//! A call an agent places: ringback or early media to the agent before the answer, nothing of
//! the agent's to the callee until then, and every way it can end unanswered.
use std::time::Duration;

use super::*;
use crate::call::core::{Output, ToCenter};
use crate::call::leg::{Progress, SipSignal};
use crate::events::{CallEvent, EndCause, Side, Unanswered};
use crate::queue::center::CallCommand;
use crate::sip::ua::CallEvent as SipEvent;

const RING: Duration = Duration::from_secs(30);

fn progress(h: &Harness) -> Vec<Progress> {
    h.outputs
        .iter()
        .filter_map(|o| match o {
            Output::ToCenter(ToCenter::Progress(p)) => Some(*p),
            _ => None,
        })
        .collect()
}

fn placed_ended(h: &Harness) -> Option<Option<Unanswered>> {
    h.outputs.iter().find_map(|o| match o {
        Output::ToCenter(ToCenter::PlacedEnded { unanswered }) => Some(*unanswered),
        _ => None,
    })
}

#[test]
fn the_agent_hears_ringback_until_the_answer_and_the_callee_nothing_before_it() {
    let mut h = Harness::outgoing(RING, 1);
    assert!(matches!(h.events[0], CallEvent::Dialled { ref agent, .. } if agent == "alice"));
    h.sip(SipEvent::Progress {
        call: 7,
        code: 180,
        sdp: None,
    });
    h.run_with(Duration::from_secs(1), false);
    assert_eq!(progress(&h), [Progress::Ringing]);
    assert!(h
        .events
        .contains(&CallEvent::Ringing { early_media: false }));
    // A packet to the agent every frame (ringback), none to the callee.
    assert!(h.to_agent() >= 49, "{} packets to the agent", h.to_agent());
    assert!(
        h.packets.is_empty(),
        "the callee got audio before answering"
    );
    h.sip(SipEvent::Answered {
        call: 7,
        sdp: Some(offer()),
    });
    h.run(Duration::from_secs(1));
    assert_eq!(progress(&h), [Progress::Ringing, Progress::Answered]);
    assert!(h.events.contains(&CallEvent::Answered));
    assert!(h.events.contains(&CallEvent::AgentAnswered {
        agent: "alice".into()
    }));
    assert!(
        h.packets.len() >= 49,
        "the callee hears the agent after the answer"
    );
    // The callee hangs up: the center is told the answered call is over.
    h.bye();
    assert_eq!(placed_ended(&h), Some(None));
    assert_eq!(h.ended(), Some((Side::Caller, EndCause::CallerHungUp)));
}

#[test]
fn early_media_replaces_our_ringback() {
    let mut h = Harness::outgoing(RING, 2);
    h.sip(SipEvent::Progress {
        call: 7,
        code: 183,
        sdp: Some(offer()),
    });
    assert_eq!(progress(&h), [Progress::EarlyMedia]);
    assert!(h.events.contains(&CallEvent::Ringing { early_media: true }));
}

#[test]
fn a_refusal_ends_the_call_with_its_reason() {
    for (status, why) in [
        (486, Unanswered::Busy),
        (603, Unanswered::Rejected),
        (404, Unanswered::NumberUnknown),
        (503, Unanswered::Unreachable),
        (480, Unanswered::NoAnswer),
    ] {
        let mut h = Harness::outgoing(RING, 3);
        h.sip(SipEvent::Failed {
            call: 7,
            code: status,
            reason: "Refused".into(),
        });
        assert_eq!(
            h.ended(),
            Some((Side::Caller, EndCause::Unanswered { why, status }))
        );
        assert_eq!(placed_ended(&h), Some(Some(why)), "{status}");
        assert!(
            !h.signals.contains(&SipSignal::Hangup),
            "nothing to hang up"
        );
    }
}

#[test]
fn nobody_answering_within_the_ring_timeout_cancels_the_call() {
    let mut h = Harness::outgoing(Duration::from_secs(3), 4);
    h.sip(SipEvent::Progress {
        call: 7,
        code: 180,
        sdp: None,
    });
    h.run_with(Duration::from_millis(2900), false);
    assert_eq!(h.ended(), None);
    h.run_with(Duration::from_millis(200), false);
    assert_eq!(
        h.ended(),
        Some((
            Side::Gateway,
            EndCause::Unanswered {
                why: Unanswered::NoAnswer,
                status: 0
            }
        ))
    );
    assert!(h.signals.contains(&SipSignal::Hangup), "cancelled");
    assert_eq!(placed_ended(&h), Some(Some(Unanswered::NoAnswer)));
}

#[test]
fn the_agent_hanging_up_before_the_answer_cancels_it() {
    let mut h = Harness::outgoing(RING, 5);
    h.run_with(Duration::from_millis(500), false);
    h.center(CallCommand::AgentHungUp);
    assert!(h.signals.contains(&SipSignal::Hangup));
    assert_eq!(
        h.ended(),
        Some((
            Side::Agent,
            EndCause::Unanswered {
                why: Unanswered::Cancelled,
                status: 0
            }
        ))
    );
}

#[test]
fn a_carrier_that_never_answers_is_unreachable_but_its_own_408_is_no_answer() {
    let mut h = Harness::outgoing(RING, 6);
    h.sip(SipEvent::Failed {
        call: 7,
        code: 408,
        reason: crate::sip::ua::NO_RESPONSE.into(),
    });
    let unreachable = EndCause::Unanswered {
        why: Unanswered::Unreachable,
        status: 0,
    };
    assert_eq!(h.ended(), Some((Side::Caller, unreachable)));
    let mut h = Harness::outgoing(RING, 7);
    h.sip(SipEvent::Failed {
        call: 7,
        code: 408,
        reason: "Request Timeout".into(),
    });
    let no_answer = EndCause::Unanswered {
        why: Unanswered::NoAnswer,
        status: 408,
    };
    assert_eq!(h.ended(), Some((Side::Caller, no_answer)));
}

#[test]
fn an_answer_while_the_agents_link_is_down_waits_with_music_for_its_return() {
    let mut h = Harness::outgoing(RING, 8);
    h.center(CallCommand::AgentLost);
    h.sip(SipEvent::Answered {
        call: 7,
        sdp: Some(offer()),
    });
    assert!(h.events.contains(&CallEvent::Answered));
    let heard_from = h.heard.len();
    h.run(Duration::from_secs(1));
    let share = h.music_share(heard_from);
    assert!(
        share > 0.9,
        "the callee hears music: {share} of {} samples",
        h.heard.len() - heard_from
    );
    h.center(CallCommand::Reconnect { conn: 2, flow: 1 });
    let agent_before = h.to_agent();
    h.run(Duration::from_secs(1));
    assert!(
        h.to_agent() > agent_before + 40,
        "bridged to the agent again"
    );
    assert_eq!(h.ended(), None);
}
