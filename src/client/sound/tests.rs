//! The sound path without a sound card: the rings' latency rules, the callbacks' conversions
//! (driven with buffers shaped as a card would hand them over), and the format choice for the
//! kinds of devices ALSA presents. The real device is exercised end to end by the integration
//! test `sound_device` (ALSA's file plugin as the card).
use std::f64::consts::PI;

use cpal::{
    BufferSize, SampleFormat, StreamConfig, SupportedBufferSize, SupportedStreamConfigRange,
};

use super::device::{choose, Capture, Playback};
use super::link::{microphone_link, speaker_link, HEADROOM_SAMPLES, MIN_PRIME_SAMPLES};
use crate::media::opus::FRAME_SAMPLES;

fn ramp(start: i16, count: usize) -> Vec<i16> {
    (0..count).map(|i| start.wrapping_add(i as i16)).collect()
}

fn drain_samples(drain: &mut super::link::SpeakerDrain, step: usize) -> Vec<i16> {
    drain.begin(step);
    (0..step).map(|_| drain.next_sample()).collect()
}

#[test]
fn the_speaker_waits_for_40ms_before_it_plays() {
    let (mut feed, mut drain) = speaker_link();
    feed.play(&ramp(1, FRAME_SAMPLES));
    assert_eq!(
        drain_samples(&mut drain, FRAME_SAMPLES),
        vec![0; FRAME_SAMPLES],
        "one frame is not enough to start"
    );
    feed.play(&ramp(161, FRAME_SAMPLES));
    assert_eq!(
        drain_samples(&mut drain, FRAME_SAMPLES),
        ramp(1, FRAME_SAMPLES)
    );
    assert_eq!(
        drain_samples(&mut drain, FRAME_SAMPLES),
        ramp(161, FRAME_SAMPLES)
    );
    assert_eq!(feed.counters().underruns, 0);
}

#[test]
fn a_dry_speaker_plays_silence_and_primes_again() {
    let (mut feed, mut drain) = speaker_link();
    feed.play(&ramp(1, FRAME_SAMPLES));
    feed.play(&ramp(161, FRAME_SAMPLES));
    drain_samples(&mut drain, FRAME_SAMPLES);
    // Asked for two frames with one left: the frame, then silence.
    let played = drain_samples(&mut drain, 2 * FRAME_SAMPLES);
    assert_eq!(&played[..FRAME_SAMPLES], &ramp(161, FRAME_SAMPLES)[..]);
    assert!(played[FRAME_SAMPLES..].iter().all(|&s| s == 0));
    assert_eq!(feed.counters().underruns, 1);
    // One new frame does not restart it (the step is two frames now: it needs three).
    feed.play(&ramp(500, FRAME_SAMPLES));
    feed.play(&ramp(700, FRAME_SAMPLES));
    assert!(drain_samples(&mut drain, 2 * FRAME_SAMPLES)
        .iter()
        .all(|&s| s == 0));
    feed.play(&ramp(900, FRAME_SAMPLES));
    assert_eq!(
        drain_samples(&mut drain, 2 * FRAME_SAMPLES)[..FRAME_SAMPLES],
        ramp(500, FRAME_SAMPLES)[..]
    );
}

#[test]
fn a_speaker_that_falls_behind_drops_audio_instead_of_adding_delay() {
    let (mut feed, mut drain) = speaker_link();
    drain.begin(FRAME_SAMPLES);
    for i in 0..50 {
        feed.play(&ramp(i * 200, FRAME_SAMPLES));
    }
    let ceiling = MIN_PRIME_SAMPLES + HEADROOM_SAMPLES;
    let dropped = feed.counters().dropped_samples as usize;
    assert_eq!(
        dropped,
        50 * FRAME_SAMPLES - ceiling,
        "all but 80 ms dropped"
    );
    // What is left to play is at most 80 ms.
    let mut played = 0;
    drain.begin(FRAME_SAMPLES);
    while drain.next_sample() != 0 || played == 0 {
        played += 1;
    }
    assert!(played <= ceiling, "{played} samples queued");
}

