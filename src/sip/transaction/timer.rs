//! The clocks of RFC 3261 §17 (Table 4) and RFC 6026 §8.11, in one place so every machine reads
//! the same values and the UDP/reliable differences live in one table.
use std::time::{Duration, Instant};

use crate::sip::peer::Transport;

/// The three base intervals every transaction timer is derived from (RFC 3261 §17.1.1.1, §17.1.2.2,
/// Table 4). Carriers on slow paths sometimes ask for a larger T1; everything scales with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// Round-trip time estimate: the first retransmission interval and the unit of every
    /// transaction timeout (64·T1).
    pub t1: Duration,
    /// Cap on the retransmission interval of non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// How long a message may linger in the network: how long a finished transaction waits to
    /// absorb stragglers over UDP.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// RFC 3261 §17.1.1.2: Timer D must be at least 32 s over UDP, whatever T1 is.
const TIMER_D_FLOOR: Duration = Duration::from_secs(32);

/// A zero T1 would make retransmission timers fire at the instant they are armed, and a shell
/// driving us would spin; one millisecond is far below anything a real network needs.
const SMALLEST_T1: Duration = Duration::from_millis(1);

/// Caps that keep `now + 64·T1` far from overflowing `Instant` whatever a config file says; no
/// network needs more than a minute per round trip.
const LARGEST_T1: Duration = Duration::from_secs(60);
const LARGEST_T2_OR_T4: Duration = Duration::from_secs(600);

impl TimerConfig {
    /// Repairs values that would make the machines spin (T1 = 0), retransmit faster after
    /// capping than before (T2 < T1), or overflow the clock.
    pub(super) fn sanitised(self) -> Self {
        let t1 = self.t1.clamp(SMALLEST_T1, LARGEST_T1);
        TimerConfig {
            t1,
            t2: self.t2.clamp(t1, LARGEST_T2_OR_T4),
            t4: self.t4.min(LARGEST_T2_OR_T4),
        }
    }

    /// 64·T1: Timers B, F, H, J (UDP), L and M.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// How long `timer` runs when first armed on `transport`. `None` means the timer is never
    /// armed there (retransmission timers on reliable transports); `Some(ZERO)` means the state it
    /// guards is left at once (RFC 3261 Table 4 gives 0 s for D, I, J, K on reliable transports).
    pub fn duration(&self, timer: Timer, transport: Transport) -> Option<Duration> {
        let reliable = transport.is_reliable();
        match timer {
            Timer::A | Timer::E | Timer::G if reliable => None,
            Timer::A | Timer::E | Timer::G => Some(self.t1),
            Timer::B | Timer::F | Timer::H | Timer::L | Timer::M => {
                Some(self.transaction_timeout())
            }
            Timer::D | Timer::I | Timer::J | Timer::K if reliable => Some(Duration::ZERO),
            Timer::D => Some(TIMER_D_FLOOR.max(self.transaction_timeout())),
            Timer::I | Timer::K => Some(self.t4),
            Timer::J => Some(self.transaction_timeout()),
        }
    }
}

/// Every timer a transaction can arm, named as in RFC 3261 Table 4 and RFC 6026 §8.11 so a reader
/// can hold the code against the state diagrams. Timer C is missing on purpose: it belongs to
/// proxies, and trunkgate is a user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE client, Calling, UDP only: retransmit the INVITE. Starts at T1 and doubles after each
    /// firing without a cap, so a silent peer sees copies at 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s.
    A,
    /// INVITE client, Calling: no response at all after 64·T1, so report a timeout to the TU and
    /// terminate. Also re-armed in Proceeding when the TU sends a CANCEL, because RFC 3261 §9.1 lets
    /// the INVITE be abandoned if no final response follows the CANCEL within 64·T1.
    B,
    /// INVITE client, Completed: how long to keep re-sending the ACK for retransmitted 3xx–6xx
    /// finals; 32 s (or 64·T1 if larger) over UDP, 0 over reliable transports.
    D,
    /// Non-INVITE client, Trying/Proceeding, UDP only: retransmit the request. Starts at T1,
    /// doubles up to T2 in Trying, and runs at T2 once a provisional response has arrived.
    E,
    /// Non-INVITE client, Trying/Proceeding: no final response after 64·T1, so report a timeout to
    /// the TU and terminate.
    F,
    /// INVITE server, Completed, UDP only: retransmit the 3xx–6xx final until the ACK arrives.
    /// Starts at T1 and doubles up to T2.
    G,
    /// INVITE server, Completed: no ACK for the 3xx–6xx final after 64·T1, so report a timeout to
    /// the TU and terminate.
    H,
    /// INVITE server, Confirmed: how long to absorb ACK retransmissions; T4 over UDP, 0 over
    /// reliable transports.
    I,
    /// Non-INVITE server, Completed: how long to answer request retransmissions with the stored
    /// final; 64·T1 over UDP, 0 over reliable transports.
    J,
    /// Non-INVITE client, Completed: how long to absorb retransmitted finals; T4 over UDP, 0 over
    /// reliable transports.
    K,
    /// INVITE server, Accepted (RFC 6026): how long to absorb INVITE retransmissions and pass ACKs
    /// for the 2xx to the TU after the 2xx was sent; 64·T1.
    L,
    /// INVITE client, Accepted (RFC 6026): how long to keep accepting 2xx retransmissions and 2xx
    /// finals from other forks after the first 2xx; 64·T1.
    M,
}

