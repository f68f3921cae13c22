//! Seeded packet-loss traces (true = lost), the same for every configuration.

/// splitmix64: small, seedable, good enough for loss patterns.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Condition {
    None,
    /// Independent loss with this probability.
    Random(f64),
    /// Gilbert–Elliott: every packet lost in Bad, none in Good; mean loss `loss`, mean burst
    /// `burst` packets (P(Bad→Good) = 1/burst, P(Good→Bad) = loss/(1-loss)/burst).
    GilbertElliott { loss: f64, burst: f64 },
    /// One burst of `len` packets every `period` packets, phase drawn from the seed.
    PeriodicBurst { len: usize, period: usize },
}

impl Condition {
    pub fn name(&self) -> String {
        match *self {
            Condition::None => "none".into(),
            Condition::Random(p) => format!("rand{}", (p * 100.0).round()),
            Condition::GilbertElliott { loss, burst } => {
                format!("ge{}b{}", (loss * 100.0).round(), burst)
            }
            Condition::PeriodicBurst { len, period } => {
                format!("burst{}per{}s", len, period as f64 / 50.0)
            }
        }
    }
}

pub const CONDITIONS: [Condition; 5] = [
    Condition::None,
    Condition::Random(0.03),
    Condition::Random(0.10),
    Condition::GilbertElliott { loss: 0.05, burst: 3.0 },
    Condition::PeriodicBurst { len: 12, period: 150 },
];

pub const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

/// Packets 0..LEAD are never lost: the call starts before the measured speech.
const LEAD: usize = 5;

pub fn trace(cond: Condition, seed: u64, n: usize) -> Vec<bool> {
    // Mix the condition into the seed so conditions do not share draws.
    let salt = cond.name().bytes().fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(b as u64));
    let mut rng = Rng::new(seed.wrapping_mul(0x1000_0000_01B3) ^ salt);
    let mut lost = vec![false; n];
    match cond {
        Condition::None => {}
        Condition::Random(p) => {
            for l in lost.iter_mut().skip(LEAD) {
                *l = rng.uniform() < p;
            }
        }
        Condition::GilbertElliott { loss, burst } => {
            let r = 1.0 / burst;
            let p = loss / (1.0 - loss) * r;
            let mut bad = false;
            for l in lost.iter_mut().skip(LEAD) {
                bad = if bad { rng.uniform() >= r } else { rng.uniform() < p };
                *l = bad;
            }
        }
        Condition::PeriodicBurst { len, period } => {
            let phase = (rng.next_u64() % period as u64) as usize;
            let mut start = LEAD + phase;
            while start < n {
                for l in lost.iter_mut().skip(start).take(len) {
                    *l = true;
                }
                start += period;
            }
        }
    }
    lost
}

/// Loss fraction, mean burst length, longest burst.
pub fn describe(lost: &[bool]) -> (f64, f64, usize) {
    let total = lost.iter().filter(|&&l| l).count();
    let mut bursts = 0;
    let mut longest = 0;
    let mut run = 0;
    for &l in lost.iter().chain(std::iter::once(&false)) {
        if l {
            run += 1;
        } else if run > 0 {
            bursts += 1;
            longest = longest.max(run);
            run = 0;
        }
    }
    let mean = if bursts > 0 { total as f64 / bursts as f64 } else { 0.0 };
    (total as f64 / lost.len() as f64, mean, longest)
}
