use super::*;
use crate::media::dtmf::{InbandDetector, Rfc4733Receiver};

const FRAME: Duration = Duration::from_millis(20);
const FRAME_SAMPLES: u32 = 160;

/// Runs the sender for `frames` frames the way the carrier leg does, advancing the media clock
/// one frame per call.
fn run(sender: &mut DigitSender, telephone_event: bool, frames: usize) -> Vec<(u32, DigitFrame)> {
    let mut timestamp = 90_000u32;
    let mut tone = [0i16; FRAME_SAMPLES as usize];
    (0..frames)
        .map(|_| {
            let frame = sender.next_frame(telephone_event, timestamp, &mut tone);
            let at = timestamp;
            timestamp = timestamp.wrapping_add(FRAME_SAMPLES);
            (at, frame)
        })
        .collect()
}

#[test]
fn events_carry_each_press_once_with_its_start_time_and_a_pause_between() {
    let mut sender = DigitSender::new(FRAME);
    sender.queue("12#").unwrap();
    let frames = run(&mut sender, true, 40);
    let mut receiver = Rfc4733Receiver::new();
    let mut heard = String::new();
    let mut starts = Vec::new();
    for (_, frame) in &frames {
        if let DigitFrame::Event {
            event,
            timestamp,
            marker,
        } = frame
        {
            if *marker {
                starts.push(*timestamp);
            }
            heard.extend(receiver.on_packet(*timestamp, *marker, event));
        }
    }
    assert_eq!(heard, "12#");
    // 100 ms on + 100 ms off = 10 frames of 160 samples between press starts.
    assert_eq!(starts, vec![90_000, 91_600, 93_200]);
    let ends: Vec<_> = frames
        .iter()
        .filter_map(|(_, f)| match f {
            DigitFrame::Event { event, .. } if event.end => Some(event.duration),
            _ => None,
        })
        .collect();
    assert_eq!(
        ends,
        vec![800; 9],
        "three end packets per press, 100 ms each"
    );
    let audio_between = frames[..10]
        .iter()
        .filter(|(_, f)| *f == DigitFrame::Audio)
        .count();
    assert_eq!(audio_between, 3, "the pause is audio after the end packets");
    assert!(!sender.is_busy());
    assert!(frames[30..].iter().all(|(_, f)| *f == DigitFrame::Audio));
}

#[test]
fn without_telephone_event_the_presses_are_tones_a_detector_hears_once_each() {
    let mut sender = DigitSender::new(FRAME);
    sender.queue("5a0").unwrap();
    let mut detector = InbandDetector::new(8000);
    let mut heard = String::new();
    let mut tone_frames = 0;
    let mut tone = [0i16; FRAME_SAMPLES as usize];
    for _ in 0..60 {
        let mut pcm = [0i16; FRAME_SAMPLES as usize];
        if sender.next_frame(false, 0, &mut tone) == DigitFrame::Tone {
            tone_frames += 1;
            pcm = tone;
        }
        heard.extend(detector.process(&pcm));
    }
    assert_eq!(heard, "5A0");
    assert_eq!(tone_frames, 30, "200 ms of tone and pause per press");
}

#[test]
fn a_bad_digit_queues_nothing() {
    let mut sender = DigitSender::new(FRAME);
    assert_eq!(
        sender.queue("12x3"),
        Err(DtmfError::UnknownDigit { digit: 'x' })
    );
    assert!(!sender.is_busy());
    assert!(run(&mut sender, true, 5)
        .iter()
        .all(|(_, f)| *f == DigitFrame::Audio));
}

#[test]
fn the_queue_is_bounded() {
    let mut sender = DigitSender::new(FRAME);
    sender.queue(&"1".repeat(MAX_QUEUED)).unwrap();
    assert_eq!(
        sender.queue("2"),
        Err(DtmfError::QueueFull {
            queued: MAX_QUEUED,
            limit: MAX_QUEUED
        })
    );
}

#[test]
fn long_packet_times_still_send_every_packet_of_a_press() {
    let mut sender = DigitSender::new(Duration::from_millis(60));
    sender.queue("9").unwrap();
    let mut tone = [0i16; 480];
    let mut events = 0;
    for i in 0..8u32 {
        if let DigitFrame::Event { .. } = sender.next_frame(true, i * 480, &mut tone) {
            events += 1;
        }
    }
    // 60 ms and 100 ms updates, then two more copies of the end.
    assert_eq!(events, 4);
    assert!(!sender.is_busy());
}
