//! Packet-loss concealment for G.711, in the PCM domain.
//!
//! A lost 20 ms frame played as silence is heard as a click and a hole; replayed as the last frame
//! it buzzes. Voiced speech is nearly periodic over a few tens of milliseconds, so this follows the
//! idea of ITU-T G.711 Appendix I, simplified for a playout path that cannot delay its output:
//!
//! 1. At the first lost sample, estimate the pitch period (5–15 ms) by normalised
//!    autocorrelation of the last 20 ms against the history before it.
//! 2. Replay the last pitch period of the history, widening the replayed span to two and then
//!    three periods after 10 and 20 ms so that long erasures do not sound synthetic.
//! 3. Keep full level for 10 ms, then fade linearly by 20 % per 10 ms: silence after 60 ms.
//! 4. On the first good frame after a loss, cross-fade from the continued synthetic signal into
//!    the real one over 4 ms plus 4 ms per further 10 ms of loss (at most 10 ms).
//!
//! Appendix I smooths the junction where the replay starts by rewriting the last few milliseconds
//! already produced, which it can do because it holds its output back by 3.75 ms. Here that audio
//! is already played, so instead each junction adds the step between the last played sample and
//! the replayed one's predecessor, decaying linearly over a quarter period: the waveform stays
//! continuous without adding delay.

/// G.711 runs at 8 kHz; all lengths below are in samples at that rate.
const SAMPLES_PER_MS: usize = 8;
/// Long enough for three periods of the lowest pitch plus the sample before them (48.75 ms).
const HISTORY_LEN: usize = 390;
/// Pitch search range: 200 Hz down to 66 Hz covers most voices' fundamental.
const PITCH_MIN: usize = 5 * SAMPLES_PER_MS;
const PITCH_MAX: usize = 15 * SAMPLES_PER_MS;
/// Window compared against its pitch-shifted copy.
const CORRELATION_LEN: usize = 20 * SAMPLES_PER_MS;
/// Replay runs at full level this long before fading.
const FULL_LEVEL_LEN: usize = 10 * SAMPLES_PER_MS;
/// Fading by 20 % per 10 ms reaches zero 50 ms after it starts.
const FADE_LEN: usize = 50 * SAMPLES_PER_MS;
/// After this much consecutive loss the output is silence.
pub const SILENCE_AFTER_SAMPLES: usize = FULL_LEVEL_LEN + FADE_LEN;
/// Recovery cross-fade length: 4 ms, plus 4 ms per further 10 ms of loss, at most 10 ms.
const RECOVERY_BASE_LEN: usize = 4 * SAMPLES_PER_MS;
const RECOVERY_MAX_LEN: usize = 10 * SAMPLES_PER_MS;

/// Conceals lost G.711 frames of one direction of one call.
///
/// Feed every decoded good frame through [`good_frame`](Self::good_frame) and call
/// [`conceal`](Self::conceal) for every frame the jitter buffer reports missing. Both accept any
/// slice length; `samples_per_frame` only sizes the internal buffers up front.
#[derive(Debug, Clone)]
pub struct G711Concealer {
    /// The last `HISTORY_LEN` samples played, real or concealed, oldest first.
    history: Vec<i16>,
    /// Snapshot of `history` at the start of the current loss; the replay reads only from it.
    replay_source: Vec<i16>,
    pitch: usize,
    /// Index into `replay_source` of the next sample to replay.
    replay_pos: usize,
    /// Step added at the last replay junction and the number of samples left to fade it out.
    junction_step: f32,
    junction_left: usize,
    junction_len: usize,
    /// Samples concealed in the current loss; zero while frames arrive.
    lost_samples: usize,
    samples_per_frame: usize,
}

impl G711Concealer {
    pub fn new(samples_per_frame: usize) -> Self {
        Self {
            history: vec![0; HISTORY_LEN],
            replay_source: vec![0; HISTORY_LEN],
            pitch: PITCH_MAX,
            replay_pos: HISTORY_LEN,
            junction_step: 0.0,
            junction_left: 0,
            junction_len: 0,
            lost_samples: 0,
            samples_per_frame,
        }
    }

    pub fn samples_per_frame(&self) -> usize {
        self.samples_per_frame
    }

    /// Whether the last call concealed, i.e. the next good frame will be cross-faded.
    pub fn in_loss(&self) -> bool {
        self.lost_samples > 0
    }

    /// The pitch period in samples chosen for the current (or last) loss.
    pub fn pitch_period(&self) -> usize {
        self.pitch
    }

    /// Records a frame that arrived; right after a loss it is cross-faded in place from the
    /// concealment so playback does not jump.
    pub fn good_frame(&mut self, pcm: &mut [i16]) {
        if self.lost_samples > 0 {
            let extra_tens_of_ms = (self.lost_samples - 1) / FULL_LEVEL_LEN;
            let fade_len = (RECOVERY_BASE_LEN + RECOVERY_BASE_LEN * extra_tens_of_ms)
                .min(RECOVERY_MAX_LEN)
                .min(pcm.len());
            for (i, sample) in pcm.iter_mut().take(fade_len).enumerate() {
                let synthetic = self.next_concealed_sample();
                let weight = (i + 1) as f32 / (fade_len + 1) as f32;
                let mixed = f32::from(*sample) * weight + synthetic * (1.0 - weight);
                *sample = to_i16(mixed);
            }
            self.lost_samples = 0;
        }
        self.remember(pcm);
    }

    /// Fills `out` with the continuation of the recent audio for a frame that did not arrive.
    pub fn conceal(&mut self, out: &mut [i16]) {
        if self.lost_samples == 0 {
            self.start_loss();
        }
        for sample in out.iter_mut() {
            *sample = to_i16(self.next_concealed_sample());
        }
        self.remember(out);
    }

