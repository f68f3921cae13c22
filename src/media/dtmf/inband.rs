//! In-band DTMF detection over decoded PCM with the Goertzel algorithm.
//!
//! The signal is analysed in 20 ms Hann-windowed blocks every 5 ms. Each block is classified
//! as one digit or none; a digit is reported once, at key-down, when it has held long enough,
//! and a new press needs a pause first. Measured over every alignment and ±1.5 % off
//! frequency: tones of ≥ 35 ms are always reported, tones of ≤ 25 ms never; pauses of ≥ 40 ms
//! always separate two presses, pauses (dropouts) of ≤ 30 ms never do.
//!
//! Why these sizes: ITU-T Q.24 asks that tones of 40 ms be accepted and pauses of 40 ms be
//! recognised, while shorter blips (≤ 20 ms) and dropouts (≤ 10 ms) are not. A 20 ms block
//! separates neighbouring DTMF frequencies (73 Hz apart at the closest) and the Hann window keeps
//! a ±1.5 % off-frequency tone within 1.4 dB of its true level; the 5 ms step lets the duration
//! rules be measured at 5 ms resolution rather than at the block length.
//!
//! A block counts as a digit only if all of these hold (thresholds are constants below):
//! - both tones at least [`MIN_TONE_LEVEL_DBM0`];
//! - twist within limits: low tone at most 8 dB above the high one ("normal": the line
//!   attenuates the high group), high at most 4 dB above the low ("reverse");
//! - in each group the strongest tone is ≥ 6 dB above the group's other three;
//! - the two tones carry most of the block's energy: this is what rejects speech, music and
//!   noise, which spread their energy over many frequencies;
//! - the high tone's second harmonic is weak: voiced speech is harmonic-rich, DTMF is not.
//!   (The low tones' second harmonics, 1394-1882 Hz, sit among the high-group tones, so they are
//!   left to the energy check.)

use std::collections::VecDeque;

use crate::media::tone::{DBM0_REFERENCE_PEAK, DTMF_HIGH_HZ, DTMF_KEYPAD, DTMF_LOW_HZ};

/// Analysis block length.
const BLOCK_SECONDS: f64 = 0.020;
/// Step between blocks.
const STEP_SECONDS: f64 = 0.005;
/// Consecutive blocks that must show the same digit before it is reported. Only blocks almost
/// entirely inside the tone pass (the Hann window and the energy-share check see to that), so
/// 5 blocks (20 ms of block plus 4 steps) means a tone of 30-35 ms: every ≥ 35 ms tone is
/// reported, no ≤ 25 ms tone is.
const BLOCKS_TO_REPORT: u32 = 5;
/// Consecutive blocks without the reported digit before a new press may be reported. Blocks
/// overlapping either press fail, so a pause of P ms yields about P / 5 + 1 quiet blocks: 9
/// separates presses after every pause ≥ 40 ms and bridges every dropout ≤ 30 ms.
const BLOCKS_TO_RELEASE: u32 = 9;

/// Weakest tone accepted. Q.24 operating ranges reach down to −25 dBm0 per tone; the margin
/// below that covers line loss.
pub const MIN_TONE_LEVEL_DBM0: f32 = -33.0;
/// How much stronger the low tone may be than the high tone.
const NORMAL_TWIST_DB: f32 = 8.0;
/// How much stronger the high tone may be than the low tone.
const REVERSE_TWIST_DB: f32 = 4.0;
/// How far the winning tone of a group must stand above each other tone of its group.
const GROUP_MARGIN_DB: f32 = 6.0;
/// Share of the block's energy the two tones must carry. A clean tone 1.5 % off frequency with
/// maximum twist still reaches about 0.78.
const MIN_TONE_ENERGY_SHARE: f32 = 0.70;
/// How far below the high tone its second harmonic must stay.
const MIN_HARMONIC_REJECTION_DB: f32 = 15.0;

/// Detects DTMF tones in PCM of one sample rate.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    sample_rate: u32,
    /// The last `block_len` samples, oldest at `write_pos`.
    history: Vec<f32>,
    write_pos: usize,
    /// Samples received so far, capped at `block_len` (no analysis before the first full block).
    filled: usize,
    samples_since_analysis: usize,
    step_len: usize,
    window: Vec<f32>,
    /// Scratch space for the windowed block, kept to avoid allocating per block.
    block: Vec<f32>,
    /// The four row (low group) tones, then the four column (high group) tones.
    probes: [Probe; 8],
    high_harmonic_probes: [Option<Probe>; 4],
    state: KeyState,
    pending: VecDeque<char>,
}

