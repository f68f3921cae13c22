use super::*;

/// Power of `samples` at `frequency_hz` relative to the signal's total power: 1.0 for a pure
/// sine at that frequency (rectangular window, long enough that leakage is negligible).
fn share_at(samples: &[i16], frequency_hz: f32) -> f64 {
    let omega = std::f64::consts::TAU * f64::from(frequency_hz) / f64::from(SAMPLE_RATE);
    let coefficient = 2.0 * omega.cos();
    let (mut previous, mut before_previous) = (0.0f64, 0.0f64);
    for &sample in samples {
        let current = f64::from(sample) + coefficient * previous - before_previous;
        before_previous = previous;
        previous = current;
    }
    let power = previous * previous + before_previous * before_previous
        - coefficient * previous * before_previous;
    let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    2.0 * power / (samples.len() as f64 * energy)
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

#[test]
fn dtmf_digit_contains_exactly_its_two_frequencies() {
    for (row, keys) in DTMF_KEYPAD.iter().enumerate() {
        for (column, &digit) in keys.iter().enumerate() {
            let mut generator = ToneGenerator::dtmf(digit, -10.0).unwrap();
            let mut samples = vec![0i16; 8000];
            generator.fill(&mut samples);
            let low = share_at(&samples, DTMF_LOW_HZ[row]);
            let high = share_at(&samples, DTMF_HIGH_HZ[column]);
            assert!(
                (low - 0.5).abs() < 0.02 && (high - 0.5).abs() < 0.02,
                "{digit}: low share {low}, high share {high}"
            );
            for other in DTMF_LOW_HZ.iter().chain(&DTMF_HIGH_HZ) {
                if *other != DTMF_LOW_HZ[row] && *other != DTMF_HIGH_HZ[column] {
                    assert!(
                        share_at(&samples, *other) < 0.001,
                        "{digit} leaks into {other}"
                    );
                }
            }
        }
    }
}

#[test]
fn level_matches_dbm0() {
    // One sine at 0 dBm0: peak 22 657, RMS = peak / sqrt(2); two tones at -10 dBm0 each add
    // their powers.
    let single = [ToneComponent {
        frequency_hz: 1004.0,
        level_dbm0: 0.0,
    }];
    let mut generator = ToneGenerator::new(&single, Cadence::continuous()).unwrap();
    let mut samples = vec![0i16; 8000];
    generator.fill(&mut samples);
    let expected = f64::from(DBM0_REFERENCE_PEAK) / 2f64.sqrt();
    assert!((rms(&samples) / expected - 1.0).abs() < 0.005);

    let mut generator = ToneGenerator::dtmf('5', -10.0).unwrap();
    generator.fill(&mut samples);
    let per_tone_rms = f64::from(dbm0_to_peak(-10.0)) / 2f64.sqrt();
    let expected = per_tone_rms * 2f64.sqrt();
    assert!((rms(&samples) / expected - 1.0).abs() < 0.01);
}

#[test]
fn phase_is_continuous_across_frames_of_any_size() {
    let mut whole = ToneGenerator::dtmf('9', -6.0).unwrap();
    let mut reference = vec![0i16; 1000];
    whole.fill(&mut reference);

    let mut pieces = ToneGenerator::dtmf('9', -6.0).unwrap();
    let mut joined = Vec::new();
    for size in [1usize, 159, 160, 7, 300, 373] {
        let mut frame = vec![0i16; size];
        pieces.fill(&mut frame);
        joined.extend_from_slice(&frame);
    }
    assert_eq!(joined, reference);
}

/// Lengths in samples of the on and off runs of a gated tone.
fn runs(samples: &[i16]) -> Vec<(bool, usize)> {
    let mut runs: Vec<(bool, usize)> = Vec::new();
    // A sounding sine passes through zero now and then; a run of silence shorter than a
    // couple of samples is part of the tone.
    let mut index = 0;
    while index < samples.len() {
        let silent = samples[index..].iter().take(3).all(|&s| s == 0);
        let on = !silent;
        match runs.last_mut() {
            Some((state, length)) if *state == on => *length += 1,
            _ => runs.push((on, 1)),
        }
        index += 1;
    }
    runs
}

#[test]
fn ringback_cadence_is_two_seconds_on_four_off() {
    let mut generator = ToneGenerator::ringback();
    let mut samples = vec![0i16; 8000 * 13];
    for frame in samples.chunks_mut(160) {
        generator.fill(frame);
    }
    let measured = runs(&samples);
    let expected_pattern = [
        (true, 16000),
        (false, 32000),
        (true, 16000),
        (false, 32000),
        (true, 8000),
    ];
    assert_eq!(measured.len(), expected_pattern.len(), "{measured:?}");
    for ((on, length), (expected_on, expected_length)) in measured.iter().zip(expected_pattern) {
        assert_eq!(*on, expected_on);
        // The detection of silence above can misplace an edge by the 3-sample look-ahead.
        assert!(
            length.abs_diff(expected_length) <= 3,
            "{measured:?} differs from {expected_pattern:?}"
        );
    }
    let on_part = &samples[..16000];
    assert!(share_at(on_part, 440.0) > 0.45 && share_at(on_part, 480.0) > 0.45);
}

#[test]
fn busy_cadence_and_frequencies() {
    let mut generator = ToneGenerator::busy();
    let mut samples = vec![0i16; 8000 * 2];
    generator.fill(&mut samples);
    let measured = runs(&samples);
    assert_eq!(measured.len(), 4, "{measured:?}");
    for (index, (on, length)) in measured.iter().enumerate() {
        assert_eq!(*on, index % 2 == 0);
        assert!(length.abs_diff(4000) <= 3, "{measured:?}");
    }
    let first_burst = &samples[..4000];
    assert!(share_at(first_burst, 480.0) > 0.45 && share_at(first_burst, 620.0) > 0.45);
    let expected_peak = 2.0 * f64::from(dbm0_to_peak(-24.0));
    let peak = first_burst
        .iter()
        .map(|&s| f64::from(s).abs())
        .fold(0.0, f64::max);
    assert!(peak <= expected_peak + 1.0 && peak > 0.9 * expected_peak);
}

#[test]
fn dtmf_burst_plays_once_then_stays_silent() {
    let mut generator = ToneGenerator::dtmf_burst(
        '#',
        -8.0,
        Duration::from_millis(100),
        Duration::from_millis(60),
    )
    .unwrap();
    let mut samples = vec![0i16; 8000];
    for frame in samples.chunks_mut(160) {
        generator.fill(frame);
    }
    assert!(generator.is_finished());
    let measured = runs(&samples);
    assert_eq!(measured.len(), 2, "{measured:?}");
    assert!(measured[0].0 && measured[0].1.abs_diff(800) <= 3);
}

#[test]
fn cadence_text_form() {
    assert_eq!(
        "2000,4000".parse::<Cadence>().unwrap(),
        Cadence::repeating(&[Duration::from_secs(2), Duration::from_secs(4)]).unwrap()
    );
    assert_eq!(
        "once: 100, 50".parse::<Cadence>().unwrap(),
        Cadence::once(&[Duration::from_millis(100), Duration::from_millis(50)]).unwrap()
    );
    assert_eq!(
        "continuous".parse::<Cadence>().unwrap(),
        Cadence::continuous()
    );
    let error = "400,200,400".parse::<Cadence>().unwrap_err();
    assert!(error.to_string().contains("400,200,400"), "{error}");
    assert!("2s,4s".parse::<Cadence>().is_err());
    assert!("0,0".parse::<Cadence>().is_err());
}

#[test]
fn rejects_what_it_cannot_play() {
    assert_eq!(
        ToneGenerator::dtmf('x', -10.0).unwrap_err(),
        ToneError::UnknownDigit { digit: 'x' }
    );
    let too_high = [ToneComponent {
        frequency_hz: 4200.0,
        level_dbm0: -10.0,
    }];
    let error = ToneGenerator::new(&too_high, Cadence::continuous()).unwrap_err();
    assert!(error.to_string().contains("4200"), "{error}");
}

#[test]
fn dtmf_frequency_table() {
    assert_eq!(dtmf_frequencies('1'), Some((697.0, 1209.0)));
    assert_eq!(dtmf_frequencies('0'), Some((941.0, 1336.0)));
    assert_eq!(dtmf_frequencies('#'), Some((941.0, 1477.0)));
    assert_eq!(dtmf_frequencies('d'), Some((941.0, 1633.0)));
    assert_eq!(dtmf_frequencies('E'), None);
}