    /// Clears the history, e.g. when the far end changes, so no old voice is replayed.
    pub fn reset(&mut self) {
        *self = Self::new(self.samples_per_frame);
    }

    fn start_loss(&mut self) {
        self.replay_source.copy_from_slice(&self.history);
        self.pitch = estimate_pitch(&self.replay_source);
        // Forces a junction at the first sample, which is where the replay starts.
        self.replay_pos = HISTORY_LEN;
        self.junction_left = 0;
    }

    /// The next concealed sample, already faded; advances the loss clock by one sample.
    fn next_concealed_sample(&mut self) -> f32 {
        let elapsed = self.lost_samples;
        self.lost_samples = self.lost_samples.saturating_add(1);
        if elapsed >= SILENCE_AFTER_SAMPLES {
            return 0.0;
        }
        if self.replay_pos >= HISTORY_LEN {
            self.jump_back();
        }
        let mut value = f32::from(self.replay_source[self.replay_pos]);
        self.replay_pos += 1;
        if self.junction_left > 0 {
            value +=
                self.junction_step * self.junction_left as f32 / (self.junction_len + 1) as f32;
            self.junction_left -= 1;
        }
        value * level_after(elapsed)
    }

    /// Starts the replayed span again, one, two or three periods back depending on loss length.
    fn jump_back(&mut self) {
        let periods = 1 + (self.lost_samples.saturating_sub(1) / FULL_LEVEL_LEN).min(2);
        // HISTORY_LEN > 3 * PITCH_MAX and pitch <= PITCH_MAX, so start >= 1.
        let start = HISTORY_LEN - periods * self.pitch;
        let last_played = f32::from(self.replay_source[HISTORY_LEN - 1]);
        let natural_predecessor = f32::from(self.replay_source[start - 1]);
        self.junction_step = last_played - natural_predecessor;
        self.junction_len = (self.pitch / 4).max(1);
        self.junction_left = self.junction_len;
        self.replay_pos = start;
    }

    fn remember(&mut self, played: &[i16]) {
        if played.len() >= HISTORY_LEN {
            self.history
                .copy_from_slice(&played[played.len() - HISTORY_LEN..]);
        } else {
            self.history.copy_within(played.len().., 0);
            self.history[HISTORY_LEN - played.len()..].copy_from_slice(played);
        }
    }
}

/// Output level `elapsed` samples into a loss: flat, then a linear fade to zero.
fn level_after(elapsed: usize) -> f32 {
    if elapsed < FULL_LEVEL_LEN {
        1.0
    } else if elapsed < SILENCE_AFTER_SAMPLES {
        1.0 - (elapsed - FULL_LEVEL_LEN) as f32 / FADE_LEN as f32
    } else {
        0.0
    }
}

fn to_i16(value: f32) -> i16 {
    // `as` saturates at the i16 range, which is the clipping we want.
    value.round() as i16
}

/// Lag in `PITCH_MIN..=PITCH_MAX` whose shifted copy best matches the end of `history`.
///
/// A coarse pass on the history decimated 2:1 finds the region, a full-resolution pass around it
/// picks the lag: about a quarter of the work of a full search. Samples are first scaled down to
/// 12 bits so that every correlation sum fits an `i32`, which the compiler can vectorise.
fn estimate_pitch(history: &[i16]) -> usize {
    let mut scaled = [0i16; HISTORY_LEN];
    let loudest = history.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    let shift = (16 - loudest.leading_zeros()).saturating_sub(SCALED_BITS);
    for (out, sample) in scaled.iter_mut().zip(history) {
        *out = sample >> shift;
    }
    // Decimate so that the last kept sample is the newest one, keeping the window aligned.
    let mut decimated = [0i16; HISTORY_LEN / 2];
    for (out, pair) in decimated.iter_mut().zip(scaled.chunks_exact(2)) {
        *out = pair[1];
    }
    let coarse = 2 * best_lag(
        &decimated,
        PITCH_MIN.div_ceil(2)..=PITCH_MAX / 2,
        CORRELATION_LEN / 2,
    );
    let low = coarse.saturating_sub(1).max(PITCH_MIN);
    let high = (coarse + 1).min(PITCH_MAX);
    best_lag(&scaled, low..=high, CORRELATION_LEN)
}

/// Magnitude bits kept for the pitch search: 160 products of two such samples fit an `i32`.
const SCALED_BITS: u32 = 11;

fn best_lag(signal: &[i16], lags: std::ops::RangeInclusive<usize>, window_len: usize) -> usize {
    let end = signal.len();
    let window = &signal[end - window_len..];
    let mut best = *lags.end();
    // Score is correlation / sqrt(energy); compared as correlation² / energy to avoid the root.
    let mut best_score = (0.0f64, 1.0f64);
    for lag in lags {
        let shifted = &signal[end - window_len - lag..end - lag];
        let correlation: i32 = window
            .iter()
            .zip(shifted)
            .map(|(a, b)| i32::from(*a) * i32::from(*b))
            .sum();
        let energy: i32 = shifted.iter().map(|b| i32::from(*b) * i32::from(*b)).sum();
        if correlation <= 0 || energy == 0 {
            continue;
        }
        let correlation = f64::from(correlation);
        let energy = f64::from(energy);
        let (best_correlation, best_energy) = best_score;
        if correlation * correlation * best_energy > best_correlation * best_correlation * energy {
            best_score = (correlation, energy);
            best = lag;
        }
    }
    best
}

#[cfg(test)]
mod tests;
