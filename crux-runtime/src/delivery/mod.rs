//! The delivery pipeline: a bounded queue filled on the hot path, and delivery passes that
//! assign record ids, validate records and write the sinks.
//!
//! Passes run on a background std thread, the worker: a plain thread, not a task, so a
//! sink that blocks or hangs never blocks the async runtime. While records keep arriving
//! it polls the queue every millisecond, or every 10 ms when flushes deliver on their own
//! threads (producers then never make a syscall); after a quiet spell it parks and the
//! next producer wakes it.
//!
//! A flush is blocked until its records are delivered anyway, so when every sink promises
//! to answer promptly ([`Sink::writes_promptly`]) it runs the pass itself instead of
//! handing it to the worker and waiting ("help instead of wait"; `Pipeline::help`).
//! Whoever runs a pass holds the delivery lock (a `Deliverer`), so sink calls stay
//! serialized and in queue order whichever thread makes them.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

mod flush;

use crate::ids::{RecordId, random_u64};
use crate::record::Record;
use crate::sink::{Sink, SinkError};
use crate::taxonomy::KnownPrimitives;
pub use flush::{FlushOptions, FlushResult, FlushStatus, deadline_after};
pub(crate) use flush::{FlushStart, FlushWait, Linger, MAX_SPIN, Waiter, yield_now};

/// Runs a closure with the calling thread's Crux context set aside (the live API's
/// `context::outside_any`, handed down when an observer starts its pipeline: delivery sits
/// below the live API and names nothing of it).
pub(crate) type OutsideContext = fn(&mut dyn FnMut());

/// A batch at least this large means producers are busy: take the next one at once.
const BUSY_BATCH: usize = 256;

/// How often the worker takes the queue while records trickle in, when only it delivers.
const POLL: Duration = Duration::from_millis(1);

/// The same when flushes deliver on their own threads (prompt sinks): they take the
/// request path's records, and the worker is left the records nobody flushes, backlogs
/// and flushes that call it, so it wakes less often. Each of its wake-ups is a context
/// switch, and a pass of its own that a flushing thread then waits for.
const INLINE_POLL: Duration = Duration::from_millis(10);

/// Polls finding nothing for this long, and the worker parks until a producer wakes it.
const QUIET_SPELL: Duration = Duration::from_millis(20);

/// The most queued records a flush delivers on its own thread in one pass (it may run a
/// few more, for the flushes that registered while it delivered): a larger backlog (a burst)
/// is the worker's, so that one caller does not pay for everyone's records.
pub(crate) const INLINE_BACKLOG: usize = 256;

/// The most passes a thread that let go of the delivery lock runs for the flushes that
/// registered while it held it ([`Pipeline::serve_latecomers`]) before calling the worker.
const LATECOMER_PASSES: usize = 4;

/// The default queue capacity, in records.
///
/// Larger than the TypeScript engine's 2048, which a burst of 10 000 concurrent actions
/// with a healthy sink overflowed: one process here hosts many concurrent invocations.
/// Between two passes of the worker each action emits at most the records up to its next
/// flush (about five for an action with a `run_action` hop), so such a burst queues about
/// 50 000 records at worst. The queue holds only what waits, so the bound costs nothing
/// while sinks keep up.
pub const DEFAULT_CAPACITY: usize = 65_536;

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
    /// Flushes waiting for a delivery pass (each still waiting, or timed out and not yet
    /// compacted away: at most about twice the flushes in progress). A flush that
    /// delivers on its own thread registers none.
    pub flush_waiters: u64,
    /// The circuit breaker: a sink call has not returned within a whole flush bound, and
    /// flushes return at once ([`FlushResult::bypassed`]) until it does.
    pub sink_hung: bool,
    /// Flushes that returned at once because [`sink_hung`](DeliveryStats::sink_hung) held.
    pub bypassed_flushes: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) rejected: AtomicU64,
    /// `failed` when the latest flush completed: the failures after it are the next
    /// completed flush's to report, whether they happened before that flush began (the
    /// worker took its records first) or while it waited.
    pub(crate) failed_reported: AtomicU64,
}

struct State {
    queue: VecDeque<Record>,
    /// Records ever accepted; the position of the newest one.
    accepted: u64,
    flushes: Vec<Arc<Waiter>>,
    /// How many of `flushes` gave up waiting (timed out or dropped); compacted away once
    /// they are the majority, so the list stays within twice the flushes in progress.
    abandoned: usize,
}

/// The delivery lock's contents: what one delivery pass at a time needs. Held by the
/// worker for each of its passes, and by a flush delivering on its own thread.
struct Deliverer {
    /// Record ids given so far (the counter part of the last one).
    counter: u64,
    /// Sink calls made so far (each call's number, for the circuit breaker).
    calls: u64,
    /// The batch being delivered: its buffer is swapped with the queue's and reused.
    batch: VecDeque<Record>,
    /// The primitives found canonical so far, so checking a record rarely searches.
    known: KnownPrimitives,
    /// The flushes a pass completes, taken from the state's list (a buffer reused, so
    /// completing them allocates nothing).
    ready: Vec<Arc<Waiter>>,
}

/// Why a flush did not deliver on its own thread ([`Pipeline::help`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Declined {
    /// A sink does not write promptly: only the worker calls the sinks.
    NotPrompt,
    /// Another thread holds the delivery lock: whoever holds it (a flushing thread or the
    /// worker) runs another pass for the flushes that registered meanwhile once it lets go
    /// ([`Pipeline::serve_latecomers`]), so the worker is not called. An async flush waits
    /// for that without spinning; a blocking one spins (helping itself if the lock frees
    /// first), then calls the worker before it parks.
    Busy,
    /// More than [`INLINE_BACKLOG`] records wait: a backlog for the worker.
    Backlog,
    /// A panic in the pass outside the sinks and wakers (whose panics are caught where
    /// they are called), caught: the worker delivers.
    Panicked,
}

/// What one delivery pass took.
#[derive(Clone, Copy, Default)]
struct Pass {
    /// The position of the newest record taken: everything up to it is now handled.
    accepted: u64,
    /// How many records were taken.
    taken: usize,
    /// Flushes were waiting when the queue was taken.
    flushes_pending: bool,
}

