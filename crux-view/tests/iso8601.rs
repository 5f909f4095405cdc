//! The hand-written ISO-8601 parser agrees with jiff, the maintained date-time crate, on
//! every shape of timestamp records carry, and refuses what is not one.

use crux_view::time::parse_iso8601;

fn jiff(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_nanosecond() as i64)
}

#[test]
fn the_parser_agrees_with_jiff_on_the_timestamps_records_carry() {
    let mut checked = 0;
    for (year, month, day) in [
        (1970, 1, 1),
        (1969, 12, 31),
        (2000, 2, 29),
        (2024, 2, 29),
        (2026, 11, 25),
        (2100, 3, 1),
        // The ends of what nanoseconds in an i64 hold.
        (2261, 12, 31),
        (1678, 1, 1),
    ] {
        for time in ["00:00:00", "10:05:09", "23:59:59"] {
            for fraction in ["", ".1", ".123", ".123456", ".123456789"] {
                for zone in ["Z", "z", "+00:00", "+02:00", "-05:30", "+14:00", "-12:00"] {
                    let text = format!("{year:04}-{month:02}-{day:02}T{time}{fraction}{zone}");
                    let ours = parse_iso8601(&text);
                    assert!(ours.is_some(), "{text}");
                    assert_eq!(ours, jiff(&text), "{text}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 8 * 3 * 5 * 7);
}

/// (jiff also takes a space for the `T`, and years past 2262, which records never hold.)
#[test]
fn both_refuse_what_is_not_a_timestamp() {
    for text in [
        "",
        "2026-11-25",
        "2026-11-25T10:00:00",
        "2026-13-01T00:00:00Z",
        "2026-11-25T24:00:00Z",
        "2026-11-25T10:60:00Z",
        "2026-11-25T10:00:00.Z",
        "2026-11-25T10:00:00+2:00",
        "２０２６-11-25T10:00:00Z",
    ] {
        assert_eq!(parse_iso8601(text), None, "{text}");
        assert_eq!(jiff(text), None, "{text}");
    }
}
