//! One wall-clock read, crux's against the maintained TSC clocks (issue 15; see
//! `BENCHMARKS.md`, "Session 13"):
//!
//! ```text
//! cargo bench -p crux-runtime --bench clock -- --sample-count 200 --sample-size 1000
//! ```
//!
//! Every case yields Unix milliseconds, what a record stores, except the two quanta
//! `now` cases: quanta has only a monotonic clock, so `quanta_unix_ms` pairs it with the
//! system clock once, the nearest it comes to a wall time. After divan, unless
//! `CRUX_BENCH_SKIP_AGREEMENT` is set, each clock is read on every core in turn (the
//! thread pinned, then moved) for `CRUX_BENCH_AGREEMENT_SECS` seconds (default 10), and
//! how far each strays from the system clock read around it is printed: a clock anchored
//! once drifts with its rate's error and never sees a step of the system clock.
//!
//! A step can be made without touching the machine's clock: libfaketime (Debian package
//! `faketime`) shifts `CLOCK_REALTIME` for this process alone whenever its file changes:
//!
//! ```text
//! echo +0 > /tmp/offset
//! LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 \
//!   FAKETIME_TIMESTAMP_FILE=/tmp/offset FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 \
//!   CRUX_BENCH_AGREEMENT_SECS=12 target/release/deps/clock-* &
//! sleep 3; echo +2 > /tmp/offset; sleep 5; echo +0 > /tmp/offset   # 2 s forward, back
//! ```

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crux_runtime::clock::Timestamp;
use divan::Bencher;

fn main() {
    report_start_up();
    // Calibrate every clock before divan samples, so no case times a calibration: crux's
    // per-thread one (its first 5 ms read the system clock) and quanta's global one (up
    // to 200 ms, on the first `Clock::new`). fastant calibrates before `main`.
    let quanta_first = Instant::now();
    let _ = quanta_clock();
    let quanta_calibration = quanta_first.elapsed();
    let until = Instant::now() + Duration::from_millis(20);
    while Instant::now() < until {
        black_box(Timestamp::now());
    }
    println!(
        "quanta's first Clock::new (its calibration): {:.1} ms",
        quanta_calibration.as_secs_f64() * 1e3
    );
    divan::main();
    if std::env::var_os("CRUX_BENCH_SKIP_AGREEMENT").is_none() {
        let secs = std::env::var("CRUX_BENCH_AGREEMENT_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        agreement::report(Duration::from_secs(secs));
    }
}

/// The CPU time this process spent before `main`: fastant calibrates the TSC in a
/// constructor that every binary linking it runs at start-up, used or not.
fn report_start_up() {
    let cpu_ns: Option<u64> = std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok());
    if let Some(ns) = cpu_ns {
        println!(
            "CPU time before main (fastant's constructor included): {:.1} ms",
            ns as f64 / 1e6
        );
    }
    println!("fastant uses the TSC: {}", fastant::is_tsc_available());
}

fn system_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn quanta_clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// A wall clock on quanta: one system-clock reading paired with a raw counter reading,
/// extrapolated with quanta's calibrated rate (quanta itself offers no wall time).
struct QuantaWall {
    clock: &'static quanta::Clock,
    raw: u64,
    unix_nanos: u64,
}

impl QuantaWall {
    fn new() -> Self {
        let clock = quanta_clock();
        Self {
            clock,
            raw: clock.raw(),
            unix_nanos: system_unix_nanos(),
        }
    }

    #[inline]
    fn unix_nanos(&self) -> u64 {
        // `delta_as_nanos` gives 0 for a counter behind the anchor: never before it.
        self.unix_nanos + self.clock.delta_as_nanos(self.raw, self.clock.raw())
    }
}

/// crux's public path: `Timestamp::now`, Unix milliseconds.
#[divan::bench]
fn crux_timestamp_now() -> u64 {
    Timestamp::now().as_millis()
}

/// The system clock (a vDSO `clock_gettime(CLOCK_REALTIME)`) to Unix milliseconds.
#[divan::bench]
fn system_time_unix_ms() -> u64 {
    system_unix_nanos() / 1_000_000
}

/// fastant (fastrace's minstant fork) with an anchor built once: Unix milliseconds.
#[divan::bench]
fn fastant_unix_ms(b: Bencher) {
    let anchor = fastant::Anchor::new();
    b.bench(|| fastant::Instant::now().as_unix_nanos(&anchor) / 1_000_000);
}

/// fastant's monotonic `Instant::now` alone (no conversion to Unix time).
#[divan::bench]
fn fastant_instant_now() -> fastant::Instant {
    fastant::Instant::now()
}

/// quanta's `Clock::now` on a clock held by the caller: monotonic only, no wall time.
#[divan::bench]
fn quanta_clock_now(b: Bencher) {
    let clock = quanta_clock();
    b.bench(|| clock.now());
}