pub(crate) struct Pipeline {
    state: Mutex<State>,
    /// The delivery lock: whoever writes the sinks holds it.
    delivery: Mutex<Deliverer>,
    /// Every sink writes promptly ([`Sink::writes_promptly`]): flushes may deliver on
    /// their own thread.
    inline: bool,
    /// Runs a pass made on a flushing thread outside that thread's Crux context (the
    /// observer's), so what a sink records (a `tracing` event of its own) never joins the
    /// flushing caller's run.
    outside_context: OutsideContext,
    /// No sink records anything ([`Sink::records_nothing`]): a pass on a flushing thread
    /// calls them in that thread's context; only completing the flushes that waited for
    /// it (waking their tasks) is done outside it.
    in_context: bool,
    /// The length of the state's list of flushes (written under the queue lock), read
    /// without it by a pass's holder: whether flushes registered while it delivered.
    waiting: AtomicUsize,
    /// The random part of this pipeline's record ids.
    rec_random: u64,
    capacity: usize,
    pub(crate) counters: Counters,
    /// Every record at a position up to this one has been delivered, failed, rejected or
    /// dropped.
    pub(crate) done_upto: AtomicU64,
    idle: AtomicBool,
    /// The worker was called since it last took the queue: by a flush handed to it
    /// ([`call_worker`](Pipeline::call_worker)), or a half-full queue.
    flush_requested: AtomicBool,
    /// Recent request-to-completion time of flushes, in ns (a moving average).
    flush_latency_ns: AtomicU64,
    shutdown: AtomicBool,
    worker: Mutex<Option<Thread>>,
    sinks: Vec<Box<dyn Sink>>,
    /// The sinks whose `flush` has work to do ([`Sink::needs_flush`]), by index: only
    /// these are called by flushes.
    flushed: Vec<usize>,
    /// The sink call (write or flush) in progress: its number, 0 when in none. A flush
    /// notes it when it registers, so the breaker knows a call that was already under way
    /// then without reading the clock for every call.
    sink_call: AtomicU64,
    /// The circuit breaker: the number of the sink call that outlasted a whole flush
    /// bound. While that call is still the one in progress, flushes do not wait.
    hung_call: AtomicU64,
    /// The sink call during which a flush last reached its deadline.
    struck_call: AtomicU64,
    /// The breaker opened since the observer last warned about it.
    hung_unreported: AtomicBool,
    bypassed_flushes: AtomicU64,
    /// Tests only: `false` keeps the worker from taking the queue unless called, so a
    /// test sees what flushing threads do by themselves.
    #[cfg(test)]
    worker_polls: AtomicBool,
}

impl Pipeline {
    pub(crate) fn start(
        sinks: Vec<Box<dyn Sink>>,
        capacity: usize,
        outside_context: OutsideContext,
    ) -> Arc<Pipeline> {
        let pipeline = Arc::new(Pipeline {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(4096)),
                accepted: 0,
                flushes: Vec::new(),
                abandoned: 0,
            }),
            delivery: Mutex::new(Deliverer {
                counter: 0,
                calls: 0,
                batch: VecDeque::new(),
                known: KnownPrimitives::default(),
                ready: Vec::new(),
            }),
            inline: sinks.iter().all(|s| s.writes_promptly()),
            outside_context,
            in_context: sinks.iter().all(|s| s.records_nothing()),
            waiting: AtomicUsize::new(0),
            flushed: (0..sinks.len())
                .filter(|&i| sinks[i].needs_flush())
                .collect(),
            rec_random: random_u64(),
            capacity: capacity.max(1),
            counters: Counters::default(),
            done_upto: AtomicU64::new(0),
            idle: AtomicBool::new(false),
            flush_requested: AtomicBool::new(false),
            flush_latency_ns: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            worker: Mutex::new(None),
            sinks,
            sink_call: AtomicU64::new(0),
            hung_call: AtomicU64::new(0),
            struck_call: AtomicU64::new(0),
            hung_unreported: AtomicBool::new(false),
            bypassed_flushes: AtomicU64::new(0),
            #[cfg(test)]
            worker_polls: AtomicBool::new(true),
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

