//! Per-source reception statistics: RFC 3550 A.1 (sequence validation), A.3 (expected and lost
//! packets) and A.8 (interarrival jitter).
//!
//! Two departures from the appendix, both so the numbers mean what a dashboard reader expects:
//! - No probation. A.1 ignores a new source's first packet until a second one confirms it; our
//!   sources are announced in SDP, so probation would only make every call look one packet short.
//! - Duplicates are recognised (a bitmap over the last 128 sequence numbers, wider than A.1's
//!   100-packet misorder window) and not counted as received. In A.1 they are, which drives the
//!   loss count negative; here a duplicate changes neither loss nor jitter.

/// A forward jump of this many packets or more is treated as a possible restart, not as loss.
const MAX_DROPOUT: u16 = 3000;
/// Packets this far behind the highest sequence number are late; further back, suspicious.
const MAX_MISORDER: u16 = 100;
const SEQUENCE_MODULUS: i64 = 1 << 16;
/// Sequence numbers remembered behind the highest, for duplicate detection: one bit each.
const DUPLICATE_WINDOW: u32 = u128::BITS;
// Every late packet A.1 accepts must fall inside the window, or its duplicate would count twice.
const _: () = assert!((MAX_MISORDER as u32) < DUPLICATE_WINDOW);

/// What [`ReceptionStats::record`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceVerdict {
    /// The first packet of the source.
    First,
    /// Newer than any before, possibly after a gap smaller than 3000.
    InOrder,
    /// Older than the highest seen but not seen before: reordering, not loss.
    Late,
    /// Seen before; counted nowhere.
    Duplicate,
    /// A big jump not (yet) confirmed by a following packet; ignored.
    Jump,
    /// A second packet continued an earlier jump: the sender restarted, so counting restarts
    /// from here (totals so far are kept).
    Restarted,
}

/// Counts for one remote source, fed with every RTP packet it sends.
#[derive(Debug, Clone, Default)]
pub struct ReceptionStats {
    sequence: Option<SequenceState>,
    /// Expected and received packets of sequence runs before the last restart.
    earlier_expected: u64,
    earlier_received: u64,
    expected_prior: u64,
    received_prior: u64,
    last_fraction_lost: u8,
    duplicates: u64,
    last_transit: Option<u32>,
    jitter: f64,
}

/// Sequence numbers extended to 64 bits: `cycles * 65536 + seq` in A.1's terms. The base can
/// become negative when a packet older than the first one turns up late.
#[derive(Debug, Clone)]
struct SequenceState {
    base: i64,
    highest: i64,
    /// Bit i set: sequence `highest - i` has been received.
    seen: u128,
    /// The sequence number that, arriving next, would confirm a restart.
    restart_candidate: Option<u16>,
    received: u64,
}

impl SequenceState {
    fn starting_at(sequence: u16) -> Self {
        Self {
            base: i64::from(sequence),
            highest: i64::from(sequence),
            seen: 1,
            restart_candidate: None,
            received: 1,
        }
    }

    fn expected(&self) -> u64 {
        // highest >= base always: base only moves down, highest only up.
        (self.highest - self.base + 1) as u64
    }
}

