//! What a network path does to the datagrams crossing it in one direction, and the checks that
//! keep a test from asking for something the relay cannot do.

use std::time::Duration;

use thiserror::Error;

/// The longest `delay` or `jitter` accepted. Far beyond any path worth emulating, and it keeps
/// `Instant + delay` from overflowing on a mistyped value.
pub const MAX_DELAY: Duration = Duration::from_secs(600);

/// Impairment of one direction. `Impairment::default()` is a perfect path (no delay, no loss).
///
/// Percentages are 0 to 100 and apply to each datagram independently, except in a burst (see
/// [`BurstLoss`]). Every datagram consumes the same random draws whatever the settings, so with
/// one seed the loss decisions stay the same when only the delay changes, and vice versa.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Added to every datagram's transit time.
    pub delay: Duration,
    /// Each datagram's delay is `delay` plus a value drawn uniformly from `[-jitter, +jitter]`,
    /// clamped at zero. Uniform rather than normal so that a test can rely on the bounds: no
    /// datagram ever arrives earlier than `delay - jitter` or later than `delay + jitter` (plus
    /// scheduling latency). The mean is `delay` unless `jitter > delay` cuts off the low end.
    pub jitter: Duration,
    /// `false` (netem's behaviour): delays are drawn independently, so jitter larger than the
    /// spacing between datagrams reorders them. `true`: a datagram never leaves before one that
    /// arrived earlier in this direction, as behind a FIFO router queue; a datagram drawn early
    /// waits for its predecessor, so the mean delay grows above `delay`. `reorder_pct` still
    /// reorders either way.
    pub keep_order: bool,
    /// Independent random loss.
    pub loss_pct: f64,
    /// Bursty loss on top of `loss_pct`; `None` for none.
    pub burst_loss: Option<BurstLoss>,
    /// Chance that a datagram is held back and sent right after the next datagram of the same
    /// flow (or after [`REORDER_HOLD_LIMIT`](super::REORDER_HOLD_LIMIT) if none comes).
    pub reorder_pct: f64,
    /// Chance that a datagram is sent twice. The copy gets its own jitter draw.
    pub duplicate_pct: f64,
    /// A bottleneck: datagrams leave no faster than this many bits per second (counting 28
    /// bytes of IPv4 and UDP headers each), queueing for at most
    /// [`RATE_LIMIT_QUEUE`](super::RATE_LIMIT_QUEUE) and then dropping, before `delay` and
    /// `jitter` apply.
    pub rate_limit_bps: Option<u64>,
}

/// A simple Gilbert-Elliott model: the path is either good or in a burst. In a burst every
/// datagram is lost; outside it, `loss_pct` applies. Before each datagram's fate is decided the
/// state may flip: good → burst with `enter_pct`, burst → good with `exit_pct`.
///
/// Mean burst length is `100 / exit_pct` datagrams; the long-run share of datagrams lost to
/// bursts is `enter_pct / (enter_pct + exit_pct)`. Percentages like the rest of [`Impairment`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurstLoss {
    pub enter_pct: f64,
    pub exit_pct: f64,
}

#[derive(Clone, Debug, Error, PartialEq)]
pub enum InvalidImpairment {
    #[error("{field} is {value}, expected a percentage from 0 to 100")]
    Percentage { field: &'static str, value: f64 },
    #[error("rate_limit_bps is 0: nothing would get through; use loss_pct = 100 for that")]
    ZeroRate,
    #[error("{field} is {value:?}, more than the {MAX_DELAY:?} the relay accepts")]
    TooLong {
        field: &'static str,
        value: Duration,
    },
}

impl Impairment {
    /// Rejects values the relay cannot apply; called by every entry point that accepts one.
    pub fn validate(&self) -> Result<(), InvalidImpairment> {
        check_percentage("loss_pct", self.loss_pct)?;
        check_percentage("reorder_pct", self.reorder_pct)?;
        check_percentage("duplicate_pct", self.duplicate_pct)?;
        if let Some(burst) = self.burst_loss {
            check_percentage("burst_loss.enter_pct", burst.enter_pct)?;
            check_percentage("burst_loss.exit_pct", burst.exit_pct)?;
        }
        if self.rate_limit_bps == Some(0) {
            return Err(InvalidImpairment::ZeroRate);
        }
        check_duration("delay", self.delay)?;
        check_duration("jitter", self.jitter)?;
        Ok(())
    }
}

fn check_percentage(field: &'static str, value: f64) -> Result<(), InvalidImpairment> {
    if (0.0..=100.0).contains(&value) {
        Ok(())
    } else {
        // NaN lands here too: `contains` is false for it.
        Err(InvalidImpairment::Percentage { field, value })
    }
}

fn check_duration(field: &'static str, value: Duration) -> Result<(), InvalidImpairment> {
    if value <= MAX_DELAY {
        Ok(())
    } else {
        Err(InvalidImpairment::TooLong { field, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_perfect() {
        let perfect = Impairment::default();
        assert_eq!(perfect.validate(), Ok(()));
        assert_eq!(perfect.delay, Duration::ZERO);
        assert_eq!(perfect.loss_pct, 0.0);
    }

    #[test]
    fn percentages_outside_0_to_100_are_rejected_by_name() {
        let too_much = Impairment {
            reorder_pct: 101.0,
            ..Impairment::default()
        };
        assert_eq!(
            too_much.validate(),
            Err(InvalidImpairment::Percentage {
                field: "reorder_pct",
                value: 101.0
            })
        );
        let not_a_number = Impairment {
            burst_loss: Some(BurstLoss {
                enter_pct: 1.0,
                exit_pct: f64::NAN,
            }),
            ..Impairment::default()
        };
        let message = not_a_number.validate().unwrap_err().to_string();
        assert_eq!(
            message,
            "burst_loss.exit_pct is NaN, expected a percentage from 0 to 100"
        );
        let negative = Impairment {
            loss_pct: -1.0,
            ..Impairment::default()
        };
        assert!(negative.validate().is_err());
    }

    #[test]
    fn zero_rate_and_huge_delays_are_rejected() {
        let zero_rate = Impairment {
            rate_limit_bps: Some(0),
            ..Impairment::default()
        };
        assert_eq!(zero_rate.validate(), Err(InvalidImpairment::ZeroRate));
        let huge = Impairment {
            jitter: MAX_DELAY + Duration::from_secs(1),
            ..Impairment::default()
        };
        assert!(matches!(
            huge.validate(),
            Err(InvalidImpairment::TooLong {
                field: "jitter",
                ..
            })
        ));
    }
}
