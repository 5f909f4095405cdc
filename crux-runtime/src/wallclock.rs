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

use std::time::{SystemTime, UNIX_EPOCH};

/// How long a thread extrapolates from one reading of the system clock.
const REANCHOR_NS: u64 = 50_000_000;

/// The shortest interval a first calibration is measured over.
const CALIBRATE_NS: u64 = 2_000_000;

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
        let nanos = system_nanos();
        let tsc = rdtsc();
        let elapsed_ns = nanos.wrapping_sub(a.nanos);
        let elapsed_ticks = tsc.wrapping_sub(a.tsc);
        let renewed = if a.tsc == 0 || nanos < a.nanos || tsc < a.tsc || elapsed_ticks == 0 {
            // First reading on this thread, or a clock stepped backwards: start over.
            Anchor {
                tsc,
                nanos,
                scale: 0,
                span: 0,
            }
        } else if a.scale == 0 && elapsed_ns < CALIBRATE_NS {
            // Too short to calibrate: keep the first reading, ask the system clock.
            a
        } else {
            let measured = ((u128::from(elapsed_ns) << 32) / u128::from(elapsed_ticks)) as u64;
            // A rate off by more than 0.1 % means the system clock was stepped during the
            // interval, not that the TSC changed pace: keep the known rate.
            let scale = if a.scale != 0 && measured.abs_diff(a.scale) > a.scale / 1000 {
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
        };
        ANCHOR.with(|c| c.set(renewed));
        Some(nanos)
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
}
