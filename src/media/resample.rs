//! Band-limited sample-rate conversion with a Blackman-windowed sinc, for whole buffers (prompt
//! files, [`to_rate`]) and for endless streams (a sound card, [`StreamResampler`]).
//!
//! This is our own filter rather than dasp's `Sinc` interpolator: dasp 0.11.0, the current
//! release, swaps the left and right taps (fixed upstream in dasp PR #143, not released), which at
//! fractional ratios turns a clean 1 kHz sine into a signal with only ~21 dB SNR from 44.1 kHz
//! and ~9 dB from 11.025 kHz. Doing it ourselves also lets one filter both band-limit (against
//! aliasing, which dasp's interpolator does not do when downsampling) and interpolate, computed
//! only at the output samples.
//!
//! Both forms compute the same numbers: output `n` sits at input position `n · from / to`, and
//! is the weighted sum of the input samples around it (samples before the first are zero). The
//! streaming form can only produce output `n` once the input samples after that position have
//! arrived, which delays it by half the filter (under 5 ms for the rates a sound card offers).
use std::f64::consts::PI;

/// Telephone band edge: everything up to here passes.
const PASSBAND_EDGE_HZ: f64 = 3400.0;
/// Blackman window: transition width ≈ 5.5 · rate / taps, stopband ≈ −74 dB.
const BLACKMAN_WIDTH_FACTOR: f64 = 5.5;
/// Most distinct fractional positions tabulated. Common rates need few (44.1 kHz → 8 kHz: 80);
/// a rate with no common divisor with 8000 has its positions rounded to 1/1024 of an input
/// sample, a timing error whose noise stays below −70 dB in the telephone band.
const MAX_PHASES: u64 = 1024;

/// Converts `input` at `from_rate` to `to_rate`, as one buffer. The kernel is centred on each
/// output instant, so the output is not delayed.
pub fn to_rate(input: &[f32], from_rate: u32, to_rate: u32) -> Vec<f32> {
    if from_rate == to_rate || input.is_empty() {
        return input.to_vec();
    }
    let filter = Filter::new(from_rate, to_rate);
    let output_len = ((input.len() as u64 * filter.phases + filter.step / 2) / filter.step).max(1);
    let mut output = Vec::with_capacity(output_len as usize);
    for n in 0..output_len {
        let (centre, weights) = filter.locate(n);
        // centre ≤ input.len() + 1, which fits i64 for any slice in memory.
        let first = centre as i64 - filter.half_taps as i64 + 1;
        let mut sum = 0.0f32;
        for (offset, &weight) in weights.iter().enumerate() {
            let index = first + offset as i64;
            if index >= 0 && (index as usize) < input.len() {
                sum += weight * input[index as usize];
            }
        }
        output.push(sum);
    }
    output
}

/// The filter for one pair of rates: where each output sample sits and the weights it takes.
///
/// One filter does both jobs: when downsampling it removes everything above the output's Nyquist
/// frequency before it could fold back (stopband starting at `to_rate / 2`); when upsampling it
/// removes the images above the input's Nyquist frequency.
#[derive(Debug, Clone)]
struct Filter {
    half_taps: usize,
    /// Output `n` sits at input position `n · step / phases`, exactly.
    step: u64,
    phases: u64,
    /// How many fractional positions `table` holds (`phases`, at most [`MAX_PHASES`]).
    table_phases: u64,
    /// `table_phases` rows of `2 · half_taps` weights.
    table: Vec<f32>,
}

impl Filter {
    fn new(from_rate: u32, to_rate: u32) -> Self {
        let from_rate_f = f64::from(from_rate);
        let stopband_hz = f64::from(from_rate.min(to_rate)) / 2.0;
        let transition_hz = if from_rate > to_rate {
            stopband_hz - PASSBAND_EDGE_HZ.min(stopband_hz * 0.85)
        } else {
            stopband_hz * 0.15
        };
        let cutoff_hz = stopband_hz - transition_hz / 2.0;
        let half_taps = (BLACKMAN_WIDTH_FACTOR * from_rate_f / transition_hz / 2.0).ceil() as usize;
        let divisor = gcd(u64::from(from_rate), u64::from(to_rate));
        let phases = u64::from(to_rate) / divisor;
        let table_phases = phases.min(MAX_PHASES);
        let cutoff = cutoff_hz / from_rate_f;
        let table = (0..table_phases)
            .flat_map(|phase| weights(cutoff, half_taps, phase as f64 / table_phases as f64))
            .collect();
        Self {
            half_taps,
            step: u64::from(from_rate) / divisor,
            phases,
            table_phases,
            table,
        }
    }

    fn taps(&self) -> usize {
        2 * self.half_taps
    }

    /// Output `n`: the input sample it sits at or after (its centre), and the weights for the
    /// input samples `centre - half_taps + 1 ..= centre + half_taps`.
    fn locate(&self, n: u64) -> (u64, &[f32]) {
        let (centre, row) = self.locate_row(n);
        let taps = self.taps();
        (centre, &self.table[row..row + taps])
    }

    /// [`Filter::locate`] with the weights as the index of their row in `table`.
    fn locate_row(&self, n: u64) -> (u64, usize) {
        let position = n * self.step;
        self.row_at(position / self.phases, position % self.phases)
    }

    /// The centre and weights' row for the input position `whole + fraction / phases`.
    fn row_at(&self, whole: u64, fraction: u64) -> (u64, usize) {
        let mut centre = whole;
        // Nearest tabulated fraction (exact when phases ≤ MAX_PHASES).
        let mut phase = if self.table_phases == self.phases {
            fraction
        } else {
            (fraction * self.table_phases + self.phases / 2) / self.phases
        };
        if phase == self.table_phases {
            centre += 1;
            phase = 0;
        }
        // phase < table_phases, and the table holds table_phases rows of `taps` weights.
        (centre, phase as usize * self.taps())
    }
}

