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
mod tests;
