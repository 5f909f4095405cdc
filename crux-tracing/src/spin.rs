//! A lock for the table's slots whose release is a plain store.
//!
//! `std`'s `Mutex` releases with an atomic swap (to learn whether a waiter must be woken):
//! each locked table operation is two atomic read-modify-writes, and a recorded span makes
//! three (insert, the lookup on enter, the removal on close). A slot is locked for a few
//! dozen instructions, by its own span's callbacks (or an insert meeting it, rarely), so
//! a waiter spins, then yields to the scheduler (the holder was most likely preempted),
//! then, should the holder stay away, sleeps in short naps it wakes from by itself, so a
//! waiter never burns a core for long, nor keeps a descheduled holder from its core; no
//! waiter is ever woken by the holder, so the release need not look for sleepers.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How many times a waiter spins before it yields its time slice (the holder is then
/// most likely preempted).
const SPINS: u32 = 64;

/// How many times a waiter yields before it sleeps (the holder is off its core for longer
/// than a few time slices of the others).
const YIELDS: u32 = 16;

/// A waiter's first nap, doubled at each further one up to [`LONGEST_NAP`].
const FIRST_NAP: Duration = Duration::from_micros(50);

/// A waiter's longest nap: how late it may see the lock free, once it has waited that long.
const LONGEST_NAP: Duration = Duration::from_millis(1);

/// A value behind a spin lock. No poisoning: the table's own updates under it (an
/// assignment, `mem::replace`, `Option::take`) cannot stop half-way, and a closure run
/// under it by `Table::with` that panics part way leaves a value that is still whole, only
/// partly updated (the layer's `on_record` sets a span's new fields one by one: some of
/// them set), which the next holder uses as it is.
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a `SpinGuard`, and one guard exists at a time
// (`lock` sets `locked` with acquire ordering and the guard's drop clears it with release
// ordering), so sharing the lock hands the value from thread to thread, as a `Mutex` does.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Whether the lock is held (by anyone), for tests.
    #[cfg(test)]
    pub(crate) fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }

    /// Waits for the lock: one atomic swap when it is free.
    #[inline(always)]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        if self.locked.swap(true, Ordering::Acquire) {
            self.lock_contended();
        }
        SpinGuard {
            lock: self,
            _value: PhantomData,
        }
    }

    #[cold]
    fn lock_contended(&self) {
        let (mut spins, mut yields, mut nap) = (0, 0, FIRST_NAP);
        loop {
            // Read-only while it is held, so waiting does not take the line from the holder.
            while self.locked.load(Ordering::Relaxed) {
                if spins < SPINS {
                    spins += 1;
                    std::hint::spin_loop();
                } else if yields < YIELDS {
                    yields += 1;
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(nap);
                    nap = (nap * 2).min(LONGEST_NAP);
                }
            }
            if !self.locked.swap(true, Ordering::Acquire) {
                return;
            }
        }
    }
}

/// The locked value; dropping it releases the lock (a store).
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    /// What the guard lends is a `&mut T`: sharing the guard shares `&T` between threads,
    /// so it is `Sync` only when `T` is, as `MutexGuard` (the lock alone would make it
    /// `Sync` whenever `T` is `Send`).
    _value: PhantomData<&'a mut T>,
}

// The guard of a `Send` but not `Sync` value is not `Sync` (else `&guard` sent to another
// thread would share a `Cell`): this names `AmbiguousIfSync::check` for such a guard,
// which compiles only if exactly one impl applies, the `Sync` one not.
const _: fn() = || {
    trait AmbiguousIfSync<A> {
        fn check() {}
    }
    impl<T: ?Sized> AmbiguousIfSync<()> for T {}
    impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
    let _ = <SpinGuard<'static, std::cell::Cell<u8>> as AmbiguousIfSync<_>>::check;
};

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock, so nothing else reaches the value.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow of the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::SpinLock;
    use std::sync::Arc;

    /// Threads adding under the lock lose no update, also when their holds are long enough
    /// to make the others spin and yield.
    #[test]
    fn updates_under_the_lock_are_not_lost() {
        let lock = Arc::new(SpinLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        let mut v = lock.lock();
                        let read = *v;
                        if (i + t) % 1000 == 0 {
                            std::thread::yield_now();
                        }
                        *v = read + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 80_000);
    }

    /// A waiter for a lock held long (its holder preempted or, here, asleep) sleeps rather
    /// than spin or yield the whole time: its CPU time stays a small part of the wait.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_long_wait_sleeps() {
        use std::time::Duration;

        /// This thread's time on a CPU (`/proc/thread-self/schedstat`'s first field), if
        /// the kernel reports it.
        fn cpu_time() -> Option<Duration> {
            let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
            let ns = stat.split_whitespace().next()?.parse().ok()?;
            Some(Duration::from_nanos(ns))
        }

        let lock = Arc::new(SpinLock::new(0u32));
        let held = lock.lock();
        let waiter = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                let start = cpu_time();
                *lock.lock() += 1;
                Some(cpu_time()? - start?)
            })
        };
        std::thread::sleep(Duration::from_millis(400));
        drop(held);
        let Some(busy) = waiter.join().unwrap() else {
            return; // no per-thread CPU time here: nothing to compare
        };
        assert!(
            busy < Duration::from_millis(60),
            "waited on a CPU for {busy:?}"
        );
        assert_eq!(*lock.lock(), 1);
    }

    /// A panic while the lock is held releases it.
    #[test]
    fn a_panic_while_held_releases_the_lock() {
        let lock = Arc::new(SpinLock::new(1));
        let held = lock.clone();
        let panicked = std::thread::spawn(move || {
            let _v = held.lock();
            panic!("while held");
        })
        .join();
        assert!(panicked.is_err());
        *lock.lock() += 1;
        assert_eq!(*lock.lock(), 2);
    }
}