    /// Takes the queue lock for one record of a segment: drops the oldest queued record
    /// when full, makes room for one more, and takes the segment's next sequence number.
    /// The record is then written with [`Slot::fill`]. Never blocks on sinks.
    ///
    /// The number is taken under the queue lock, so records of one segment enter the
    /// queue (and reach the sinks) in sequence order, at the cost of no extra atomic.
    ///
    /// A guard rather than a closure taking the number: the caller builds the record in
    /// its own frame, so the body it moves in is not first copied into a closure's
    /// captures and then again into the slot (a span's two records each saved the copy).
    // Always inlined: out of line, the guard it returns is passed through memory.
    #[inline(always)]
    pub(crate) fn reserve(&self, seq: &AtomicU32) -> Slot<'_> {
        let mut state = self.lock();
        if state.queue.len() >= self.capacity {
            self.drop_oldest(&mut state.queue);
        }
        // Room first: a growth that panics (capacity overflow) has taken no number yet.
        if state.queue.len() == state.queue.capacity() {
            grow(&mut state.queue);
        }
        // Every update of a segment's counter happens under this lock.
        let n = seq.load(Ordering::Relaxed) + 1;
        seq.store(n, Ordering::Relaxed);
        Slot {
            pipeline: self,
            state,
            seq: n,
        }
    }

    /// A full queue drops its oldest record, counted; out of line, so the inlined
    /// [`reserve`](Pipeline::reserve) at every emitting site carries only the call.
    #[cold]
    #[inline(never)]
    fn drop_oldest(&self, queue: &mut VecDeque<Record>) {
        queue.pop_front();
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn wake(&self) {
        if let Some(t) = lock(&self.worker).as_ref() {
            t.unpark();
        }
    }

    /// Registers a flush waiting for every record accepted so far. It does not wake the
    /// worker: a flush whose records another thread is delivering waits for that pass
    /// first, and calls the worker ([`call_worker`](Pipeline::call_worker)) only when it
    /// cannot be delivered on a flushing thread.
    pub(crate) fn request_flush(&self, make: impl FnOnce(u64) -> Waiter) -> Arc<Waiter> {
        let mut st = self.lock();
        let waiter = Arc::new(make(st.accepted));
        waiter.listed.store(true, Ordering::Relaxed);
        st.flushes.push(Arc::clone(&waiter));
        self.waiting.store(st.flushes.len(), Ordering::Relaxed);
        waiter
    }

    /// Wakes the worker for the flushes waiting: it runs a pass for them at once, then
    /// lingers for the next ([`Linger`]).
    pub(crate) fn call_worker(&self) {
        self.flush_requested.store(true, Ordering::Release);
        self.idle.store(false, Ordering::Release);
        self.wake();
    }

    /// Runs a pass on a flushing thread: outside its Crux context, unless no sink records
    /// anything (then the completed flushes' tasks are woken outside it,
    /// [`complete_flushes`](Pipeline::complete_flushes)). Inlined, so the common pass
    /// into sinks that record nothing makes no indirect call.
    #[inline]
    fn for_sinks(&self, mut f: impl FnMut()) {
        if self.in_context {
            f();
        } else {
            (self.outside_context)(&mut f);
        }
    }

    /// Delivers the queue on the calling thread, for a flush that would otherwise wait for
    /// the worker: only when every sink writes promptly, nobody else is delivering (the
    /// delivery lock is free) and at most [`INLINE_BACKLOG`] records wait. The pass is the
    /// worker's ([`pass`](Pipeline::pass)), then the sinks' `flush`, then every waiting
    /// flush it covered is completed; then `covered` is told the sinks' flush result
    /// (`true`: all succeeded), and its answer is returned. Why not, when it did not run
    /// (the caller waits).
    ///
    /// Flushes that registered while the pass ran found the lock held (this pass): one
    /// more pass before the lock is released completes them, and more after it for those
    /// that registered in between ([`serve_latecomers`](Pipeline::serve_latecomers)), so
    /// their threads wait for this one only, not for the worker nor for a pass of their
    /// own. `covered` runs before: the caller's result counts its own records, not those
    /// of the flushes after it.
    ///
    /// A panicking sink is caught inside, as on the worker. A flush from within a sink
    /// call finds the lock held (by its own thread, or the worker) and waits, bounded.
    pub(crate) fn help<R>(&self, covered: impl FnOnce(bool) -> R) -> Result<R, Declined> {
        if !self.inline {
            return Err(Declined::NotPrompt);
        }
        let Some(mut d) = try_lock(&self.delivery) else {
            return Err(Declined::Busy);
        };
        let mut covered = Some(covered);
        let mut helped = Err(Declined::Panicked);
        self.for_sinks(|| {
            // Sinks' and wakers' panics are caught where they are called; this catches any
            // other, so a flush never panics into its caller: it waits for the worker
            // instead, bounded.
            helped = catch_unwind(AssertUnwindSafe(|| {
                let pass = self.pass(&mut d, INLINE_BACKLOG).ok_or(Declined::Backlog)?;
                let sinks_ok = self
                    .complete_flushes(pass, &mut d, None, true)
                    .unwrap_or(true);
                covered
                    .take()
                    .map(|f| f(sinks_ok))
                    .ok_or(Declined::Panicked)
            }))
            .unwrap_or(Err(Declined::Panicked));
            // The caller's flush is answered; one more pass, before letting go of the
            // lock, for the flushes that registered meanwhile (their threads then wait
            // for this one only). A panic in it leaves them to the worker, as a panic in
            // their own pass would.
            if helped.is_ok() && self.waiting.load(Ordering::Relaxed) > 0 {
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    if let Some(pass) = self.pass(&mut d, INLINE_BACKLOG) {
                        self.complete_flushes(pass, &mut d, None, false);
                    }
                }));
            }
        });
        drop(d);
        if helped.is_ok() {
            self.serve_latecomers();
        } else if self.waits_after_release() {
            // Declined with the lock held (a backlog, a panic): the flushes that found it
            // held are the worker's.
            self.call_worker();
        }
        helped
    }

    /// Whether flushes wait, read by a thread that just let go of the delivery lock: the
    /// fence pairs with the one a flush makes between registering and trying the lock
    /// (`FlushWait::finished`), so at least one of the two sees the other. (A failed
    /// `try_lock` is a read of the mutex's one atomic word, std's futex mutex; the
    /// fences order it against the `waiting` store and load.)
    fn waits_after_release(&self) -> bool {
        std::sync::atomic::fence(Ordering::SeqCst);
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// Completes the flushes that registered while this thread held the delivery lock,
    /// after letting it go: each found the lock held and waits without spinning
    /// ([`FlushWait`]'s poll), counting on the lock's holder to look again once it is free.
    ///
    /// No flush is missed: a flush registers, then tries the lock; a holder lets go of the
    /// lock, then reads whether flushes wait
    /// ([`waits_after_release`](Pipeline::waits_after_release)). Either the flush finds
    /// the lock free and delivers itself, or the holder sees it waiting and runs another
    /// pass; if a third thread took the lock meanwhile, that thread looks again after it:
    /// every release does (a flush's pass, this loop, the worker's pass; a declined `help`
    /// calls the worker instead). The one exception is the worker's last sink flush at
    /// shutdown, when no flush is left (each holds the observer).
    ///
    /// Each pass covers every flush registered before it took the queue, so the loop goes
    /// on only while flushes keep arriving; after [`LATECOMER_PASSES`] the worker takes
    /// over, so that one caller does not deliver for everyone under a stream of flushes.
    // Inlined: flushes rarely wait, and the check is a fence and a load.
    #[inline]
    pub(crate) fn serve_latecomers(&self) {
        if self.waits_after_release() {
            self.serve_waiting();
        }
    }

    /// [`serve_latecomers`](Pipeline::serve_latecomers) once flushes are seen waiting.
    #[inline(never)]
    fn serve_waiting(&self) {
        for pass in 0..LATECOMER_PASSES {
            if pass > 0 && !self.waits_after_release() {
                return;
            }
            let Some(mut d) = try_lock(&self.delivery) else {
                return;
            };
            let mut passed = false;
            self.for_sinks(|| {
                passed = catch_unwind(AssertUnwindSafe(|| {
                    // A backlog, or a panic: the worker's (every pass covers every flush
                    // registered before it took the queue, so this loop ends).
                    self.pass(&mut d, INLINE_BACKLOG)
                        .map(|pass| self.complete_flushes(pass, &mut d, None, false))
                        .is_some()
                }))
                .unwrap_or(false);
            });
            drop(d);
            if !passed {
                self.call_worker();
                return;
            }
        }
        if self.waits_after_release() {
            self.call_worker();
        }
    }

    /// A flush stopped waiting before the worker completed it (deadline, or its future
    /// was dropped): mark its waiter, and drop the marked ones once they are the majority.
    /// Amortized O(1); the list stays within twice the flushes still waiting.
    pub(crate) fn abandon(&self, waiter: &Waiter) {
        let mut st = self.lock();
        // `listed` and `abandoned` change only under this lock.
        if !waiter.listed.load(Ordering::Relaxed) || waiter.abandoned.load(Ordering::Relaxed) {
            return;
        }
        waiter.abandoned.store(true, Ordering::Relaxed);
        st.abandoned += 1;
        if 2 * st.abandoned > st.flushes.len() {
            st.flushes.retain(|w| {
                let keep = !w.abandoned.load(Ordering::Relaxed);
                if !keep {
                    w.listed.store(false, Ordering::Relaxed);
                }
                keep
            });
            st.abandoned = 0;
            self.waiting.store(st.flushes.len(), Ordering::Relaxed);
        }
    }

    /// The number of the sink call in progress, 0 when none is.
    pub(crate) fn sink_call(&self) -> u64 {
        self.sink_call.load(Ordering::Acquire)
    }

    /// Whether the circuit breaker is open: the sink call that outlasted a flush's whole
    /// bound is still in progress.
    pub(crate) fn sink_hung(&self) -> bool {
        let hung = self.hung_call.load(Ordering::Acquire);
        hung != 0 && self.sink_call.load(Ordering::Acquire) == hung
    }

    /// A flush reached its deadline; `call_at_request` is the sink call that was in
    /// progress when it registered ([`sink_call`](Pipeline::sink_call)). If a sink call is
    /// in progress now, the sink keeps timing out, and the circuit breaker opens (until
    /// that call returns), when it is that same call (it did not answer for the flush's
    /// whole bound) or when it is the second deadline passed during it.
    pub(crate) fn deadline_passed(&self, call_at_request: u64) {
        let call = self.sink_call();
        if call == 0 {
            return;
        }
        let keeps_timing_out =
            call == call_at_request || self.struck_call.swap(call, Ordering::AcqRel) == call;
        if keeps_timing_out && self.hung_call.swap(call, Ordering::AcqRel) != call {
            self.hung_unreported.store(true, Ordering::Release);
        }
    }

    /// A flush returned at once because the circuit breaker is open.
    pub(crate) fn count_bypass(&self) -> u64 {
        self.bypassed_flushes.fetch_add(1, Ordering::Relaxed);
        self.lock().accepted
    }

    /// Whether the breaker opened since the last call (once per opening).
    pub(crate) fn take_hung_report(&self) -> bool {
        self.hung_unreported.load(Ordering::Relaxed)
            && self.hung_unreported.swap(false, Ordering::AcqRel)
    }

    /// Runs one sink call, marked so that flushes can tell a hung sink (`sink_call`).
    fn in_sink<R>(&self, call: &mut u64, f: impl FnOnce() -> R) -> R {
        *call += 1;
        self.sink_call.store(*call, Ordering::Release);
        let r = f();
        self.sink_call.store(0, Ordering::Release);
        r
    }

    /// How long a flush should wait for the worker before parking: about twice what
    /// recent flushes took, none when that exceeds [`MAX_SPIN`] (a slow or hung sink).
    pub(crate) fn spin_budget(&self) -> Duration {
        let recent = self.flush_latency_ns.load(Ordering::Relaxed);
        let cap = MAX_SPIN.as_nanos() as u64;
        if recent > cap {
            return Duration::ZERO;
        }
        Duration::from_nanos((2 * recent + 5_000).min(cap))
    }

    /// A flush spun in vain (a slow sink, a preempted worker): stop spinning until a
    /// completion reports a quick round trip again.
    pub(crate) fn spin_missed(&self) {
        let over = MAX_SPIN.as_nanos() as u64 + 1;
        self.flush_latency_ns.fetch_max(over, Ordering::Relaxed);
    }

    /// Whether flushes have stopped spinning ([`spin_budget`](Pipeline::spin_budget) is
    /// zero): until a flush completes quickly again. Completions by a delivery pass report
    /// their latency; so does a flush delivering on its own thread while this holds (with
    /// prompt sinks most flushes do, and nothing else would report).
    pub(crate) fn spin_stopped(&self) -> bool {
        self.flush_latency_ns.load(Ordering::Relaxed) > MAX_SPIN.as_nanos() as u64
    }

    pub(crate) fn record_flush_latency(&self, latency: Duration) {
        // Only "under the cap or not" matters: a clamped sample lets a recovered sink be
        // spun for again after a few quick completions.
        let sample = latency.as_nanos().min(2 * MAX_SPIN.as_nanos()) as u64;
        let old = self.flush_latency_ns.load(Ordering::Relaxed);
        self.flush_latency_ns
            .store((3 * old + sample) / 4, Ordering::Relaxed);
    }

    /// After completing a flush, stay awake briefly for the next one (a function boundary
    /// flushes before and after its call; how long: [`Linger`]): yielding, so a request
    /// finds the worker running instead of parked, for as long as each yield comes back
    /// at once. A slow yield means the cores are busy: the worker parks instead, since a
    /// runnable worker that yielded is not woken by a flush's call and waits for its turn.
    fn linger_for_flush(&self, linger: &mut Linger) {
        let mut before = Instant::now();
        let until = before + linger.completed(before);
        let called = || {
            self.flush_requested.load(Ordering::Acquire) || self.shutdown.load(Ordering::Acquire)
        };
        while !called() && before < until {
            yield_now();
            let after = Instant::now();
            if !linger.yielded(after, after.saturating_duration_since(before)) {
                return;
            }
            before = after;
        }
    }

    pub(crate) fn stats(&self) -> DeliveryStats {
        let (accepted, flush_waiters) = {
            let st = self.lock();
            (st.accepted, st.flushes.len() as u64)
        };
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
            flush_waiters,
            sink_hung: self.sink_hung(),
            bypassed_flushes: self.bypassed_flushes.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.wake();
    }

    fn run(&self) {
        let poll = if self.inline { INLINE_POLL } else { POLL };
        let quiet_limit = (QUIET_SPELL.as_nanos() / poll.as_nanos()).max(1) as u32;
        let mut quiet_polls = 0u32;
        let mut linger = Linger::default();
        loop {
            // Cleared before the pass: a flush that calls the worker (or a half-full push)
            // after the queue is taken sets it again (see `linger_for_flush`).
            let called = self.flush_requested.swap(false, Ordering::AcqRel);
            // The gap to learn is between flushes the worker serves: with prompt sinks,
            // those that called it.
            let learns = called || !self.inline;
            let (pass, completed) = {
                let Some(mut d) = self.lock_for_worker(called) else {
                    // A flushing thread is delivering: it takes what is queued.
                    std::thread::park_timeout(poll);
                    continue;
                };
                // No backlog bound: always a pass.
                let pass = self.pass(&mut d, usize::MAX).unwrap_or_default();
                let completed = pass.flushes_pending
                    && self
                        .complete_flushes(pass, &mut d, learns.then_some(&mut linger), false)
                        .is_some();
                (pass, completed)
            };
            // Flushes that found the lock held while this pass ran wait for a pass of
            // whoever held it (see `serve_latecomers`).
            if self.inline {
                self.serve_latecomers();
            }
            // With prompt sinks, a flush that did not call the worker is waiting for a
            // flushing thread's pass or its own: the worker does not stay up for it.
            if pass.flushes_pending && learns {
                if completed {
                    self.linger_for_flush(&mut linger);
                }
                continue;
            }
            if pass.taken >= BUSY_BATCH {
                continue;
            }
            if pass.taken > 0 {
                // A trickle: let records gather for a poll instead of contending with
                // producers for the queue lock record by record. Flushes wake us.
                quiet_polls = 0;
                std::thread::park_timeout(poll);
                continue;
            }
            if self.shutdown.load(Ordering::Acquire) {
                self.flush_sinks(&mut lock(&self.delivery).calls);
                return;
            }
            quiet_polls += 1;
            if quiet_polls < quiet_limit {
                std::thread::park_timeout(poll);
                continue;
            }
            // Go idle: announce it under the lock, so a producer that pushes after this
            // point sees the flag and wakes us.
            {
                let st = self.lock();
                if !st.queue.is_empty() {
                    continue;
                }
                if !st.flushes.is_empty() {
                    // Flushes waiting on their own threads (or ones that called us: then
                    // the park returns at once).
                    drop(st);
                    std::thread::park_timeout(poll);
                    continue;
                }
                self.idle.store(true, Ordering::Release);
            }
            std::thread::park_timeout(Duration::from_millis(500));
            self.idle.store(false, Ordering::Release);
            quiet_polls = 0;
        }
    }

    /// The delivery lock for a pass of the worker. When flushing threads deliver (prompt
    /// sinks) and no flush called for the worker, a pass under way on another thread is
    /// left alone (`None`): it takes what is queued, and a worker blocked on its lock would
    /// cost that thread a wake-up system call as it unlocks, on the request's path.
    fn lock_for_worker(&self, called: bool) -> Option<MutexGuard<'_, Deliverer>> {
        #[cfg(test)]
        if !called && !self.worker_polls.load(Ordering::Relaxed) {
            return None;
        }
        if !self.inline || called || self.shutdown.load(Ordering::Acquire) {
            return Some(lock(&self.delivery));
        }
        try_lock(&self.delivery)
    }

    /// One delivery pass, by whoever holds the delivery lock `d` (the worker, or a flush
    /// in [`help`](Pipeline::help)): takes the whole queue, unless more than
    /// `max_backlog` records wait (then `None`, nothing done), delivers it in queue order
    /// and marks everything up to the newest record taken as handled (`done_upto`).
    ///
    /// The queue is taken under the delivery lock, so passes deliver in queue order and
    /// `done_upto` only grows.
    fn pass(&self, d: &mut Deliverer, max_backlog: usize) -> Option<Pass> {
        let (accepted, flushes_pending) = {
            let mut st = self.lock();
            if st.queue.len() > max_backlog {
                return None;
            }
            std::mem::swap(&mut st.queue, &mut d.batch);
            (st.accepted, !st.flushes.is_empty())
        };
        let taken = d.batch.len();
        if taken > 0 {
            // As a `Vec` (in place), so the last sink can keep the records it is given.
            let mut records = Vec::from(std::mem::take(&mut d.batch));
            self.deliver(&mut records, d);
            // Usually empty: the last sink kept them (a call per pass saved).
            if !records.is_empty() {
                records.clear();
            }
            let empty = std::mem::replace(&mut d.batch, VecDeque::from(records));
            // What `take` left: nothing allocated, so its drop glue (a slice walk per pass)
            // has nothing to do.
            debug_assert_eq!(empty.capacity(), 0);
            std::mem::forget(empty);
        }
        self.done_upto.store(accepted, Ordering::Release);
        Some(Pass {
            accepted,
            taken,
            flushes_pending,
        })
    }

    fn deliver(&self, records: &mut Vec<Record>, d: &mut Deliverer) {
        let Deliverer {
            counter,
            calls,
            known,
            ..
        } = d;
        // Drop invalid records, keeping the order of the valid ones, in one sweep that also
        // gives each valid record its id (a burst's batch is megabytes, past the caches: a
        // second sweep read it all again). Records are almost always all valid: the loop
        // checks them in line until the first invalid one, and only then hands the rest
        // to `retain_mut` (a call per record), which moves nothing before that record.
        let taken = records.len();
        let rec_random = self.rec_random;
        let mut give_id = |r: &mut Record| {
            let valid = r.validate_with(|p| known.is_canonical(p)).is_ok();
            if valid {
                *counter += 1;
                r.base.record_id = Some(RecordId {
                    random: rec_random,
                    counter: *counter,
                });
            }
            valid
        };
        let mut checked = 0;
        while checked < taken && give_id(&mut records[checked]) {
            checked += 1;
        }
        if checked < taken {
            drop_invalid(records, checked, give_id);
        }
        let valid = records.len();
        let rejected = (taken - valid) as u64;
        let mut ok = true;
        if let Some((last, others)) = self.sinks.split_last()
            && valid > 0
        {
            for sink in others {
                let res = self.in_sink(calls, || {
                    catch_unwind(AssertUnwindSafe(|| sink.write(records)))
                });
                ok &= succeeded(res);
            }
            let res = self.in_sink(calls, || {
                catch_unwind(AssertUnwindSafe(|| last.write_owned(records)))
            });
            ok &= succeeded(res);
        }
        let c = &self.counters;
        // Almost always none: a locked add of zero would still take the line every pass.
        if rejected > 0 {
            c.rejected.fetch_add(rejected, Ordering::AcqRel);
        }
        if ok {
            c.delivered.fetch_add(valid as u64, Ordering::AcqRel);
        } else {
            c.failed.fetch_add(valid as u64, Ordering::AcqRel);
        }
    }

    /// Flushes the sinks that need it ([`Sink::needs_flush`]), in order; `false` when one
    /// failed. Inlined: often none does (a `Memory` sink), and then nothing is called.
    #[inline]
    fn flush_sinks(&self, calls: &mut u64) -> bool {
        self.flushed.is_empty() || self.flush_each(calls)
    }

    fn flush_each(&self, calls: &mut u64) -> bool {
        let mut ok = true;
        for sink in self.flushed.iter().map(|&i| &self.sinks[i]) {
            let res = self.in_sink(calls, || catch_unwind(AssertUnwindSafe(|| sink.flush())));
            ok &= succeeded(res);
        }
        ok
    }

    /// Completes the flushes waiting for positions up to the pass's newest record, after
    /// flushing the sinks; also flushes them when none waits if `flush_anyway` (a flush
    /// delivering on its own thread). The sinks' flush result when they were flushed.
    ///
    /// Only the worker learns the gap between flushes (`linger`): it alone lingers.
    ///
    /// Inlined for its common case, a flush delivering on its own thread with none
    /// registered: then nothing is taken from the queue lock's list.
    #[inline]
    fn complete_flushes(
        &self,
        pass: Pass,
        d: &mut Deliverer,
        linger: Option<&mut Linger>,
        flush_anyway: bool,
    ) -> Option<bool> {
        if !pass.flushes_pending {
            // None to complete (the list was empty when the queue was taken; `ready` is
            // emptied by every call): the sinks are flushed for the flush delivering only.
            debug_assert!(d.ready.is_empty());
            return flush_anyway.then(|| self.flush_sinks(&mut d.calls));
        }
        if !self.in_context {
            return self.complete_waiting(pass, d, linger, flush_anyway);
        }
        // Wakers run outside any Crux context, as the sinks do: a pass into sinks that
        // record nothing may run in its flushing thread's context (`for_sinks`).
        let (mut linger, mut completed) = (linger, None);
        (self.outside_context)(&mut || {
            completed = self.complete_waiting(pass, d, linger.take(), flush_anyway);
        });
        completed
    }

    /// [`complete_flushes`](Pipeline::complete_flushes) when flushes were registered.
    #[inline(never)]
    fn complete_waiting(
        &self,
        pass: Pass,
        d: &mut Deliverer,
        linger: Option<&mut Linger>,
        flush_anyway: bool,
    ) -> Option<bool> {
        {
            let mut st = self.lock();
            let st = &mut *st;
            // Emptied below before the lock is let go: only this call's flushes are in it.
            debug_assert!(d.ready.is_empty());
            d.ready
                .extend(st.flushes.extract_if(.., |w| w.target <= pass.accepted));
            self.waiting.store(st.flushes.len(), Ordering::Relaxed);
            for w in &d.ready {
                w.listed.store(false, Ordering::Relaxed);
                if w.abandoned.load(Ordering::Relaxed) {
                    st.abandoned -= 1;
                }
            }
        }
        if d.ready.is_empty() {
            // None to complete (a flush delivering on its own thread, alone): the sinks
            // are flushed for it only.
            return flush_anyway.then(|| self.flush_sinks(&mut d.calls));
        }
        if let (Some(linger), Some(first)) = (linger, d.ready.iter().map(|w| w.requested_at).min())
        {
            linger.requested(first);
        }
        let sinks_ok = self.flush_sinks(&mut d.calls);
        for w in d.ready.drain(..) {
            w.complete(sinks_ok, &self.counters);
            self.record_flush_latency(w.requested_at.elapsed());
        }
        Some(sinks_ok)
    }
}

