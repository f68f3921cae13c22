//! Answering, ringing, the IVR and the carrier side: what a caller on the demo menu lives
//! through, and what the carrier sees of it.
use std::time::Duration;

use super::*;
use crate::call::leg::SipSignal;
use crate::events::{CallEvent, EndCause, Side};
use crate::media::g711::G711Law;
use crate::route::Destination;
use crate::sip::ua::{CallEvent as SipEvent, EndReason};

#[test]
fn an_offer_is_answered_at_once_and_the_caller_enters_the_menu() {
    let mut h = Harness::new("ivr:main", Duration::ZERO, 1);
    assert!(matches!(&h.signals[..], [SipSignal::Answer(sdp)] if !sdp.is_empty()));
    assert_eq!(
        h.take_events()[1..],
        [
            CallEvent::Answered,
            CallEvent::EnteredMenu {
                menu: "main".into()
            }
        ]
    );
    h.run(FRAME * 10);
    assert_eq!(
        h.packets.len(),
        11,
        "one packet per 20 ms from the answer on"
    );
    let welcome = G711Law::Ulaw.encode_sample(prompt_level("welcome"));
    assert!(h.packets[0].iter().all(|b| *b == welcome), "welcome first");
}

#[test]
fn a_ringing_trunk_rings_then_answers_when_its_ring_time_is_up() {
    let mut h = Harness::new("ivr:main", Duration::from_secs(2), 1);
    assert_eq!(h.signals, [SipSignal::Ring]);
    assert_eq!(
        h.call.next_timer().map(|(t, _)| t),
        Some(crate::call::core::Timer::Answer)
    );
    h.run(Duration::from_millis(1990));
    assert_eq!(h.signals.len(), 1, "no answer before the ring time");
    h.run(Duration::from_millis(20));
    assert!(matches!(h.signals[1], SipSignal::Answer(_)));
}

#[test]
fn a_cancel_while_ringing_ends_the_call_unanswered() {
    let mut h = Harness::new("ivr:main", Duration::from_secs(2), 1);
    h.run(Duration::from_millis(500));
    h.sip(SipEvent::Ended {
        call: 7,
        reason: EndReason::Cancelled,
    });
    assert_eq!(h.ended(), Some((Side::Caller, EndCause::CallerCancelled)));
    assert!(h.call.is_over() && h.call.poll_timeout().is_none());
    h.run(Duration::from_secs(5));
    assert_eq!(h.signals, [SipSignal::Ring], "never answered");
    let answered = h
        .events
        .iter()
        .any(|e| matches!(e, CallEvent::Ended { answered: true, .. }));
    assert!(!answered);
}

#[test]
fn an_unusable_offer_is_refused_with_488_and_ends_the_call() {
    let config = config(|c| c.trunks[0].codecs = vec![crate::config::CodecName::Pcma]);
    let h = Harness::with_config("ivr:main", Duration::ZERO, 1, config);
    assert_eq!(h.signals, [SipSignal::Reject(488)]);
    assert_eq!(
        h.ended(),
        Some((Side::Gateway, EndCause::Refused { status: 488 }))
    );
}

#[test]
fn nine_plays_goodbye_then_hangs_up_with_the_digits_heard() {
    let mut h = Harness::new("ivr:main", Duration::ZERO, 1);
    h.run(FRAME * 10);
    h.key('9');
    h.run(FRAME * 5);
    assert_eq!(
        h.signals.last(),
        Some(&SipSignal::Hangup),
        "goodbye is 40 ms"
    );
    let left = h.events.iter().find_map(|e| match e {
        CallEvent::LeftIvr { digits, to } => Some((digits.clone(), to.clone())),
        _ => None,
    });
    assert_eq!(
        left,
        Some(("9".into(), Destination::Hangup { prompt: None })),
        "end-of-event retransmissions add no digit"
    );
    assert_eq!(h.ended(), Some((Side::Gateway, EndCause::IvrHangup)));
    assert_eq!(h.ends(), 1);
}

#[test]
fn the_same_key_as_rfc4733_and_inband_tone_is_one_digit() {
    let mut h = Harness::new("ivr:main", Duration::ZERO, 1);
    h.run(FRAME * 5);
    h.key('1');
    let mut tone = crate::media::tone::ToneGenerator::dtmf('1', -10.0).unwrap();
    for _ in 0..5 {
        let mut pcm = vec![0i16; 160];
        tone.fill(&mut pcm);
        h.audio(&pcm);
        h.run_with(FRAME, false);
    }
    h.run(FRAME * 15);
    let caller_keys: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            CallEvent::Digits {
                side: Side::Caller,
                digits,
            } => Some(digits.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(caller_keys, ["1"]);
    assert!(h.events.contains(&CallEvent::EnteredMenu {
        menu: "readback".into()
    }));
}

#[test]
fn the_readback_menu_reads_the_digits_back_in_order() {
    let mut h = Harness::new("ivr:main", Duration::ZERO, 1);
    h.key('1');
    h.run(FRAME * 10);
    for d in ['4', '2'] {
        h.key(d);
        h.run(FRAME * 5);
    }
    let start = h.packets.len();
    h.key('#');
    h.run(Duration::from_secs(2));
    let level = |n: &str| G711Law::Ulaw.encode_sample(prompt_level(n));
    let order: Vec<u8> = h.packets[start..]
        .iter()
        .map(|p| p[0])
        .fold(Vec::new(), |mut v, b| {
            if v.last() != Some(&b) {
                v.push(b);
            }
            v
        });
    let want = [
        level("you-entered"),
        level("digit-4"),
        level("digit-2"),
        level("welcome"),
    ];
    let pos: Vec<Option<usize>> = want
        .iter()
        .map(|w| order.iter().position(|b| b == w))
        .collect();
    assert!(
        pos.iter().all(Option::is_some),
        "all of {want:?} heard in {order:?}"
    );
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "in order: {pos:?}");
}

