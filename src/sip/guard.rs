//! Scanner defence as a sans-IO core: addresses no trunk allows get 403 for a while, and once
//! they have sent too many requests, silence. A scanner then learns nothing more, and costs us
//! nothing more than a map lookup.
//!
//! Carriers' addresses are never banned. UDP sources can be forged, so a ban on a carrier's
//! address would let anyone cut the branch off by spoofing it.
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most addresses tracked at once (counting or banned): a scan from a whole network cannot
/// grow the maps without bound. Beyond it, new strangers still get 403, uncounted.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    /// Requests from a stranger within `window` that get it banned.
    pub ban_after: u32,
    pub window: Duration,
    pub ban_for: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            ban_after: 20,
            window: Duration::from_secs(60),
            ban_for: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it (a stranger's request is answered 403).
    Pass,
    /// Drop it without an answer.
    Silence,
}

#[derive(Debug, Clone, Copy)]
struct Count {
    since: Instant,
    requests: u32,
}

#[derive(Debug, Clone, Copy)]
struct Ban {
    until: Instant,
    dropped: u64,
}

/// A ban as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BanView {
    pub address: IpAddr,
    pub remaining_s: u64,
    /// Requests dropped since the ban began.
    pub dropped: u64,
}

pub struct Guard {
    config: GuardConfig,
    counts: HashMap<IpAddr, Count>,
    bans: HashMap<IpAddr, Ban>,
    /// Requests dropped because their source was banned, since start.
    pub silenced: u64,
    /// Bans imposed since start.
    pub banned: u64,
}

impl Guard {
    pub fn new(config: GuardConfig) -> Self {
        Guard {
            config,
            counts: HashMap::new(),
            bans: HashMap::new(),
            silenced: 0,
            banned: 0,
        }
    }

    /// New limits (a reload); counts and bans in force stay.
    pub fn set_config(&mut self, config: GuardConfig) {
        self.config = config;
    }

    /// A request arrived from `ip`; `trusted` when a trunk allows the address.
    pub fn on_request(&mut self, now: Instant, ip: IpAddr, trusted: bool) -> Verdict {
        if trusted {
            return Verdict::Pass;
        }
        if let Some(ban) = self.bans.get_mut(&ip) {
            if now < ban.until {
                ban.dropped += 1;
                self.silenced += 1;
                return Verdict::Silence;
            }
            self.bans.remove(&ip);
        }
        if !self.counts.contains_key(&ip) && self.counts.len() >= MAX_TRACKED {
            self.forget_old(now);
            if self.counts.len() >= MAX_TRACKED {
                return Verdict::Pass;
            }
        }
        let window = self.config.window;
        let count = self.counts.entry(ip).or_insert(Count {
            since: now,
            requests: 0,
        });
        if now.duration_since(count.since) >= window {
            *count = Count {
                since: now,
                requests: 0,
            };
        }
        count.requests += 1;
        if count.requests <= self.config.ban_after {
            return Verdict::Pass;
        }
        self.counts.remove(&ip);
        if self.bans.len() >= MAX_TRACKED {
            self.bans.retain(|_, ban| now < ban.until);
        }
        if self.bans.len() < MAX_TRACKED {
            self.bans.insert(
                ip,
                Ban {
                    until: now + self.config.ban_for,
                    dropped: 1,
                },
            );
            self.banned += 1;
            self.silenced += 1;
            tracing::warn!(
                address = %ip,
                requests = self.config.ban_after + 1,
                window_s = window.as_secs(),
                ban_s = self.config.ban_for.as_secs(),
                "banned: too many requests from an address no trunk allows"
            );
        }
        Verdict::Silence
    }

    /// Bans in force, longest remaining first.
    pub fn bans(&self, now: Instant) -> Vec<BanView> {
        let mut out: Vec<BanView> = self
            .bans
            .iter()
            .filter(|(_, ban)| now < ban.until)
            .map(|(ip, ban)| BanView {
                address: *ip,
                remaining_s: ban.until.duration_since(now).as_secs(),
                dropped: ban.dropped,
            })
            .collect();
        out.sort_by(|a, b| {
            b.remaining_s
                .cmp(&a.remaining_s)
                .then(a.address.cmp(&b.address))
        });
        out
    }

    fn forget_old(&mut self, now: Instant) {
        let window = self.config.window;
        self.counts
            .retain(|_, count| now.duration_since(count.since) < window);
        self.bans.retain(|_, ban| now < ban.until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCANNER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9));
    const CARRIER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn guard() -> Guard {
        Guard::new(GuardConfig {
            ban_after: 3,
            window: Duration::from_secs(60),
            ban_for: Duration::from_secs(600),
        })
    }

    #[test]
    fn a_stranger_is_answered_then_silenced_until_its_ban_ends() {
        let mut g = guard();
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(g.on_request(t, SCANNER, false), Verdict::Pass);
        }
        assert_eq!(g.on_request(t, SCANNER, false), Verdict::Silence);
        assert_eq!(
            g.on_request(t + Duration::from_secs(599), SCANNER, false),
            Verdict::Silence
        );
        let bans = g.bans(t + Duration::from_secs(10));
        assert_eq!(bans.len(), 1);
        assert_eq!(
            (bans[0].address, bans[0].remaining_s, bans[0].dropped),
            (SCANNER, 590, 2)
        );
        assert_eq!((g.banned, g.silenced), (1, 2));
        let after = t + Duration::from_secs(600);
        assert_eq!(
            g.on_request(after, SCANNER, false),
            Verdict::Pass,
            "ban over"
        );
        assert!(g.bans(after).is_empty());
    }

    #[test]
    fn a_slow_stranger_whose_window_passes_is_not_banned() {
        let mut g = guard();
        let t = Instant::now();
        for minute in 0..10 {
            let now = t + Duration::from_secs(60 * minute);
            for _ in 0..3 {
                assert_eq!(g.on_request(now, SCANNER, false), Verdict::Pass);
            }
        }
    }

    #[test]
    fn carriers_are_never_banned() {
        let mut g = guard();
        let t = Instant::now();
        for _ in 0..1000 {
            assert_eq!(g.on_request(t, CARRIER, true), Verdict::Pass);
        }
        assert_eq!(g.banned, 0);
    }

    #[test]
    fn a_scan_from_a_whole_network_stays_within_bounds() {
        let mut g = guard();
        let t = Instant::now();
        for n in 0..(MAX_TRACKED as u32 + 10) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            g.on_request(t, ip, false);
        }
        assert!(g.counts.len() <= MAX_TRACKED);
    }
}