/// The queue lock held for one record, room for it made and its segment sequence number
/// taken ([`Pipeline::reserve`]). Nothing that can fail or panic belongs between the
/// reserve and [`fill`](Slot::fill): a slot dropped unfilled leaves its number unused, a
/// hole in the segment's `segmentSeq`.
#[must_use = "a slot dropped unfilled leaves a hole in segmentSeq"]
pub(crate) struct Slot<'a> {
    pipeline: &'a Pipeline,
    state: MutexGuard<'a, State>,
    seq: u32,
}

impl Slot<'_> {
    /// The record's `segmentSeq`.
    #[inline]
    pub(crate) fn seq(&self) -> u32 {
        self.seq
    }

    /// Queues `record` and lets go of the lock.
    ///
    /// A queue half full wakes the worker at once instead of at its next poll, so a burst
    /// is taken while there is still room.
    #[inline(always)]
    pub(crate) fn fill(self, record: Record) {
        let Slot {
            pipeline,
            mut state,
            ..
        } = self;
        // Told there is room, the compiler drops `push_back`'s own growth check and the
        // call it guards, and with them the record's temporary across that call: the
        // record is written straight into its slot (one copy of a record fewer per record).
        // SAFETY: `reserve` grew the queue (`VecDeque::reserve(1)`, which leaves
        // `capacity >= len + 1` or panics) under the lock this slot still holds, so
        // nothing reached the queue since.
        unsafe { std::hint::assert_unchecked(state.queue.len() < state.queue.capacity()) };
        state.queue.push_back(record);
        state.accepted += 1;
        let half_full = state.queue.len() == pipeline.capacity / 2 + 1;
        drop(state);
        // A half-full queue wakes the worker whether or not it idles, and calls for a pass
        // even while a flushing thread delivers (`lock_for_worker`).
        if half_full {
            pipeline.flush_requested.store(true, Ordering::Release);
            pipeline.wake();
        } else if pipeline.idle.load(Ordering::Acquire)
            && pipeline.idle.swap(false, Ordering::AcqRel)
        {
            pipeline.wake();
        }
    }
}

