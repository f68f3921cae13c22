use super::*;
use crate::media::tone::{Cadence, ToneComponent, ToneGenerator};

const RATE: usize = 8000;

fn ms(millis: usize) -> usize {
    millis * RATE / 1000
}

fn two_tones(low_hz: f32, high_hz: f32, low_dbm0: f32, high_dbm0: f32, millis: usize) -> Vec<i16> {
    let components = [
        ToneComponent {
            frequency_hz: low_hz,
            level_dbm0: low_dbm0,
        },
        ToneComponent {
            frequency_hz: high_hz,
            level_dbm0: high_dbm0,
        },
    ];
    let mut generator = ToneGenerator::new(&components, Cadence::continuous()).unwrap();
    let mut out = vec![0i16; ms(millis)];
    generator.fill(&mut out);
    out
}

fn digit_tone(digit: char, level_dbm0: f32, millis: usize) -> Vec<i16> {
    let mut generator = ToneGenerator::dtmf(digit, level_dbm0).unwrap();
    let mut out = vec![0i16; ms(millis)];
    generator.fill(&mut out);
    out
}

fn silence(millis: usize) -> Vec<i16> {
    vec![0; ms(millis)]
}

/// Everything the detector reports, fed in 20 ms frames like the media path does.
fn detect(pcm: &[i16]) -> String {
    detect_in_chunks(pcm, 160)
}

fn detect_in_chunks(pcm: &[i16], chunk: usize) -> String {
    let mut detector = InbandDetector::new(8000);
    let mut found = String::new();
    for frame in pcm.chunks(chunk) {
        found.extend(detector.process(frame));
    }
    while let Some(digit) = detector.next_digit() {
        found.push(digit);
    }
    found
}

/// Deterministic white-ish noise (xorshift), uniform in ±`peak`.
fn noise(peak: f32, millis: usize, seed: u64) -> Vec<i16> {
    let mut state = seed | 1;
    (0..ms(millis))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            (unit * f64::from(peak)) as i16
        })
        .collect()
}

/// A sustained vowel: harmonics of a (slightly wandering) pitch shaped by three formants, the
/// way a voiced sound comes out of a vocal tract.
fn vowel(pitch_hz: f64, formants: [(f64, f64); 3], peak: f64, millis: usize) -> Vec<i16> {
    let samples = ms(millis);
    let mut phase = 0.0f64;
    let mut out = Vec::with_capacity(samples);
    for n in 0..samples {
        let t = n as f64 / RATE as f64;
        // 3 % vibrato at 5 Hz, as a voice is never perfectly steady.
        let f0 = pitch_hz * (1.0 + 0.03 * (std::f64::consts::TAU * 5.0 * t).sin());
        phase += f0 / RATE as f64;
        let mut value = 0.0;
        let mut harmonic = 1;
        while f64::from(harmonic) * f0 < 3800.0 {
            let frequency = f64::from(harmonic) * f0;
            let envelope: f64 = formants
                .iter()
                .map(|&(centre, bandwidth)| {
                    1.0 / (1.0 + ((frequency - centre) / (bandwidth / 2.0)).powi(2)).sqrt()
                })
                .sum();
            // Glottal source falls at about 12 dB per octave.
            let tilt = 1.0 / f64::from(harmonic);
            value += envelope * tilt * (std::f64::consts::TAU * f64::from(harmonic) * phase).sin();
            harmonic += 1;
        }
        out.push(value);
    }
    let max = out.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    out.into_iter().map(|v| (v / max * peak) as i16).collect()
}

#[test]
fn every_digit_is_detected_exactly_once() {
    for digit in "0123456789*#ABCD".chars() {
        let mut pcm = silence(30);
        pcm.extend(digit_tone(digit, -10.0, 100));
        pcm.extend(silence(100));
        assert_eq!(detect(&pcm), digit.to_string(), "digit {digit}");
    }
}

#[test]
fn a_long_press_is_one_digit() {
    let mut pcm = digit_tone('5', -8.0, 200);
    pcm.extend(silence(60));
    assert_eq!(detect(&pcm), "5");
    let mut pcm = digit_tone('0', -8.0, 2000);
    pcm.extend(silence(60));
    assert_eq!(detect(&pcm), "0");
}