#[test]
fn symmetric_rtp_sends_to_where_the_carrier_really_is() {
    let mut h = Harness::new("ivr:main", Duration::ZERO, 1);
    h.from = "127.0.0.1:7777".parse().unwrap();
    h.run(FRAME * 3);
    assert_eq!(h.to.last(), Some(&"127.0.0.1:7777".parse().unwrap()));
}

#[test]
fn a_carrier_hold_stops_our_audio_and_never_times_out() {
    // In a queue: no menu timeout ends the call while the carrier holds it.
    let mut h = Harness::new("queue:support", Duration::ZERO, 1);
    h.run(FRAME * 5);
    h.sip(SipEvent::ReInvite {
        call: 7,
        offer: Some(offer_with("inactive")),
    });
    assert!(matches!(
        h.signals.last(),
        Some(SipSignal::AnswerReInvite(Ok(_)))
    ));
    assert!(h.events.contains(&CallEvent::CarrierHeld { on: true }));
    let sent = h.packets.len();
    h.run_with(Duration::from_secs(120), false);
    assert_eq!(h.packets.len(), sent, "inactive: we must not send");
    assert_eq!(h.ended(), None, "a held stream never times out");
    h.sip(SipEvent::ReInvite {
        call: 7,
        offer: Some(offer()),
    });
    assert!(h.events.contains(&CallEvent::CarrierHeld { on: false }));
    h.run_with(Duration::from_secs(59), false);
    assert_eq!(h.ended(), None, "the full timeout counts from the resume");
    assert!(h.packets.len() > sent, "sending again after unhold");
}

#[test]
fn a_carrier_that_stops_sending_is_hung_up_once_after_the_rtp_timeout() {
    let mut h = Harness::new("queue:support", Duration::ZERO, 1);
    h.run(Duration::from_secs(30));
    h.run_with(Duration::from_millis(59_900), false);
    assert_eq!(h.ended(), None, "not before 60 s of silence");
    h.run_with(Duration::from_millis(200), false);
    assert_eq!(h.ended(), Some((Side::Gateway, EndCause::MediaTimeout)));
    h.run_with(Duration::from_secs(120), false);
    assert_eq!(h.ends(), 1);
    assert_eq!(
        h.signals
            .iter()
            .filter(|s| **s == SipSignal::Hangup)
            .count(),
        1
    );
}

#[test]
fn a_bye_during_the_ivr_ends_the_call_on_the_callers_side() {
    let mut h = Harness::new("ivr:main", Duration::ZERO, 1);
    h.run(FRAME * 10);
    h.bye();
    assert_eq!(h.ended(), Some((Side::Caller, EndCause::CallerHungUp)));
    assert!(!h.signals.contains(&SipSignal::Hangup), "no BYE of our own");
    assert_eq!(h.left_center(), 0, "never was in a queue");
}

#[test]
fn an_ivr_destination_that_cannot_be_reached_hangs_up() {
    let config = config(|c| {
        let main = c.ivr.menus.get_mut("main").unwrap();
        main.options.as_mut().unwrap().insert(
            "5".into(),
            crate::ivr::Action::Destination {
                target: "voicemail:100".parse().unwrap(),
            },
        );
    });
    let mut h = Harness::with_config("ivr:main", Duration::ZERO, 1, config);
    h.key('5');
    h.run(FRAME * 5);
    assert_eq!(
        h.ended(),
        Some((
            Side::Gateway,
            EndCause::Unroutable {
                to: Destination::Voicemail {
                    mailbox: "100".into()
                }
            }
        ))
    );
}

#[test]
fn the_same_seed_gives_the_same_stream() {
    let first = |seed| {
        let mut h = Harness::new("ivr:main", Duration::ZERO, seed);
        let mut sent = Vec::new();
        h.call.handle_timeout(h.now);
        while let Some(t) = h.call.leg_mut().poll_transmit() {
            sent.push(t.payload);
        }
        sent
    };
    assert_eq!(first(3), first(3), "ssrc, sequence and timestamp repeat");
    assert_ne!(first(3), first(4));
}