/// Goertzel coefficient for one frequency.
#[derive(Debug, Clone, Copy)]
struct Probe {
    coefficient: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum KeyState {
    /// No key down; `blocks` consecutive blocks have shown `candidate`.
    Armed {
        candidate: Option<char>,
        blocks: u32,
    },
    /// `digit` was reported; `quiet_blocks` consecutive blocks have not shown it.
    Down { digit: char, quiet_blocks: u32 },
}

impl InbandDetector {
    /// A detector for PCM at `sample_rate` Hz (8000 in trunkgate).
    ///
    /// # Panics
    /// If `sample_rate` is below 4000 Hz, where the highest DTMF tone (1633 Hz) cannot be
    /// analysed. The rate comes from configuration, never from the network.
    pub fn new(sample_rate: u32) -> Self {
        assert!(
            sample_rate >= 4000,
            "dtmf detection needs at least 4000 hz, got {sample_rate}"
        );
        let block_len = (BLOCK_SECONDS * f64::from(sample_rate)).round() as usize;
        let step_len = (STEP_SECONDS * f64::from(sample_rate)).round() as usize;
        let nyquist = sample_rate as f32 / 2.0;
        let probe = |frequency_hz: f32| Probe::new(frequency_hz, sample_rate);
        InbandDetector {
            sample_rate,
            history: vec![0.0; block_len],
            write_pos: 0,
            filled: 0,
            samples_since_analysis: 0,
            step_len,
            window: hann_window(block_len),
            block: vec![0.0; block_len],
            probes: std::array::from_fn(|k| {
                probe(if k < 4 {
                    DTMF_LOW_HZ[k]
                } else {
                    DTMF_HIGH_HZ[k - 4]
                })
            }),
            high_harmonic_probes: DTMF_HIGH_HZ.map(|f| (2.0 * f < nyquist).then(|| probe(2.0 * f))),
            state: KeyState::Armed {
                candidate: None,
                blocks: 0,
            },
            pending: VecDeque::new(),
        }
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Feeds PCM of any length; returns a digit when a key-down completes in it.
    ///
    /// A chunk of at most 40 ms can complete at most one key press. Should a longer chunk hold
    /// several, the later digits are kept and returned by the next calls (or by
    /// [`next_digit`](Self::next_digit)), so nothing is lost.
    pub fn process(&mut self, pcm: &[i16]) -> Option<char> {
        for &sample in pcm {
            self.history[self.write_pos] = f32::from(sample);
            self.write_pos += 1;
            if self.write_pos == self.history.len() {
                self.write_pos = 0;
            }
            self.filled = (self.filled + 1).min(self.history.len());
            self.samples_since_analysis += 1;
            if self.filled == self.history.len() && self.samples_since_analysis >= self.step_len {
                self.samples_since_analysis = 0;
                let seen = self.classify_block();
                if let Some(digit) = self.advance(seen) {
                    self.pending.push_back(digit);
                }
            }
        }
        self.pending.pop_front()
    }

    /// A digit detected by an earlier [`process`](Self::process) call but not yet returned.
    pub fn next_digit(&mut self) -> Option<char> {
        self.pending.pop_front()
    }

    /// The key-press state machine, one block at a time.
    fn advance(&mut self, seen: Option<char>) -> Option<char> {
        match &mut self.state {
            KeyState::Armed { candidate, blocks } => {
                if seen.is_some() && seen == *candidate {
                    *blocks += 1;
                } else {
                    *candidate = seen;
                    *blocks = u32::from(seen.is_some());
                }
                match *candidate {
                    Some(digit) if *blocks >= BLOCKS_TO_REPORT => {
                        self.state = KeyState::Down {
                            digit,
                            quiet_blocks: 0,
                        };
                        Some(digit)
                    }
                    _ => None,
                }
            }
            KeyState::Down {
                digit,
                quiet_blocks,
            } => {
                if seen == Some(*digit) {
                    *quiet_blocks = 0;
                } else {
                    *quiet_blocks += 1;
                    if *quiet_blocks >= BLOCKS_TO_RELEASE {
                        self.state = KeyState::Armed {
                            candidate: None,
                            blocks: 0,
                        };
                    }
                }
                None
            }
        }
    }

    /// Which digit, if any, the current block shows.
    fn classify_block(&mut self) -> Option<char> {
        let len = self.history.len();
        // Oldest sample first; the mean removed so a DC offset does not count as non-tone energy.
        let mean = self.history.iter().sum::<f32>() / len as f32;
        let (newer, older) = self.history.split_at(self.write_pos);
        let mut energy = 0.0f32;
        for ((out, &sample), &w) in self
            .block
            .iter_mut()
            .zip(older.iter().chain(newer))
            .zip(&self.window)
        {
            let windowed = (sample - mean) * w;
            *out = windowed;
            energy += windowed * windowed;
        }
        let min_power = tone_power_for_level(MIN_TONE_LEVEL_DBM0, len);
        // A probe's power is at most len × the block's energy (Cauchy-Schwarz), so a block
        // quieter than this cannot hold a tone loud enough: silence and line noise stop here,
        // before the Goertzel probes.
        if energy <= 0.0 || energy * (len as f32) < min_power {
            return None;
        }
        // Normalises a Goertzel power to the tone's share of the block energy: a lone sine at the
        // probe frequency gives 1 (Hann: |X|² = (A·N/4)², Σ(w·x)² = 3·N·A²/16).
        let share_scale = 3.0 / (len as f32 * energy);

        let powers = powers(&self.probes, &self.block);
        let low = strongest(&powers[..4]);
        let high = strongest(&powers[4..]);
        let (low_row, low_power, low_runner_up) = low;
        let (high_column, high_power, high_runner_up) = high;

        if low_power < min_power || high_power < min_power {
            return None;
        }
        if low_power > high_power * db_to_power(NORMAL_TWIST_DB)
            || high_power > low_power * db_to_power(REVERSE_TWIST_DB)
        {
            return None;
        }
        let margin = db_to_power(GROUP_MARGIN_DB);
        if low_power < low_runner_up * margin || high_power < high_runner_up * margin {
            return None;
        }
        if (low_power + high_power) * share_scale < MIN_TONE_ENERGY_SHARE {
            return None;
        }
        if let Some(harmonic) = &self.high_harmonic_probes[high_column] {
            if harmonic.power(&self.block) * db_to_power(MIN_HARMONIC_REJECTION_DB) > high_power {
                return None;
            }
        }
        Some(DTMF_KEYPAD[low_row][high_column])
    }
}

impl Probe {
    fn new(frequency_hz: f32, sample_rate: u32) -> Self {
        let omega = std::f64::consts::TAU * f64::from(frequency_hz) / f64::from(sample_rate);
        Probe {
            coefficient: (2.0 * omega.cos()) as f32,
        }
    }

