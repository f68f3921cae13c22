//! Single-frequency measurements (Goertzel) and DTMF recognition, for checking tones the
//! gateway generates or passes through.

use std::f64::consts::TAU;

/// DTMF row (low) and column (high) frequencies in Hz, ITU-T Q.23.
const DTMF_LOW: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const DTMF_HIGH: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const DTMF_KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// |X(freq)|² of the samples (Goertzel), unnormalised.
pub fn goertzel_power(samples: &[f32], rate: u32, freq: f64) -> f64 {
    let coefficient = 2.0 * (TAU * freq / f64::from(rate)).cos();
    let (mut previous, mut before_previous) = (0.0f64, 0.0f64);
    for &x in samples {
        let current = f64::from(x) + coefficient * previous - before_previous;
        before_previous = previous;
        previous = current;
    }
    previous * previous + before_previous * before_previous
        - coefficient * previous * before_previous
}

/// The share of the samples' energy at `freq`: about 1.0 for a pure tone at that frequency,
/// about 0.5 for each tone of an equal-level pair, near 0 elsewhere. 0.0 for silence.
pub fn tone_energy_ratio(samples: &[f32], rate: u32, freq: f64) -> f64 {
    let energy: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    if energy == 0.0 || samples.is_empty() {
        return 0.0;
    }
    // For a sine of amplitude A over N samples, |X|² ≈ (N·A/2)² and energy ≈ N·A²/2.
    goertzel_power(samples, rate, freq) / (samples.len() as f64 / 2.0 * energy)
}

/// The DTMF key in the samples (take 40 ms or more of a single key press), or `None` if there
/// is no clear pair of one row and one column tone.
pub fn detect_dtmf(samples: &[f32], rate: u32) -> Option<char> {
    let strongest = |freqs: &[f64; 4]| {
        let mut ratios: Vec<(usize, f64)> = freqs
            .iter()
            .map(|&freq| tone_energy_ratio(samples, rate, freq))
            .enumerate()
            .collect();
        ratios.sort_by(|a, b| b.1.total_cmp(&a.1));
        (ratios[0], ratios[1].1)
    };
    let ((row, low), low_runner_up) = strongest(&DTMF_LOW);
    let ((column, high), high_runner_up) = strongest(&DTMF_HIGH);
    // Both tones present (allowing 6 dB twist either way), together most of the energy, and
    // each clearly above its neighbours.
    let both_present = low > 0.12 && high > 0.12;
    let mostly_tones = low + high > 0.6;
    let distinct = low > 4.0 * low_runner_up && high > 4.0 * high_runner_up;
    (both_present && mostly_tones && distinct).then(|| DTMF_KEYS[row][column])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_signals::{noise, sine};

    fn dtmf(key: char, len: usize) -> Vec<f32> {
        let (row, column) = (0..4)
            .flat_map(|r| (0..4).map(move |c| (r, c)))
            .find(|&(r, c)| DTMF_KEYS[r][c] == key)
            .unwrap();
        let low = sine(len, 8000, DTMF_LOW[row], 0.3);
        let high = sine(len, 8000, DTMF_HIGH[column], 0.3);
        low.iter().zip(&high).map(|(a, b)| a + b).collect()
    }

    #[test]
    fn pure_tone_carries_its_energy_at_its_frequency_only() {
        let tone = sine(800, 8000, 1000.0, 0.5);
        assert!(tone_energy_ratio(&tone, 8000, 1000.0) > 0.95);
        assert!(tone_energy_ratio(&tone, 8000, 1500.0) < 0.01);
        assert_eq!(tone_energy_ratio(&[0.0; 100], 8000, 1000.0), 0.0);
    }

    #[test]
    fn every_key_is_recognised() {
        for row in DTMF_KEYS {
            for key in row {
                assert_eq!(detect_dtmf(&dtmf(key, 400), 8000), Some(key));
            }
        }
    }

    #[test]
    fn single_tones_noise_and_silence_are_not_keys() {
        assert_eq!(detect_dtmf(&sine(400, 8000, 697.0, 0.5), 8000), None);
        assert_eq!(detect_dtmf(&sine(400, 8000, 1000.0, 0.5), 8000), None);
        assert_eq!(detect_dtmf(&noise(400, 0.5, 1), 8000), None);
        assert_eq!(detect_dtmf(&[0.0; 400], 8000), None);
    }

    #[test]
    fn key_survives_moderate_noise() {
        let mut samples = dtmf('5', 400);
        for (sample, extra) in samples.iter_mut().zip(noise(400, 0.03, 2)) {
            *sample += extra;
        }
        assert_eq!(detect_dtmf(&samples, 8000), Some('5'));
    }
}

/// The longest stretch, between the first and the last 10 ms frame that carries a clear tone at
/// `freq`, in which the tone is missing (silence, noise, other sounds): how long a listener
/// lost a steady tone. `None` if the tone is never heard.
pub fn longest_tone_gap(samples: &[f32], rate: u32, freq: f64) -> Option<std::time::Duration> {
    let frame = (rate as usize / 100).max(1);
    let present: Vec<bool> = samples
        .chunks_exact(frame)
        .map(|chunk| {
            super::dbfs(super::rms(chunk)) > -40.0 && tone_energy_ratio(chunk, rate, freq) > 0.5
        })
        .collect();
    let first = present.iter().position(|&p| p)?;
    let last = present.iter().rposition(|&p| p)?;
    let mut longest = 0usize;
    let mut run = 0usize;
    for &p in &present[first..=last] {
        run = if p { 0 } else { run + 1 };
        longest = longest.max(run);
    }
    Some(std::time::Duration::from_secs_f64(
        (longest * frame) as f64 / f64::from(rate),
    ))
}

#[cfg(test)]
mod gap_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_gap_in_a_tone_is_measured_to_the_frame() {
        let mut tone = crate::audio::sine(8000, 8000, 1000.0, 0.3);
        // 230 ms of silence in the middle, plus silence before and after that does not count.
        tone[4000..5840].fill(0.0);
        let mut padded = vec![0.0; 800];
        padded.extend_from_slice(&tone);
        padded.extend(vec![0.0; 800]);
        let gap = longest_tone_gap(&padded, 8000, 1000.0).unwrap();
        assert!(
            (Duration::from_millis(220)..=Duration::from_millis(240)).contains(&gap),
            "{gap:?}"
        );
        assert_eq!(longest_tone_gap(&[0.0; 8000], 8000, 1000.0), None);
    }
}