#[test]
fn the_microphone_is_read_after_priming_in_order() {
    let (mut feed, mut tap) = microphone_link();
    feed.begin(FRAME_SAMPLES);
    for sample in ramp(1, 100) {
        feed.push(sample);
    }
    let mut frame = [7i16; FRAME_SAMPLES];
    tap.read(&mut frame);
    assert_eq!(frame, [0; FRAME_SAMPLES], "silence while priming");
    for sample in ramp(101, 300) {
        feed.push(sample);
    }
    tap.read(&mut frame);
    assert_eq!(frame[..], ramp(1, FRAME_SAMPLES)[..]);
    tap.read(&mut frame);
    assert_eq!(frame[..], ramp(161, FRAME_SAMPLES)[..]);
    // 80 samples left: they come, then silence, and it counts as an underrun.
    tap.read(&mut frame);
    assert_eq!(frame[..80], ramp(321, 80)[..]);
    assert!(frame[80..].iter().all(|&s| s == 0));
    assert_eq!(tap.counters().underruns, 1);
}

#[test]
fn microphone_audio_nobody_read_is_skipped_not_sent_late() {
    let (mut feed, mut tap) = microphone_link();
    feed.begin(FRAME_SAMPLES);
    // Half a second captured while the agent was busy.
    for sample in ramp(0, 4000) {
        feed.push(sample);
    }
    let mut frame = [0i16; FRAME_SAMPLES];
    tap.read(&mut frame);
    // What is sent is the newest 40 ms, not the oldest.
    assert_eq!(frame[0], (4000 - MIN_PRIME_SAMPLES) as i16);
    assert_eq!(
        tap.counters().dropped_samples,
        (4000 - MIN_PRIME_SAMPLES) as u64
    );
}

fn config(rate: u32, channels: u16) -> StreamConfig {
    StreamConfig {
        channels,
        sample_rate: rate,
        buffer_size: BufferSize::Default,
    }
}

/// Amplitude of `frequency_hz` in `samples` (interleaved `channels`, first channel).
fn tone_level(samples: &[f32], channels: usize, rate: u32, frequency_hz: f64) -> f64 {
    let mono: Vec<f64> = samples.chunks(channels).map(|c| f64::from(c[0])).collect();
    let (mut re, mut im) = (0.0, 0.0);
    for (i, x) in mono.iter().enumerate() {
        let phase = 2.0 * PI * frequency_hz * i as f64 / f64::from(rate);
        re += x * phase.cos();
        im += x * phase.sin();
    }
    2.0 * (re * re + im * im).sqrt() / mono.len() as f64
}

fn sine_i16(rate: u32, frequency_hz: f64, count: usize, amplitude: f64) -> Vec<i16> {
    (0..count)
        .map(|i| {
            (amplitude * 32767.0 * (2.0 * PI * frequency_hz * i as f64 / f64::from(rate)).sin())
                as i16
        })
        .collect()
}

#[test]
fn a_48khz_stereo_float_speaker_plays_the_call_at_pitch_on_both_channels() {
    let (mut feed, drain) = speaker_link();
    let mut playback = Playback::new(drain, config(48000, 2));
    let call_audio = sine_i16(8000, 1000.0, 8000, 0.5);
    let mut played = Vec::new();
    for frame in call_audio.chunks(FRAME_SAMPLES) {
        feed.play(frame);
        // The card asks for 20 ms (960 frames × 2 channels) per call-frame.
        let mut buffer = vec![0.0f32; 2 * 960];
        playback.fill(&mut buffer);
        played.extend_from_slice(&buffer);
    }
    assert!(
        played.chunks(2).all(|c| c[0] == c[1]),
        "both channels carry the same sample"
    );
    // Skip the priming and the resampler's start.
    let steady = &played[2 * 48000 / 10..];
    let level = tone_level(steady, 2, 48000, 1000.0);
    assert!((level - 0.5).abs() < 0.03, "1 kHz at {level:.3}");
    assert_eq!(feed.counters().underruns, 0);
}

