//! One direction of the relay as a sans-IO core: datagrams go in with the time they arrived,
//! and come out when their scheduled time has come. No sockets, no clock, so the tests below
//! check every impairment in virtual time and the relay's threads only move bytes and time.
//!
//! Decisions depend only on the seed and the order of arrivals: each datagram takes the same
//! six random draws whatever the settings. Delivery times depend on arrival times too (delay is
//! added to them, the bottleneck queues by them).

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::impairment::Impairment;
use super::DirectionStats;

/// Which client flow a datagram belongs to; reordering and reorder statistics are per flow.
pub(crate) type FlowId = usize;

/// A held-back datagram waits this long at most for the next datagram of its flow. Long enough
/// to bridge the gap between voice packets (20–60 ms) and QUIC's paced sends; short enough that
/// a lone handshake packet is late rather than lost.
pub const REORDER_HOLD_LIMIT: Duration = Duration::from_millis(100);

/// How much traffic a rate-limited direction queues before it drops the tail, as a router
/// would. Without a bound a sender above the limit would see its delay grow for the whole run.
pub const RATE_LIMIT_QUEUE: Duration = Duration::from_millis(250);

/// IPv4 + UDP header bytes counted against the rate limit for every datagram.
const HEADER_BYTES: u64 = 28;

/// A datagram whose time has come.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Transmit {
    pub flow: FlowId,
    pub payload: Vec<u8>,
}

pub(crate) struct Link {
    impairment: Impairment,
    rng: ChaCha8Rng,
    in_burst: bool,
    /// When the rate-limited bottleneck has finished sending what it has queued.
    bottleneck_free_at: Option<Instant>,
    /// Latest delivery time scheduled so far (for `keep_order`).
    latest_delivery: Option<Instant>,
    next_arrival: u64,
    next_insertion: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    /// BTreeMap: holds expiring together are released in flow order, not hash order.
    held: BTreeMap<FlowId, Held>,
    /// Highest arrival number transmitted per flow, to count reordering as a receiver sees it.
    highest_sent: HashMap<FlowId, u64>,
    stats: DirectionStats,
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    /// Insertion order: breaks ties so that equal times leave in the order they were scheduled.
    insertion: u64,
    arrival: u64,
    duplicate: bool,
    flow: FlowId,
    payload: Vec<u8>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.insertion).cmp(&(other.at, other.insertion))
    }
}

/// A datagram chosen for reordering, with the times it would have had.
struct Held {
    deadline: Instant,
    arrival: u64,
    payload: Vec<u8>,
    at: Instant,
    duplicate_at: Option<Instant>,
}

/// The random numbers one datagram consumes, always all of them, in this order.
struct Draws {
    burst_flip: f64,
    loss: f64,
    reorder: f64,
    duplicate: f64,
    jitter: f64,
    duplicate_jitter: f64,
}

impl Draws {
    fn take(rng: &mut ChaCha8Rng) -> Self {
        Self {
            burst_flip: rng.gen(),
            loss: rng.gen(),
            reorder: rng.gen(),
            duplicate: rng.gen(),
            jitter: rng.gen(),
            duplicate_jitter: rng.gen(),
        }
    }
}

/// True with probability `pct` percent for a uniform `draw` in [0, 1).
fn happens(draw: f64, pct: f64) -> bool {
    draw < pct / 100.0
}

impl Link {
    /// `stream` separates the directions: the same seed gives each its own random sequence.
    pub fn new(impairment: Impairment, seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Self {
            impairment,
            rng,
            in_burst: false,
            bottleneck_free_at: None,
            latest_delivery: None,
            next_arrival: 0,
            next_insertion: 0,
            queue: BinaryHeap::new(),
            held: BTreeMap::new(),
            highest_sent: HashMap::new(),
            stats: DirectionStats::default(),
        }
    }

    /// Takes effect for the next arrival; datagrams already scheduled keep their times.
    pub fn set_impairment(&mut self, impairment: Impairment) {
        if impairment.burst_loss.is_none() {
            self.in_burst = false;
        }
        self.impairment = impairment;
    }

    pub fn stats(&self) -> DirectionStats {
        self.stats
    }

    pub fn record_send_error(&mut self) {
        self.stats.send_errors += 1;
    }