#[test]
fn two_presses_50ms_apart_are_two_digits() {
    let mut pcm = digit_tone('3', -10.0, 60);
    pcm.extend(silence(50));
    pcm.extend(digit_tone('3', -10.0, 60));
    pcm.extend(silence(50));
    assert_eq!(detect(&pcm), "33");
}

#[test]
fn a_dialled_sequence_is_reported_in_order() {
    let mut pcm = Vec::new();
    for digit in "0800*1#D".chars() {
        pcm.extend(digit_tone(digit, -7.0, 50));
        pcm.extend(silence(45));
    }
    assert_eq!(detect(&pcm), "0800*1#D");
}

#[test]
fn a_short_dropout_inside_a_press_is_bridged() {
    let mut pcm = digit_tone('8', -10.0, 80);
    pcm.extend(silence(20));
    pcm.extend(digit_tone('8', -10.0, 80));
    assert_eq!(detect(&pcm), "8");
}

#[test]
fn a_20ms_blip_is_not_a_digit() {
    for offset in 0..40 {
        let mut pcm = silence(100);
        pcm.extend(vec![0; offset]);
        pcm.extend(digit_tone('1', -5.0, 20));
        pcm.extend(silence(100));
        assert_eq!(detect(&pcm), "", "offset {offset}");
    }
}

#[test]
fn a_40ms_tone_is_a_digit_at_any_alignment() {
    for offset in 0..40 {
        let mut pcm = silence(100);
        pcm.extend(vec![0; offset]);
        pcm.extend(digit_tone('9', -10.0, 40));
        pcm.extend(silence(100));
        assert_eq!(detect(&pcm), "9", "offset {offset}");
    }
}

#[test]
fn tones_1_5_percent_off_frequency_are_detected() {
    for deviation in [0.985f32, 1.015] {
        for (row, keys) in DTMF_KEYPAD.iter().enumerate() {
            for (column, &digit) in keys.iter().enumerate() {
                let mut pcm = two_tones(
                    DTMF_LOW_HZ[row] * deviation,
                    DTMF_HIGH_HZ[column] * deviation,
                    -10.0,
                    -10.0,
                    60,
                );
                pcm.extend(silence(60));
                assert_eq!(detect(&pcm), digit.to_string(), "{digit} at x{deviation}");
            }
        }
    }
}

#[test]
fn weak_tones_down_to_minus_25_dbm0_are_detected() {
    for digit in "147*2580369#ABCD".chars() {
        let mut pcm = digit_tone(digit, -25.0, 60);
        pcm.extend(silence(60));
        assert_eq!(detect(&pcm), digit.to_string(), "{digit}");
    }
    let mut pcm = digit_tone('5', -40.0, 100);
    pcm.extend(silence(60));
    assert_eq!(detect(&pcm), "", "-40 dBm0 is below the operating range");
}

#[test]
fn a_loud_press_with_background_noise_is_detected() {
    let tone = digit_tone('6', -10.0, 100);
    // Noise about 20 dB below the tones.
    let hiss = noise(1000.0, 100, 7);
    let pcm: Vec<i16> = tone
        .iter()
        .zip(&hiss)
        .map(|(t, n)| t.saturating_add(*n))
        .collect();
    assert_eq!(detect(&pcm), "6");
}

#[test]
fn twist_within_limits_is_accepted_and_beyond_is_rejected() {
    let press = |low_dbm0: f32, high_dbm0: f32| {
        let mut pcm = two_tones(770.0, 1336.0, low_dbm0, high_dbm0, 80);
        pcm.extend(silence(60));
        detect(&pcm)
    };
    assert_eq!(
        press(-5.0, -12.0),
        "5",
        "low 7 dB louder: normal twist within 8 dB"
    );
    assert_eq!(press(-5.0, -15.0), "", "low 10 dB louder");
    assert_eq!(
        press(-12.0, -9.0),
        "5",
        "high 3 dB louder: reverse twist within 4 dB"
    );
    assert_eq!(press(-12.0, -6.0), "", "high 6 dB louder");
}

