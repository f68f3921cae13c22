//! What a login costs the gateway, bounded. An Argon2id verification takes 19 MiB and tens of
//! milliseconds of a core; a shift start (hundreds of agents logging in at once) or someone
//! guessing credentials must not take the gateway's memory or its cores from the calls.
//!
//! - [`Verifier`]: at most a few verifications run at once; the rest wait their turn in arrival
//!   order (tokio's semaphore is fair), so everyone gets in, a little later.
//! - [`FailedLogins`] (sans-IO, time passed in): a source address that keeps failing is refused
//!   without a verification for a while. Per address *and* agent, so one agent mistyping behind
//!   an office NAT does not lock out its colleagues; per address alone only at a much higher
//!   count, against someone trying many agent ids.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::agent::protocol::RefusalReason;

/// Runs credential verifications on the blocking pool, a bounded number at a time.
#[derive(Clone)]
pub struct Verifier {
    permits: Arc<Semaphore>,
}

impl Verifier {
    /// `concurrent`: verifications at once (at least one).
    pub fn new(concurrent: usize) -> Self {
        Verifier {
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
        }
    }

    /// One per core: logins then take the cores' worth of time they need and no more memory.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Whether `credential` matches the stored `hash`, once a turn comes.
    pub async fn verify(&self, credential: String, hash: String) -> bool {
        self.in_turn(move || super::credential::verify(&credential, &hash))
            .await
    }

    /// Runs `check` on the blocking pool once a turn comes.
    async fn in_turn(&self, check: impl FnOnce() -> bool + Send + 'static) -> bool {
        // The semaphore is never closed: acquiring fails only if it were.
        let Ok(_turn) = self.permits.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(check).await.unwrap_or(false)
    }
}

/// Failures of one agent id from one address before that pair must wait.
pub const MAX_FAILURES_PER_AGENT: u32 = 5;
/// Failures from one address, whatever the agent ids, before the address must wait.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 50;
/// How long failures are remembered, and how long a blocked pair or address waits after its
/// last failure.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; beyond it the stalest are forgotten.
const MAX_TRACKED: usize = 16_384;

#[derive(Debug, Default)]
pub struct FailedLogins {
    by_address: HashMap<IpAddr, Failures>,
    by_agent: HashMap<(IpAddr, String), Failures>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl FailedLogins {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a login of `agent` from `from` may be verified now.
    pub fn allowed(&self, now: Instant, from: IpAddr, agent: &str) -> bool {
        let blocked = |f: Option<&Failures>, max: u32| {
            f.is_some_and(|f| {
                f.count >= max && now.saturating_duration_since(f.last) < FAILURE_WINDOW
            })
        };
        !blocked(self.by_address.get(&from), MAX_FAILURES_PER_ADDRESS)
            && !blocked(
                self.by_agent.get(&(from, agent.to_string())),
                MAX_FAILURES_PER_AGENT,
            )
    }

    /// How a checked login of `agent` from `from` ended: a success forgets the pair's failures,
    /// an unknown agent or a wrong credential counts as one; other refusals (revoked, already
    /// logged in) are not guesses and count for nothing.
    pub fn record(
        &mut self,
        now: Instant,
        from: IpAddr,
        agent: &str,
        refused: Option<RefusalReason>,
    ) {
        match refused {
            None => self.succeeded(from, agent),
            Some(RefusalReason::UnknownAgent | RefusalReason::BadCredential) => {
                self.failed(now, from, agent);
            }
            Some(_) => {}
        }
    }

    /// A login of `agent` from `from` failed (unknown agent, wrong credential).
    pub fn failed(&mut self, now: Instant, from: IpAddr, agent: &str) {
        if self.by_address.len() >= MAX_TRACKED || self.by_agent.len() >= MAX_TRACKED {
            self.forget_before(now);
        }
        count(self.by_address.entry(from).or_insert(fresh(now)), now);
        count(
            self.by_agent
                .entry((from, agent.to_string()))
                .or_insert(fresh(now)),
            now,
        );
    }

    /// A login of `agent` from `from` succeeded: its own failures are forgotten.
    pub fn succeeded(&mut self, from: IpAddr, agent: &str) {
        self.by_agent.remove(&(from, agent.to_string()));
    }

    /// How many addresses and address-agent pairs are remembered.
    pub fn tracked(&self) -> (usize, usize) {
        (self.by_address.len(), self.by_agent.len())
    }

    fn forget_before(&mut self, now: Instant) {
        let recent = |f: &Failures| now.saturating_duration_since(f.last) < FAILURE_WINDOW;
        self.by_address.retain(|_, f| recent(f));
        self.by_agent.retain(|_, f| recent(f));
        if self.by_address.len() >= MAX_TRACKED || self.by_agent.len() >= MAX_TRACKED {
            // Failures from this many addresses within a minute: a distributed guess. Starting
            // the count over lets some of them try again sooner; the verifier's bound still
            // caps what their attempts cost.
            self.by_address.clear();
            self.by_agent.clear();
        }
    }
}

fn fresh(now: Instant) -> Failures {
    Failures {
        count: 0,
        last: now,
    }
}

fn count(f: &mut Failures, now: Instant) {
    // Failures older than the window no longer count.
    if now.saturating_duration_since(f.last) >= FAILURE_WINDOW {
        f.count = 0;
    }
    f.count += 1;
    f.last = now;
}

#[cfg(test)]
mod tests;