#[test]
fn a_44khz_stereo_microphone_reaches_the_call_as_8khz_mono() {
    let (feed, mut tap) = microphone_link();
    let mut capture = Capture::new(feed, config(44100, 2));
    let spoken = sine_i16(44100, 1000.0, 44100, 0.5);
    let mut sent = Vec::new();
    let mut frame = [0i16; FRAME_SAMPLES];
    // The card hands over 441 frames (10 ms) at a time; the agent reads a frame every 20 ms.
    for (n, chunk) in spoken.chunks(441).enumerate() {
        let interleaved: Vec<i16> = chunk.iter().flat_map(|&s| [s, s]).collect();
        capture.take(&interleaved);
        if n % 2 == 1 {
            tap.read(&mut frame);
            sent.extend(frame.iter().map(|&s| f32::from(s) / 32768.0));
        }
    }
    let steady = &sent[800..];
    let level = tone_level(steady, 1, 8000, 1000.0);
    assert!((level - 0.5).abs() < 0.03, "1 kHz at {level:.3}");
    assert_eq!(tap.counters().underruns, 0, "{:?}", tap.counters());
}

#[test]
fn an_8khz_mono_i16_device_is_a_plain_copy() {
    let (mut feed, drain) = speaker_link();
    let mut playback = Playback::new(drain, config(8000, 1));
    let frames: Vec<Vec<i16>> = (0..3).map(|i| ramp(i * 1000, FRAME_SAMPLES)).collect();
    let mut played = Vec::new();
    for frame in &frames {
        feed.play(frame);
    }
    for _ in 0..2 {
        let mut buffer = vec![0i16; FRAME_SAMPLES];
        playback.fill(&mut buffer);
        played.extend(buffer);
    }
    assert_eq!(played, [frames[0].clone(), frames[1].clone()].concat());

    let (feed, mut tap) = microphone_link();
    let mut capture = Capture::new(feed, config(8000, 1));
    // Two 20 ms periods: the 40 ms the ring primes to.
    capture.take(&ramp(5, FRAME_SAMPLES));
    capture.take(&ramp(165, FRAME_SAMPLES));
    let mut frame = [0i16; FRAME_SAMPLES];
    tap.read(&mut frame);
    assert_eq!(frame[..], ramp(5, FRAME_SAMPLES)[..]);
}

fn range(
    channels: u16,
    rates: (u32, u32),
    format: SampleFormat,
    periods: Option<(u32, u32)>,
) -> SupportedStreamConfigRange {
    let buffer = match periods {
        Some((min, max)) => SupportedBufferSize::Range { min, max },
        None => SupportedBufferSize::Unknown,
    };
    SupportedStreamConfigRange::new(channels, rates.0, rates.1, buffer, format)
}

#[test]
fn a_converting_device_is_asked_for_the_calls_own_format() {
    // What ALSA's `default`/`plug` devices offer: everything.
    let offered: Vec<_> = [SampleFormat::U8, SampleFormat::F32, SampleFormat::I16]
        .into_iter()
        .flat_map(|format| {
            (1..=8).map(move |channels| range(channels, (4000, 192000), format, Some((32, 65536))))
        })
        .collect();
    let choice = choose(&offered).unwrap();
    assert_eq!(choice.format, SampleFormat::I16);
    assert_eq!(choice.config.sample_rate, 8000);
    assert_eq!(choice.config.channels, 1);
    assert_eq!(
        choice.config.buffer_size,
        BufferSize::Fixed(160),
        "20 ms periods"
    );
}

#[test]
fn a_hardware_device_gets_its_own_rate_and_channels_converted() {
    // A typical USB headset behind `hw:`: 16-bit stereo at 44.1 or 48 kHz only.
    let offered = [
        range(2, (44100, 44100), SampleFormat::I16, Some((64, 8192))),
        range(2, (48000, 48000), SampleFormat::I16, Some((64, 8192))),
    ];
    let choice = choose(&offered).unwrap();
    assert_eq!(
        choice.config.sample_rate, 48000,
        "the preferred common rate"
    );
    assert_eq!(choice.config.channels, 2);
    assert_eq!(choice.config.buffer_size, BufferSize::Fixed(960));

    // A float-only device with no period range: the device's own period.
    let offered = [range(1, (44100, 44100), SampleFormat::F32, None)];
    let choice = choose(&offered).unwrap();
    assert_eq!(
        (choice.format, choice.config.sample_rate),
        (SampleFormat::F32, 44100)
    );
    assert_eq!(choice.config.buffer_size, BufferSize::Default);
}

#[test]
fn a_device_with_no_convertible_format_is_refused() {
    let offered = [range(2, (44100, 44100), SampleFormat::DsdU8, None)];
    assert!(choose(&offered).is_none());
}