/// quanta's `Instant::now` (the global clock, after its per-thread mock check):
/// monotonic only.
#[divan::bench]
fn quanta_instant_now() -> quanta::Instant {
    quanta::Instant::now()
}

/// quanta's nearest to a wall time: `raw` and `delta_as_nanos` from one system-clock
/// anchor, to Unix milliseconds.
#[divan::bench]
fn quanta_unix_ms(b: Bencher) {
    let wall = QuantaWall::new();
    b.bench(|| wall.unix_nanos() / 1_000_000);
}

/// The floor every TSC clock shares: one `rdtsc`.
#[cfg(target_arch = "x86_64")]
#[divan::bench]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86_64.
    unsafe { std::arch::x86_64::_rdtsc() }
}

/// How far each clock strays from the system clock, on every core and across moves.
mod agreement {
    use std::time::{Duration, Instant};

    use crux_runtime::clock::Timestamp;

    use super::{QuantaWall, system_unix_nanos};

    /// The farthest a clock read outside the system clock read around it (µs), how many
    /// reads lay over a millisecond (the records' resolution) outside it and when the last
    /// did (s into the run), and where the clock was at the last read (µs; positive: ahead).
    #[derive(Default)]
    struct Stray {
        worst_ahead: i64,
        worst_behind: i64,
        outside: u64,
        last_outside: f64,
        last: i64,
    }

    impl Stray {
        /// A read `at` (ns) taken between system-clock reads `before` and `after`, `secs`
        /// into the run; `slack` is the read's own resolution (1 ms for a millisecond clock
        /// read as nanoseconds).
        fn add(&mut self, before: u64, at: u64, after: u64, slack: u64, secs: f64) {
            let ahead = at as i64 - after as i64;
            let behind = before as i64 - (at + slack) as i64;
            self.worst_ahead = self.worst_ahead.max(ahead / 1000);
            self.worst_behind = self.worst_behind.max(behind / 1000);
            if ahead.max(behind) > 1_000_000 {
                self.outside += 1;
                self.last_outside = secs;
            }
            self.last = (at as i64 + slack as i64 / 2 - (before / 2 + after / 2) as i64) / 1000;
        }
    }

    /// The CPUs this thread may run on.
    #[cfg(target_os = "linux")]
    fn cpus() -> Vec<usize> {
        // SAFETY: `cpu_set_t` is plain data; `sched_getaffinity` fills it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return vec![];
            }
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        }
    }

    /// Moves this thread to `cpu`.
    #[cfg(target_os = "linux")]
    fn pin(cpu: usize) {
        // SAFETY: as in `cpus`; a failure leaves the thread where it was.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn cpus() -> Vec<usize> {
        vec![]
    }

    #[cfg(not(target_os = "linux"))]
    fn pin(_: usize) {}

    pub(super) fn report(run: Duration) {
        let cpus = cpus();
        let fastant_anchor = fastant::Anchor::new();
        let quanta = QuantaWall::new();
        let (mut crux, mut fastant, mut quanta_wall) =
            (Stray::default(), Stray::default(), Stray::default());
        let start = Instant::now();
        let mut moves = 0u64;
        println!(
            "== each clock against the system clock read around it, {} s, cpus {cpus:?}, \
             moved every 1000 reads (load average: {}) ==",
            run.as_secs(),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        let mut next_report = Duration::from_secs(1);
        while start.elapsed() < run {
            if let Some(&cpu) = cpus.get(moves as usize % cpus.len().max(1)) {
                pin(cpu);
            }
            moves += 1;
            let secs = start.elapsed().as_secs_f64();
            for _ in 0..1000 {
                let before = system_unix_nanos();
                let c = Timestamp::now().as_millis() * 1_000_000;
                let f = fastant::Instant::now().as_unix_nanos(&fastant_anchor);
                let q = quanta.unix_nanos();
                let after = system_unix_nanos();
                crux.add(before, c, after, 1_000_000, secs);
                fastant.add(before, f, after, 0, secs);
                quanta_wall.add(before, q, after, 0, secs);
            }
            if start.elapsed() >= next_report || start.elapsed() >= run {
                next_report = start.elapsed() + Duration::from_secs(1);
                for (name, s) in [
                    ("crux", &crux),
                    ("fastant (anchored once)", &fastant),
                    ("quanta (anchored once)", &quanta_wall),
                ] {
                    println!(
                        "  {:>5.1} s  {name:<24} worst ahead {:>8} µs  behind {:>8} µs  \
                         {:>7} reads off > 1 ms, last at {:>5.2} s  now {:>+9} µs",
                        start.elapsed().as_secs_f64(),
                        s.worst_ahead,
                        s.worst_behind,
                        s.outside,
                        s.last_outside,
                        s.last
                    );
                }
            }
        }
    }
}