/// Weights for the input samples `centre - half_taps + 1 ..= centre + half_taps` when the output
/// lies `fraction` of a sample after `centre`, normalised to unity gain at DC. `cutoff` is a
/// fraction of the input rate.
fn weights(cutoff: f64, half_taps: usize, fraction: f64) -> Vec<f32> {
    let half = half_taps as f64;
    let half_taps = half_taps as i64;
    let raw: Vec<f64> = (-half_taps + 1..=half_taps)
        .map(|tap| {
            let distance = fraction - tap as f64;
            let x = 2.0 * cutoff * distance;
            let sinc = if x.abs() < 1e-12 {
                1.0
            } else {
                (PI * x).sin() / (PI * x)
            };
            let w = distance / half;
            let window = if w.abs() >= 1.0 {
                0.0
            } else {
                0.42 + 0.5 * (PI * w).cos() + 0.08 * (2.0 * PI * w).cos()
            };
            sinc * window
        })
        .collect();
    let total: f64 = raw.iter().sum();
    raw.iter().map(|&weight| (weight / total) as f32).collect()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Sample-rate conversion of an endless stream, fed and drained a sample at a time, for a sound
/// card's callback: nothing is allocated after [`StreamResampler::new`], and the output keeps
/// exactly in step with the input over any length (`from · outputs ≈ to · inputs`, never
/// drifting), because positions are kept as exact fractions.
///
/// Input can be pushed (a capture callback: [`StreamResampler::push`] hands over each output
/// as soon as it can be computed) or pulled (a playback callback: [`StreamResampler::pull`]
/// asks for input until the next output can be computed).
#[derive(Debug, Clone)]
pub struct StreamResampler {
    filter: Filter,
    /// The newest `taps` input samples, each written twice (at `i` and `i + taps`) so that they
    /// are always one contiguous slice, oldest first, starting at `received % taps`.
    history: Vec<f32>,
    received: u64,
    /// The next output's input position, `whole + fraction / phases`, advanced by adding
    /// (no division per sample, which the callbacks of an unoptimised build feel).
    whole: u64,
    fraction: u64,
    /// How many input samples the next output needs in all: its window ends at its centre plus
    /// half the filter. Pushing and pulling both stop exactly there, so the newest `taps`
    /// samples in `history` are always that window when it is computed.
    needed: u64,
    /// Where the next output's weights start in the filter's table.
    row: usize,
}

impl StreamResampler {
    /// `from_rate` and `to_rate` are positive (a sound card's rates are).
    pub fn new(from_rate: u32, to_rate: u32) -> Self {
        let filter = Filter::new(from_rate.max(1), to_rate.max(1));
        let history = vec![0.0; 2 * filter.taps()];
        let (centre, row) = filter.row_at(0, 0);
        let needed = centre + filter.half_taps as u64 + 1;
        Self {
            filter,
            history,
            received: 0,
            whole: 0,
            fraction: 0,
            needed,
            row,
        }
    }

    /// How far the output lags the input: half the filter, in input samples.
    pub fn delay_samples(&self) -> usize {
        self.filter.half_taps
    }

    /// Takes one input sample and calls `output` with every output sample that became
    /// computable (none, one, or several when upsampling).
    pub fn push(&mut self, sample: f32, mut output: impl FnMut(f32)) {
        self.store(sample);
        while self.received == self.needed {
            output(self.compute());
        }
    }

    /// The next output sample, calling `input` for as many input samples as it needs.
    pub fn pull(&mut self, mut input: impl FnMut() -> f32) -> f32 {
        while self.received < self.needed {
            self.store(input());
        }
        self.compute()
    }

    fn store(&mut self, sample: f32) {
        let taps = self.filter.taps();
        // received % taps < taps, and history holds 2 · taps samples.
        let slot = (self.received % taps as u64) as usize;
        self.history[slot] = sample;
        self.history[slot + taps] = sample;
        self.received += 1;
    }

    fn compute(&mut self) -> f32 {
        let taps = self.filter.taps();
        let oldest = (self.received % taps as u64) as usize;
        // oldest < taps: the slice ends at most at 2 · taps, the history's length; `row` is
        // the start of one of the table's rows of `taps` weights.
        let sum = dot(
            &self.history[oldest..oldest + taps],
            &self.filter.table[self.row..self.row + taps],
        );
        self.fraction += self.filter.step;
        while self.fraction >= self.filter.phases {
            self.fraction -= self.filter.phases;
            self.whole += 1;
        }
        let (centre, row) = self.filter.row_at(self.whole, self.fraction);
        self.needed = centre + self.filter.half_taps as u64 + 1;
        self.row = row;
        sum
    }
}

/// Four running sums over chunks of four: the same result as a plain sum to within rounding, and
/// several times faster in an unoptimised (debug) build, where a sound card's callback still has
/// to keep up.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 4];
    let (a_chunks, b_chunks) = (a.chunks_exact(4), b.chunks_exact(4));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (x, w) in a_chunks.zip(b_chunks) {
        sums[0] += x[0] * w[0];
        sums[1] += x[1] * w[1];
        sums[2] += x[2] * w[2];
        sums[3] += x[3] * w[3];
    }
    let rest: f32 = a_rest.iter().zip(b_rest).map(|(x, w)| x * w).sum();
    (sums[0] + sums[1]) + (sums[2] + sums[3]) + rest
}

#[cfg(test)]
mod tests;
