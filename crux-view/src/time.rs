//! Timestamps and durations as the records carry them and as the viewer prints them.
//!
//! Records hold ISO-8601 UTC strings (`2026-11-25T10:00:00.123Z`); the viewer needs them as
//! numbers only to order records across segments and to compute durations, so a small
//! parser for that one format (with an optional numeric offset) is enough.

/// Nanoseconds since the Unix epoch.
pub type Nanos = i64;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `None` names nothing, the caller says
/// which field was wrong.
pub fn parse_iso8601(text: &str) -> Option<Nanos> {
    let bytes = text.as_bytes();
    // The format is ASCII throughout; checking that first keeps every slice below on a
    // character boundary whatever a store holds.
    if !text.is_ascii()
        || bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't')
    {
        return None;
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let year = digits(&text[0..4])?;
    let month = digits(&text[5..7])?;
    let day = digits(&text[8..10])?;
    let hour = digits(&text[11..13])?;
    let minute = digits(&text[14..16])?;
    let second = digits(&text[17..19])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: i64 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        for (i, b) in fraction.bytes().take(len).enumerate() {
            if i < 9 {
                nanos += i64::from(b - b'0') * 10_i64.pow(8 - i as u32);
            }
        }
        rest = &fraction[len..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h = digits(&rest[1..3])?;
            let m = digits(&rest[4..6])?;
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn digits(text: &str) -> Option<i64> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    }

    #[test]
    fn rejects_other_text() {
        for bad in [
            "",
            "yesterday",
            "2026-11-25 10:00:00Z",
            "2026-13-25T10:00:00Z",
            "2026-11-25T10:00:00",
            "2026-11-25T10:00:00.Z",
            "2026-11-25T10:00:00.1+0100",
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
