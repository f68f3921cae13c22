//! RFC 4733 telephone-events: the payload (§2.3), a receiver that turns the packet stream into
//! one digit per key press, and a sender that produces the packets for one key press.
//!
//! One key press is many packets: a start packet (marker bit set), updates every packet interval
//! with a growing duration, and the end packet sent three times (§2.5.1.4). All of them carry the
//! RTP timestamp of the press's start (§2.5.1.2), so that timestamp is what identifies a press.

use std::time::Duration;

use super::DtmfError;

/// Event codes 0-15 are the DTMF digits (RFC 4733 §3.2, table 7).
const EVENT_DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The digit an event code stands for; `None` for non-DTMF events (flash, fax tones…).
pub fn event_to_digit(event: u8) -> Option<char> {
    EVENT_DIGITS.get(usize::from(event)).copied()
}

/// The event code for a digit; lowercase `a`-`d` are accepted as their uppercase keys.
pub fn digit_to_event(digit: char) -> Option<u8> {
    let digit = digit.to_ascii_uppercase();
    EVENT_DIGITS
        .iter()
        .position(|&candidate| candidate == digit)
        // The table has 16 entries: the index fits a u8.
        .map(|index| index as u8)
}

/// One telephone-event payload (RFC 4733 §2.3):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// |     event     |E|R| volume    |          duration             |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    /// E bit: this packet reports the end of the event.
    pub end: bool,
    /// Power level as −dBm0, 0 to 63 (six bits on the wire).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units of the telephone-event clock.
    pub duration: u16,
}

impl TelephoneEvent {
    pub const LEN: usize = 4;

    /// Parses one event. A telephone-event payload is exactly one 4-byte event: several events in
    /// one packet travel as RFC 2198 redundancy, which the RTP layer unwraps before this. Any
    /// other length is a malformed packet and is refused rather than guessed at; a press is not
    /// lost by this, because every press is carried by many packets.
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let &[event, flags, duration_high, duration_low] = payload else {
            return Err(DtmfError::PayloadLength { len: payload.len() });
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            // The R bit (0x40) is reserved: ignored on receipt (§2.3.3).
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([duration_high, duration_low]),
        })
    }

    /// Appends the 4-byte payload. `volume` is cut to its six wire bits; the R bit is sent as 0.
    pub fn write(&self, out: &mut Vec<u8>) {
        let flags = if self.end { 0x80 } else { 0 } | (self.volume & 0x3f);
        out.push(self.event);
        out.push(flags);
        out.extend_from_slice(&self.duration.to_be_bytes());
    }

    /// The digit this event stands for, if it is a DTMF event.
    pub fn digit(&self) -> Option<char> {
        event_to_digit(self.event)
    }
}

/// How many earlier presses are remembered so their late packets are recognised. A straggler is
/// known by its timestamp, not by being older than the current press: senders that restart their
/// timestamps without changing SSRC (SIPp replaying captures, some SBCs after a re-INVITE) send
/// new presses with "older" timestamps, and those must not be lost.
const REMEMBERED_PRESSES: usize = 16;

/// Reports each key press once, however many of its packets arrive, are repeated or are lost.
#[derive(Debug, Default, Clone)]
pub struct Rfc4733Receiver {
    current: Option<CurrentPress>,
    earlier: std::collections::VecDeque<u32>,
}

#[derive(Debug, Clone)]
struct CurrentPress {
    /// Timestamp of the press, or of its latest segment for a press longer than 0xFFFF units.
    timestamp: u32,
    event: u8,
    ended: bool,
}

impl Rfc4733Receiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one telephone-event packet; returns the digit when this packet is the first one seen
    /// of a new press (whether it is the start packet, an update or, if everything before it was
    /// lost, an end packet).
    pub fn on_packet(
        &mut self,
        rtp_timestamp: u32,
        marker: bool,
        event: &TelephoneEvent,
    ) -> Option<char> {
        if let Some(current) = &mut self.current {
            let ahead = rtp_timestamp.wrapping_sub(current.timestamp);
            if ahead == 0 {
                current.ended |= event.end;
                return None;
            }
            if self.earlier.contains(&rtp_timestamp) {
                // A straggler of a press already reported.
                return None;
            }
            if is_next_segment(current, ahead, marker, event) {
                // RFC 4733 §2.5.1.3: a press longer than the 16-bit duration continues with a new
                // timestamp (old + elapsed duration), same event, no marker. Same key, same press.
                let previous = std::mem::replace(&mut current.timestamp, rtp_timestamp);
                current.ended = event.end;
                self.remember(previous);
                return None;
            }
            let previous = current.timestamp;
            self.remember(previous);
        }
        self.current = Some(CurrentPress {
            timestamp: rtp_timestamp,
            event: event.event,
            ended: event.end,
        });
        event.digit()
    }

    /// Forgets the current press: call when the stream's SSRC changes, as timestamps of the new
    /// stream bear no relation to the old ones.
    pub fn reset(&mut self) {
        self.current = None;
        self.earlier.clear();
    }

    fn remember(&mut self, timestamp: u32) {
        if self.earlier.len() == REMEMBERED_PRESSES {
            self.earlier.pop_front();
        }
        self.earlier.push_back(timestamp);
    }
}