    /// |X(ω)|² of the block at this probe's frequency (the frequency need not be a DFT bin).
    fn power(&self, block: &[f32]) -> f32 {
        let (mut previous, mut before_previous) = (0.0f32, 0.0f32);
        for &sample in block {
            let current = sample + self.coefficient * previous - before_previous;
            before_previous = previous;
            previous = current;
        }
        previous * previous + before_previous * before_previous
            - self.coefficient * previous * before_previous
    }
}

/// |X(ω)|² of the block at each probe's frequency, in one pass. One probe's recursion is a chain
/// of dependent multiply-adds; the probes' chains are independent, so side by side they run
/// several times faster (the same arithmetic per probe as [`Probe::power`], the same results).
fn powers<const N: usize>(probes: &[Probe; N], block: &[f32]) -> [f32; N] {
    let c = probes.map(|p| p.coefficient);
    let (mut previous, mut before_previous) = ([0.0f32; N], [0.0f32; N]);
    for &sample in block {
        for k in 0..N {
            let current = sample + c[k] * previous[k] - before_previous[k];
            before_previous[k] = previous[k];
            previous[k] = current;
        }
    }
    std::array::from_fn(|k| {
        previous[k] * previous[k] + before_previous[k] * before_previous[k]
            - c[k] * previous[k] * before_previous[k]
    })
}

/// Index and power of the strongest probe, and the power of the strongest of the others.
fn strongest(powers: &[f32]) -> (usize, f32, f32) {
    let mut best = 0;
    for index in 1..powers.len() {
        if powers[index] > powers[best] {
            best = index;
        }
    }
    let runner_up = powers
        .iter()
        .enumerate()
        .filter(|&(index, _)| index != best)
        .map(|(_, &power)| power)
        .fold(0.0f32, f32::max);
    (best, powers[best], runner_up)
}

/// Goertzel power a Hann-windowed sine at `level_dbm0` produces over a block of `len` samples.
fn tone_power_for_level(level_dbm0: f32, len: usize) -> f32 {
    let peak = DBM0_REFERENCE_PEAK * 10f32.powf(level_dbm0 / 20.0);
    let magnitude = peak * len as f32 / 4.0;
    magnitude * magnitude
}

fn db_to_power(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// Periodic Hann window.
fn hann_window(len: usize) -> Vec<f32> {
    (0..len)
        .map(|n| {
            let phase = std::f64::consts::TAU * n as f64 / len as f64;
            (0.5 - 0.5 * phase.cos()) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests;
