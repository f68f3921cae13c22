//! The delays a call's frames waited in the buffer, for the call's percentiles.
//!
//! Kept apart from [`super::JitterStats`], which receivers copy on every tick: this is a
//! kilobyte and only read when a call ends.

use std::time::Duration;

/// Width of one bucket.
const STEP_MS: u64 = 2;
/// Delays from here on share the last bucket; no buffer is allowed to hold this much.
const CEILING_MS: u64 = 1_000;

#[derive(Debug, Clone)]
pub struct DelayHistogram {
    counts: Vec<u32>,
    samples: u64,
}

impl Default for DelayHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; (CEILING_MS / STEP_MS) as usize + 1],
            samples: 0,
        }
    }
}

impl DelayHistogram {
    pub fn record(&mut self, delay: Duration) {
        let bucket = (delay.as_millis() as u64 / STEP_MS).min(CEILING_MS / STEP_MS) as usize;
        self.counts[bucket] = self.counts[bucket].saturating_add(1);
        self.samples += 1;
    }

    /// The delay `q` (0–1) of the frames waited at most, to the bucket's upper edge; `None`
    /// before any frame played.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.samples == 0 {
            return None;
        }
        // Rank of the sample wanted, 1-based: the nearest-rank definition.
        let rank = ((q.clamp(0.0, 1.0) * self.samples as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                return Some(Duration::from_millis((bucket as u64 + 1) * STEP_MS));
            }
        }
        Some(Duration::from_millis(CEILING_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_95th_percentile_is_the_delay_95_frames_in_100_waited_at_most() {
        let mut h = DelayHistogram::default();
        assert_eq!(h.quantile(0.95), None);
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        // 95 of the 100 waited 95 ms or less; the answer is the upper edge of 94–96.
        assert_eq!(h.quantile(0.95), Some(Duration::from_millis(96)));
        assert_eq!(h.quantile(0.0), Some(Duration::from_millis(2)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_millis(102)));
    }

    #[test]
    fn delays_beyond_the_ceiling_count_at_the_ceiling() {
        let mut h = DelayHistogram::default();
        h.record(Duration::from_secs(30));
        assert_eq!(
            h.quantile(0.5),
            Some(Duration::from_millis(CEILING_MS + STEP_MS))
        );
    }
}