impl ReceptionStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one packet. `arrival` is the arrival time on the media clock (any origin; only
    /// differences matter), as A.8 needs it in the same units as the RTP timestamp.
    pub fn record(&mut self, sequence: u16, rtp_timestamp: u32, arrival: u32) -> SequenceVerdict {
        let verdict = self.update_sequence(sequence);
        match verdict {
            SequenceVerdict::Duplicate | SequenceVerdict::Jump => {}
            SequenceVerdict::Restarted => {
                // The restarted sender's timestamps bear no relation to the old ones.
                self.last_transit = None;
                self.update_jitter(rtp_timestamp, arrival);
            }
            _ => self.update_jitter(rtp_timestamp, arrival),
        }
        verdict
    }

    fn update_sequence(&mut self, sequence: u16) -> SequenceVerdict {
        let Some(state) = &mut self.sequence else {
            self.sequence = Some(SequenceState::starting_at(sequence));
            return SequenceVerdict::First;
        };
        // Low 16 bits of the extended value are the wire sequence number.
        let highest_wire = state.highest.rem_euclid(SEQUENCE_MODULUS) as u16;
        let ahead = sequence.wrapping_sub(highest_wire);
        if ahead == 0 {
            self.duplicates += 1;
            return SequenceVerdict::Duplicate;
        }
        if ahead < MAX_DROPOUT {
            let shift = u32::from(ahead);
            state.seen = if shift >= DUPLICATE_WINDOW {
                0
            } else {
                state.seen << shift
            } | 1;
            state.highest += i64::from(ahead);
            state.received += 1;
            return SequenceVerdict::InOrder;
        }
        if ahead > u16::MAX - MAX_MISORDER {
            let behind = SEQUENCE_MODULUS - i64::from(ahead);
            // behind < MAX_MISORDER < DUPLICATE_WINDOW, so the shift stays inside the u128.
            let bit = 1u128 << behind;
            if state.seen & bit != 0 {
                self.duplicates += 1;
                return SequenceVerdict::Duplicate;
            }
            state.seen |= bit;
            state.base = state.base.min(state.highest - behind);
            state.received += 1;
            return SequenceVerdict::Late;
        }
        if state.restart_candidate == Some(sequence) {
            self.earlier_expected += state.expected();
            self.earlier_received += state.received;
            *state = SequenceState::starting_at(sequence);
            return SequenceVerdict::Restarted;
        }
        state.restart_candidate = Some(sequence.wrapping_add(1));
        SequenceVerdict::Jump
    }

    fn update_jitter(&mut self, rtp_timestamp: u32, arrival: u32) {
        let transit = arrival.wrapping_sub(rtp_timestamp);
        if let Some(last_transit) = self.last_transit {
            // Reinterpreting the wrapped difference as signed gives the short way round.
            let difference = f64::from((transit.wrapping_sub(last_transit) as i32).unsigned_abs());
            self.jitter += (difference - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// Whether any packet has been recorded; no report block is due before that.
    pub fn has_received(&self) -> bool {
        self.sequence.is_some()
    }

    /// The highest sequence number seen, with wraparounds counted in the upper 16 bits.
    pub fn extended_highest_sequence(&self) -> u32 {
        // Truncation to 32 bits is how the field wraps on the wire.
        self.sequence
            .as_ref()
            .map_or(0, |state| state.highest as u32)
    }

    pub fn expected(&self) -> u64 {
        self.earlier_expected + self.sequence.as_ref().map_or(0, SequenceState::expected)
    }

    /// Distinct packets received; duplicates are counted separately.
    pub fn received(&self) -> u64 {
        self.earlier_received + self.sequence.as_ref().map_or(0, |state| state.received)
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn cumulative_lost(&self) -> i64 {
        // Both far below i64::MAX: they count packets.
        self.expected() as i64 - self.received() as i64
    }

    /// Interarrival jitter in media clock units.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Fraction lost since the previous call, in 1/256ths, as a report block carries it; starts
    /// the next interval. Zero, not negative, when late packets from the previous interval
    /// outnumber this interval's losses (A.3).
    pub fn take_interval_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let received = self.received();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        // lost <= expected, so the quotient is at most 256; 256 (all lost) is shown as 255.
        self.last_fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |fraction| fraction.min(255) as u8);
        self.last_fraction_lost
    }

    /// The value the last [`take_interval_fraction_lost`](Self::take_interval_fraction_lost)
    /// returned.
    pub fn last_fraction_lost(&self) -> u8 {
        self.last_fraction_lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds sequence numbers with a clean 160-unit cadence so jitter stays out of the way.
    fn feed(stats: &mut ReceptionStats, sequences: &[u16]) -> Vec<SequenceVerdict> {
        sequences
            .iter()
            .map(|&sequence| {
                let time = u32::from(sequence) * 160;
                stats.record(sequence, time, time)
            })
            .collect()
    }

    #[test]
    fn in_order_stream_has_no_loss() {
        let mut stats = ReceptionStats::new();
        feed(&mut stats, &[10, 11, 12, 13]);
        assert_eq!(stats.expected(), 4);
        assert_eq!(stats.received(), 4);
        assert_eq!(stats.cumulative_lost(), 0);
        assert_eq!(stats.extended_highest_sequence(), 13);
    }

    #[test]
    fn gaps_count_as_loss() {
        let mut stats = ReceptionStats::new();
        feed(&mut stats, &[1, 2, 5, 6, 10]);
        assert_eq!(stats.expected(), 10);
        assert_eq!(stats.cumulative_lost(), 5);
    }

    #[test]
    fn wraparound_extends_the_sequence_and_loses_nothing() {
        let mut stats = ReceptionStats::new();
        let verdicts = feed(&mut stats, &[65534, 65535, 0, 1]);
        assert!(verdicts[1..].iter().all(|v| *v == SequenceVerdict::InOrder));
        assert_eq!(stats.extended_highest_sequence(), 0x0001_0001);
        assert_eq!(stats.cumulative_lost(), 0);
    }

    #[test]
    fn loss_across_the_wrap_is_counted() {
        let mut stats = ReceptionStats::new();
        feed(&mut stats, &[65533, 65534, 2, 3]);
        // Missing: 65535, 0, 1.
        assert_eq!(stats.extended_highest_sequence(), 0x0001_0003);
        assert_eq!(stats.cumulative_lost(), 3);
    }

    #[test]
    fn several_wraps_accumulate_in_the_cycle_count() {
        let mut stats = ReceptionStats::new();
        let mut sequence = 0u16;
        for _ in 0..(3 * 65536 + 10) {
            let time = 0;
            stats.record(sequence, time, time);
            sequence = sequence.wrapping_add(1);
        }
        assert_eq!(stats.extended_highest_sequence(), 3 * 65536 + 9);
        assert_eq!(stats.cumulative_lost(), 0);
    }

    #[test]
    fn duplicates_and_reordering_are_not_loss() {
        let mut stats = ReceptionStats::new();
        let verdicts = feed(&mut stats, &[1, 2, 4, 3, 3, 5, 5, 2]);
        use SequenceVerdict::*;
        assert_eq!(
            verdicts,
            [First, InOrder, InOrder, Late, Duplicate, InOrder, Duplicate, Duplicate]
        );
        assert_eq!(stats.cumulative_lost(), 0);
        assert_eq!(stats.received(), 5);
        assert_eq!(stats.duplicates(), 3);
        assert_eq!(stats.take_interval_fraction_lost(), 0);
    }

    #[test]
    fn reordering_across_the_wrap_is_not_loss() {
        let mut stats = ReceptionStats::new();
        feed(&mut stats, &[65534, 0, 65535, 1]);
        assert_eq!(stats.extended_highest_sequence(), 0x0001_0001);
        assert_eq!(stats.cumulative_lost(), 0);
    }

    #[test]
    fn a_packet_older_than_the_first_extends_the_expected_range() {
        let mut stats = ReceptionStats::new();
        assert_eq!(
            feed(&mut stats, &[1, 0, 65535])[1..],
            [SequenceVerdict::Late; 2]
        );
        assert_eq!(stats.expected(), 3);
        assert_eq!(stats.cumulative_lost(), 0);
        assert_eq!(stats.extended_highest_sequence(), 1);
    }

    #[test]
    fn late_packet_filling_a_gap_reduces_loss() {
        let mut stats = ReceptionStats::new();
        feed(&mut stats, &[1, 2, 5]);
        assert_eq!(stats.cumulative_lost(), 2);
        feed(&mut stats, &[3]);
        assert_eq!(stats.cumulative_lost(), 1);
    }

    #[test]
    fn a_single_wild_sequence_number_is_ignored() {
        let mut stats = ReceptionStats::new();
        feed(&mut stats, &[100, 101]);
        assert_eq!(feed(&mut stats, &[30_000]), [SequenceVerdict::Jump]);
        feed(&mut stats, &[102]);
        assert_eq!(stats.extended_highest_sequence(), 102);
        assert_eq!(stats.cumulative_lost(), 0);
        assert_eq!(stats.received(), 3);
    }

    #[test]
    fn two_sequential_packets_after_a_jump_restart_counting_and_keep_totals() {
        let mut stats = ReceptionStats::new();
        feed(&mut stats, &[100, 101, 103]); // one lost before the restart
        use SequenceVerdict::*;
        assert_eq!(
            feed(&mut stats, &[40_000, 40_001, 40_002]),
            [Jump, Restarted, InOrder]
        );
        assert_eq!(stats.extended_highest_sequence(), 40_002);
        assert_eq!(stats.expected(), 4 + 2);
        assert_eq!(stats.cumulative_lost(), 1);
    }

    #[test]
    fn fraction_lost_covers_only_the_interval_since_the_last_report() {
        let mut stats = ReceptionStats::new();
        // 1..=10 expected; 4 arrives late (not lost), 9 never arrives.
        feed(&mut stats, &[1, 2, 3, 5, 6, 7, 8, 4, 10]);
        assert_eq!(stats.expected(), 10);
        assert_eq!(stats.cumulative_lost(), 1);
        assert_eq!(stats.take_interval_fraction_lost(), 25); // 1/10 * 256 = 25.6
                                                             // Next interval: 11..=14 expected, 11 and 13 lost -> 2/4.
        feed(&mut stats, &[12, 14]);
        assert_eq!(stats.take_interval_fraction_lost(), 128);
        assert_eq!(stats.last_fraction_lost(), 128);
        // Nothing new: no loss reported.
        assert_eq!(stats.take_interval_fraction_lost(), 0);
    }

    #[test]
    fn jitter_matches_a_hand_computed_example() {
        // 20 ms frames (160 units); arrivals alternate 0 and 10 units late, so every transit
        // difference D is 10. J1 = 10/16 = 0.625; J2 = 0.625 + (10 - 0.625)/16 = 1.2109375;
        // J3 = 1.2109375 + (10 - 1.2109375)/16 = 1.76025390625.
        let mut stats = ReceptionStats::new();
        for (sequence, timestamp, arrival) in
            [(1, 0, 1000), (2, 160, 1170), (3, 320, 1320), (4, 480, 1490)]
        {
            stats.record(sequence, timestamp, arrival);
        }
        assert_eq!(stats.jitter(), 1.760_253_906_25);
    }

    #[test]
    fn jitter_ignores_duplicates_and_handles_clock_wrap() {
        let mut stats = ReceptionStats::new();
        stats.record(1, u32::MAX - 159, u32::MAX - 9);
        stats.record(2, 0, 170); // transit went from 150 to 170 across both wraps
        stats.record(2, 0, 5000); // duplicate: would be a huge D
        assert_eq!(stats.jitter(), 20.0 / 16.0);
    }

    #[test]
    fn steady_delay_has_zero_jitter() {
        let mut stats = ReceptionStats::new();
        for sequence in 0..50u16 {
            let timestamp = u32::from(sequence) * 160;
            stats.record(sequence, timestamp, timestamp + 400);
        }
        assert_eq!(stats.jitter(), 0.0);
    }
}
