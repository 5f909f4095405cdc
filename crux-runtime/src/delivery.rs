//! The delivery pipeline: a bounded queue filled on the hot path and a background std
//! thread that assigns record ids, validates records and writes the sinks.
//!
//! The worker is a plain thread, not a task, so a sink that blocks or hangs never blocks
//! the async runtime. While records keep arriving it polls the queue every millisecond
//! (producers then never make a syscall); after a quiet spell it parks and the next
//! producer wakes it.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::Duration;

use crate::flush::Waiter;
use crate::ids::{RecordId, random_u64};
use crate::record::Record;
use crate::sink::Sink;

/// A batch at least this large means producers are busy: take the next one at once.
const BUSY_BATCH: usize = 256;

/// The default queue capacity, in records (as in the TypeScript engine).
pub const DEFAULT_CAPACITY: usize = 2048;

/// Delivery counters since the observer was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryStats {
    /// Records accepted into the queue.
    pub accepted: u64,
    /// Records every sink accepted.
    pub delivered: u64,
    /// Records dropped from a full queue (oldest first).
    pub dropped: u64,
    /// Records a sink failed to write (error or panic).
    pub failed: u64,
    /// Records that broke a schema rule and were not sent.
    pub rejected: u64,
    /// Records still queued or being written.
    pub queued: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

struct State {
    queue: VecDeque<Record>,
    /// Records ever accepted; the position of the newest one.
    accepted: u64,
    flushes: Vec<Arc<Waiter>>,
}

pub(crate) struct Pipeline {
    state: Mutex<State>,
    capacity: usize,
    pub(crate) counters: Counters,
    /// Every record at a position up to this one has been delivered, failed, rejected or
    /// dropped.
    pub(crate) done_upto: AtomicU64,
    idle: AtomicBool,
    shutdown: AtomicBool,
    worker: Mutex<Option<Thread>>,
    sinks: Vec<Box<dyn Sink>>,
}

