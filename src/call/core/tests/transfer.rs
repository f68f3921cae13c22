//! Transfers to a number through a leg of our own: the caller hears music while the agent
//! consults (or the target rings), the caller and the target hear each other once joined, and
//! every way the target can fail gives the caller back to the agent.
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::call::core::{Output, ToCenter};
use crate::call::leg::{Progress, SipSignal};
use crate::call::outbound::{dialplan, IdentityHeader, Plan};
use crate::events::{CallEvent, EndCause, Side, Unanswered};
use crate::media::g711::G711Law;
use crate::media::rtp::{self, RtpHeader};
use crate::queue::center::outbound::PlaceCall;
use crate::queue::center::CallCommand;
use crate::sip::ua::{CallEvent as SipEvent, EndReason};

const TARGET: u64 = 9;
const CALLER_LEVEL: i16 = 2000;
const TARGET_LEVEL: i16 = -1500;

/// A caller talking to alice, who transfers it to +49301234567 on the example trunk.
struct Transfer {
    h: Harness,
    /// What the target was sent, decoded.
    target_heard: Vec<i16>,
    target_signals: Vec<SipSignal>,
    seq: u16,
    ts: u32,
}

impl Transfer {
    fn start(attended: bool) -> Self {
        let mut h = Harness::new("queue:support", Duration::ZERO, 1);
        h.run(FRAME * 10);
        h.connect("alice");
        h.run(FRAME * 10);
        let trunk = h.call.config.config.trunks[0].clone();
        assert!(!trunk.refer, "the example trunk takes no REFER");
        let place = PlaceCall {
            call: TARGET,
            agent: "alice".into(),
            plan: Plan {
                number: dialplan::parse_e164("+49301234567").unwrap(),
                trunk: trunk.name.clone(),
                dialled: "+49301234567".into(),
                caller_id: "+4930555000".into(),
                via: crate::call::outbound::Via::Sip {
                    identity: IdentityHeader::None,
                    proxy: "127.0.0.1:5070".into(),
                },
            },
            ring_timeout: Duration::from_secs(20),
        };
        h.center(CallCommand::TransferOut {
            onward: Box::new(place),
            attended,
        });
        assert!(
            h.outputs
                .iter()
                .any(|o| matches!(o, Output::PlaceOnward { place, .. } if place.call == TARGET)),
            "the shell is asked for the target's leg"
        );
        let mut rng = StdRng::seed_from_u64(9);
        let leg = outgoing_leg(h.now, &trunk, "127.0.0.1:20002", &mut rng);
        assert!(h.call.onward_ready(leg).is_ok());
        Transfer {
            h,
            target_heard: Vec::new(),
            target_signals: Vec::new(),
            seq: 1,
            ts: 0,
        }
    }

    fn collect(&mut self) {
        self.h.collect();
        let Some(leg) = self.h.call.onward_mut() else {
            return;
        };
        while let Some(s) = leg.poll_signal() {
            self.target_signals.push(s);
        }
        while let Some(t) = leg.poll_transmit() {
            if t.rtcp {
                continue;
            }
            let packet = rtp::parse(&t.payload).unwrap();
            if packet.header.payload_type == 0 {
                G711Law::Ulaw.decode(packet.payload, &mut self.target_heard);
            }
        }
    }

    fn target_sip(&mut self, event: SipEvent) {
        let now = self.h.now;
        self.h
            .call
            .handle_onward(now, |leg, now| leg.handle_sip(now, event));
        self.collect();
    }

    fn answer(&mut self) {
        self.target_sip(SipEvent::Answered {
            call: TARGET,
            sdp: Some(offer()),
        });
    }

    /// `frames` frame periods, the caller and (once answered) the target talking at their
    /// levels.
    fn talk(&mut self, frames: usize, target_talks: bool) {
        for _ in 0..frames {
            let next = self.h.call.poll_timeout().expect("a frame is due");
            self.h.now = next;
            self.h.audio(&[CALLER_LEVEL; 160]);
            if target_talks {
                let mut payload = Vec::new();
                G711Law::Ulaw.encode(&[TARGET_LEVEL; 160], &mut payload);
                let mut buf = Vec::new();
                let header = RtpHeader::new(0, self.seq, self.ts, 0x9999, false);
                rtp::write(&header, &payload, &mut buf);
                self.seq += 1;
                self.ts += 160;
                let now = self.h.now;
                let from = self.h.from;
                self.h
                    .call
                    .handle_onward(now, |leg, now| leg.handle_rtp(now, from, &buf));
            }
            self.h.call.handle_timeout(next);
            self.collect();
            if self.h.call.is_over() {
                break;
            }
        }
    }