fn is_next_segment(
    current: &CurrentPress,
    ahead: u32,
    marker: bool,
    event: &TelephoneEvent,
) -> bool {
    !marker && !current.ended && event.event == current.event && ahead <= u32::from(u16::MAX)
}

/// One packet of a key press being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc4733Packet {
    /// The timestamp of the press's start, the same in every packet.
    pub rtp_timestamp: u32,
    /// Set on the first packet only.
    pub marker: bool,
    pub event: TelephoneEvent,
    /// When to send: this many packet intervals after the first packet.
    pub send_index: u32,
}

/// Builds the packets of a key press toward the carrier (agent DTMF).
#[derive(Debug, Clone)]
pub struct Rfc4733Sender {
    clock_rate: u32,
    volume: u8,
}

/// The end packet is sent this many times in all, so one lost packet does not lose the end
/// (RFC 4733 §2.5.1.4).
const END_PACKET_COPIES: u32 = 3;

impl Rfc4733Sender {
    /// `clock_rate` is the telephone-event clock from the SDP (8000 for `telephone-event/8000`).
    /// The volume defaults to −10 dBm0, a common DTMF sending level.
    pub fn new(clock_rate: u32) -> Self {
        Rfc4733Sender {
            clock_rate,
            volume: 10,
        }
    }

    /// Sets the reported power level, as −dBm0 (0-63).
    pub fn with_volume(mut self, volume: u8) -> Result<Self, DtmfError> {
        if volume > 63 {
            return Err(DtmfError::VolumeOutOfRange { volume });
        }
        self.volume = volume;
        Ok(self)
    }

    /// The packets for `digit` held for `duration`, starting at the stream's current
    /// `start_timestamp`, one every `ptime`: the start packet with the marker bit, updates with
    /// the duration growing by `ptime`, then the end packet three times with the final duration.
    ///
    /// Audio sent after the press continues at `start_timestamp + duration` in timestamp units.
    /// Durations beyond the 16-bit field (8.19 s at 8 kHz) are refused: a person does not hold a
    /// key that long toward a carrier, and segmenting it (§2.5.1.3) is not worth the code.
    pub fn packets(
        &self,
        digit: char,
        duration: Duration,
        start_timestamp: u32,
        ptime: Duration,
    ) -> Result<Vec<Rfc4733Packet>, DtmfError> {
        let event = digit_to_event(digit).ok_or(DtmfError::UnknownDigit { digit })?;
        let total_units = self.to_units(duration);
        let ptime_units = self.to_units(ptime);
        if ptime_units == 0 || ptime_units > u64::from(u16::MAX) {
            return Err(DtmfError::InvalidPtime { ptime_units });
        }
        if total_units == 0 {
            return Err(DtmfError::DurationTooShort {
                duration_units: total_units,
            });
        }
        let total = u16::try_from(total_units).map_err(|_| DtmfError::DurationTooLong {
            duration_units: total_units,
        })?;

        let mut packets = Vec::new();
        let mut elapsed = 0u64;
        while elapsed < total_units {
            elapsed = (elapsed + ptime_units).min(total_units);
            packets.push(TelephoneEvent {
                event,
                end: elapsed == total_units,
                volume: self.volume,
                // elapsed <= total_units, which fits u16 (checked above).
                duration: elapsed as u16,
            });
        }
        let final_packet = TelephoneEvent {
            event,
            end: true,
            volume: self.volume,
            duration: total,
        };
        packets.extend((1..END_PACKET_COPIES).map(|_| final_packet));

        Ok(packets
            .into_iter()
            .zip(0u32..)
            .map(|(event, send_index)| Rfc4733Packet {
                rtp_timestamp: start_timestamp,
                marker: send_index == 0,
                event,
                send_index,
            })
            .collect())
    }

