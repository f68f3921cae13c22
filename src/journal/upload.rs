//! When a sink gets which records (sans-IO): batches by count, bytes and age, retries with
//! exponential backoff and jitter, and a cursor that moves only when the sink acknowledges.
//!
//! The shell ([`super::ship`]) tells the core what the journal has synced, asks it what to
//! send ([`SinkCore::poll`]), reads those records, sends them, and reports how it went.
//! Records leave in order, a batch at a time: batch N+1 is not sent before batch N is
//! acknowledged, so a sink never holds a record whose predecessors it lacks for long.

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// At most this many records in a batch; a batch this full leaves at once.
    pub records: u64,
    /// A batch leaves once its oldest record has waited this long.
    pub age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

/// How a sink took a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It has the records: the cursor moves past them.
    Acknowledged,
    /// Not now (the sink is down, slow, overloaded): the same records again later, no sooner
    /// than `after` if the sink said so (Retry-After).
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// The sink refuses these records for good (a 4xx): they are set aside (dead-lettered)
    /// by the shell and the cursor moves past them, so the rest is not blocked forever.
    Poisoned { why: String },
}

pub struct SinkCore {
    limits: BatchLimits,
    backoff: Backoff,
    /// The last record the sink acknowledged.
    acked: u64,
    /// The last record the journal has synced.
    available: u64,
    /// Since when records past `acked` have been waiting, as this core saw them.
    waiting_since: Option<Instant>,
    in_flight: Option<RangeInclusive<u64>>,
    retry_at: Option<Instant>,
    /// The batch that failed: retried as it was, so a sink that names batches by their
    /// records overwrites a half-taken one instead of keeping two that overlap.
    retry: Option<RangeInclusive<u64>>,
    failures: u32,
    rng: StdRng,
}

