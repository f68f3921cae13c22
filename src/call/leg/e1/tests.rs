//! The E1 leg on its own: its signals for each step of a call, how the far side's clearing
//! ends it, audio both ways through G.711, the FIFO's bound, and keys heard and sent in-band.
use super::*;
use crate::isdn::q931::ie::{location, Cause};
use crate::isdn::q931::message::CallRef;
use crate::media::tone::ToneGenerator;

const CALL: CallRef = CallRef {
    value: 1,
    ours: false,
};

fn cleared(value: u8) -> Event {
    Event::Cleared {
        call: CALL,
        cause: Cause::new(location::PUBLIC_LOCAL, value),
    }
}

fn signals(leg: &mut E1Leg) -> Vec<E1Signal> {
    std::iter::from_fn(|| leg.poll_signal()).collect()
}

#[test]
fn an_incoming_call_proceeds_rings_answers_and_ends_when_the_caller_hangs_up() {
    let now = Instant::now();
    let mut leg = E1Leg::incoming(5, Law::ALaw);
    leg.accept(now).unwrap();
    leg.ring(now);
    leg.answer(now);
    leg.answer(now);
    assert_eq!(
        signals(&mut leg),
        [E1Signal::Proceeding, E1Signal::Alerting, E1Signal::Connect]
    );
    assert_eq!(leg.poll_end(), None);
    leg.handle_span(&Event::Disconnecting {
        call: CALL,
        cause: Cause::new(location::PUBLIC_REMOTE, cause::NORMAL_CLEARING),
    });
    leg.handle_span(&cleared(cause::NORMAL_CLEARING));
    assert_eq!(leg.poll_end(), Some(LegEnd::HungUp));
    assert_eq!(leg.their_cause(), Some(cause::NORMAL_CLEARING));
    leg.hang_up(now);
    assert!(signals(&mut leg).is_empty(), "nothing to hang up");
}

#[test]
fn a_caller_who_gives_up_before_the_answer_is_a_cancel_and_our_hang_up_is_local() {
    let now = Instant::now();
    let mut leg = E1Leg::incoming(5, Law::ALaw);
    leg.accept(now).unwrap();
    leg.handle_span(&cleared(cause::NORMAL_CLEARING));
    assert_eq!(leg.poll_end(), Some(LegEnd::Cancelled));

    let mut leg = E1Leg::incoming(5, Law::ALaw);
    leg.accept(now).unwrap();
    leg.answer(now);
    leg.hang_up(now);
    leg.hang_up(now);
    assert_eq!(
        signals(&mut leg).last(),
        Some(&E1Signal::HangUp {
            cause: cause::NORMAL_CLEARING
        })
    );
    assert_eq!(leg.poll_end(), None, "over once the span says so");
    leg.handle_span(&cleared(cause::NORMAL_CLEARING));
    assert_eq!(leg.poll_end(), Some(LegEnd::Local));
}

#[test]
fn an_outgoing_call_reports_ringing_early_media_the_answer_or_the_sip_status_of_its_cause() {
    let mut leg = E1Leg::outgoing(31, Law::ALaw);
    leg.handle_span(&Event::Alerting {
        call: CALL,
        inband: false,
    });
    leg.handle_span(&Event::Progress {
        call: CALL,
        inband: true,
    });
    leg.handle_span(&Event::Connected { call: CALL });
    let progress: Vec<Progress> = std::iter::from_fn(|| leg.poll_progress()).collect();
    assert_eq!(
        progress,
        [Progress::Ringing, Progress::EarlyMedia, Progress::Answered]
    );

    let mut busy = E1Leg::outgoing(31, Law::ALaw);
    busy.handle_span(&Event::Disconnecting {
        call: CALL,
        cause: Cause::new(location::PUBLIC_REMOTE, cause::USER_BUSY),
    });
    busy.handle_span(&cleared(cause::NORMAL_CLEARING));
    assert_eq!(busy.poll_end(), Some(LegEnd::Unanswered { status: 486 }));
}

#[test]
fn audio_crosses_g711_both_ways_and_the_fifo_holds_at_most_60_ms() {
    let now = Instant::now();
    for law in [Law::ALaw, Law::MuLaw] {
        let g711 = match law {
            Law::ALaw => G711Law::Alaw,
            Law::MuLaw => G711Law::Ulaw,
        };
        let mut leg = E1Leg::incoming(1, law);
        let ramp: Vec<i16> = (0..160).map(|i| (i * 100 - 8000) as i16).collect();
        let mut bytes = Vec::new();
        g711.encode(&ramp, &mut bytes);
        leg.handle_audio(&bytes);
        let heard = leg.exchange(now, &ramp).to_vec();
        let mut expected = Vec::new();
        g711.decode(&bytes, &mut expected);
        assert_eq!(heard, expected, "{law:?}");
        assert_eq!(leg.take_audio(), Some(bytes), "{law:?}");
        assert_eq!(leg.take_audio(), None);

        // Nothing came: a silent frame, counted.
        assert!(leg.exchange(now, &ramp).iter().all(|&s| s == 0));
        assert_eq!(leg.quality().concealed_frames, 1);

        // A far end that ran ahead by 10 frames: only the newest 3 are kept.
        for n in 0..10u8 {
            leg.handle_audio(&[g711.encode_sample(i16::from(n) * 256); 160]);
        }
        let first = leg.exchange(now, &ramp)[0];
        assert_eq!(first, g711.decode_sample(g711.encode_sample(7 * 256)));
    }
}

#[test]
fn keys_pressed_in_band_are_heard_once_and_ours_are_sent_in_band() {
    let now = Instant::now();
    let mut leg = E1Leg::incoming(1, Law::ALaw);
    let mut pcm = vec![0i16; 160];
    let mut bytes = Vec::new();
    let mut tone = ToneGenerator::dtmf('7', -10.0).unwrap();
    let mut heard = Vec::new();
    for n in 0..25 {
        if n < 5 {
            tone.fill(&mut pcm);
        } else {
            pcm.fill(0);
        }
        bytes.clear();
        G711Law::Alaw.encode(&pcm, &mut bytes);
        leg.handle_audio(&bytes);
        leg.exchange(now, &[0; 160]);
        heard.extend(std::iter::from_fn(|| leg.poll_digit()));
    }
    assert_eq!(heard, ['7']);

    // Ours: the bytes we send carry the tone, which a detector hears as the key.
    let mut sender = E1Leg::incoming(1, Law::ALaw);
    sender.send_digits("5").unwrap();
    let mut detector = InbandDetector::new(8000);
    let mut detected = Vec::new();
    for _ in 0..30 {
        sender.exchange(now, &[0; 160]);
        let mut decoded = Vec::new();
        G711Law::Alaw.decode(&sender.take_audio().unwrap(), &mut decoded);
        detected.extend(detector.process(&decoded));
    }
    assert_eq!(detected, ['5']);
}