impl Pipeline {
    pub(crate) fn start(sinks: Vec<Box<dyn Sink>>, capacity: usize) -> Arc<Pipeline> {
        let pipeline = Arc::new(Pipeline {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(4096)),
                accepted: 0,
                flushes: Vec::new(),
            }),
            capacity: capacity.max(1),
            counters: Counters::default(),
            done_upto: AtomicU64::new(0),
            idle: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            worker: Mutex::new(None),
            sinks,
        });
        let for_worker = Arc::clone(&pipeline);
        let spawned = std::thread::Builder::new()
            .name("crux-delivery".into())
            .spawn(move || for_worker.run());
        if let Ok(handle) = spawned {
            *lock(&pipeline.worker) = Some(handle.thread().clone());
        }
        pipeline
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Enqueues the record `make` builds from the segment's next sequence number; drops
    /// the oldest queued record when full. Never blocks on sinks.
    ///
    /// The number is taken under the queue lock, so records of one segment enter the
    /// queue (and reach the sinks) in sequence order, at the cost of no extra atomic.
    #[inline]
    pub(crate) fn push(&self, seq: &AtomicU32, make: impl FnOnce(u32) -> Record) {
        {
            let mut st = self.lock();
            if st.queue.len() >= self.capacity {
                st.queue.pop_front();
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // Every update of a segment's counter happens under this lock.
            let n = seq.load(Ordering::Relaxed) + 1;
            seq.store(n, Ordering::Relaxed);
            st.queue.push_back(make(n));
            st.accepted += 1;
        }
        if self.idle.load(Ordering::Acquire) && self.idle.swap(false, Ordering::AcqRel) {
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(t) = lock(&self.worker).as_ref() {
            t.unpark();
        }
    }

    /// Registers a flush waiting for every record accepted so far.
    pub(crate) fn request_flush(&self, make: impl FnOnce(u64) -> Waiter) -> Arc<Waiter> {
        let waiter = {
            let mut st = self.lock();
            let waiter = Arc::new(make(st.accepted));
            st.flushes.push(Arc::clone(&waiter));
            waiter
        };
        self.idle.store(false, Ordering::Release);
        self.wake();
        waiter
    }

    pub(crate) fn stats(&self) -> DeliveryStats {
        let accepted = self.lock().accepted;
        let c = &self.counters;
        let (delivered, dropped, failed, rejected) = (
            c.delivered.load(Ordering::Acquire),
            c.dropped.load(Ordering::Acquire),
            c.failed.load(Ordering::Acquire),
            c.rejected.load(Ordering::Acquire),
        );
        DeliveryStats {
            accepted,
            delivered,
            dropped,
            failed,
            rejected,
            queued: accepted.saturating_sub(delivered + dropped + failed + rejected),
        }
    }

    pub(crate) fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.wake();
    }

    fn run(&self) {
        let rec_random = random_u64();
        let mut counter: u64 = 0;
        let mut batch: VecDeque<Record> = VecDeque::new();
        let mut quiet_polls = 0u32;
        loop {
            let (accepted, flushes_pending) = {
                let mut st = self.lock();
                std::mem::swap(&mut st.queue, &mut batch);
                (st.accepted, !st.flushes.is_empty())
            };
            let taken = batch.len();
            if taken > 0 {
                self.deliver(batch.make_contiguous(), rec_random, &mut counter);
                batch.clear();
            }
            self.done_upto.store(accepted, Ordering::Release);
            if flushes_pending {
                self.complete_flushes(accepted);
                continue;
            }
            if taken >= BUSY_BATCH {
                continue;
            }
            if taken > 0 {
                // A trickle: let records gather for a millisecond instead of contending
                // with producers for the queue lock record by record. Flushes wake us.
                quiet_polls = 0;
                std::thread::park_timeout(Duration::from_millis(1));
                continue;
            }
            if self.shutdown.load(Ordering::Acquire) {
                self.flush_sinks();
                return;
            }
            quiet_polls += 1;
            if quiet_polls < 20 {
                std::thread::park_timeout(Duration::from_millis(1));
                continue;
            }
            // Go idle: announce it under the lock, so a producer that pushes after this
            // point sees the flag and wakes us.
            {
                let st = self.lock();
                if !st.queue.is_empty() || !st.flushes.is_empty() {
                    continue;
                }
                self.idle.store(true, Ordering::Release);
            }
            std::thread::park_timeout(Duration::from_millis(500));
            self.idle.store(false, Ordering::Release);
            quiet_polls = 0;
        }
    }

    fn deliver(&self, records: &mut [Record], rec_random: u64, counter: &mut u64) {
        let mut valid = 0usize;
        // Move invalid records to the back, keeping the order of the valid ones.
        let mut rejected = 0u64;
        for i in 0..records.len() {
            if records[i].validate().is_ok() {
                records.swap(valid, i);
                valid += 1;
            } else {
                rejected += 1;
            }
        }
        for r in &mut records[..valid] {
            *counter += 1;
            r.base.record_id = Some(RecordId {
                random: rec_random,
                counter: *counter,
            });
        }
        let good = &records[..valid];
        let mut ok = true;
        if !good.is_empty() {
            for sink in &self.sinks {
                let res = catch_unwind(AssertUnwindSafe(|| sink.write(good)));
                ok &= matches!(res, Ok(Ok(())));
            }
        }
        let c = &self.counters;
        c.rejected.fetch_add(rejected, Ordering::AcqRel);
        if ok {
            c.delivered.fetch_add(valid as u64, Ordering::AcqRel);
        } else {
            c.failed.fetch_add(valid as u64, Ordering::AcqRel);
        }
    }

    fn flush_sinks(&self) -> bool {
        let mut ok = true;
        for sink in &self.sinks {
            let res = catch_unwind(AssertUnwindSafe(|| sink.flush()));
            ok &= matches!(res, Ok(Ok(())));
        }
        ok
    }

    fn complete_flushes(&self, done: u64) {
        let ready: Vec<Arc<Waiter>> = {
            let mut st = self.lock();
            let (ready, waiting) = std::mem::take(&mut st.flushes)
                .into_iter()
                .partition(|w| w.target <= done);
            st.flushes = waiting;
            ready
        };
        if ready.is_empty() {
            return;
        }
        let sinks_ok = self.flush_sinks();
        for w in ready {
            w.complete(sinks_ok, &self.counters);
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
