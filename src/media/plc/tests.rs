use super::*;

const FRAME: usize = 160;
const AMPLITUDE: f64 = 8000.0;

/// A tone whose period (53.3 samples) is not a whole number of samples, like real voices.
fn tone(start: usize, len: usize) -> Vec<i16> {
    let frequency = 150.0;
    (start..start + len)
        .map(|n| {
            let t = n as f64 / 8000.0;
            (AMPLITUDE * (2.0 * std::f64::consts::PI * frequency * t).sin()).round() as i16
        })
        .collect()
}

/// Vowel-like: a 120 Hz fundamental with decaying harmonics.
fn vowel(start: usize, len: usize) -> Vec<i16> {
    (start..start + len)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let value: f64 = (1..=6)
                .map(|h| {
                    let phase = 2.0 * std::f64::consts::PI * 120.0 * h as f64 * t;
                    3000.0 / h as f64 * (phase + h as f64).sin()
                })
                .sum();
            value.round() as i16
        })
        .collect()
}

fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let ea: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
    let eb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum();
    dot / (ea * eb).sqrt()
}

fn energy(frame: &[i16]) -> f64 {
    frame.iter().map(|x| f64::from(*x).powi(2)).sum()
}

fn max_step(samples: &[i16]) -> i32 {
    samples
        .windows(2)
        .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
        .max()
        .unwrap_or(0)
}

/// Feeds `frames` good frames of `signal` and returns the concealer.
fn primed(signal: fn(usize, usize) -> Vec<i16>, frames: usize) -> G711Concealer {
    let mut plc = G711Concealer::new(FRAME);
    for k in 0..frames {
        let mut frame = signal(k * FRAME, FRAME);
        plc.good_frame(&mut frame);
    }
    plc
}

#[test]
fn first_concealed_frame_of_a_tone_follows_the_tone() {
    let mut plc = primed(tone, 5);
    let mut out = vec![0; FRAME];
    plc.conceal(&mut out);
    let truth = tone(5 * FRAME, FRAME);
    let r = correlation(&out, &truth);
    assert!(r > 0.9, "correlation {r}");
    // Full level for the first 10 ms: the replay is as loud as the tone.
    let ratio = energy(&out[..80]) / energy(&truth[..80]);
    assert!((0.8..1.2).contains(&ratio), "energy ratio {ratio}");
}

#[test]
fn first_concealed_frame_of_a_vowel_follows_the_vowel() {
    let mut plc = primed(vowel, 5);
    let mut out = vec![0; FRAME];
    plc.conceal(&mut out);
    let r = correlation(&out, &vowel(5 * FRAME, FRAME));
    assert!(r > 0.9, "correlation {r}");
    // 120 Hz at 8 kHz is 66.7 samples; a multiple of it would also correlate well.
    let period = plc.pitch_period();
    assert!([66, 67, 133, 134].contains(&period), "pitch {period}");
}

#[test]
fn energy_decays_with_consecutive_losses_then_is_silent() {
    let mut plc = primed(tone, 5);
    let mut energies = Vec::new();
    for _ in 0..5 {
        let mut out = vec![0; FRAME];
        plc.conceal(&mut out);
        energies.push(energy(&out));
    }
    assert!(energies[0] > energies[1], "{energies:?}");
    assert!(energies[1] > energies[2], "{energies:?}");
    assert!(energies[2] > 0.0, "{energies:?}");
    // 60 ms of loss at 20 ms frames: the fourth frame on is silence.
    assert_eq!(energies[3], 0.0, "{energies:?}");
    assert_eq!(energies[4], 0.0, "{energies:?}");
}

#[test]
fn loss_start_has_no_jump() {
    let mut plc = primed(tone, 5);
    let mut out = vec![0; FRAME];
    plc.conceal(&mut out);
    let mut joined = tone(4 * FRAME, FRAME);
    joined.extend_from_slice(&out);
    let tone_slope = tone(0, 4 * FRAME)
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .max();
    let bound = i32::from(tone_slope.unwrap_or(0)) * 13 / 10;
    assert!(
        max_step(&joined) <= bound,
        "step {} > {bound}",
        max_step(&joined)
    );
}

