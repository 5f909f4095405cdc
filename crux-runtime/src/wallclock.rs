//! The wall clock behind [`Timestamp::now`](crate::clock::Timestamp::now), cheap enough
//! for two reads per span.
//!
//! A vDSO `clock_gettime` costs about 20 ns on the machines we measure (a serialising
//! `rdtsc` plus a seqlock); a span needs two. When the kernel itself keeps time with the
//! TSC (clocksource `tsc`, which Linux selects only when the counter is invariant and
//! synchronised across cores), each thread reads `clock_gettime` once per
//! [`REANCHOR_NS`] and extrapolates in between from a plain `rdtsc`, scaled by a
//! per-thread calibration against the system clock. Steps of the system clock (NTP,
//! `date -s`) are therefore picked up within 50 ms, and slewing drifts the result by
//! microseconds at most: far below the millisecond resolution of the records. Anywhere
//! else (another clocksource, another architecture) it is `SystemTime::now`.
//!
//! Why not `minstant` (fastant, its fork, which fastrace uses) or `quanta`: both read the
//! same `rdtsc` and cost the same time per read, but take more instructions for a Unix
//! time (quanta has no wall clock at all), trust the CPU's invariant-TSC bit where the
//! kernel may have rejected the TSC, calibrate once per process (fastant in a constructor
//! every binary linking it runs, about 20 ms) and extrapolate from an anchor the caller
//! keeps, so a step of the system clock goes unseen until the caller builds a new one.
//! Measured in `BENCHMARKS.md`, "Session 13: the wall clock against minstant and quanta".

use std::time::{SystemTime, UNIX_EPOCH};

/// How long a thread extrapolates from one reading of the system clock.
const REANCHOR_NS: u64 = 50_000_000;

/// The shortest interval a first calibration is measured over.
const CALIBRATE_NS: u64 = 5_000_000;