    pub fn handle_datagram(&mut self, now: Instant, flow: FlowId, payload: Vec<u8>) {
        self.stats.received += 1;
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        let draws = Draws::take(&mut self.rng);

        if self.is_lost(&draws) {
            self.stats.dropped += 1;
            return;
        }
        let Some(departure) = self.through_bottleneck(now, payload.len()) else {
            self.stats.queue_overflow += 1;
            return;
        };
        let at = self.delivery_time(departure, draws.jitter);
        let duplicate_at = happens(draws.duplicate, self.impairment.duplicate_pct).then(|| {
            self.stats.duplicated += 1;
            self.delivery_time(departure, draws.duplicate_jitter)
        });

        let held = self.held.remove(&flow);
        if held.is_none() && happens(draws.reorder, self.impairment.reorder_pct) {
            let hold = Held {
                deadline: now + REORDER_HOLD_LIMIT,
                arrival,
                payload,
                at,
                duplicate_at,
            };
            self.held.insert(flow, hold);
            return;
        }
        if let Some(copy_at) = duplicate_at {
            self.schedule(copy_at, arrival, true, flow, payload.clone());
        }
        self.schedule(at, arrival, false, flow, payload);
        if let Some(held) = held {
            // Scheduled after this datagram, so at an equal time it still leaves second.
            self.release(held, at, flow);
        }
    }

    /// The earliest time at which [`Link::handle_timeout`] or [`Link::poll_transmit`] has
    /// something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let next_transmit = self.queue.peek().map(|Reverse(first)| first.at);
        let next_hold_expiry = self.held.values().map(|held| held.deadline).min();
        [next_transmit, next_hold_expiry]
            .into_iter()
            .flatten()
            .min()
    }

    /// Releases held datagrams whose next datagram never came.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<FlowId> = self
            .held
            .iter()
            .filter(|(_, held)| held.deadline <= now)
            .map(|(flow, _)| *flow)
            .collect();
        for flow in expired {
            if let Some(held) = self.held.remove(&flow) {
                self.release(held, now, flow);
            }
        }
    }

    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.queue.peek()?.0.at > now {
            return None;
        }
        let Reverse(next) = self.queue.pop()?;
        self.stats.forwarded += 1;
        let highest = self.highest_sent.entry(next.flow).or_insert(next.arrival);
        if next.arrival < *highest {
            if !next.duplicate {
                self.stats.reordered += 1;
            }
        } else {
            *highest = next.arrival;
        }
        Some(Transmit {
            flow: next.flow,
            payload: next.payload,
        })
    }

    fn is_lost(&mut self, draws: &Draws) -> bool {
        if let Some(burst) = self.impairment.burst_loss {
            let flip_pct = if self.in_burst {
                burst.exit_pct
            } else {
                burst.enter_pct
            };
            if happens(draws.burst_flip, flip_pct) {
                self.in_burst = !self.in_burst;
            }
            if self.in_burst {
                return true;
            }
        }
        happens(draws.loss, self.impairment.loss_pct)
    }

    /// When the datagram has crossed the bottleneck; `None` if its queue is full.
    fn through_bottleneck(&mut self, now: Instant, payload_len: usize) -> Option<Instant> {
        let Some(bits_per_second) = self.impairment.rate_limit_bps else {
            return Some(now);
        };
        let start = self.bottleneck_free_at.map_or(now, |free| free.max(now));
        if start.saturating_duration_since(now) > RATE_LIMIT_QUEUE {
            return None;
        }
        let bits = (payload_len as u64 + HEADER_BYTES) * 8;
        let departure = start + Duration::from_secs_f64(bits as f64 / bits_per_second as f64);
        self.bottleneck_free_at = Some(departure);
        Some(departure)
    }

    fn delivery_time(&mut self, departure: Instant, jitter_draw: f64) -> Instant {
        let delay = self.impairment.delay.as_secs_f64();
        let jitter = self.impairment.jitter.as_secs_f64() * (2.0 * jitter_draw - 1.0);
        let at = departure + Duration::from_secs_f64((delay + jitter).max(0.0));
        if self.impairment.keep_order {
            self.latest_delivery.map_or(at, |latest| latest.max(at))
        } else {
            at
        }
    }

    fn release(&mut self, held: Held, not_before: Instant, flow: FlowId) {
        if let Some(copy_at) = held.duplicate_at {
            let copy = held.payload.clone();
            self.schedule(copy_at.max(not_before), held.arrival, true, flow, copy);
        }
        let at = held.at.max(not_before);
        self.schedule(at, held.arrival, false, flow, held.payload);
    }

    fn schedule(
        &mut self,
        at: Instant,
        arrival: u64,
        duplicate: bool,
        flow: FlowId,
        payload: Vec<u8>,
    ) {
        self.latest_delivery = Some(self.latest_delivery.map_or(at, |latest| latest.max(at)));
        let insertion = self.next_insertion;
        self.next_insertion += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            insertion,
            arrival,
            duplicate,
            flow,
            payload,
        }));
    }
}

#[cfg(test)]
mod tests;
