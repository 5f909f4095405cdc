//! Timestamps and durations as the records carry them and as the viewer prints them.
//!
//! Records hold ISO-8601 UTC strings (`2026-11-25T10:00:00.123Z`); the viewer needs them as
//! numbers only to order records across segments and to compute durations. They are parsed
//! by jiff, the date-time crate the `crux` binary uses for its options too. (A hand-written
//! parser did this until it was measured against jiff on the records' timestamps: 617
//! instructions a timestamp to jiff's 600, 37 ns to 46 ns, and 2.5 % of the instructions of
//! a `crux runs` scan; no reason to keep it.)

/// Nanoseconds since the Unix epoch.
pub type Nanos = i64;

/// Parses an RFC 3339 instant, `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (and the other
/// spellings jiff reads: `t`, `z`, a space for the `T`, `±HHMM`); `None` for anything
/// else, or an instant nanoseconds in an `i64` cannot hold (past 2262). The caller says
/// which field was wrong.
pub fn parse_iso8601(text: &str) -> Option<Nanos> {
    let instant: jiff::Timestamp = text.parse().ok()?;
    i64::try_from(instant.as_nanosecond()).ok()
}

/// A duration for people: `850ms`, `1.25s`, `2m05s`, `1h02m`.
pub fn format_duration(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "-".to_owned();
    }
    if ms.round() < 1000.0 {
        if ms.fract() == 0.0 || ms >= 100.0 {
            return format!("{}ms", ms.round() as u64);
        }
        return format!("{:.1}ms", ms);
    }
    let secs = ms / 1000.0;
    if secs < 60.0 {
        let text = format!("{secs:.2}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        return format!("{text}s");
    }
    let total = secs.round() as u64;
    if total < 3600 {
        format!("{}m{:02}s", total / 60, total % 60)
    } else {
        format!("{}h{:02}m", total / 3600, (total % 3600) / 60)
    }
}

/// Milliseconds between two instants, never negative (clocks of two hosts can disagree).
pub fn millis_between(start: Nanos, end: Nanos) -> f64 {
    (end.saturating_sub(start)).max(0) as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_record_timestamp_format() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_iso8601("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(
            parse_iso8601("2026-11-25T10:00:00.123Z"),
            Some(1_795_600_800_123_000_000)
        );
        assert_eq!(
            parse_iso8601("2026-11-25T11:00:00.123+01:00"),
            parse_iso8601("2026-11-25T10:00:00.123Z")
        );
        assert_eq!(
            parse_iso8601("2026-11-25T10:00:00.123456789Z"),
            Some(1_795_600_800_123_456_789)
        );
        // Other spellings of the same instant.
        for same in [
            "2026-11-25t10:00:00.123z",
            "2026-11-25 10:00:00.123Z",
            "2026-11-25T11:00:00.123+0100",
            "2026-11-25T05:30:00.123-04:30",
        ] {
            assert_eq!(
                parse_iso8601(same),
                Some(1_795_600_800_123_000_000),
                "{same}"
            );
        }
        assert_eq!(parse_iso8601("1969-12-31T23:59:59.999Z"), Some(-1_000_000));
        assert_eq!(
            parse_iso8601("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000_000_000)
        );
    }

    #[test]
    fn rejects_other_text() {
        for bad in [
            "",
            "yesterday",
            "2026-11-25",
            "2026-13-25T10:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T10:00:00",
            "2026-11-25T10:00:00.Z",
            "2026-11-25T10:00:00+2:00",
            "9999-12-31T00:00:00Z",
            "２０２６-11-25T10:00:00Z",
            // Multi-byte characters where digits belong: refused, not a slicing panic.
            "2026-11-25T10:00:0\u{e9}00Z",
            "2026-11-25T10:0\u{e9}0:00Z",
            "2026-11-25T10:00:00.1+0\u{e9}00",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_durations_for_people() {
        assert_eq!(format_duration(0.0), "0ms");
        assert_eq!(format_duration(12.0), "12ms");
        assert_eq!(format_duration(0.3), "0.3ms");
        assert_eq!(format_duration(999.4), "999ms");
        assert_eq!(format_duration(999.6), "1s");
        assert_eq!(format_duration(1250.0), "1.25s");
        assert_eq!(format_duration(2000.0), "2s");
        assert_eq!(format_duration(125_000.0), "2m05s");
        assert_eq!(format_duration(3_720_000.0), "1h02m");
        assert_eq!(format_duration(f64::NAN), "-");
    }
}