/// Drops the invalid records of a batch whose first `valid` records were checked (and
/// given ids) and the next one found invalid: `give_id` checks and gives ids to the rest,
/// whose valid records keep their order. Out of line: records the runtime builds are
/// valid, unless a primitive named in user configuration is not canonical.
#[cold]
#[inline(never)]
fn drop_invalid(
    records: &mut Vec<Record>,
    valid: usize,
    mut give_id: impl FnMut(&mut Record) -> bool,
) {
    let mut at = 0;
    records.retain_mut(|r| {
        at += 1;
        // The first invalid one (at `valid + 1`) was checked already.
        at <= valid || (at > valid + 1 && give_id(r))
    });
}

/// Whether a sink call succeeded, its result taken apart: a success drops nothing (the
/// result's drop glue was an out-of-line call after every sink call).
#[inline]
fn succeeded(res: std::thread::Result<Result<(), SinkError>>) -> bool {
    match res {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            drop(error);
            false
        }
        Err(panic) => {
            drop(panic);
            false
        }
    }
}

/// Makes room for at least one more record in a full queue (doubling it, as `push_back`
/// would), out of line: the push path stays free of the growth code.
#[cold]
#[inline(never)]
fn grow(queue: &mut VecDeque<Record>) {
    queue.reserve(1);
}