/// Nanoseconds since the Unix epoch from the system clock (0 before 1970).
fn system_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Milliseconds since the Unix epoch.
#[inline]
pub(crate) fn now_millis() -> u64 {
    tsc::now_nanos() / 1_000_000
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tsc {
    use std::cell::Cell;
    use std::sync::OnceLock;

    use super::{CALIBRATE_NS, REANCHOR_NS, system_nanos};

    /// One thread's reading of the system clock and the TSC at the same moment, and the
    /// TSC's rate (nanoseconds per tick, 32.32 fixed point; 0 until calibrated).
    #[derive(Clone, Copy)]
    struct Anchor {
        tsc: u64,
        nanos: u64,
        scale: u64,
        /// Ticks after `tsc` at which the anchor is renewed.
        span: u64,
    }

    /// A thread's [`Anchor`], a cell per field, so the fast path loads only the three it
    /// reads from thread-local storage. Only this thread writes them (at a renewal), so a
    /// read never mixes two anchors.
    struct AnchorCell {
        tsc: Cell<u64>,
        nanos: Cell<u64>,
        scale: Cell<u64>,
        span: Cell<u64>,
    }

    impl AnchorCell {
        fn get(&self) -> Anchor {
            Anchor {
                tsc: self.tsc.get(),
                nanos: self.nanos.get(),
                scale: self.scale.get(),
                span: self.span.get(),
            }
        }

        fn set(&self, a: Anchor) {
            self.tsc.set(a.tsc);
            self.nanos.set(a.nanos);
            self.scale.set(a.scale);
            self.span.set(a.span);
        }
    }

    thread_local! {
        static ANCHOR: AnchorCell = const {
            AnchorCell {
                tsc: Cell::new(0),
                nanos: Cell::new(0),
                scale: Cell::new(0),
                span: Cell::new(0),
            }
        };
    }

    /// Whether the kernel's own clock runs on the TSC.
    fn usable() -> bool {
        static USABLE: OnceLock<bool> = OnceLock::new();
        *USABLE.get_or_init(|| {
            std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc")
        })
    }

    #[inline]
    fn rdtsc() -> u64 {
        // SAFETY: `rdtsc` has no preconditions on x86_64; it reads a counter.
        #[allow(unused_unsafe)]
        unsafe {
            std::arch::x86_64::_rdtsc()
        }
    }

    /// Nanoseconds since the epoch: extrapolated from the TSC; read from the system clock
    /// when the anchor is renewed (every 50 ms) or not yet calibrated, and always where the
    /// TSC is not the kernel's clock.
    #[inline]
    pub(super) fn now_nanos() -> u64 {
        ANCHOR.with(|a| {
            let scale = a.scale.get();
            if scale != 0 {
                let ticks = rdtsc().wrapping_sub(a.tsc.get());
                if ticks < a.span.get() {
                    return a.nanos.get() + ((u128::from(ticks) * u128::from(scale)) >> 32) as u64;
                }
            }
            slow(a.get()).unwrap_or_else(system_nanos)
        })
    }

    #[cold]
    fn slow(a: Anchor) -> Option<u64> {
        if !usable() {
            return None;
        }
        let (nanos, tsc) = read_pair(rdtsc, system_nanos)?;
        ANCHOR.with(|c| c.set(renew(a, nanos, tsc)));
        Some(nanos)
    }

    /// The widest a pair's two TSC reads may lie apart: 10 000 ticks, 2–10 µs at the
    /// 1–5 GHz invariant TSCs run at. A vDSO `clock_gettime` takes tens of nanoseconds; a
    /// wider bracket means the thread was interrupted or preempted between the reads.
    const TIGHT_TICKS: u64 = 10_000;

    /// Reads of a pair before giving up (the caller then uses the system clock alone).
    const PAIR_TRIES: u32 = 4;

    /// The system clock and the TSC at one moment: the TSC read on both sides of the
    /// clock, its midpoint kept, and read again while the two lie far apart. A thread
    /// preempted between a lone clock read and a lone TSC read (milliseconds on a loaded
    /// machine) would pair the clock with a tick from later, and every time extrapolated
    /// from that anchor, and the rate measured from it, would be off by as much.
    pub(super) fn read_pair(
        mut tsc: impl FnMut() -> u64,
        mut clock: impl FnMut() -> u64,
    ) -> Option<(u64, u64)> {
        for _ in 0..PAIR_TRIES {
            let before = tsc();
            let nanos = clock();
            let after = tsc();
            if after >= before && after - before <= TIGHT_TICKS {
                return Some((nanos, before + (after - before) / 2));
            }
        }
        None
    }

    /// The anchor after reading the pair `(nanos, tsc)`: the first reading, a calibration
    /// once [`CALIBRATE_NS`] have passed since it, then a renewed rate at each renewal.
    fn renew(a: Anchor, nanos: u64, tsc: u64) -> Anchor {
        let elapsed_ns = nanos.wrapping_sub(a.nanos);
        let elapsed_ticks = tsc.wrapping_sub(a.tsc);
        if a.tsc == 0 || nanos < a.nanos || tsc < a.tsc || elapsed_ticks == 0 {
            // First reading on this thread, or a clock stepped backwards: start over.
            return Anchor {
                tsc,
                nanos,
                scale: 0,
                span: 0,
            };
        }
        if a.scale == 0 && elapsed_ns < CALIBRATE_NS {
            // Too short to calibrate: keep the first reading, ask the system clock.
            return a;
        }
        let measured = ((u128::from(elapsed_ns) << 32) / u128::from(elapsed_ticks)) as u64;
        // A rate off by more than 1 % means the system clock was stepped during the
        // interval (0.5 ms or more in a 50 ms renewal), not that the TSC changed pace:
        // keep the known rate. Within 1 % the new rate wins, so a first calibration
        // measured over a short interval (each pair within half a bracket, 5 µs at the
        // slowest TSC: ≤ 0.2 % over 5 ms) is corrected at the first renewal instead of
        // being kept for the thread's life.
        let scale = if a.scale != 0 && measured.abs_diff(a.scale) > a.scale / 100 {
            a.scale
        } else {
            measured
        };
        Anchor {
            tsc,
            nanos,
            scale,
            span: if scale == 0 {
                0
            } else {
                ((u128::from(REANCHOR_NS) << 32) / u128::from(scale)) as u64
            },
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn extrapolates_once_calibrated_where_the_kernel_uses_the_tsc() {
            // Reads until calibrated, or 1 s: a thread preempted across the calibration
            // window gets its two reads on a later pass instead of failing the test.
            let until = system_nanos() + 1_000_000_000;
            loop {
                let _ = now_nanos();
                if ANCHOR.with(|a| a.scale.get()) != 0 || system_nanos() >= until {
                    break;
                }
            }
            let a = ANCHOR.with(AnchorCell::get);
            assert_eq!(
                a.scale != 0,
                usable(),
                "calibrated iff the clocksource is tsc"
            );
            if usable() {
                // Between 0.1 and 10 GHz.
                let ghz = (1u64 << 32) as f64 / a.scale as f64;
                assert!((0.1..10.0).contains(&ghz), "{ghz} GHz");
            }
        }

        #[test]
        fn a_pair_read_across_a_preemption_is_read_again() {
            // The TSC jumps 3 ms (at 1 GHz) between the first pair's reads: that pair is
            // refused; the second is tight and its midpoint kept.
            let mut ticks = [1_000, 3_001_000, 5_000_000, 5_000_100].into_iter();
            let mut clocks = [7_000, 9_000].into_iter();
            let pair = read_pair(|| ticks.next().unwrap(), || clocks.next().unwrap());
            assert_eq!(pair, Some((9_000, 5_000_050)));
            // Never tight: no pair (the caller reads the system clock alone).
            let mut t = 0u64;
            let never = read_pair(
                || {
                    t += 1_000_000;
                    t
                },
                || 1,
            );
            assert_eq!(never, None);
        }

        #[test]
        fn a_first_rate_off_by_a_little_is_corrected_and_a_step_is_not_taken_as_a_rate() {
            const GHZ: u64 = 1 << 32; // 1 ns per tick, 32.32 fixed point
            let first = renew(
                Anchor {
                    tsc: 0,
                    nanos: 0,
                    scale: 0,
                    span: 0,
                },
                1_000_000_000,
                1_000,
            );
            // Too soon: no rate yet.
            let early = renew(first, 1_000_000_000 + 1_000_000, 1_000 + 1_000_000);
            assert_eq!(early.scale, 0);
            // Calibrated over 5 ms by pairs off by 25 µs together: 0.5 % fast.
            let calibrated = renew(early, 1_000_000_000 + 5_025_000, 1_000 + 5_000_000);
            let off = calibrated.scale.abs_diff(GHZ) as f64 / GHZ as f64;
            assert!((0.004..0.006).contains(&off), "{off}");
            // The renewal 50 ms later measures the true rate and keeps it.
            let renewed = renew(
                calibrated,
                calibrated.nanos + 50_000_000,
                calibrated.tsc + 50_000_000,
            );
            assert_eq!(renewed.scale, GHZ);
            // A clock stepped 5 ms forward during the next 50 ms: the rate stays.
            let stepped = renew(
                renewed,
                renewed.nanos + 55_000_000,
                renewed.tsc + 50_000_000,
            );
            assert_eq!(stepped.scale, GHZ);
            assert_eq!(
                stepped.nanos,
                renewed.nanos + 55_000_000,
                "the step itself is taken"
            );
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod tsc {
    #[inline]
    pub(super) fn now_nanos() -> u64 {
        super::system_nanos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_system_clock_to_the_millisecond() {
        // Long enough to pass calibration and several renewals.
        let until = system_nanos() + 3 * REANCHOR_NS;
        let mut reads = 0u64;
        while system_nanos() < until {
            let before = system_nanos() / 1_000_000;
            let now = now_millis();
            let after = system_nanos() / 1_000_000;
            assert!(
                now + 1 >= before && now <= after + 1,
                "{now} outside [{before}, {after}] ±1 ms"
            );
            reads += 1;
        }
        assert!(reads > 100);
    }

    /// How far a read may lie outside the system clock read around it: generous on
    /// purpose, the records' resolution (a millisecond). The extrapolation's own error is
    /// far smaller: a first rate off by at most 0.2 % over a 50 ms anchor is 0.1 ms, a
    /// pair's half bracket microseconds. A preemption anywhere in the loop only widens the
    /// bracket, so load cannot fail the check.
    #[cfg(target_os = "linux")]
    const TOLERANCE_NS: u64 = 1_000_000;

    /// Reads the clock, in nanoseconds, for `run_ns` of the system clock and at least
    /// `min_reads` times, calling `before_read` ahead of each read. Every read must lie within the system clock read
    /// around it and never fall behind an earlier read of the thread (a duration measured
    /// with two reads is never negative beyond the tolerance), both ± [`TOLERANCE_NS`].
    /// Returns how many reads it made.
    #[cfg(target_os = "linux")]
    fn read_bracketed(run_ns: u64, min_reads: u64, mut before_read: impl FnMut()) -> u64 {
        let until = system_nanos() + run_ns;
        let (mut reads, mut latest) = (0u64, 0u64);
        while system_nanos() < until || reads < min_reads {
            before_read();
            let before = system_nanos();
            let now = tsc::now_nanos();
            let after = system_nanos();
            assert!(
                now + TOLERANCE_NS >= before && now <= after + TOLERANCE_NS,
                "{now} outside [{before}, {after}] ± 1 ms"
            );
            assert!(
                now + TOLERANCE_NS >= latest,
                "{now} went back from {latest}"
            );
            latest = latest.max(now);
            reads += 1;
        }
        reads
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn agrees_with_the_system_clock_on_every_core_at_once() {
        // A thread pinned to each core, all reading together through calibration and
        // several renewals: each core's counter, extrapolated from anchors taken on it.
        let threads: Vec<_> = cores::allowed()
            .into_iter()
            .map(|cpu| {
                std::thread::spawn(move || {
                    // Unpinned where pinning is refused (a sandbox): then only agreement
                    // is checked, wherever the thread runs.
                    if !cores::pin(cpu) {
                        eprintln!("could not pin a thread to cpu {cpu}: reading unpinned");
                    }
                    read_bracketed(3 * REANCHOR_NS, 0, || {})
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().unwrap() > 100);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_moved_between_cores_agrees_and_never_goes_back() {
        // Moved to the next allowed core before every read, so reads extrapolate the
        // counter of one core from an anchor (a TSC reading and its rate) taken on
        // another: right only while the cores' counters agree, which is what the kernel
        // checked before choosing the `tsc` clocksource, the condition `wallclock` rests on.
        // A thread of its own: the test harness's (the main thread under
        // `--test-threads=1`) is not left pinned. A move waits for the other core, a
        // scheduler tick or more while it is busy: on a loaded machine 150 ms may hold
        // only a few dozen moves, so the reads go on until 50 have been made.
        let cpus = cores::allowed();
        let moving = cpus.clone();
        let (reads, crossings, pinned) = std::thread::spawn(move || {
            let (mut next, mut last_cpu, mut crossings, mut pinned) = (0, None, 0u64, true);
            let reads = read_bracketed(3 * REANCHOR_NS, 50, || {
                pinned &= cores::pin(moving[next % moving.len()]);
                next += 1;
                let cpu = cores::current();
                if last_cpu.is_some_and(|last| last != cpu) {
                    crossings += 1;
                }
                last_cpu = Some(cpu);
            });
            (reads, crossings, pinned)
        })
        .join()
        .unwrap();
        // Where pinning is refused or has no effect (a sandbox), the reads were still
        // checked, but nothing shows they crossed cores.
        if !pinned {
            eprintln!("could not move a thread between cpus {cpus:?}: crossings not checked");
        } else if cpus.len() > 1 {
            assert!(crossings > reads / 4, "{crossings} of {reads} reads moved");
        }
    }

    /// Pinning the calling thread to one CPU (tests only).
    #[cfg(target_os = "linux")]
    mod cores {
        /// The CPUs this thread may run on (at least the one it is on).
        pub(super) fn allowed() -> Vec<usize> {
            // SAFETY: `cpu_set_t` is plain data that `sched_getaffinity` fills.
            let cpus: Vec<usize> = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                    return vec![current()];
                }
                (0..libc::CPU_SETSIZE as usize)
                    .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
                    .collect()
            };
            if cpus.is_empty() {
                vec![current()]
            } else {
                cpus
            }
        }

        /// Moves this thread to `cpu` (and keeps it there); whether it runs there now
        /// (`false` where the call is refused, or accepted and ignored, as in some sandboxes).
        pub(super) fn pin(cpu: usize) -> bool {
            // SAFETY: as in `allowed`; the set names one CPU the thread may use.
            let status = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
            };
            status == 0 && current() == cpu
        }

        /// The CPU this thread runs on now.
        pub(super) fn current() -> usize {
            // SAFETY: no arguments; -1 only where the kernel cannot say.
            usize::try_from(unsafe { libc::sched_getcpu() }).unwrap_or(0)
        }
    }
}