    fn to_units(&self, duration: Duration) -> u64 {
        (duration.as_secs_f64() * f64::from(self.clock_rate)).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    #[test]
    fn parses_and_writes_the_wire_format() {
        // Digit 5, E bit, R bit set by a sloppy sender, volume 10, duration 800.
        let wire = [0x05, 0x80 | 0x40 | 0x0a, 0x03, 0x20];
        let parsed = TelephoneEvent::parse(&wire).unwrap();
        assert_eq!(parsed, event(5, true, 800));
        assert_eq!(parsed.digit(), Some('5'));

        let mut written = Vec::new();
        parsed.write(&mut written);
        assert_eq!(
            written,
            [0x05, 0x8a, 0x03, 0x20],
            "R bit must be sent as zero"
        );

        let start = TelephoneEvent::parse(&[11, 0x3f, 0, 0]).unwrap();
        assert_eq!(
            start,
            TelephoneEvent {
                event: 11,
                end: false,
                volume: 63,
                duration: 0
            }
        );
        assert_eq!(start.digit(), Some('#'));
    }

    #[test]
    fn refuses_payloads_that_are_not_four_bytes() {
        for len in [0usize, 1, 3, 5, 8] {
            let payload = vec![1u8; len];
            let error = TelephoneEvent::parse(&payload).unwrap_err();
            assert_eq!(error, DtmfError::PayloadLength { len });
            assert!(
                error.to_string().contains(&format!("{len} bytes")),
                "{error}"
            );
        }
    }

    #[test]
    fn maps_events_and_digits_both_ways() {
        let digits = "0123456789*#ABCD";
        for (code, digit) in digits.chars().enumerate() {
            assert_eq!(event_to_digit(code as u8), Some(digit));
            assert_eq!(digit_to_event(digit), Some(code as u8));
        }
        assert_eq!(digit_to_event('b'), Some(13));
        assert_eq!(event_to_digit(16), None, "flash is not a digit");
        assert_eq!(digit_to_event('E'), None);
    }

    /// The packets of one 100 ms press as a carrier sends them: start, updates, three ends.
    fn press(code: u8) -> Vec<(bool, TelephoneEvent)> {
        let mut packets = vec![(true, event(code, false, 160))];
        packets.extend([320, 480, 640].map(|d| (false, event(code, false, d))));
        packets.extend([800; 3].map(|d| (false, event(code, true, d))));
        packets
    }

    fn feed(
        receiver: &mut Rfc4733Receiver,
        timestamp: u32,
        packets: &[(bool, TelephoneEvent)],
    ) -> Vec<char> {
        packets
            .iter()
            .filter_map(|(marker, event)| receiver.on_packet(timestamp, *marker, event))
            .collect()
    }

    #[test]
    fn reports_a_press_once_at_its_first_packet() {
        let mut receiver = Rfc4733Receiver::new();
        let packets = press(7);
        assert_eq!(receiver.on_packet(1000, true, &packets[0].1), Some('7'));
        assert_eq!(feed(&mut receiver, 1000, &packets[1..]), Vec::<char>::new());
    }

    #[test]
    fn reports_at_the_first_end_packet_when_the_rest_was_lost() {
        let mut receiver = Rfc4733Receiver::new();
        let ends: Vec<_> = press(3).into_iter().filter(|(_, e)| e.end).collect();
        assert_eq!(feed(&mut receiver, 5000, &ends), vec!['3']);
    }

    #[test]
    fn same_key_pressed_twice_is_two_digits() {
        let mut receiver = Rfc4733Receiver::new();
        let mut digits = feed(&mut receiver, 1000, &press(1));
        digits.extend(feed(&mut receiver, 2600, &press(1)));
        assert_eq!(digits, vec!['1', '1']);
    }

    #[test]
    fn second_press_is_reported_even_if_its_start_packets_were_lost() {
        let mut receiver = Rfc4733Receiver::new();
        let mut digits = feed(&mut receiver, 1000, &press(1));
        digits.extend(feed(&mut receiver, 2600, &press(1)[2..]));
        assert_eq!(digits, vec!['1', '1']);
    }

    #[test]
    fn late_packets_of_an_earlier_press_are_ignored() {
        let mut receiver = Rfc4733Receiver::new();
        let first = press(4);
        let second = press(6);
        let mut digits = feed(&mut receiver, 1000, &first[..4]);
        digits.extend(feed(&mut receiver, 2000, &second[..2]));
        // The first press's end packets, reordered behind the second press's start.
        digits.extend(feed(&mut receiver, 1000, &first[4..]));
        digits.extend(feed(&mut receiver, 2000, &second[2..]));
        assert_eq!(digits, vec!['4', '6']);
    }

    #[test]
    fn timestamps_wrapping_through_zero() {
        let mut receiver = Rfc4733Receiver::new();
        let mut digits = feed(&mut receiver, u32::MAX - 100, &press(9));
        digits.extend(feed(&mut receiver, 700, &press(9)));
        // A straggler from before the wrap is still recognised as late.
        digits.extend(feed(&mut receiver, u32::MAX - 100, &press(9)[6..]));
        digits.extend(feed(&mut receiver, 2400, &press(0)));
        assert_eq!(digits, vec!['9', '9', '0']);
    }

    #[test]
    fn a_new_press_with_an_older_timestamp_is_still_a_new_press() {
        // SIPp replays captured presses verbatim: '#' then '9' whose timestamp is lower.
        let mut receiver = Rfc4733Receiver::new();
        let mut digits = feed(&mut receiver, 50_000, &press(11));
        digits.extend(feed(&mut receiver, 40_000, &press(9)));
        digits.extend(feed(&mut receiver, 50_000, &press(11)[7..]));
        assert_eq!(
            digits,
            vec!['#', '9'],
            "the late end packets of '#' add nothing"
        );
    }

    #[test]
    fn a_press_longer_than_the_duration_field_stays_one_press() {
        let mut receiver = Rfc4733Receiver::new();
        let mut digits = Vec::new();
        digits.extend(receiver.on_packet(100, true, &event(2, false, 160)));
        digits.extend(receiver.on_packet(100, false, &event(2, false, u16::MAX)));
        // Next segment: timestamp advanced by the full segment, no marker, not ended before.
        let next = 100 + u32::from(u16::MAX);
        digits.extend(receiver.on_packet(next, false, &event(2, false, 160)));
        digits.extend(receiver.on_packet(next, false, &event(2, true, 4000)));
        assert_eq!(digits, vec!['2']);
    }

    #[test]
    fn non_digit_events_are_not_reported() {
        let mut receiver = Rfc4733Receiver::new();
        assert_eq!(receiver.on_packet(10, true, &event(16, false, 160)), None);
        assert_eq!(
            receiver.on_packet(900, true, &event(8, false, 160)),
            Some('8')
        );
    }

    #[test]
    fn a_new_ssrc_after_reset_starts_fresh() {
        let mut receiver = Rfc4733Receiver::new();
        assert_eq!(feed(&mut receiver, 50_000, &press(5)), vec!['5']);
        receiver.reset();
        // The new stream happens to start just behind the old one.
        assert_eq!(feed(&mut receiver, 49_000, &press(5)), vec!['5']);
    }

    #[test]
    fn sender_produces_start_updates_and_three_ends() {
        let sender = Rfc4733Sender::new(8000);
        let packets = sender
            .packets(
                '5',
                Duration::from_millis(100),
                1234,
                Duration::from_millis(20),
            )
            .unwrap();
        let summary: Vec<(bool, bool, u16, u32)> = packets
            .iter()
            .map(|p| (p.marker, p.event.end, p.event.duration, p.send_index))
            .collect();
        assert_eq!(
            summary,
            vec![
                (true, false, 160, 0),
                (false, false, 320, 1),
                (false, false, 480, 2),
                (false, false, 640, 3),
                (false, true, 800, 4),
                (false, true, 800, 5),
                (false, true, 800, 6),
            ]
        );
        assert!(packets
            .iter()
            .all(|p| p.rtp_timestamp == 1234 && p.event.event == 5));
        assert!(packets.iter().all(|p| p.event.volume == 10));
    }

    #[test]
    fn sender_rounds_a_duration_that_is_not_a_multiple_of_ptime() {
        let sender = Rfc4733Sender::new(8000).with_volume(6).unwrap();
        let packets = sender
            .packets('#', Duration::from_millis(50), 0, Duration::from_millis(20))
            .unwrap();
        let durations: Vec<u16> = packets.iter().map(|p| p.event.duration).collect();
        assert_eq!(durations, vec![160, 320, 400, 400, 400]);
        assert_eq!(packets.iter().filter(|p| p.event.end).count(), 3);
        assert_eq!(packets[0].event.volume, 6);
    }

    #[test]
    fn what_the_sender_sends_the_receiver_reports_once() {
        let sender = Rfc4733Sender::new(8000);
        let mut receiver = Rfc4733Receiver::new();
        let mut digits = Vec::new();
        let mut timestamp = u32::MAX - 500;
        for digit in "1123#".chars() {
            for packet in sender
                .packets(
                    digit,
                    Duration::from_millis(80),
                    timestamp,
                    Duration::from_millis(20),
                )
                .unwrap()
            {
                let mut wire = Vec::new();
                packet.event.write(&mut wire);
                let parsed = TelephoneEvent::parse(&wire).unwrap();
                digits.extend(receiver.on_packet(packet.rtp_timestamp, packet.marker, &parsed));
            }
            // 80 ms press plus a 60 ms gap of audio.
            timestamp = timestamp.wrapping_add(640 + 480);
        }
        assert_eq!(digits.into_iter().collect::<String>(), "1123#");
    }

    #[test]
    fn sender_refuses_what_it_cannot_encode() {
        let sender = Rfc4733Sender::new(8000);
        let ptime = Duration::from_millis(20);
        assert_eq!(
            sender.packets('x', Duration::from_millis(100), 0, ptime),
            Err(DtmfError::UnknownDigit { digit: 'x' })
        );
        assert_eq!(
            sender.packets('1', Duration::from_secs(9), 0, ptime),
            Err(DtmfError::DurationTooLong {
                duration_units: 72_000
            })
        );
        assert!(sender.packets('1', Duration::ZERO, 0, ptime).is_err());
        assert!(sender
            .packets('1', Duration::from_millis(100), 0, Duration::ZERO)
            .is_err());
        assert_eq!(
            Rfc4733Sender::new(8000).with_volume(64).unwrap_err(),
            DtmfError::VolumeOutOfRange { volume: 64 }
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let parsed = TelephoneEvent::parse(&payload);
            prop_assert_eq!(parsed.is_ok(), payload.len() == 4);
        }

        #[test]
        fn write_then_parse_is_identity(event in any::<u8>(), end in any::<bool>(), volume in 0u8..64, duration in any::<u16>()) {
            let original = TelephoneEvent { event, end, volume, duration };
            let mut wire = Vec::new();
            original.write(&mut wire);
            prop_assert_eq!(TelephoneEvent::parse(&wire), Ok(original));
        }

        /// Whatever packets of a press are lost or duplicated, each press is reported exactly
        /// once and in order, as long as the last copy of each end packet arrives (with it lost
        /// too, the next press of the same key could look like the same press continuing).
        #[test]
        fn every_press_is_reported_once_despite_loss_and_duplicates(
            presses in proptest::collection::vec((0u8..16, 1u32..8, 1u32..2000), 1..12),
            losses in proptest::collection::vec(any::<bool>(), 200),
            duplicates in proptest::collection::vec(any::<bool>(), 200),
            first_timestamp in any::<u32>(),
        ) {
            let sender = Rfc4733Sender::new(8000);
            let mut receiver = Rfc4733Receiver::new();
            let mut timestamp = first_timestamp;
            let mut coin = 0usize;
            let mut reported = Vec::new();
            for &(code, intervals, gap_units) in &presses {
                let digit = event_to_digit(code).unwrap();
                let duration = Duration::from_millis(20 * u64::from(intervals));
                let packets = sender
                    .packets(digit, duration, timestamp, Duration::from_millis(20))
                    .unwrap();
                let last = packets.len() - 1;
                for (index, packet) in packets.iter().enumerate() {
                    coin = (coin + 1) % losses.len();
                    if index != last && losses[coin] {
                        continue;
                    }
                    let copies = if duplicates[coin] { 2 } else { 1 };
                    for _ in 0..copies {
                        reported.extend(receiver.on_packet(packet.rtp_timestamp, packet.marker, &packet.event));
                    }
                }
                timestamp = timestamp.wrapping_add(160 * intervals + gap_units);
            }
            let expected: Vec<char> = presses.iter().map(|&(code, _, _)| event_to_digit(code).unwrap()).collect();
            prop_assert_eq!(reported, expected);
        }
    }
}