pub(crate) use crate::helpers::{lock, try_lock};

// The tests' executor, shared with `tests/delivery.rs`.
#[cfg(test)]
#[path = "../../tests/support/block_on.rs"]
mod block_on;

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};

    use super::block_on::block_on;

    use super::FlushOptions;
    use super::*;
    use crate::observe::{Observer, RunOptions};
    use crate::sink::SinkError;

    /// Blocks in `write` while `stuck` holds.
    #[derive(Clone, Default)]
    struct Stuck(Arc<(Mutex<bool>, Condvar)>);
    impl Stuck {
        fn set(&self, stuck: bool) {
            *self.0.0.lock().unwrap() = stuck;
            self.0.1.notify_all();
        }
    }
    impl Sink for Stuck {
        fn write(&self, _: &[Record]) -> Result<(), SinkError> {
            let mut stuck = self.0.0.lock().unwrap();
            while *stuck {
                stuck = self.0.1.wait(stuck).unwrap();
            }
            Ok(())
        }
    }

    #[test]
    fn flushes_stop_spinning_on_a_hung_sink_and_resume_once_it_recovers() {
        let sink = Stuck::default();
        let observer = Observer::builder().sink(sink.clone()).build();
        let pipeline = Arc::clone(observer.pipeline().unwrap());
        let bound = FlushOptions {
            timeout: Duration::from_millis(30),
            terminal: false,
        };
        let run = observer.open_run(RunOptions::new("r", "agent.run"));
        // Quick round trips make flushes spin (a cold worker's first one may not be quick).
        let quick = |what: &str| {
            let mut flushes = 0;
            while pipeline.spin_budget().is_zero() && flushes < 1000 {
                let r = observer.flush_blocking(FlushOptions::BOUNDARY);
                assert_eq!(r.status, super::FlushStatus::Drained);
                flushes += 1;
            }
            assert!(!pipeline.spin_budget().is_zero(), "{what}");
        };
        observer.flush_blocking(FlushOptions::BOUNDARY);
        quick("a quick sink is waited for by spinning");
        assert!(pipeline.spin_budget() <= MAX_SPIN);

        sink.set(true);
        let scope = run.scope();
        scope
            .span("s", "tool.call")
            .start()
            .end(crate::record::SpanStatus::Ok);
        let started = Instant::now();
        let r = observer.flush_blocking(bound);
        assert!(r.deadline_exceeded);
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(
            pipeline.spin_budget(),
            Duration::ZERO,
            "no spinning on a hung sink"
        );

        sink.set(false);
        quick("quick round trips bring spinning back");
        drop(run);
    }

    /// Counts the wake-ups of a task polled by hand.
    struct Count(AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Waits (30 s at most) for `flush`'s task to be woken, then polls it: done, everything
    /// delivered, and no waiter left behind.
    fn woken_then_drained(
        flush: std::pin::Pin<&mut (impl Future<Output = FlushResult> + ?Sized)>,
        count: &Count,
        waker: &std::task::Waker,
        pipeline: &Pipeline,
    ) {
        let woken_by = Instant::now() + Duration::from_secs(30);
        while count.0.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < woken_by,
                "the waiting flush was never woken"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let std::task::Poll::Ready(result) = flush.poll(&mut std::task::Context::from_waker(waker))
        else {
            panic!("woken but not done");
        };
        assert_eq!(result.status, super::FlushStatus::Drained);
        assert_eq!(result.remaining, 0);
        assert_eq!(pipeline.stats().flush_waiters, 0);
    }

    #[test]
    fn an_async_flush_handed_to_the_worker_waits_without_yielding_and_the_worker_wakes_it() {
        use std::task::{Context, Waker};
        // Not prompt: every flush is handed to the worker.
        let sink = Stuck::default();
        let memory = crate::sink::Memory::new();
        let observer = Observer::builder()
            .sink(sink.clone())
            .sink(memory.clone())
            .build();
        let pipeline = Arc::clone(observer.pipeline().unwrap());
        assert!(!pipeline.inline);
        // No flush latency learnt yet, so the spin budget starts non-zero: a flush that
        // spun for the worker (main's async flush did) would spin now.
        assert!(!pipeline.spin_budget().is_zero());

        sink.set(true);
        let run = observer.open_run(RunOptions::new("r", "agent.run"));
        run.scope()
            .span("s", "tool.call")
            .start()
            .end(crate::record::SpanStatus::Ok);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut flush = Box::pin(observer.flush(FlushOptions {
            timeout: Duration::from_secs(30),
            terminal: false,
        }));
        let yields = flush::YIELDS.with(|n| n.get());
        assert!(
            flush
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        // It returned at once: no yield on the executor's thread, no spin that could miss.
        assert_eq!(flush::YIELDS.with(|n| n.get()), yields);
        assert!(!pipeline.spin_budget().is_zero());
        assert_eq!(pipeline.stats().flush_waiters, 1);

        // The worker delivers once the sink answers, and wakes the task.
        sink.set(false);
        woken_then_drained(flush.as_mut(), &count, &waker, &pipeline);
        assert_eq!(memory.len(), 3, "run:start, span:start, span:end");
        drop(run);
    }

    /// A prompt sink that blocks in `write` while its [`Stuck`] holds.
    #[derive(Clone, Default)]
    struct PromptStuck(Stuck, Arc<AtomicBool>);
    impl Sink for PromptStuck {
        fn write(&self, records: &[Record]) -> Result<(), SinkError> {
            self.1.store(true, Ordering::SeqCst);
            self.0.write(records)
        }
        fn writes_promptly(&self) -> bool {
            true
        }
    }

    #[test]
    fn an_async_flush_finding_a_pass_under_way_waits_for_it_without_spinning_or_calling_the_worker()
    {
        use std::task::{Context, Waker};
        let sink = PromptStuck::default();
        sink.0.set(true);
        let memory = crate::sink::Memory::new();
        let observer = Observer::builder()
            .sink(sink.clone())
            .sink(memory.clone())
            .build();
        let pipeline = Arc::clone(observer.pipeline().unwrap());
        let run = observer.open_run(RunOptions::new("r", "agent.run"));
        // The worker's poll takes `run:start` and blocks in the sink, holding the lock.
        let entered_by = Instant::now() + Duration::from_secs(30);
        while !sink.1.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < entered_by,
                "the worker never took the record"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        run.scope()
            .span("s", "tool.call")
            .start()
            .end(crate::record::SpanStatus::Ok);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut flush = Box::pin(observer.flush(FlushOptions {
            timeout: Duration::from_secs(30),
            terminal: false,
        }));
        assert!(
            flush
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        // It waits for the pass under way: it neither called the worker (which spinning
        // in vain used to do) nor gave up.
        assert!(!pipeline.flush_requested.load(Ordering::SeqCst));
        assert_eq!(pipeline.stats().flush_waiters, 1);

        // The holder lets go, looks again, delivers the flush's records and wakes it.
        sink.0.set(false);
        woken_then_drained(flush.as_mut(), &count, &waker, &pipeline);
        assert_eq!(memory.len(), 3, "run:start, span:start, span:end");
        drop(run);
    }

    /// A prompt sink that records nothing, blocking in `write` while its [`Stuck`] holds;
    /// notes that it was entered and whether a Crux scope was current there.
    #[derive(Clone, Default)]
    struct Inert(Stuck, Arc<AtomicBool>, Arc<AtomicBool>);
    impl Sink for Inert {
        fn write(&self, records: &[Record]) -> Result<(), SinkError> {
            let in_scope = crate::context::current().is_some();
            self.2.store(in_scope, Ordering::SeqCst);
            self.1.store(true, Ordering::SeqCst);
            self.0.write(records)
        }
        fn writes_promptly(&self) -> bool {
            true
        }
        fn records_nothing(&self) -> bool {
            true
        }
    }

    /// Counts its wake-ups, noting whether a Crux scope was current where it was woken.
    #[derive(Default)]
    struct Noting(AtomicUsize, AtomicBool);
    impl std::task::Wake for Noting {
        fn wake(self: Arc<Self>) {
            let in_scope = crate::context::current().is_some();
            self.1.store(in_scope, Ordering::SeqCst);
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_pass_into_sinks_that_record_nothing_runs_in_context_but_wakes_flushes_outside_it() {
        use std::task::{Context, Waker};
        let sink = Inert::default();
        let observer = Observer::builder().sink(sink.clone()).build();
        let pipeline = Arc::clone(observer.pipeline().unwrap());
        assert!(pipeline.inline && pipeline.in_context);
        // The worker takes the queue only when called: this thread delivers.
        pipeline.worker_polls.store(false, Ordering::Relaxed);
        let run = observer.open_run(RunOptions::new("r", "agent.run"));
        sink.0.set(true);
        // Another thread registers an async flush while this thread's pass blocks in the
        // sink, holding the delivery lock, then lets the sink go.
        let other = {
            let observer = observer.clone();
            let sink = sink.clone();
            std::thread::spawn(move || {
                let entered_by = Instant::now() + Duration::from_secs(30);
                while !sink.1.load(Ordering::SeqCst) {
                    assert!(Instant::now() < entered_by, "the pass never began");
                    std::thread::sleep(Duration::from_millis(1));
                }
                let noting = Arc::new(Noting::default());
                let waker = Waker::from(Arc::clone(&noting));
                let mut flush = Box::pin(observer.flush(FlushOptions {
                    timeout: Duration::from_secs(30),
                    terminal: false,
                }));
                let pending = flush
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending();
                sink.0.set(false);
                let woken_by = Instant::now() + Duration::from_secs(30);
                while noting.0.load(Ordering::SeqCst) == 0 {
                    assert!(Instant::now() < woken_by, "the other flush was never woken");
                    std::thread::sleep(Duration::from_millis(1));
                }
                let std::task::Poll::Ready(result) =
                    flush.as_mut().poll(&mut Context::from_waker(&waker))
                else {
                    panic!("woken but not done");
                };
                (pending, result.status, noting)
            })
        };
        {
            let _in_run = run.scope().enter();
            let flushed = observer.flush_blocking(FlushOptions::BOUNDARY);
            assert_eq!(flushed.status, super::FlushStatus::Drained);
        }
        let (pending, status, noting) = other.join().unwrap();
        assert!(pending, "the other flush found the pass under way");
        assert_eq!(status, super::FlushStatus::Drained);
        assert!(
            sink.2.load(Ordering::SeqCst),
            "the sink was called in the flushing caller's context"
        );
        // This thread's pass completed the other flush before letting go of the lock (the
        // worker was not called), and woke its task outside the caller's context.
        assert!(!pipeline.flush_requested.load(Ordering::SeqCst));
        assert_eq!(noting.0.load(Ordering::SeqCst), 1);
        assert!(
            !noting.1.load(Ordering::SeqCst),
            "a task was woken in the caller's context"
        );
        drop(run);
    }

    #[test]
    fn invalid_records_within_one_pass_are_dropped_and_the_rest_keep_order_and_ids() {
        let memory = crate::sink::Memory::new();
        let observer = Observer::builder().sink(memory.clone()).build();
        let pipeline = Arc::clone(observer.pipeline().unwrap());
        // The worker takes the queue only when called: one pass takes every record.
        pipeline.worker_polls.store(false, Ordering::Relaxed);
        let run = observer.open_run(RunOptions::new("r", "agent.run"));
        // Two spans of an unknown primitive: their `span:start`s are invalid. The first
        // pass finds one after a valid record, the second as its first record.
        let bad_span = |name| {
            run.scope()
                .span(name, "agent.ran")
                .start()
                .end(crate::record::SpanStatus::Ok)
        };
        bad_span("bad");
        let flushed = observer.flush_blocking(FlushOptions::BOUNDARY);
        assert_eq!((flushed.delivered, flushed.rejected), (2, 1));
        bad_span("worse");
        run.end(crate::record::RunStatus::Ok);
        let flushed = observer.flush_blocking(FlushOptions::BOUNDARY);
        assert_eq!((flushed.delivered, flushed.rejected), (2, 1));
        let kept = memory.typed_records();
        let types: Vec<&str> = kept.iter().map(Record::kind).collect();
        assert_eq!(types, ["run:start", "span:end", "span:end", "run:end"]);
        let counters: Vec<u64> = kept
            .iter()
            .map(|r| r.base.record_id.expect("given an id").counter)
            .collect();
        assert_eq!(counters, [1, 2, 3, 4]);
    }

    #[test]
    fn a_json_lines_file_declared_prompt_is_delivered_by_flushing_threads() {
        /// A prompt sink noting the threads that write it.
        #[derive(Clone, Default)]
        struct Writers(Arc<Mutex<Vec<std::thread::ThreadId>>>);
        impl Sink for Writers {
            fn write(&self, _: &[Record]) -> Result<(), SinkError> {
                self.0.lock().unwrap().push(std::thread::current().id());
                Ok(())
            }
            fn writes_promptly(&self) -> bool {
                true
            }
        }
        for prompt in [false, true] {
            let path = std::env::temp_dir().join(format!(
                "crux-delivery-prompt-{}-{prompt}.jsonl",
                std::process::id()
            ));
            let _ = std::fs::remove_file(&path);
            let file = crate::sink::JsonLines::open(&path).unwrap();
            let file = if prompt { file.prompt() } else { file };
            let memory = crate::sink::Memory::new();
            let writers = Writers::default();
            let observer = Observer::builder()
                .sink(file)
                .sink(memory.clone())
                .sink(writers.clone())
                .build();
            let pipeline = Arc::clone(observer.pipeline().unwrap());
            // Flushes deliver on their own thread only when every sink is prompt.
            assert_eq!(pipeline.inline, prompt, "prompt: {prompt}");
            // The worker takes the queue only when a flush calls it.
            pipeline.worker_polls.store(false, Ordering::Relaxed);
            let run = observer.open_run(RunOptions::new("r", "agent.run"));
            run.scope()
                .span("s", "tool.call")
                .start()
                .end(crate::record::SpanStatus::Ok);
            let flushed = observer.flush_blocking(FlushOptions::BOUNDARY);
            assert_eq!(flushed.status, super::FlushStatus::Drained);
            assert_eq!(flushed.delivered, 3, "run:start, span:start, span:end");
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines, memory.records(), "the file holds what was delivered");
            let writers = writers.0.lock().unwrap().clone();
            let here = std::thread::current().id();
            if prompt {
                assert_eq!(writers, [here], "the flushing thread wrote the sinks");
            } else {
                assert!(
                    !writers.is_empty() && !writers.contains(&here),
                    "{writers:?}"
                );
            }
            drop(run);
            let _ = std::fs::remove_file(&path);
        }
    }

    #[test]
    fn async_flushes_racing_on_two_threads_are_completed_without_the_worker_polling() {
        let memory = crate::sink::Memory::new();
        let observer = Observer::builder().sink(memory.clone()).build();
        let pipeline = Arc::clone(observer.pipeline().unwrap());
        // The worker takes the queue only when called: a flush that no flushing thread
        // completed would wait for its deadline.
        pipeline.worker_polls.store(false, Ordering::Relaxed);
        let bound = FlushOptions {
            timeout: Duration::from_secs(5),
            terminal: false,
        };
        const FLUSHES: usize = 20_000;
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let observer = observer.clone();
                std::thread::spawn(move || {
                    let run = observer.open_run(RunOptions::new("r", "agent.run"));
                    for i in 0..FLUSHES {
                        run.scope()
                            .span("s", "tool.call")
                            .start()
                            .end(crate::record::SpanStatus::Ok);
                        let result = block_on(observer.flush(bound));
                        assert_eq!(result.status, super::FlushStatus::Drained, "flush {i}");
                        assert_eq!(result.remaining, 0);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // The runs' ends (`cancelled`, dropped unended) came after their last flushes.
        assert_eq!(
            block_on(observer.flush(bound)).status,
            super::FlushStatus::Drained
        );
        let stats = observer.stats();
        assert_eq!((stats.queued, stats.flush_waiters), (0, 0));
        assert_eq!(memory.len() as u64, stats.accepted);
        assert_eq!(stats.accepted, 2 * (2 + 2 * FLUSHES as u64));
    }

    #[test]
    fn flushes_delivering_on_their_own_thread_bring_spinning_back_after_a_slow_spell() {
        let observer = Observer::builder().sink(crate::sink::Memory::new()).build();
        let pipeline = Arc::clone(observer.pipeline().unwrap());
        // A flush spun in vain (a slow pass): nobody spins until flushes are quick again.
        pipeline.spin_missed();
        assert_eq!(pipeline.spin_budget(), Duration::ZERO);
        // Quick flushes, each delivering (nothing) on this thread, none waiting for a pass:
        // with prompt sinks the usual flush, and the only evidence of quick sinks there is.
        // (A few suffice; more only if this machine is slow enough that one takes
        // longer than a spin would last.)
        for _ in 0..100 {
            let r = observer.flush_blocking(FlushOptions::BOUNDARY);
            assert_eq!(r.status, super::FlushStatus::Drained);
            if !pipeline.spin_budget().is_zero() {
                break;
            }
        }
        assert_eq!(pipeline.stats().flush_waiters, 0);
        assert!(
            !pipeline.spin_budget().is_zero(),
            "quick inline flushes bring spinning back"
        );
    }
}
