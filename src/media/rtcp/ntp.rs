//! NTP timestamps (RFC 3550 §4) and the round-trip arithmetic of §6.4.1.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp: seconds since 1900 in the high word, binary fraction in the low word.
/// The seconds wrap in 2036; RTCP only ever compares nearby values, so wrapping is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// Times before 1970 (a badly set clock) map to the Unix epoch rather than failing: the value
    /// only has to be consistent within one session.
    pub fn from_system_time(time: SystemTime) -> Self {
        let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self::from_unix_duration(since_unix)
    }

    pub fn from_unix_duration(since_unix: Duration) -> Self {
        let seconds = since_unix.as_secs().wrapping_add(NTP_UNIX_OFFSET_SECS) as u32;
        let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        Self((u64::from(seconds) << 32) | fraction)
    }

    pub fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// The compact form report blocks echo as LSR: low 16 bits of seconds, high 16 of fraction.
    pub fn middle_32(self) -> u32 {
        (self.0 >> 16) as u32
    }

    pub fn wrapping_add(self, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs() << 32;
        let fraction = (u64::from(elapsed.subsec_nanos()) << 32) / 1_000_000_000;
        Self(self.0.wrapping_add(seconds).wrapping_add(fraction))
    }
}

/// A duration in the 1/65536 s units of DLSR; saturates rather than wrapping after 18 hours.
pub(super) fn to_short_units(duration: Duration) -> u32 {
    let units = duration.as_nanos() * 65_536 / 1_000_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

pub(super) fn from_short_units(units: u32) -> Duration {
    Duration::from_nanos(u64::from(units) * 1_000_000_000 / 65_536)
}

/// Round-trip time from a report block about us: arrival time of the report minus the LSR it
/// echoes minus the DLSR the peer held it, all in middle-32 NTP units (RFC 3550 §6.4.1).
/// None when there is no LSR yet or the peer claims to have held our SR longer than it was away.
pub fn round_trip_time(arrival_middle_32: u32, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let away = arrival_middle_32.wrapping_sub(lsr);
    away.checked_sub(dlsr).map(from_short_units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3550_round_trip_example() {
        // §6.4.1, Figure 2: A = 0xb710:8000, LSR = 0xb705:2000, DLSR = 0x0005:4000 (5.25 s);
        // the delay is 0x0006:2000, i.e. 6.125 s.
        let rtt = round_trip_time(0xb710_8000, 0xb705_2000, 0x0005_4000).unwrap();
        assert_eq!(rtt, Duration::from_millis(6125));
    }

    #[test]
    fn round_trip_survives_wrap_of_the_middle_word() {
        let rtt = round_trip_time(0x0000_8000, 0xffff_8000, 0x0000_8000).unwrap();
        assert_eq!(rtt, Duration::from_millis(500));
    }

    #[test]
    fn no_round_trip_without_lsr_or_with_an_impossible_dlsr() {
        assert_eq!(round_trip_time(0xb710_8000, 0, 0), None);
        assert_eq!(round_trip_time(0x0001_0000, 0x0000_8000, 0x0001_0000), None);
    }

    #[test]
    fn unix_epoch_is_ntp_second_2208988800() {
        let ntp = NtpTimestamp::from_system_time(UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!(ntp.seconds(), 2_208_988_801);
        assert_eq!(ntp.fraction(), 0x8000_0000);
        assert_eq!(
            ntp.middle_32(),
            ((2_208_988_801u32 & 0xffff) << 16) | 0x8000
        );
    }

    #[test]
    fn adding_elapsed_time_matches_converting_the_later_time() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = Duration::from_millis(7_250);
        assert_eq!(
            NtpTimestamp::from_system_time(start).wrapping_add(later),
            NtpTimestamp::from_system_time(start + later)
        );
    }

    #[test]
    fn short_units_convert_both_ways() {
        assert_eq!(to_short_units(Duration::from_millis(5250)), 0x0005_4000);
        assert_eq!(from_short_units(0x0005_4000), Duration::from_millis(5250));
        assert_eq!(to_short_units(Duration::from_secs(1 << 20)), u32::MAX);
    }
}
