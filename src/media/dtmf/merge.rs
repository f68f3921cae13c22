//! One digit per key press when a call carries DTMF both as RFC 4733 events and as in-band tones.
//!
//! Carriers often send both for the same press, and the two copies arrive a few tens of
//! milliseconds apart in either order. The merger delivers whichever copy comes first and drops
//! the other:
//!
//! - (a) a digit equal to one delivered from the *other* source within [`DUPLICATE_WINDOW`] is
//!   that delivery's twin and is dropped; each delivery absorbs at most one twin;
//! - (b) once any RFC 4733 event has been seen, in-band detections are dropped for the rest of
//!   the call. An in-band-only digit on such a call is, in practice, talk-off (speech or music
//!   mistaken for a tone) or the echo of a tone we played, not a press whose events were all lost
//!   (every press travels in many packets). Time alone never re-enables in-band detection: a
//!   caller may listen or talk for minutes between presses, and re-enabling then would bring
//!   talk-off back exactly when nobody expects a digit. What can change it is signalling: if a
//!   re-INVITE drops telephone-event, the call layer calls
//!   [`rfc4733_withdrawn`](DtmfMerger::rfc4733_withdrawn);
//! - (c) the twin rule only ever matches the *same* digit: a different digit is a different press
//!   (rule (b) still applies to it if it is in-band);
//! - (d) digits from the same source are never twins of each other: the RFC 4733 receiver and
//!   the in-band detector already report each press once, so "1", "1" from one source is two
//!   presses.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far apart the two copies of one press may arrive. In-band detection lags the tone's start
/// by ~40-60 ms and RFC 4733 packets are sent at the press's start, so genuine twins are a few
/// tens of milliseconds apart; 250 ms leaves room for jitter buffers and carrier-side conversion
/// while staying below the time a person needs to press the same key twice.
pub const DUPLICATE_WINDOW: Duration = Duration::from_millis(250);

/// Where a digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DtmfSource {
    Rfc4733,
    Inband,
}

/// Merges the two DTMF sources of one call. Sans-IO: the caller passes the time.
#[derive(Debug, Clone)]
pub struct DtmfMerger {
    window: Duration,
    rfc4733_seen: bool,
    /// Deliveries still waiting for a possible twin, oldest first.
    awaiting_twin: VecDeque<Delivery>,
}

#[derive(Debug, Clone, Copy)]
struct Delivery {
    digit: char,
    at: Instant,
    source: DtmfSource,
}

impl Default for DtmfMerger {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfMerger {
    pub fn new() -> Self {
        Self::with_window(DUPLICATE_WINDOW)
    }

    /// A merger with a twin window other than [`DUPLICATE_WINDOW`].
    pub fn with_window(window: Duration) -> Self {
        DtmfMerger {
            window,
            rfc4733_seen: false,
            awaiting_twin: VecDeque::new(),
        }
    }

    /// A press reported by the RFC 4733 receiver; returns the digit if it is to be delivered.
    pub fn on_rfc4733(&mut self, now: Instant, digit: char) -> Option<char> {
        self.rfc4733_seen = true;
        self.on_digit(now, digit, DtmfSource::Rfc4733)
    }

    /// A press reported by the in-band detector; returns the digit if it is to be delivered.
    pub fn on_inband(&mut self, now: Instant, digit: char) -> Option<char> {
        if self.rfc4733_seen {
            self.forget_old(now);
            return None;
        }
        self.on_digit(now, digit, DtmfSource::Inband)
    }

    /// The call was renegotiated without telephone-event: in-band tones are the only source from
    /// now on, so they are delivered again.
    pub fn rfc4733_withdrawn(&mut self) {
        self.rfc4733_seen = false;
    }

    /// Whether in-band detections are currently dropped (rule (b)); a caller may stop running
    /// the in-band detector while this holds.
    pub fn inband_suppressed(&self) -> bool {
        self.rfc4733_seen
    }

    fn on_digit(&mut self, now: Instant, digit: char, source: DtmfSource) -> Option<char> {
        self.forget_old(now);
        let twin = self
            .awaiting_twin
            .iter()
            .position(|delivered| delivered.digit == digit && delivered.source != source);
        if let Some(index) = twin {
            self.awaiting_twin.remove(index);
            return None;
        }
        self.awaiting_twin.push_back(Delivery {
            digit,
            at: now,
            source,
        });
        Some(digit)
    }

