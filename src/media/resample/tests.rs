//! The streaming resampler against the whole-buffer one, and against what a listener would
//! check: tones keep their pitch and level, nothing above the new Nyquist frequency folds back,
//! and the two clocks never drift apart.
use std::f64::consts::PI;

use super::*;

fn sine(rate: u32, frequency_hz: f64, seconds: f64, amplitude: f64) -> Vec<f32> {
    let count = (f64::from(rate) * seconds) as usize;
    (0..count)
        .map(|i| (amplitude * (2.0 * PI * frequency_hz * i as f64 / f64::from(rate)).sin()) as f32)
        .collect()
}

/// Pushes `input` in chunks of the given sizes (cycled), as capture callbacks would.
fn push_in_chunks(resampler: &mut StreamResampler, input: &[f32], chunks: &[usize]) -> Vec<f32> {
    let mut output = Vec::new();
    let mut rest = input;
    for &size in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        for &sample in chunk {
            resampler.push(sample, |y| output.push(y));
        }
        rest = tail;
    }
    output
}

/// The sine of `frequency_hz` that fits `samples` best (least squares): its amplitude, and the
/// RMS of what is left over (noise, distortion, aliases).
fn fit_sine(samples: &[f32], rate: u32, frequency_hz: f64) -> (f64, f64) {
    let (mut cc, mut ss, mut cs, mut xc, mut xs) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &x) in samples.iter().enumerate() {
        let phase = 2.0 * PI * frequency_hz * i as f64 / f64::from(rate);
        let (c, s) = (phase.cos(), phase.sin());
        let x = f64::from(x);
        cc += c * c;
        ss += s * s;
        cs += c * s;
        xc += x * c;
        xs += x * s;
    }
    let det = cc * ss - cs * cs;
    let a = (xc * ss - xs * cs) / det;
    let b = (xs * cc - xc * cs) / det;
    let residual: f64 = samples
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let phase = 2.0 * PI * frequency_hz * i as f64 / f64::from(rate);
            (f64::from(x) - a * phase.cos() - b * phase.sin()).powi(2)
        })
        .sum();
    (
        (a * a + b * b).sqrt(),
        (residual / samples.len() as f64).sqrt(),
    )
}

fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

#[test]
fn streaming_gives_the_same_samples_as_the_whole_buffer_at_any_chunking() {
    for (from, to) in [
        (48000, 8000),
        (8000, 48000),
        (44100, 8000),
        (8000, 44100),
        (16000, 8000),
    ] {
        let input = sine(from, 440.0, 0.5, 0.5);
        let whole = to_rate(&input, from, to);
        for chunks in [&[1usize][..], &[160], &[441, 7, 1024]] {
            let mut resampler = StreamResampler::new(from, to);
            let streamed = push_in_chunks(&mut resampler, &input, chunks);
            // The stream holds back the outputs whose window reaches past the last input.
            assert!(
                streamed.len() + 2 * resampler.delay_samples() * to as usize / from as usize + 2
                    >= whole.len(),
                "{from} → {to}: {} of {} samples out",
                streamed.len(),
                whole.len()
            );
            for (n, (a, b)) in streamed.iter().zip(&whole).enumerate() {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{from} → {to} in chunks {chunks:?}: sample {n} is {a}, whole-buffer {b}"
                );
            }
        }
    }
}

#[test]
fn pulling_gives_the_same_samples_as_pushing() {
    let input = sine(8000, 1000.0, 0.3, 0.5);
    let mut pushed = StreamResampler::new(8000, 44100);
    let pushed = push_in_chunks(&mut pushed, &input, &[160]);
    let mut pulled = StreamResampler::new(8000, 44100);
    let mut source = input.iter().copied();
    let pulled: Vec<f32> = (0..pushed.len())
        .map(|_| pulled.pull(|| source.next().unwrap_or(0.0)))
        .collect();
    assert_eq!(pulled, pushed);
}

