//! How late packets arrive, learnt per stream: the target delay of the jitter buffer (a
//! lateness quantile over a sliding baseline) and the RFC 3550 interarrival jitter for reports.
use std::collections::VecDeque;

/// Window over which the fastest transit is the reference for lateness.
const BASELINE_WINDOW_SECS: f64 = 2.0;
/// Bounds the baseline window's memory when packets come very fast.
const BASELINE_MAX_ENTRIES: usize = 512;
/// Per-packet forgetting factor of the lateness histogram: about 100 packets of memory.
const LATENESS_FORGETTING: f64 = 0.99;
const LATENESS_QUANTILE: f64 = 0.95;
/// The target falls by at most one frame per this many packets.
const SHRINK_PACKETS_PER_FRAME: f64 = 50.0;
/// RFC 3550 6.4.1: the interarrival jitter estimate moves 1/16 of the way per packet.
const JITTER_GAIN: f64 = 1.0 / 16.0;

/// Learns how late packets arrive and turns it into the target delay.
#[derive(Debug, Clone)]
pub(super) struct DelayEstimator {
    frame_secs: f64,
    min_delay: f64,
    max_delay: f64,
    /// Arrival and transit of recent packets with increasing transit, so the front is the
    /// fastest packet of the window (a monotonic queue).
    baseline: VecDeque<(f64, f64)>,
    lateness: LatenessHistogram,
    /// How late the copies the receiver asked for come on a steady link: its span of frames.
    expected_copies: f64,
    pub(super) target: f64,
}

impl DelayEstimator {
    pub(super) fn new(frame_secs: f64, initial: f64, min_delay: f64, max_delay: f64) -> Self {
        let target = initial.clamp(min_delay, max_delay);
        let bin_width = (frame_secs / 8.0).max(0.000_5);
        Self {
            frame_secs,
            min_delay,
            max_delay,
            baseline: VecDeque::new(),
            lateness: LatenessHistogram::new(bin_width, max_delay),
            expected_copies: 0.0,
            target,
        }
    }

    pub(super) fn expire(&mut self, now: f64) {
        while self
            .baseline
            .front()
            .is_some_and(|&(arrival, _)| arrival < now - BASELINE_WINDOW_SECS)
        {
            self.baseline.pop_front();
        }
    }

    pub(super) fn fastest_transit(&self) -> Option<f64> {
        self.baseline.front().map(|&(_, transit)| transit)
    }

    pub(super) fn lateness(&self, arrival: f64, ts_secs: f64) -> Option<f64> {
        self.fastest_transit()
            .map(|fastest| arrival - ts_secs - fastest)
    }

    pub(super) fn observe(&mut self, arrival: f64, ts_secs: f64) {
        let transit = arrival - ts_secs;
        while self
            .baseline
            .back()
            .is_some_and(|&(_, queued)| queued >= transit)
        {
            self.baseline.pop_back();
        }
        self.baseline.push_back((arrival, transit));
        if self.baseline.len() > BASELINE_MAX_ENTRIES {
            self.baseline.pop_front();
        }
        let lateness = self.lateness(arrival, ts_secs).unwrap_or(0.0);
        self.lateness.add(lateness);

        let wanted = (self.frame_secs + self.lateness.quantile(LATENESS_QUANTILE))
            .max(self.recovery_floor())
            .clamp(self.min_delay, self.max_delay);
        let slowest_shrink = self.target - self.frame_secs / SHRINK_PACKETS_PER_FRAME;
        self.target = if wanted >= self.target {
            wanted
        } else {
            wanted.max(slowest_shrink)
        };
    }

    /// The receiver asked for copies of frames up to `frames_back` back (0: none): the target
    /// holds that much from now on, so the first burst after the request is rebuilt whole.
    pub(super) fn expect_copies(&mut self, frames_back: usize) {
        self.expected_copies = frames_back as f64 * self.frame_secs;
        self.target = self
            .target
            .max(self.recovery_floor().clamp(self.min_delay, self.max_delay));
    }

    fn recovery_floor(&self) -> f64 {
        if self.expected_copies > 0.0 {
            self.expected_copies + self.frame_secs / 2.0
        } else {
            0.0
        }
    }

    /// After a restart the timestamps mean something else; the network's jitter has not changed.
    pub(super) fn forget_baseline(&mut self) {
        self.baseline.clear();
    }
}

/// Histogram of lateness whose old entries fade geometrically, for a cheap running percentile.
#[derive(Debug, Clone)]
pub(super) struct LatenessHistogram {
    bin_width: f64,
    bins: Vec<f64>,
    total: f64,
    /// Weight of the next entry; growing it is the same as shrinking all earlier ones.
    increment: f64,
}

impl LatenessHistogram {
    /// Bins cover `0..=max_delay`; anything later shares the last bin.
    pub(super) fn new(bin_width: f64, max_delay: f64) -> Self {
        const MAX_BINS: usize = 2048;
        // Saturating float-to-int conversion, then capped.
        let wanted = ((max_delay / bin_width).ceil() as usize).saturating_add(2);
        let count = wanted.clamp(2, MAX_BINS);
        let bin_width = if wanted > MAX_BINS {
            max_delay / (MAX_BINS - 2) as f64
        } else {
            bin_width
        };
        Self {
            bin_width,
            bins: vec![0.0; count],
            total: 0.0,
            increment: 1.0,
        }
    }

    pub(super) fn add(&mut self, lateness: f64) {
        let last = self.bins.len() - 1;
        // Saturating conversion: negatives and NaN land in bin 0, huge values in the last bin.
        let index = ((lateness / self.bin_width) as usize).min(last);
        self.bins[index] += self.increment;
        self.total += self.increment;
        self.increment /= LATENESS_FORGETTING;
        if self.increment > 1e12 {
            for bin in &mut self.bins {
                *bin /= self.increment;
            }
            self.total /= self.increment;
            self.increment = 1.0;
        }
    }

    /// Upper edge of the bin holding the `quantile`; 0 before any data.
    pub(super) fn quantile(&self, quantile: f64) -> f64 {
        let allowed_above = (1.0 - quantile) * self.total;
        let mut above = 0.0;
        for (index, weight) in self.bins.iter().enumerate().rev() {
            above += weight;
            if above > allowed_above {
                return (index + 1) as f64 * self.bin_width;
            }
        }
        0.0
    }
}

/// RFC 3550 6.4.1 interarrival jitter, in timestamp units.
#[derive(Debug, Clone, Default)]
pub(super) struct InterarrivalJitter {
    /// Arrival (in timestamp units) and timestamp of the previous packet.
    last: Option<(f64, i64)>,
    pub(super) estimate: f64,
}

impl InterarrivalJitter {
    pub(super) fn observe(&mut self, arrival_units: f64, ts: i64) {
        if let Some((last_arrival, last_ts)) = self.last {
            let difference = (arrival_units - last_arrival) - ts.wrapping_sub(last_ts) as f64;
            self.estimate += (difference.abs() - self.estimate) * JITTER_GAIN;
        }
        self.last = Some((arrival_units, ts));
    }

    pub(super) fn forget_last(&mut self) {
        self.last = None;
    }
}