    /// The caller's keys go to the agent again (they reach nobody during a transfer).
    fn back_with_the_agent(&mut self) -> bool {
        self.h.key('5');
        self.talk(5, false);
        self.to_center().contains(&ToCenter::CallerDigit('5'))
    }

    fn to_center(&self) -> Vec<ToCenter> {
        self.h
            .outputs
            .iter()
            .filter_map(|o| match o {
                Output::ToCenter(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    fn onward_ended(&self) -> Option<Option<Unanswered>> {
        self.to_center().into_iter().find_map(|c| match c {
            ToCenter::OnwardEnded { onward, unanswered } if onward == TARGET => Some(unanswered),
            _ => None,
        })
    }
}

/// Share of `samples` (from `from` on) within 200 of `level`.
fn share(samples: &[i16], from: usize, level: i16) -> f64 {
    let tail = &samples[from.min(samples.len())..];
    if tail.is_empty() {
        return 0.0;
    }
    let near = tail
        .iter()
        .filter(|s| (i32::from(**s) - i32::from(level)).abs() < 200)
        .count();
    near as f64 / tail.len() as f64
}

#[test]
fn blind_the_caller_hears_music_while_the_target_rings_then_they_talk() {
    let mut t = Transfer::start(false);
    assert!(t.h.events.iter().any(|e| matches!(e,
        CallEvent::TransferDialled { by, to, attended: false, .. }
            if by == "alice" && to == "+49301234567")));
    t.target_sip(SipEvent::Progress {
        call: TARGET,
        code: 180,
        sdp: None,
    });
    let from = t.h.heard.len();
    let agent_before = t.h.to_agent();
    t.talk(50, false);
    assert!(t.h.music_share(from) > 0.9, "the caller hears music");
    assert!(
        t.h.to_agent() - agent_before >= 45,
        "the agent hears the ringback"
    );
    assert!(t.target_heard.is_empty(), "nothing to the target yet");
    t.answer();
    assert!(
        t.to_center().contains(&ToCenter::Joined),
        "joined at the answer"
    );
    let from = t.h.heard.len();
    let agent_before = t.h.to_agent();
    t.talk(50, true);
    assert_eq!(t.h.to_agent(), agent_before, "the agent is out of it");
    assert!(
        share(&t.target_heard, 800, CALLER_LEVEL) > 0.8,
        "the target hears the caller"
    );
    assert!(
        share(&t.h.heard, from + 800, TARGET_LEVEL) > 0.8,
        "the caller hears the target"
    );
    // The target hangs up: the call ends, and the center hears the target's leg is over.
    t.target_sip(SipEvent::Ended {
        call: TARGET,
        reason: EndReason::RemoteBye,
    });
    assert_eq!(t.h.ended(), Some((Side::Target, EndCause::TargetHungUp)));
    assert_eq!(t.onward_ended(), Some(None));
    assert!(
        t.h.signals.contains(&SipSignal::Hangup),
        "the caller is hung up"
    );
    assert_eq!(t.h.left_center(), 0, "the center let go at the join");
}

#[test]
fn attended_the_agent_talks_to_the_target_then_returns_to_the_caller() {
    let mut t = Transfer::start(true);
    t.answer();
    assert!(t
        .to_center()
        .contains(&ToCenter::TransferProgress(Progress::Answered)));
    assert!(
        !t.to_center().contains(&ToCenter::Joined),
        "not before the agent says so"
    );
    let from = t.h.heard.len();
    let agent_before = t.h.to_agent();
    t.talk(50, true);
    assert!(
        t.h.music_share(from) > 0.9,
        "the caller hears music while the agent consults"
    );
    assert!(
        t.h.to_agent() - agent_before >= 45,
        "the agent hears the target"
    );
    assert!(
        share(&t.target_heard, 0, CALLER_LEVEL) < 0.05,
        "the target never hears the caller"
    );
    assert!(
        !t.back_with_the_agent(),
        "the caller's keys reach nobody while consulting"
    );
    t.h.center(CallCommand::ReturnToCaller);
    t.collect();
    assert!(
        t.target_signals.contains(&SipSignal::Hangup),
        "the target is hung up"
    );
    assert_eq!(t.onward_ended(), Some(None));
    assert!(t.back_with_the_agent(), "the caller is back with the agent");
    assert_eq!(t.h.ended(), None);
    // The agent can try again.
    assert!(!t.h.call.is_over());
}

#[test]
fn attended_complete_joins_the_caller_to_the_target() {
    let mut t = Transfer::start(true);
    t.h.center(CallCommand::CompleteTransfer);
    assert!(
        t.to_center()
            .iter()
            .any(|c| matches!(c, ToCenter::TransferFailed { .. })),
        "nothing to complete before the answer"
    );
    t.answer();
    t.talk(10, true);
    t.h.center(CallCommand::CompleteTransfer);
    assert!(t.to_center().contains(&ToCenter::Joined));
    t.talk(50, true);
    assert!(share(&t.target_heard, t.target_heard.len() - 400, CALLER_LEVEL) > 0.8);
    // The caller hangs up: the target is hung up with it.
    t.h.bye();
    t.collect();
    assert_eq!(t.h.ended(), Some((Side::Caller, EndCause::CallerHungUp)));
    assert!(t.target_signals.contains(&SipSignal::Hangup));
    assert_eq!(t.onward_ended(), Some(None));
}

#[test]
fn a_target_that_fails_gives_the_caller_back_to_the_agent() {
    for (status, why) in [
        (486, Unanswered::Busy),
        (404, Unanswered::NumberUnknown),
        (503, Unanswered::Unreachable),
    ] {
        let mut t = Transfer::start(false);
        t.talk(5, false);
        t.target_sip(SipEvent::Failed {
            call: TARGET,
            code: status,
            reason: "No".into(),
        });
        assert_eq!(t.onward_ended(), Some(Some(why)), "{status}");
        assert!(t.h.events.iter().any(
            |e| matches!(e, CallEvent::TransferLegEnded { unanswered: Some(w), .. } if *w == why)
        ));
        assert!(t.back_with_the_agent(), "{status}: back with the agent");
        assert_eq!(t.h.ended(), None);
    }
}

#[test]
fn a_target_nobody_answers_is_cancelled_at_the_ring_timeout() {
    let mut t = Transfer::start(false);
    t.target_sip(SipEvent::Progress {
        call: TARGET,
        code: 180,
        sdp: None,
    });
    t.talk(990, false);
    assert_eq!(t.onward_ended(), None, "19.8 s: still ringing");
    t.talk(20, false);
    assert_eq!(t.onward_ended(), Some(Some(Unanswered::NoAnswer)));
    assert!(t.target_signals.contains(&SipSignal::Hangup), "cancelled");
}

#[test]
fn a_second_transfer_while_one_is_under_way_is_refused() {
    let mut t = Transfer::start(true);
    let place = match t.h.outputs.iter().find_map(|o| match o {
        Output::PlaceOnward { place, .. } => Some(place.clone()),
        _ => None,
    }) {
        Some(p) => p,
        None => unreachable!("placed in start"),
    };
    t.h.center(CallCommand::TransferOut {
        onward: place,
        attended: false,
    });
    assert!(t
        .to_center()
        .iter()
        .any(|c| matches!(c, ToCenter::TransferFailed { .. })));
}

#[test]
fn the_agent_hanging_up_while_consulting_ends_the_call_and_the_targets_leg() {
    let mut t = Transfer::start(true);
    t.answer();
    t.talk(5, true);
    t.h.center(CallCommand::AgentHungUp);
    t.collect();
    assert_eq!(t.h.ended(), Some((Side::Agent, EndCause::AgentHungUp)));
    assert!(t.target_signals.contains(&SipSignal::Hangup));
    assert_eq!(t.onward_ended(), Some(None));
}