    fn forget_old(&mut self, now: Instant) {
        let window = self.window;
        // saturating: a caller whose clock readings are not monotonic gets "just now", not a panic.
        self.awaiting_twin
            .retain(|delivered| now.saturating_duration_since(delivered.at) <= window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn rfc4733_then_inband_same_key_is_one_digit() {
        let base = Instant::now();
        let mut merger = DtmfMerger::new();
        assert_eq!(merger.on_rfc4733(base, '5'), Some('5'));
        assert_eq!(merger.on_inband(base + ms(45), '5'), None);
    }

    #[test]
    fn inband_then_rfc4733_30ms_later_is_one_digit() {
        let base = Instant::now();
        let mut merger = DtmfMerger::new();
        assert_eq!(merger.on_inband(base, '7'), Some('7'));
        assert_eq!(merger.on_rfc4733(base + ms(30), '7'), None);
    }

    #[test]
    fn same_key_typed_twice_via_rfc4733_is_two_digits() {
        let base = Instant::now();
        let mut merger = DtmfMerger::new();
        assert_eq!(merger.on_rfc4733(base, '1'), Some('1'));
        assert_eq!(merger.on_rfc4733(base + ms(120), '1'), Some('1'));
    }

    #[test]
    fn same_key_typed_twice_in_band_only_is_two_digits() {
        let base = Instant::now();
        let mut merger = DtmfMerger::new();
        assert_eq!(merger.on_inband(base, '1'), Some('1'));
        assert_eq!(merger.on_inband(base + ms(120), '1'), Some('1'));
    }

    #[test]
    fn different_digits_from_the_two_sources_are_both_delivered() {
        let base = Instant::now();
        let mut merger = DtmfMerger::new();
        assert_eq!(merger.on_inband(base, '1'), Some('1'));
        assert_eq!(merger.on_rfc4733(base + ms(20), '2'), Some('2'));
    }

    #[test]
    fn each_delivery_absorbs_only_one_twin() {
        let base = Instant::now();
        let mut merger = DtmfMerger::new();
        // "11" typed fast; the in-band copy of the first press wins, the carrier's events lag.
        assert_eq!(merger.on_inband(base, '1'), Some('1'));
        assert_eq!(merger.on_rfc4733(base + ms(40), '1'), None);
        assert_eq!(merger.on_rfc4733(base + ms(180), '1'), Some('1'));
        assert_eq!(merger.on_inband(base + ms(200), '1'), None);
    }

    #[test]
    fn twins_are_matched_to_the_right_press_when_presses_overlap() {
        let base = Instant::now();
        let mut merger = DtmfMerger::new();
        // A fast dialler: in-band copies of "1" and "2" both arrive before the carrier's events.
        assert_eq!(merger.on_inband(base, '1'), Some('1'));
        assert_eq!(merger.on_inband(base + ms(100), '2'), Some('2'));
        assert_eq!(merger.on_rfc4733(base + ms(120), '1'), None);
        assert_eq!(merger.on_rfc4733(base + ms(220), '2'), None);
    }

    #[test]
    fn a_copy_outside_the_window_is_a_new_press() {
        let base = Instant::now();
        let mut merger = DtmfMerger::new();
        assert_eq!(merger.on_inband(base, '3'), Some('3'));
        assert_eq!(merger.on_rfc4733(base + ms(400), '3'), Some('3'));
    }

    #[test]
    fn inband_stays_off_after_rfc4733_however_long_the_silence() {
        let base = Instant::now();
        let mut merger = DtmfMerger::new();
        assert_eq!(merger.on_rfc4733(base, '9'), Some('9'));
        assert!(merger.inband_suppressed());
        assert_eq!(
            merger.on_inband(base + ms(300), '4'),
            None,
            "talk-off is not a digit"
        );
        assert_eq!(merger.on_inband(base + Duration::from_secs(600), '4'), None);
    }

    #[test]
    fn inband_returns_when_rfc4733_is_withdrawn() {
        let base = Instant::now();
        let mut merger = DtmfMerger::new();
        assert_eq!(merger.on_rfc4733(base, '9'), Some('9'));
        merger.rfc4733_withdrawn();
        assert!(!merger.inband_suppressed());
        assert_eq!(
            merger.on_inband(base + Duration::from_secs(5), '4'),
            Some('4')
        );
    }

    #[test]
    fn a_clock_reading_from_the_past_does_not_panic() {
        let base = Instant::now() + Duration::from_secs(1);
        let mut merger = DtmfMerger::new();
        assert_eq!(merger.on_inband(base, '6'), Some('6'));
        assert_eq!(merger.on_rfc4733(base - ms(10), '6'), None);
    }
}