#[test]
fn a_tone_keeps_its_pitch_and_level_both_ways() {
    for (device_rate, frequency_hz) in [(48000, 1000.0), (44100, 300.0), (16000, 3000.0)] {
        // A microphone at the device rate, down to 8 kHz.
        let input = sine(device_rate, frequency_hz, 1.0, 0.5);
        let mut down = StreamResampler::new(device_rate, 8000);
        let output = push_in_chunks(&mut down, &input, &[480]);
        let steady = &output[400..output.len() - 400];
        let (level, residue) = fit_sine(steady, 8000, frequency_hz);
        assert!(
            (level - 0.5).abs() < 0.02,
            "{device_rate} → 8000: {frequency_hz} Hz at {level:.3}, expected 0.5"
        );
        let snr = 20.0 * (level / 2f64.sqrt() / residue.max(1e-9)).log10();
        assert!(snr > 45.0, "{device_rate} → 8000: SNR {snr:.1} dB");

        // And 8 kHz speech to a speaker at the device rate.
        let input = sine(8000, frequency_hz, 1.0, 0.5);
        let mut up = StreamResampler::new(8000, device_rate);
        let output = push_in_chunks(&mut up, &input, &[160]);
        let margin = device_rate as usize / 20;
        let (level, residue) = fit_sine(
            &output[margin..output.len() - margin],
            device_rate,
            frequency_hz,
        );
        assert!(
            (level - 0.5).abs() < 0.02,
            "8000 → {device_rate}: {frequency_hz} Hz at {level:.3}, expected 0.5"
        );
        let snr = 20.0 * (level / 2f64.sqrt() / residue.max(1e-9)).log10();
        assert!(snr > 45.0, "8000 → {device_rate}: SNR {snr:.1} dB");
    }
}

#[test]
fn a_microphone_tone_above_4khz_does_not_fold_into_the_call() {
    // 5 kHz at 48 kHz would alias to 3 kHz at 8 kHz without the filter.
    let input = sine(48000, 5000.0, 1.0, 0.5);
    let mut down = StreamResampler::new(48000, 8000);
    let output = push_in_chunks(&mut down, &input, &[480]);
    let steady = &output[400..output.len() - 400];
    let level_db = 20.0 * (rms(steady) / 0.5).log10();
    assert!(level_db < -60.0, "5 kHz leaks at {level_db:.1} dB");
}

#[test]
fn upsampling_leaves_no_images_above_4khz() {
    // A 1 kHz tone at 8 kHz has images at 7 and 9 kHz if merely interpolated.
    let input = sine(8000, 1000.0, 1.0, 0.5);
    let mut up = StreamResampler::new(8000, 48000);
    let output = push_in_chunks(&mut up, &input, &[160]);
    let steady = &output[4800..output.len() - 4800];
    for image_hz in [7000.0, 9000.0] {
        let (level, _) = fit_sine(steady, 48000, image_hz);
        assert!(level < 0.5e-3, "image at {image_hz} Hz: {level:.5}");
    }
}

#[test]
fn the_clocks_never_drift_apart() {
    // A minute of 44.1 kHz capture is exactly 8000 · 60 samples at 8 kHz, less the filter's
    // delay: positions are exact fractions, so no rounding accumulates however long it runs.
    let mut down = StreamResampler::new(44100, 8000);
    let mut produced = 0u64;
    let chunk = vec![0.0f32; 441];
    for _ in 0..(44100 * 60 / 441) {
        for &sample in &chunk {
            down.push(sample, |_| produced += 1);
        }
    }
    let expected = 8000 * 60;
    let held_back = (down.delay_samples() as u64 * 8000).div_ceil(44100) + 1;
    assert!(
        produced <= expected && produced + held_back >= expected,
        "{produced} samples out of a minute, expected {expected} less at most {held_back}"
    );
}

#[test]
fn the_delay_is_a_few_milliseconds() {
    for (from, to) in [
        (48000u32, 8000u32),
        (8000, 48000),
        (44100, 8000),
        (8000, 44100),
    ] {
        let resampler = StreamResampler::new(from, to);
        let delay_ms = resampler.delay_samples() as f64 * 1000.0 / f64::from(from);
        assert!(delay_ms < 6.0, "{from} → {to}: {delay_ms:.1} ms");
    }
}
