//! NTP timestamps as RTCP uses them (RFC 3550 §4): 32.32 fixed-point seconds since 1900.
//!
//! Callisto's cores never read a clock: the caller turns its wallclock into an [`NtpTime`] with
//! [`NtpTime::from_system_time`] (or builds one directly in tests) and passes it in. The middle 32
//! bits ([`NtpTime::middle_32`]) are the 16.16 form that RTCP's LSR and DLSR fields use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 1900-01-01 (the NTP era 0 epoch) to 1970-01-01.
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// An NTP timestamp: 32 bits of seconds since 1900 and 32 bits of fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The NTP timestamp of `time`, a wallclock reading taken by the caller.
    ///
    /// Times before 1970 map to the Unix epoch; NTP era rollover (2036) wraps as on the wire.
    pub fn from_system_time(time: SystemTime) -> Self {
        let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Self::from_unix(since_unix)
    }

    /// The NTP timestamp of a time given as the duration since the Unix epoch.
    pub fn from_unix(since_unix: Duration) -> Self {
        let secs = since_unix.as_secs().wrapping_add(NTP_UNIX_OFFSET_SECS);
        let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime((secs << 32) | frac)
    }

    /// The middle 32 bits: 16 bits of seconds and 16 bits of fraction (RFC 3550 §6.4.1 LSR).
    pub fn middle_32(self) -> u32 {
        (self.0 >> 16) as u32
    }

    /// This time plus `duration`, wrapping like the wire format.
    pub fn plus(self, duration: Duration) -> Self {
        NtpTime(self.0.wrapping_add(duration_to_ntp64(duration)))
    }
}

/// A duration in the 32.32 fixed-point NTP format.
fn duration_to_ntp64(duration: Duration) -> u64 {
    let secs = duration.as_secs() << 32;
    let frac = (u64::from(duration.subsec_nanos()) << 32) / 1_000_000_000;
    secs.wrapping_add(frac)
}

/// A duration in units of 1/65536 s, the unit of RTCP's DLSR field, saturating at `u32::MAX`.
pub fn duration_to_ntp_short(duration: Duration) -> u32 {
    let units = duration.as_nanos().saturating_mul(65_536) / 1_000_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// A value in units of 1/65536 s (LSR/DLSR arithmetic) as a duration.
pub fn ntp_short_to_duration(units: u32) -> Duration {
    Duration::from_nanos(u64::from(units) * 1_000_000_000 / 65_536)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_is_ntp_2208988800() {
        let t = NtpTime::from_system_time(UNIX_EPOCH);
        assert_eq!(t.0 >> 32, NTP_UNIX_OFFSET_SECS);
        assert_eq!(t.0 & 0xffff_ffff, 0);
    }

    #[test]
    fn half_second_is_half_the_fraction() {
        let t = NtpTime::from_unix(Duration::from_millis(1500));
        assert_eq!(t.0 >> 32, NTP_UNIX_OFFSET_SECS + 1);
        assert_eq!(t.0 & 0xffff_ffff, 0x8000_0000);
        // Middle 32 bits: low 16 bits of seconds, high 16 bits of fraction.
        assert_eq!(
            t.middle_32(),
            (((NTP_UNIX_OFFSET_SECS + 1) as u32 & 0xffff) << 16) | 0x8000
        );
    }

    #[test]
    fn short_format_round_trips() {
        assert_eq!(duration_to_ntp_short(Duration::from_secs(1)), 65_536);
        assert_eq!(duration_to_ntp_short(Duration::from_millis(250)), 16_384);
        assert_eq!(ntp_short_to_duration(32_768), Duration::from_millis(500));
        assert_eq!(
            duration_to_ntp_short(Duration::from_secs(1 << 20)),
            u32::MAX
        );
    }

    #[test]
    fn add_moves_middle_bits() {
        let t = NtpTime::from_unix(Duration::from_secs(100));
        let later = t.plus(Duration::from_millis(250));
        assert_eq!(later.middle_32().wrapping_sub(t.middle_32()), 16_384);
    }
}