#[test]
fn recovery_after_one_lost_frame_has_no_jump() {
    let mut plc = primed(tone, 5);
    let mut concealed = vec![0; FRAME];
    plc.conceal(&mut concealed);
    let mut recovered = tone(6 * FRAME, FRAME);
    plc.good_frame(&mut recovered);
    let mut joined = concealed.clone();
    joined.extend_from_slice(&recovered);
    // The tone itself moves at most 2π·150/8000·8000 ≈ 942 per sample.
    assert!(max_step(&joined) <= 1200, "step {}", max_step(&joined));
    // Without the cross-fade the boundary would jump by the phase/level mismatch.
    let raw = tone(6 * FRAME, FRAME);
    assert_eq!(&recovered[100..], &raw[100..], "only the start is blended");
}

#[test]
fn recovery_after_silence_fades_in() {
    let mut plc = primed(tone, 5);
    let mut out = vec![0; FRAME];
    for _ in 0..4 {
        plc.conceal(&mut out);
    }
    assert!(out.iter().all(|&s| s == 0));
    // Start the real signal near its peak: a hard switch would jump by ~8000.
    let start = 6 * FRAME + 13;
    let mut recovered = tone(start, FRAME);
    assert!(recovered[0].abs() > 7000, "test needs a loud first sample");
    plc.good_frame(&mut recovered);
    let mut joined = out.clone();
    joined.extend_from_slice(&recovered);
    assert!(max_step(&joined) <= 1200, "step {}", max_step(&joined));
    assert!(!plc.in_loss());
}

#[test]
fn pitch_is_found_for_quiet_and_clipped_voices() {
    for gain in [0.005, 0.05, 1.0, 4.0] {
        let scaled = |start: usize, len: usize| -> Vec<i16> {
            vowel(start, len)
                .iter()
                .map(|s| (f64::from(*s) * gain).round().clamp(-32768.0, 32767.0) as i16)
                .collect()
        };
        let mut plc = G711Concealer::new(FRAME);
        for k in 0..5 {
            let mut frame = scaled(k * FRAME, FRAME);
            plc.good_frame(&mut frame);
        }
        let mut out = vec![0; FRAME];
        plc.conceal(&mut out);
        let period = plc.pitch_period();
        assert!(
            [66, 67, 133, 134].contains(&period),
            "gain {gain}: pitch {period}"
        );
        let r = correlation(&out, &scaled(5 * FRAME, FRAME));
        assert!(r > 0.9, "gain {gain}: correlation {r}");
    }
}

#[test]
fn good_frames_pass_through_unchanged() {
    let mut plc = G711Concealer::new(FRAME);
    for k in 0..10 {
        let original = vowel(k * FRAME, FRAME);
        let mut frame = original.clone();
        plc.good_frame(&mut frame);
        assert_eq!(frame, original);
    }
}

#[test]
fn concealing_silence_gives_silence() {
    let mut plc = G711Concealer::new(FRAME);
    let mut out = vec![1; FRAME];
    plc.conceal(&mut out);
    assert!(out.iter().all(|&s| s == 0));
}

#[test]
fn any_frame_length_works() {
    for len in [1, 7, 80, 240, 389, 390, 391, 480, 1000] {
        let mut plc = G711Concealer::new(len);
        for k in 0..4 {
            let mut frame = tone(k * len, len);
            plc.good_frame(&mut frame);
        }
        let mut out = vec![0; len];
        for _ in 0..3 {
            plc.conceal(&mut out);
        }
        let mut frame = tone(10 * len, len);
        plc.good_frame(&mut frame);
    }
}

#[test]
fn long_losses_widen_the_replayed_span() {
    let mut plc = primed(vowel, 5);
    let mut earliest = HISTORY_LEN;
    let mut sample = [0i16; 1];
    for _ in 0..300 {
        plc.conceal(&mut sample);
        earliest = earliest.min(plc.replay_pos);
    }
    // By 30 ms the replay has restarted three periods back, not just one (`replay_pos` is
    // the sample after the one just read).
    assert_eq!(earliest, HISTORY_LEN - 3 * plc.pitch_period() + 1);
}