#[test]
fn noise_is_not_a_digit() {
    for (seed, peak) in [(1u64, 300.0f32), (2, 3000.0), (3, 20000.0)] {
        assert_eq!(detect(&noise(peak, 3000, seed)), "", "noise at peak {peak}");
    }
}

#[test]
fn a_single_1khz_tone_is_not_a_digit() {
    let tone = [ToneComponent {
        frequency_hz: 1000.0,
        level_dbm0: -10.0,
    }];
    let mut generator = ToneGenerator::new(&tone, Cadence::continuous()).unwrap();
    let mut pcm = vec![0i16; ms(2000)];
    generator.fill(&mut pcm);
    assert_eq!(detect(&pcm), "");
}

#[test]
fn a_single_dtmf_frequency_is_not_a_digit() {
    let tone = [ToneComponent {
        frequency_hz: 1209.0,
        level_dbm0: -10.0,
    }];
    let mut generator = ToneGenerator::new(&tone, Cadence::continuous()).unwrap();
    let mut pcm = vec![0i16; ms(1000)];
    generator.fill(&mut pcm);
    assert_eq!(detect(&pcm), "");
}

#[test]
fn speech_like_sounds_are_not_digits() {
    // /a/ at 100 Hz puts its strongest harmonics right on 700 and 1200 Hz: the 697 + 1209 Hz
    // of digit 1. Other vowels and pitches for good measure.
    let vowels = [
        ("a", [(700.0, 110.0), (1220.0, 120.0), (2600.0, 160.0)]),
        ("i", [(280.0, 60.0), (2250.0, 100.0), (2900.0, 120.0)]),
        ("u", [(310.0, 70.0), (870.0, 90.0), (2250.0, 110.0)]),
        ("e", [(530.0, 90.0), (1840.0, 110.0), (2480.0, 150.0)]),
    ];
    for (name, formants) in vowels {
        for pitch in [100.0, 117.0, 140.0, 210.0] {
            let pcm = vowel(pitch, formants, 16000.0, 1500);
            assert_eq!(detect(&pcm), "", "vowel {name} at {pitch} Hz");
        }
    }
    // A mix: two voices talking at once over noise.
    let first = vowel(100.0, vowels[0].1, 9000.0, 2000);
    let second = vowel(185.0, vowels[3].1, 7000.0, 2000);
    let hiss = noise(400.0, 2000, 11);
    let mix: Vec<i16> = first
        .iter()
        .zip(&second)
        .zip(&hiss)
        .map(|((a, b), n)| a.saturating_add(*b).saturating_add(*n))
        .collect();
    assert_eq!(detect(&mix), "");
}

#[test]
fn chunk_size_does_not_change_the_result() {
    let mut pcm = Vec::new();
    for digit in "159#".chars() {
        pcm.extend(digit_tone(digit, -12.0, 70));
        pcm.extend(silence(60));
    }
    for chunk in [1usize, 7, 80, 160, 241, 1000, pcm.len()] {
        assert_eq!(detect_in_chunks(&pcm, chunk), "159#", "chunk {chunk}");
    }
}

#[test]
fn works_at_16khz() {
    let mut generator = ToneGenerator::with_sample_rate(
        16000,
        &[
            ToneComponent {
                frequency_hz: 852.0,
                level_dbm0: -10.0,
            },
            ToneComponent {
                frequency_hz: 1477.0,
                level_dbm0: -10.0,
            },
        ],
        Cadence::continuous(),
    )
    .unwrap();
    let mut pcm = vec![0i16; 1600];
    generator.fill(&mut pcm);
    pcm.extend(vec![0i16; 1600]);
    let mut detector = InbandDetector::new(16000);
    let found: String = pcm
        .chunks(320)
        .filter_map(|frame| detector.process(frame))
        .collect();
    assert_eq!(found, "9");
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(64))]

    /// Arbitrary PCM off the network neither panics the detector nor passes for a digit.
    #[test]
    fn random_pcm_is_not_a_digit(
        pcm in proptest::collection::vec(proptest::prelude::any::<i16>(), 0..4000),
        chunk in 1usize..500,
    ) {
        proptest::prop_assert_eq!(detect_in_chunks(&pcm, chunk), "");
    }
}