impl SinkCore {
    /// `acked`: the sink's stored cursor; `seed`: for the backoff's jitter.
    pub fn new(acked: u64, limits: BatchLimits, backoff: Backoff, seed: u64) -> Self {
        Self {
            limits,
            backoff,
            acked,
            available: acked,
            waiting_since: None,
            in_flight: None,
            retry_at: None,
            retry: None,
            failures: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Records synced but not acknowledged.
    pub fn backlog(&self) -> u64 {
        self.available.saturating_sub(self.acked)
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The journal has synced up to `seq`.
    pub fn set_available(&mut self, now: Instant, seq: u64) {
        if seq > self.available {
            self.available = seq;
            if self.waiting_since.is_none() && seq > self.acked {
                self.waiting_since = Some(now);
            }
        }
    }

    /// The records to send now, if it is time: the first up to `limits.records` past the
    /// cursor. The shell may send fewer (a byte limit) and says so in [`SinkCore::sending`].
    pub fn poll(&mut self, now: Instant) -> Option<RangeInclusive<u64>> {
        if self.in_flight.is_some() || self.available <= self.acked {
            return None;
        }
        if let Some(at) = self.retry_at {
            if now < at {
                return None;
            }
            if let Some(range) = self.retry.clone() {
                return Some(range);
            }
        } else {
            let full = self.backlog() >= self.limits.records;
            let old = self
                .waiting_since
                .is_some_and(|since| now.saturating_duration_since(since) >= self.limits.age);
            if !full && !old {
                return None;
            }
        }
        let from = self.acked + 1;
        let to = self.available.min(self.acked + self.limits.records);
        Some(from..=to)
    }

    /// The batch of records `range` is on its way.
    pub fn sending(&mut self, range: RangeInclusive<u64>) {
        self.in_flight = Some(range);
    }

    /// How the batch in flight went.
    pub fn finished(&mut self, now: Instant, outcome: &Outcome) {
        let Some(range) = self.in_flight.take() else {
            return;
        };
        match outcome {
            Outcome::Acknowledged | Outcome::Poisoned { .. } => {
                self.acked = *range.end();
                self.failures = 0;
                self.retry_at = None;
                self.retry = None;
                // What is left has waited at least as long as what just went: it goes next.
                self.waiting_since = (self.available > self.acked)
                    .then(|| now.checked_sub(self.limits.age).unwrap_or(now));
            }
            Outcome::Retry { after, .. } => {
                self.failures = self.failures.saturating_add(1);
                let wait = self.backoff_delay().max(after.unwrap_or_default());
                self.retry_at = Some(now + wait);
                self.retry = Some(range);
            }
        }
    }

    /// When [`SinkCore::poll`] may next have something, if it knows.
    pub fn next_wakeup(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            return None;
        }
        self.retry_at
            .or_else(|| self.waiting_since.map(|since| since + self.limits.age))
    }

    /// Exponential in the failures in a row, capped, with "equal jitter": half fixed, half
    /// random, so gateways that lost the same sink do not all come back at once.
    fn backoff_delay(&mut self) -> Duration {
        let exponent = self.failures.saturating_sub(1).min(20);
        let full = self
            .backoff
            .first
            .saturating_mul(1 << exponent)
            .min(self.backoff.max);
        full / 2 + full.mul_f64(self.rng.gen::<f64>() / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core(acked: u64) -> SinkCore {
        SinkCore::new(
            acked,
            BatchLimits {
                records: 100,
                age: Duration::from_secs(1),
            },
            Backoff::default(),
            7,
        )
    }

    #[test]
    fn a_batch_leaves_when_full_or_when_its_oldest_record_is_old_enough() {
        let t0 = Instant::now();
        let mut c = core(0);
        assert_eq!(c.poll(t0), None, "nothing yet");
        c.set_available(t0, 10);
        assert_eq!(c.poll(t0), None, "10 records wait for their second");
        assert_eq!(c.next_wakeup(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(c.poll(t0 + Duration::from_secs(1)), Some(1..=10));
        let mut c = core(0);
        c.set_available(t0, 250);
        assert_eq!(c.poll(t0), Some(1..=100), "full: at once");
    }

    #[test]
    fn the_cursor_moves_only_on_acknowledgement_and_the_rest_follows_at_once() {
        let t0 = Instant::now();
        let mut c = core(40);
        c.set_available(t0, 250);
        let batch = c.poll(t0).unwrap();
        assert_eq!(batch, 41..=140);
        c.sending(41..=120);
        assert_eq!(c.poll(t0), None, "one batch at a time");
        c.finished(t0, &Outcome::Acknowledged);
        assert_eq!(c.acked(), 120);
        assert_eq!(c.poll(t0), Some(121..=220));
    }

    #[test]
    fn failures_back_off_exponentially_with_jitter_and_honour_retry_after() {
        let t0 = Instant::now();
        let mut c = core(0);
        c.set_available(t0, 500);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..12 {
            let batch = c.poll(now).expect("due");
            assert_eq!(batch, 1..=100, "the same records again");
            c.sending(batch);
            c.finished(
                now,
                &Outcome::Retry {
                    after: None,
                    why: "503".into(),
                },
            );
            let at = c.next_wakeup().unwrap();
            assert_eq!(c.poll(at - Duration::from_millis(1)), None, "not before");
            waits.push(at - now);
            now = at;
        }
        assert_eq!(c.acked(), 0);
        c.set_available(now, 900);
        assert_eq!(
            c.poll(now),
            Some(1..=100),
            "a retry is the batch that failed, as it was"
        );
        for (i, wait) in waits.iter().enumerate() {
            let full = Duration::from_secs(1 << i.min(20)).min(Duration::from_secs(300));
            assert!(
                *wait >= full / 2 && *wait <= full,
                "wait {i}: {wait:?} of {full:?}"
            );
        }
        assert!(
            waits[11] >= Duration::from_secs(150),
            "capped at 5 minutes: {waits:?}"
        );

        let batch = c.poll(now).unwrap();
        c.sending(batch);
        let after = Some(Duration::from_secs(3600));
        c.finished(
            now,
            &Outcome::Retry {
                after,
                why: "429".into(),
            },
        );
        assert_eq!(c.next_wakeup(), Some(now + Duration::from_secs(3600)));
        let later = now + Duration::from_secs(3600);
        let batch = c.poll(later).unwrap();
        c.sending(batch);
        c.finished(later, &Outcome::Acknowledged);
        assert_eq!((c.acked(), c.failures()), (100, 0));
        assert_eq!(c.poll(later), Some(101..=200), "back to full speed");
    }

    #[test]
    fn a_poisoned_batch_is_passed_so_the_rest_is_not_blocked() {
        let t0 = Instant::now();
        let mut c = core(0);
        c.set_available(t0, 150);
        let batch = c.poll(t0).unwrap();
        c.sending(batch);
        c.finished(t0, &Outcome::Poisoned { why: "400".into() });
        assert_eq!(c.acked(), 100);
        assert_eq!(c.poll(t0), Some(101..=150));
    }
}
