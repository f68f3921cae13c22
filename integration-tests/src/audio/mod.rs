//! Checks on what a peer heard: does the recording contain this prompt, and where; is it
//! silent; is there a tone or a DTMF digit.
//!
//! Samples are `f32` in -1.0..=1.0 at the file's rate (8 kHz for everything a G.711 call
//! carries). The functions take plain slices so a test can cut a recording into the parts it
//! expects (`&audio.samples[a..b]`, or [`Audio::between`]).

mod correlate;
mod fft;
mod phrases;
mod tone;
mod wav;

mod pesq;
pub use correlate::{best_match, find_in_order, Match, OrderError, MIN_OVERLAP};
pub use pesq::{pesq_nb, pesq_python, PESQ_PYTHON_ENV};
pub use phrases::{phrase_match, phrase_offsets, phrases};
pub use tone::{detect_dtmf, goertzel_power, longest_tone_gap, tone_energy_ratio};
pub use wav::{read_wav, write_wav_i16, AudioError};

use std::ops::Range;
use std::time::Duration;

use crate::paths::prompt_path;

/// The sample rate of narrowband telephony (G.711).
pub const TELEPHONY_RATE: u32 = 8000;

/// Mono audio at a known rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    pub rate: u32,
    pub samples: Vec<f32>,
}

impl Audio {
    pub fn silence(rate: u32, length: Duration) -> Self {
        let count = (length.as_secs_f64() * f64::from(rate)).round() as usize;
        Self {
            rate,
            samples: vec![0.0; count],
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate))
    }

    /// The samples between two times from the start, clamped to the recording.
    pub fn between(&self, start: Duration, end: Duration) -> &[f32] {
        let index = |time: Duration| {
            ((time.as_secs_f64() * f64::from(self.rate)).round() as usize).min(self.samples.len())
        };
        let (start, end) = (index(start), index(end));
        &self.samples[start.min(end)..end]
    }

    /// A time from the start, for a sample index (or a [`Match::offset`]).
    pub fn time_at(&self, sample: isize) -> f64 {
        sample as f64 / f64::from(self.rate)
    }

    /// Appends `other` (same rate) after this audio.
    pub fn extend(&mut self, other: &Audio) {
        assert_eq!(self.rate, other.rate, "joining audio of different rates");
        self.samples.extend_from_slice(&other.samples);
    }
}

/// A prompt from `prompts/` by name (`welcome`, `digit-7`, …).
pub fn prompt(name: &str) -> Audio {
    let path = prompt_path(name);
    read_wav(&path).unwrap_or_else(|err| panic!("prompt {name} ({}): {err}", path.display()))
}

/// Root mean square of the samples (0.0 for none).
pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let energy: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (energy / samples.len() as f64).sqrt()
}

/// A level in dB relative to full scale (a full-scale square wave is 0 dBFS, a full-scale
/// sine -3 dBFS). Silence gives -inf.
pub fn dbfs(level: f64) -> f64 {
    20.0 * level.log10()
}

/// Where the audio is louder than `threshold_dbfs`, measured in 10 ms frames; gaps shorter
/// than `bridge` are merged so that one spoken prompt is one span. Ranges are sample indices.
pub fn active_spans(
    samples: &[f32],
    rate: u32,
    threshold_dbfs: f64,
    bridge: Duration,
) -> Vec<Range<usize>> {
    let frame = (rate as usize / 100).max(1);
    let bridge_samples = (bridge.as_secs_f64() * f64::from(rate)) as usize;
    let mut spans: Vec<Range<usize>> = Vec::new();
    for (index, chunk) in samples.chunks(frame).enumerate() {
        if dbfs(rms(chunk)) < threshold_dbfs {
            continue;
        }
        let start = index * frame;
        let end = start + chunk.len();
        match spans.last_mut() {
            Some(last) if start - last.end <= bridge_samples => last.end = end,
            _ => spans.push(start..end),
        }
    }
    spans
}

/// `len` samples of a sine at `freq` Hz with peak `amplitude` (1.0 = full scale).
/// Writes 40 s of a steady `freq` tone at 8 kHz as `dir/name`, for a peer to play; its path.
pub fn tone_file(dir: &std::path::Path, name: &str, freq: f64) -> std::path::PathBuf {
    let path = dir.join(name);
    let tone = Audio {
        rate: TELEPHONY_RATE,
        samples: sine(40 * TELEPHONY_RATE as usize, TELEPHONY_RATE, freq, 0.3),
    };
    write_wav_i16(&path, &tone).expect("writing a tone file");
    path
}

