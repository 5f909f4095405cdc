//! The records' timestamps parsed by `crux_view::time::parse_iso8601` (hand-written) and
//! by jiff (`Timestamp::from_str`), the maintained date-time crate the `crux` binary uses
//! for its `--since`/`--until` options: nanoseconds per timestamp, on the shapes records
//! carry (milliseconds and `Z` as crux and the TypeScript Crux write them, some with
//! microseconds, whole seconds or an offset).
//!
//! `cargo bench -p crux-view --bench iso8601` (`CRUX_BENCH_REPEAT` rounds, default 5;
//! the median and range of the rounds are printed; `CRUX_ISO_ONLY=hand|jiff` runs one
//! parser, for `valgrind --tool=callgrind`).

use std::hint::black_box;
use std::time::Instant;

use crux_view::time::parse_iso8601;

const N: usize = 1_000_000;

fn timestamps() -> Vec<String> {
    (0..N as u64)
        .map(|i| {
            let (day, secs) = (1 + (i / 86_400) % 28, i % 86_400);
            let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
            match i % 10 {
                // One in ten with microseconds, one with an offset, one in whole seconds.
                7 => format!(
                    "2026-11-{day:02}T{h:02}:{m:02}:{s:02}.{:06}Z",
                    i % 1_000_000
                ),
                8 => format!(
                    "2026-11-{day:02}T{h:02}:{m:02}:{s:02}.{:03}+02:00",
                    i % 1000
                ),
                9 => format!("2026-11-{day:02}T{h:02}:{m:02}:{s:02}Z"),
                _ => format!("2026-11-{day:02}T{h:02}:{m:02}:{s:02}.{:03}Z", i % 1000),
            }
        })
        .collect()
}

fn hand(texts: &[String]) -> i64 {
    texts
        .iter()
        .map(|t| parse_iso8601(black_box(t)).unwrap())
        .fold(0, i64::wrapping_add)
}

fn jiff(texts: &[String]) -> i64 {
    texts
        .iter()
        .map(|t| {
            black_box(t)
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_nanosecond() as i64
        })
        .fold(0, i64::wrapping_add)
}

fn summary(name: &str, mut ns: Vec<f64>) -> f64 {
    ns.sort_by(f64::total_cmp);
    let median = ns[ns.len() / 2];
    println!(
        "{name:<5} median {median:>6.1} ns a timestamp (min {:.1}, max {:.1})",
        ns[0],
        ns[ns.len() - 1]
    );
    median
}

fn main() {
    let rounds: usize = std::env::var("CRUX_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let only = std::env::var("CRUX_ISO_ONLY").unwrap_or_default();
    let texts = timestamps();
    let time = |f: fn(&[String]) -> i64| {
        let started = Instant::now();
        black_box(f(&texts));
        started.elapsed().as_secs_f64() * 1e9 / N as f64
    };
    if only == "hand" {
        black_box(hand(&texts));
        return;
    }
    if only == "jiff" {
        black_box(jiff(&texts));
        return;
    }
    // The same results, or the comparison means nothing.
    assert_eq!(hand(&texts), jiff(&texts));
    let (mut h, mut j) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        h.push(time(hand));
        j.push(time(jiff));
    }
    println!("{N} timestamps, {rounds} rounds (interleaved):");
    let h = summary("hand", h);
    let j = summary("jiff", j);
    println!("jiff / hand: {:.2}", j / h);
}
