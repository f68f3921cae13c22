//! A listening-quality estimate per receive path: ITU-T G.107's E-model, fed with what the path
//! really saw — its codec chain, the frames it lost after FEC and how bunched those losses were,
//! and the delay its jitter buffer added (sans-IO, pure arithmetic).
//!
//! The E-model is a planning tool; what it gives here is a live figure per call that tracks what
//! a listener would hear, for the journal and the metrics. Its inputs:
//! - **R0 − Is = 93.2**, G.107's default basic signal-to-noise and simultaneous impairments.
//! - **Id**, delay, by the usual closed form of G.107's curve for default echo settings
//!   (0.024·d + 0.11·(d − 177.3) beyond 177.3 ms of one-way delay d).
//! - **Ie-eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)** (G.107 7.2.3), with Ppl the
//!   percentage of frames concealed for loss and BurstR how much longer the loss runs were than
//!   random loss of the same rate would give.
//! - **Ie and Bpl** of the codec chain: G.711 with concealment is G.113's 0 and 25.1; the agent
//!   link (G.711 ↔ Opus at 8 kHz, 40 kbit/s, FEC) is not in G.113 and carries values calibrated
//!   against PESQ-NB on the project's impairment conditions (docs/quality.md).

use std::time::Duration;

/// G.107's default R0 − Is.
const BASE_R: f64 = 93.2;

/// A codec chain's equipment impairment and packet-loss robustness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    pub ie: f64,
    pub bpl: f64,
}

impl CodecImpairment {
    /// G.711 with packet-loss concealment (G.113 Appendix I).
    pub const G711_PLC: Self = Self { ie: 0.0, bpl: 25.1 };
    /// The agent link: a G.711 call carried as 8 kHz Opus at 40 kbit/s with in-band FEC or
    /// RFC 2198 copies, decoded back to G.711. Calibrated against PESQ-NB (docs/quality.md): the
    /// least-squares fit over 100 one-way calls on the five impairment conditions. Since copies
    /// rebuild short bursts whole, what is still concealed comes in long runs, which cost more
    /// per frame than the scattered losses of the first fit (Bpl 38, before redundancy).
    pub const OPUS_AGENT_LINK: Self = Self {
        ie: 15.0,
        bpl: 11.0,
    };
}

/// Losses as a receiver played them: which frames it had to conceal for want of their packet
/// (not those FEC rebuilt), and how they bunched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossPattern {
    pub frames: u64,
    pub lost: u64,
    /// Runs of consecutive lost frames.
    pub bursts: u64,
    in_burst: bool,
}

impl LossPattern {
    /// A frame played from its packet (or rebuilt from FEC): `lost` false; concealed for a
    /// packet that never came: true. Silence and delay growth are not frames of the stream.
    pub fn frame(&mut self, lost: bool) {
        self.frames += 1;
        if lost {
            self.lost += 1;
            if !self.in_burst {
                self.bursts += 1;
            }
        }
        self.in_burst = lost;
    }

    /// Percentage of frames lost.
    pub fn loss_percent(&self) -> f64 {
        if self.frames == 0 {
            return 0.0;
        }
        100.0 * self.lost as f64 / self.frames as f64
    }

    /// G.107's BurstR: the mean loss run over the mean run random loss of this rate gives
    /// (1 / (1 − p)); 1 for random loss, more for bursts, never below 1 here.
    pub fn burst_ratio(&self) -> f64 {
        if self.bursts == 0 || self.frames == 0 {
            return 1.0;
        }
        let mean_run = self.lost as f64 / self.bursts as f64;
        let p = self.lost as f64 / self.frames as f64;
        (mean_run * (1.0 - p)).max(1.0)
    }

    /// Adds another stretch of the same path (e.g. the agent's next connection).
    pub fn merge(&mut self, other: &LossPattern) {
        self.frames += other.frames;
        self.lost += other.lost;
        self.bursts += other.bursts;
    }
}

/// The R factor of a path with this codec chain, loss and one-way delay.
pub fn r_factor(codec: CodecImpairment, loss: &LossPattern, one_way_delay: Duration) -> f64 {
    let ppl = loss.loss_percent();
    let ie_eff = codec.ie + (95.0 - codec.ie) * ppl / (ppl / loss.burst_ratio() + codec.bpl);
    BASE_R - delay_impairment(one_way_delay) - ie_eff
}

/// G.107's delay impairment for default echo settings, in its usual closed form.
fn delay_impairment(one_way: Duration) -> f64 {
    let d = one_way.as_secs_f64() * 1000.0;
    0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 }
}

/// G.107 Annex B: R to the estimated mean opinion score, 1 … 4.5.
pub fn mos(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

/// [`mos`] of [`r_factor`]: the estimate a call's quality line and histogram carry.
pub fn estimate(codec: CodecImpairment, loss: &LossPattern, one_way_delay: Duration) -> f64 {
    mos(r_factor(codec, loss, one_way_delay))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(lost: &[bool]) -> LossPattern {
        let mut p = LossPattern::default();
        for &l in lost {
            p.frame(l);
        }
        p
    }

    #[test]
    fn g107_reference_points() {
        // A clean G.711 path with little delay is G.107's default R of 93.2, MOS 4.41.
        let clean = LossPattern::default();
        let r = r_factor(CodecImpairment::G711_PLC, &clean, Duration::ZERO);
        assert!((r - 93.2).abs() < 1e-9);
        assert!((mos(r) - 4.41).abs() < 0.01, "{}", mos(r));
        // MOS at the edges of its range and at R = 50 (G.107 Figure B.1: 2.58).
        assert_eq!(mos(-5.0), 1.0);
        assert_eq!(mos(120.0), 4.5);
        assert!((mos(50.0) - 2.575).abs() < 0.01);
        // 400 ms one way costs about 34 of R.
        let far = r_factor(
            CodecImpairment::G711_PLC,
            &clean,
            Duration::from_millis(400),
        );
        assert!((93.2 - far - 34.1).abs() < 0.2, "{far}");
    }

    #[test]
    fn random_loss_follows_ie_eff() {
        // 2 % random loss on G.711 with PLC: Ie-eff = 95 · 2 / (2 + 25.1) = 7.0.
        let mut lost = vec![false; 1000];
        for i in (0..1000).step_by(50) {
            lost[i] = true;
        }
        let p = pattern(&lost);
        assert!((p.loss_percent() - 2.0).abs() < 1e-9);
        assert_eq!(p.burst_ratio(), 1.0);
        let r = r_factor(CodecImpairment::G711_PLC, &p, Duration::ZERO);
        assert!((93.2 - r - 7.01).abs() < 0.02, "{r}");
    }

    #[test]
    fn bursts_cost_more_than_the_same_loss_spread_out() {
        let spread: Vec<bool> = (0..1000).map(|i| i % 20 == 0).collect();
        let bunched: Vec<bool> = (0..1000).map(|i| i % 100 < 5).collect();
        let (spread, bunched) = (pattern(&spread), pattern(&bunched));
        assert_eq!(spread.lost, bunched.lost);
        assert_eq!(bunched.bursts, 10);
        assert!((bunched.burst_ratio() - 4.75).abs() < 1e-9);
        let codec = CodecImpairment::OPUS_AGENT_LINK;
        assert!(
            estimate(codec, &bunched, Duration::ZERO) < estimate(codec, &spread, Duration::ZERO)
        );
    }

    #[test]
    fn merged_patterns_add_up() {
        let mut a = pattern(&[false, true, true, false]);
        a.merge(&pattern(&[true, false]));
        assert_eq!((a.frames, a.lost, a.bursts), (6, 3, 2));
    }
}