pub fn sine(len: usize, rate: u32, freq: f64, amplitude: f32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin() as f32 * amplitude
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod test_signals {
    /// Deterministic white noise in -amplitude..amplitude (xorshift; no rand dependency).
    pub(crate) fn noise(len: usize, amplitude: f32, seed: u64) -> Vec<f32> {
        let mut state = seed.max(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
                ((unit * 2.0 - 1.0) as f32) * amplitude
            })
            .collect()
    }

    pub(crate) use super::sine;
}

/// `opusdec`'s 8 kHz decoding of `file`: left and right channels.
pub fn opusdec_stereo(file: &std::path::Path) -> (Vec<f32>, Vec<f32>) {
    let wav = file.with_extension("wav");
    let out = std::process::Command::new("opusdec")
        .args(["--rate", "8000", "--quiet"])
        .arg(file)
        .arg(&wav)
        .output()
        .expect("opusdec (opus-tools) runs");
    assert!(
        out.status.success(),
        "opusdec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = hound::WavReader::open(&wav).unwrap();
    assert_eq!(reader.spec().channels, 2);
    assert_eq!(reader.spec().sample_rate, 8000);
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// Prompt `name` said `times` times, a second apart, as a WAV in `dir`: a party that keeps
/// talking through a call.
pub fn repeated_prompt(dir: &std::path::Path, name: &str, times: usize) -> std::path::PathBuf {
    let said = prompt(name);
    let mut long = Audio::silence(said.rate, Duration::ZERO);
    for _ in 0..times {
        long.extend(&said);
        long.extend(&Audio::silence(said.rate, Duration::from_secs(1)));
    }
    let path = dir.join(format!("{name}-x{times}.wav"));
    write_wav_i16(&path, &long).expect("a WAV in a temporary directory");
    path
}

#[cfg(test)]
mod tests {
    use super::test_signals::sine;
    use super::*;

    #[test]
    fn rms_of_a_sine_is_amplitude_over_root_two() {
        let wave = sine(8000, 8000, 1000.0, 0.5);
        assert!((rms(&wave) - 0.5 / 2f64.sqrt()).abs() < 1e-3);
        assert!((dbfs(rms(&sine(8000, 8000, 440.0, 1.0))) + 3.01).abs() < 0.05);
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(dbfs(rms(&[0.0; 10])), f64::NEG_INFINITY);
    }

    #[test]
    fn active_spans_find_bursts_and_bridge_short_gaps() {
        let rate = 8000;
        let mut samples = vec![0.0f32; 8000];
        // Bursts at 0.10-0.30 s and 0.35-0.50 s (50 ms gap), and 0.80-0.90 s.
        for range in [800..2400, 2800..4000, 6400..7200] {
            let len = range.len();
            samples[range.clone()].copy_from_slice(&sine(len, rate, 500.0, 0.3));
        }
        let spans = active_spans(&samples, rate, -40.0, Duration::from_millis(100));
        assert_eq!(spans, vec![800..4000, 6400..7200]);
        let unbridged = active_spans(&samples, rate, -40.0, Duration::ZERO);
        assert_eq!(unbridged.len(), 3);
    }

    #[test]
    fn between_clamps_to_the_recording() {
        let audio = Audio {
            rate: 8000,
            samples: vec![0.5; 8000],
        };
        assert_eq!(
            audio
                .between(Duration::from_millis(500), Duration::from_secs(5))
                .len(),
            4000
        );
        assert!(audio
            .between(Duration::from_secs(2), Duration::from_secs(1))
            .is_empty());
        assert_eq!(audio.duration(), Duration::from_secs(1));
    }

    #[test]
    fn prompts_are_telephony_rate_and_normalised() {
        for name in ["welcome", "main-menu", "digit-0", "digit-pound"] {
            let audio = prompt(name);
            assert_eq!(audio.rate, TELEPHONY_RATE, "{name}");
            let peak = audio.samples.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
            assert!(
                (dbfs(f64::from(peak)) + 3.0).abs() < 0.2,
                "{name} peak {peak}"
            );
            // 50 ms of digital silence at each end.
            assert!(
                audio.samples[..400].iter().all(|&x| x == 0.0),
                "{name} start"
            );
            let tail = &audio.samples[audio.samples.len() - 400..];
            assert!(tail.iter().all(|&x| x == 0.0), "{name} end");
        }
    }
}
