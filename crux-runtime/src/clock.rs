//! Millisecond wall-clock timestamps and their ISO-8601 (`2026-01-02T03:04:05.678Z`) form.
//!
//! ```
//! use crux_runtime::clock::Timestamp;
//! let t = Timestamp::from_millis(1_767_323_045_678);
//! assert_eq!(t.to_string(), "2026-01-02T03:04:05.678Z");
//! assert_eq!("2026-01-02T03:04:05.678Z".parse::<Timestamp>().unwrap(), t);
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::json_text;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(u64);

/// A string that is not an ISO-8601 UTC timestamp of the form `YYYY-MM-DDTHH:MM:SS.sssZ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected an ISO-8601 UTC timestamp like 2026-01-02T03:04:05.678Z")]
pub struct TimestampError;

impl Timestamp {
    /// The current wall-clock time (a clock before 1970 reads as the epoch).
    ///
    /// Cheap: where the kernel keeps time with the TSC, most reads extrapolate from the
    /// last system-clock reading of this thread (renewed every 50 ms) instead of asking it.
    #[inline]
    pub fn now() -> Self {
        Self(crate::wallclock::now_millis())
    }

    /// A timestamp `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The last instant the ISO text can say: 9999-12-31T23:59:59.999Z (a four-digit year).
    const LAST_ISO: u64 = 253_402_300_799_999;

    /// Whether its ISO text says this very time: up to 9999-12-31T23:59:59.999Z. A later
    /// time is written as that last instant, so texts still sort as their times do.
    pub(crate) const fn fits_iso(self) -> bool {
        self.0 <= Self::LAST_ISO
    }

    /// `self - earlier` in milliseconds, never negative.
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This timestamp plus `ms` milliseconds.
    pub fn plus_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// The 24-byte ISO-8601 form; a time after 9999-12-31T23:59:59.999Z (which JavaScript's
    /// `Date` cannot hold either) is written as that instant.
    #[inline]
    pub fn to_iso_bytes(self) -> [u8; 24] {
        // Timestamps written one after another mostly fall in one of two seconds: records
        // made together carry now, and a boundary's events a lease minutes later too. The
        // last two seconds' texts are kept per thread (the one added last is looked at
        // first; a hit does not reorder them), and only the milliseconds are written.
        type Second = std::cell::Cell<(u64, [u8; 24])>;
        thread_local! {
            // `u64::MAX` is never a second of a time `to_iso_bytes` writes.
            static SECONDS: [Second; 2] =
                const { [const { Second::new((u64::MAX, [0; 24])) }; 2] };
        }
        let at = self.0.min(Self::LAST_ISO);
        let (secs, ms) = (at / 1000, at % 1000);
        let kept = SECONDS.try_with(|[last, before]| {
            let (second, text) = last.get();
            if second == secs {
                return text;
            }
            let (second, text) = before.get();
            if second == secs {
                return text;
            }
            let text = Self::second_text(secs);
            before.set(last.get());
            last.set((secs, text));
            text
        });
        let mut b = kept.unwrap_or_else(|_| Self::second_text(secs));
        b[20] = b'0' + (ms / 100) as u8;
        b[21..23].copy_from_slice(&json_text::pair(ms % 100));
        b
    }

    /// `YYYY-MM-DDTHH:MM:SS.000Z` for a whole second since the epoch.
    fn second_text(secs: u64) -> [u8; 24] {
        // Called about once a second per thread (`to_iso_bytes` keeps the seconds' texts):
        // the time of day is written from the seconds, two digits a step.
        let (days, sod) = (secs / 86_400, secs % 86_400);
        let mut b = *b"0000-00-00T00:00:00.000Z";
        b[..10].copy_from_slice(&Self::date_text(days));
        b[11..13].copy_from_slice(&json_text::pair(sod / 3600));
        b[14..16].copy_from_slice(&json_text::pair(sod / 60 % 60));
        b[17..19].copy_from_slice(&json_text::pair(sod % 60));
        b
    }