/// The timers one transaction has running. No machine runs more than two at once, so a short list
/// beats a map.
#[derive(Debug, Default)]
pub(super) struct ArmedTimers {
    armed: Vec<(Timer, Instant)>,
}

impl ArmedTimers {
    /// Arms `timer` to fire at `at`, replacing any earlier arming of the same timer.
    pub(super) fn arm(&mut self, timer: Timer, at: Instant) {
        self.disarm(timer);
        self.armed.push((timer, at));
    }

    pub(super) fn disarm(&mut self, timer: Timer) {
        self.armed.retain(|(armed, _)| *armed != timer);
    }

    pub(super) fn disarm_all(&mut self) {
        self.armed.clear();
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.armed.iter().map(|(_, at)| *at).min()
    }

    /// Removes and returns the timer that is due soonest, if it is due at `now`. Machines call this
    /// in a loop so timers that are all overdue fire in the order the RFC expects (A before B).
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let (index, _) = self
            .armed
            .iter()
            .enumerate()
            .filter(|(_, (_, at))| *at <= now)
            .min_by_key(|(_, (_, at))| *at)?;
        Some(self.armed.swap_remove(index).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_defaults_give_the_table_4_values() {
        let config = TimerConfig::default();
        let udp = Transport::Udp;
        let tcp = Transport::Tcp;
        assert_eq!(
            config.duration(Timer::A, udp),
            Some(Duration::from_millis(500))
        );
        assert_eq!(config.duration(Timer::A, tcp), None);
        assert_eq!(config.duration(Timer::E, Transport::Tls), None);
        assert_eq!(
            config.duration(Timer::B, tcp),
            Some(Duration::from_secs(32))
        );
        assert_eq!(
            config.duration(Timer::D, udp),
            Some(Duration::from_secs(32))
        );
        assert_eq!(config.duration(Timer::D, tcp), Some(Duration::ZERO));
        assert_eq!(config.duration(Timer::I, udp), Some(Duration::from_secs(5)));
        assert_eq!(
            config.duration(Timer::J, udp),
            Some(Duration::from_secs(32))
        );
        assert_eq!(config.duration(Timer::J, tcp), Some(Duration::ZERO));
        assert_eq!(config.duration(Timer::K, tcp), Some(Duration::ZERO));
        assert_eq!(
            config.duration(Timer::L, tcp),
            Some(Duration::from_secs(32))
        );
        assert_eq!(
            config.duration(Timer::M, udp),
            Some(Duration::from_secs(32))
        );
    }

    #[test]
    fn timer_d_never_drops_below_32_s_but_grows_with_t1() {
        let small = TimerConfig {
            t1: Duration::from_millis(100),
            ..TimerConfig::default()
        };
        assert_eq!(
            small.duration(Timer::D, Transport::Udp),
            Some(Duration::from_secs(32))
        );
        let large = TimerConfig {
            t1: Duration::from_secs(1),
            ..TimerConfig::default()
        };
        assert_eq!(
            large.duration(Timer::D, Transport::Udp),
            Some(Duration::from_secs(64))
        );
    }

    #[test]
    fn sanitising_caps_values_that_would_overflow_the_clock() {
        let huge = TimerConfig {
            t1: Duration::MAX,
            t2: Duration::MAX,
            t4: Duration::MAX,
        }
        .sanitised();
        assert_eq!(huge.t1, LARGEST_T1);
        let now = Instant::now();
        for timer in [Timer::B, Timer::D, Timer::I] {
            let wait = huge.duration(timer, Transport::Udp).unwrap();
            assert!(now.checked_add(wait).is_some(), "{timer:?} overflows");
        }
    }

    #[test]
    fn sanitising_repairs_a_zero_t1_and_a_t2_below_t1() {
        let broken = TimerConfig {
            t1: Duration::ZERO,
            t2: Duration::ZERO,
            t4: Duration::ZERO,
        }
        .sanitised();
        assert_eq!(broken.t1, SMALLEST_T1);
        assert_eq!(broken.t2, SMALLEST_T1);
    }

    #[test]
    fn overdue_timers_pop_earliest_first_and_only_when_due() {
        let base = Instant::now();
        let mut timers = ArmedTimers::default();
        timers.arm(Timer::B, base + Duration::from_secs(32));
        timers.arm(Timer::A, base + Duration::from_millis(500));
        assert_eq!(timers.pop_due(base), None);
        assert_eq!(
            timers.next_deadline(),
            Some(base + Duration::from_millis(500))
        );
        let late = base + Duration::from_secs(40);
        assert_eq!(timers.pop_due(late), Some(Timer::A));
        assert_eq!(timers.pop_due(late), Some(Timer::B));
        assert_eq!(timers.pop_due(late), None);
    }

    #[test]
    fn rearming_replaces_the_previous_deadline() {
        let base = Instant::now();
        let mut timers = ArmedTimers::default();
        timers.arm(Timer::G, base + Duration::from_secs(1));
        timers.arm(Timer::G, base + Duration::from_secs(3));
        assert_eq!(timers.next_deadline(), Some(base + Duration::from_secs(3)));
        timers.disarm(Timer::G);
        assert_eq!(timers.next_deadline(), None);
    }
}