    /// `YYYY-MM-DD` for a day since the epoch.
    fn date_text(days: u64) -> [u8; 10] {
        let (y, m, d) = civil_from_days(days as i64);
        // `to_iso_bytes` saturates at 9999-12-31: the year has four digits.
        let y = y as u64;
        let mut b = *b"0000-00-00";
        b[..2].copy_from_slice(&json_text::pair(y / 100));
        b[2..4].copy_from_slice(&json_text::pair(y % 100));
        b[5..7].copy_from_slice(&json_text::pair(u64::from(m)));
        b[8..10].copy_from_slice(&json_text::pair(u64::from(d)));
        b
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The days of month `m` (1 to 12) of year `y` in the proleptic Gregorian calendar: the
/// day check of a parse, without converting the date to days and back.
fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Timestamp {
    /// `f` of the ISO-8601 text (built on the stack): the one place the bytes become a
    /// `&str`, for `Display`, `Serialize` and the envelope encoder.
    pub(crate) fn with_iso<R>(self, f: impl FnOnce(&str) -> R) -> R {
        let b = self.to_iso_bytes();
        // ASCII digits and separators only: never the empty fallback.
        f(std::str::from_utf8(&b).unwrap_or_default())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_iso(|text| f.write_str(text))
    }
}

/// `Timestamp(2026-01-02T03:04:05.678Z)`: the instant as people read it (a lease or a
/// span's start in a failed assertion), not a count of milliseconds.
impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_iso(|text| write!(f, "Timestamp({text})"))
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    /// Parses exactly `YYYY-MM-DDTHH:MM:SS.sssZ` (what JavaScript's `toISOString` writes).
    fn from_str(s: &str) -> Result<Self, TimestampError> {
        let b = s.as_bytes();
        if b.len() != 24 || &b[4..5] != b"-" || &b[7..8] != b"-" || b[10] != b'T' {
            return Err(TimestampError);
        }
        if b[13] != b':' || b[16] != b':' || b[19] != b'.' || b[23] != b'Z' {
            return Err(TimestampError);
        }
        let num = |r: std::ops::Range<usize>| -> Result<u64, TimestampError> {
            b[r].iter().try_fold(0u64, |acc, c| {
                c.is_ascii_digit()
                    .then(|| acc * 10 + u64::from(c - b'0'))
                    .ok_or(TimestampError)
            })
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
        if y < 1970 || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
            return Err(TimestampError);
        }
        if h > 23 || mi > 59 || sec > 59 {
            return Err(TimestampError);
        }
        // Reject dates like 02-31 that would normalise into another month.
        if d > days_in_month(y, mo) {
            return Err(TimestampError);
        }
        let days = days_from_civil(y as i64, mo as u32, d as u32);
        Ok(Self(
            (days as u64 * 86_400 + h * 3600 + mi * 60 + sec) * 1000 + ms,
        ))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.with_iso(|text| s.serialize_str(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_parses_exactly_when_it_is_a_calendar_day() {
        // Every day-of-month 0 to 32 of months 0 to 13 over four centuries (leap years, the
        // 100- and 400-year rules, days and months out of range): accepted exactly when it
        // converts to days and back.
        for y in 1970..2430u32 {
            for m in 0..=13u32 {
                for d in 0..=32u32 {
                    let text = format!("{y:04}-{m:02}-{d:02}T01:02:03.004Z");
                    let days = days_from_civil(i64::from(y), m, d);
                    let real = civil_from_days(days) == (i64::from(y), m, d);
                    match text.parse::<Timestamp>() {
                        Ok(at) => {
                            assert!(real, "{text} accepted");
                            assert_eq!(at.to_string(), text);
                        }
                        Err(_) => assert!(!real, "{text} refused"),
                    }
                }
            }
        }
    }

    #[test]
    fn dates_outside_the_supported_years_are_refused_and_the_last_one_kept() {
        assert!("1969-12-31T23:59:59.999Z".parse::<Timestamp>().is_err());
        let last = "9999-12-31T23:59:59.999Z";
        assert_eq!(last.parse::<Timestamp>().unwrap().to_string(), last);
    }

    #[test]
    fn a_time_past_the_last_iso_year_is_written_as_the_last_instant() {
        let last = "9999-12-31T23:59:59.999Z";
        let past_last = [
            253_402_300_800_000,   // 10000-01-01T00:00:00.000Z
            253_418_025_600_000,   // 10000-07-01: formerly written as 9999-07-01
            8_640_000_000_000_000, // JavaScript's last Date
            u64::MAX,
        ];
        for ms in past_last {
            let at = Timestamp::from_millis(ms);
            assert!(!at.fits_iso(), "{ms}");
            assert_eq!(at.to_string(), last, "{ms}");
        }
        let fits = Timestamp::from_millis(253_402_300_799_999);
        assert!(fits.fits_iso());
        assert_eq!(fits.to_string(), last);
    }

    #[test]
    fn formats_like_javascript_to_iso_string() {
        assert_eq!(
            Timestamp::from_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_millis(951_782_400_001).to_string(),
            "2000-02-29T00:00:00.001Z"
        );
        assert_eq!(
            Timestamp::from_millis(4_102_444_799_999).to_string(),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn debug_shows_the_instant() {
        let at = Timestamp::from_millis(951_782_400_001);
        assert_eq!(format!("{at:?}"), "Timestamp(2000-02-29T00:00:00.001Z)");
        assert_eq!(
            format!("{:?}", Some(at)),
            "Some(Timestamp(2000-02-29T00:00:00.001Z))"
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_impossible_dates() {
        for ms in [
            0u64,
            1,
            86_399_999,
            951_782_400_001,
            1_767_323_045_678,
            4_102_444_799_999,
        ] {
            let t = Timestamp::from_millis(ms);
            assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
        }
        for bad in [
            "2026-02-30T00:00:00.000Z",
            "2026-01-02T24:00:00.000Z",
            "2026-01-02 03:04:05.678Z",
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05.678+00:00",
            "１９７０-01-01T00:00:00.000Z",
        ] {
            assert_eq!(bad.parse::<Timestamp>(), Err(TimestampError), "{bad}");
        }
    }

    #[test]
    fn the_kept_second_never_changes_what_is_written() {
        // Same second, the next one, back again, a day boundary, the epoch.
        let times = [
            1_767_323_045_678u64,
            1_767_323_045_679,
            1_767_323_045_999,
            1_767_323_046_000,
            1_767_323_045_001,
            86_399_999,
            86_400_000,
            86_400_999,
            0,
            999,
        ];
        for ms in times {
            let t = Timestamp::from_millis(ms);
            // A fresh thread has no kept second: it formats from scratch.
            let fresh = std::thread::spawn(move || t.to_iso_bytes()).join().unwrap();
            assert_eq!(t.to_iso_bytes(), fresh, "{ms}");
        }
        assert_eq!(
            Timestamp::from_millis(86_400_999).to_string(),
            "1970-01-02T00:00:00.999Z"
        );
    }

    /// The text from the calendar conversion and `format!`, nothing kept.
    fn formatted(ms: u64) -> String {
        let ms = ms.min(Timestamp::LAST_ISO);
        let (secs, milli) = (ms / 1000, ms % 1000);
        let (days, sod) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
    }

    #[test]
    fn every_field_boundary_is_written_as_the_calendar_says() {
        // Each instant, the millisecond before and after: second, minute, hour, day,
        // month, year, leap day and century boundaries, the first and last instants.
        let instants: [u64; 12] = [
            0,
            1_767_323_045_000,   // 2026-01-02T03:04:05
            1_767_323_040_000,   // 2026-01-02T03:04:00
            1_767_322_800_000,   // 2026-01-02T03:00:00
            1_767_312_000_000,   // 2026-01-02T00:00:00
            1_769_904_000_000,   // 2026-02-01
            1_767_225_600_000,   // 2026-01-01
            951_782_400_000,     // 2000-02-29
            951_868_800_000,     // 2000-03-01
            4_107_542_400_000,   // 2100-03-01 (2100 is no leap year)
            946_684_800_000,     // 2000-01-01
            253_402_300_799_000, // 9999-12-31T23:59:59
        ];
        for at in instants {
            for ms in [at.saturating_sub(1), at, at + 1, at + 999] {
                let text = Timestamp::from_millis(ms).to_iso_bytes();
                assert_eq!(std::str::from_utf8(&text).unwrap(), formatted(ms), "{ms}");
            }
        }
        // Days a step over the whole range (every year's dates, the kept date replaced on
        // each), then back and forth between two days, as records alternate.
        let mut ms = 0;
        while ms <= Timestamp::LAST_ISO {
            let text = Timestamp::from_millis(ms).to_iso_bytes();
            assert_eq!(std::str::from_utf8(&text).unwrap(), formatted(ms), "{ms}");
            ms += 86_400_000 * 13 + 3_723_456;
        }
        for ms in [0, 86_400_000, 999, 86_399_999, 86_400_001, 1] {
            let text = Timestamp::from_millis(ms).to_iso_bytes();
            assert_eq!(std::str::from_utf8(&text).unwrap(), formatted(ms), "{ms}");
        }
    }

    #[test]
    fn seconds_written_in_turn_are_written_as_the_calendar_says() {
        // Two, then three seconds in turn (more than are kept), on one day and on two, in
        // orders that reuse each kept second and push each out.
        let a = 1_767_323_045_678;
        let b = a + 660_000; // a lease, minutes later
        let c = a + 86_400_000 + 1; // the next day
        let d = a - 1_000; // the second before
        let orders: [&[u64]; 5] = [
            &[a, b, a, b, a + 1, b + 998],
            &[a, b, c, a, c, b, c, d, a, d],
            &[c, c, a, a, b, b, c, d, d],
            &[d, a, b, c, d, a, b, c],
            &[0, 999, 1_000, 0, 86_400_000, 999],
        ];
        for order in orders {
            // A fresh thread each: nothing kept from the others.
            let order = order.to_vec();
            std::thread::spawn(move || {
                for ms in order {
                    let text = Timestamp::from_millis(ms).to_iso_bytes();
                    assert_eq!(std::str::from_utf8(&text).unwrap(), formatted(ms), "{ms}");
                }
            })
            .join()
            .unwrap();
        }
    }

    #[test]
    fn now_is_recent_and_durations_never_negative() {
        let now = Timestamp::now();
        assert!(now.as_millis() > 1_700_000_000_000);
        assert_eq!(Timestamp::from_millis(5).millis_since(now), 0);
    }
}
