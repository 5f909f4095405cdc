//! Bounded flush: wait until everything enqueued before the call reached the sinks, or the
//! bound passes, whichever is first.
//!
//! When every sink writes promptly, a flush first delivers on its own thread
//! (`Pipeline::help`) and waits for nobody. If another thread is delivering (a flushing
//! thread or the worker), it registers, and that thread completes it: one more pass before
//! it lets go of the lock, more after (`Pipeline::serve_latecomers`, up to 4, then the
//! worker). An async flush meanwhile returns `Pending`; a blocking one spins, helping as
//! soon as the lock is free, and calls the worker only when the spin ends without
//! completing it, before it parks. Otherwise (sinks that are not prompt, or a backlog) it
//! hands off to the worker at once and waits: an async flush returns `Pending` and the
//! worker wakes its task, a blocking one spins briefly first. The wait never depends on
//! the sinks making progress: a deadline timer on its own thread wakes the flush, so a
//! hung sink cannot stretch it past its bound, and it works under any executor (no tokio
//! timer needed).

use std::collections::BinaryHeap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{Counters, Declined, Pipeline, lock};

/// How long to wait and whether an incomplete drain deserves a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushOptions {
    /// The bound.
    pub timeout: Duration,
    /// A terminal flush (end of an action) warns through the observer's warning hook when
    /// it does not drain; an opportunistic one is silent.
    pub terminal: bool,
}

impl FlushOptions {
    /// Around a function boundary: 1000 ms, silent.
    pub const BOUNDARY: FlushOptions = FlushOptions {
        timeout: Duration::from_millis(1000),
        terminal: false,
    };
    /// At the end of an action: 3000 ms, warns when incomplete.
    pub const FINAL: FlushOptions = FlushOptions {
        timeout: Duration::from_millis(3000),
        terminal: true,
    };
}

/// How a flush ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FlushStatus {
    /// Everything enqueued before the call reached every sink, and the sinks flushed.
    Drained,
    /// The bound passed first; the rest keeps being delivered in the background.
    Deadline,
    /// Everything was handled, but a sink failed to flush, or to write a record, since
    /// the last flush that completed (before this one began or while it waited: the
    /// worker may have taken the records first).
    Failed,
}

impl FlushStatus {
    /// `drained`, `deadline` or `failed`, as in the TypeScript result.
    pub fn as_str(self) -> &'static str {
        match self {
            FlushStatus::Drained => "drained",
            FlushStatus::Deadline => "deadline",
            FlushStatus::Failed => "failed",
        }
    }
}

/// The structured result of a flush (`ObservabilityFlushResult` in TypeScript); serializes
/// to the same JSON shape (`{status, delivered, rejected, remaining, deadlineExceeded}`)
/// plus two fields the TypeScript result lacks: `dropped` and `bypassed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlushResult {
    /// How it ended. `Drained` speaks of the records still queued when the flush began:
    /// records dropped before they were taken are counted in `dropped`, not here.
    pub status: FlushStatus,
    /// Records delivered while the flush waited.
    pub delivered: u64,
    /// Records rejected as invalid while the flush waited.
    pub rejected: u64,
    /// Records dropped from the full queue (oldest first) while the flush waited.
    pub dropped: u64,
    /// Records enqueued before the call and not yet handled when it returned.
    pub remaining: u64,
    /// Whether the bound passed (or, when `bypassed`, was treated as passed).
    pub deadline_exceeded: bool,
    /// The flush did not wait: a sink call had outlasted an earlier flush's whole bound
    /// and has not returned yet (the circuit breaker, [`DeliveryStats::sink_hung`]).
    ///
    /// [`DeliveryStats::sink_hung`]: super::DeliveryStats::sink_hung
    pub bypassed: bool,
}

impl FlushResult {
    /// The result of flushing nothing (a disabled observer).
    pub const EMPTY: FlushResult = FlushResult {
        status: FlushStatus::Drained,
        delivered: 0,
        rejected: 0,
        dropped: 0,
        remaining: 0,
        deadline_exceeded: false,
        bypassed: false,
    };
}

#[derive(Default)]
struct Slot {
    outcome: Option<FlushResult>,
    waker: Option<Waker>,
    /// A thread blocks on the condvar (`wait_blocking`): only then is it notified.
    blocked: bool,
}

/// The longest a flush waits for the worker by yielding its thread before it parks (an
/// async flush returns `Pending` and arms its deadline). A flush round trip to an awake
/// worker takes a few microseconds; a park costs two thread wake-ups on top of it.
pub(crate) const MAX_SPIN: Duration = Duration::from_micros(50);

/// The longest the worker stays awake after completing a flush, waiting for the next one
/// (see [`Linger`]). Measured on the remote hop (`benches/remote_hop.rs`): the flush after
/// the HTTP call found the worker parked with 50 µs, and waking it cost about 60 µs at
/// p99; 250 µs covers a loopback round trip, and 1 ms did no better.
pub(crate) const MAX_LINGER: Duration = Duration::from_micros(250);

/// A yield that kept the lingering worker off its core longer than this gave the core to
/// a thread with work to do (the cores are busy): a flush arriving meanwhile waits for
/// the scheduler to come back to the worker (about 3 ms measured here with a busy loop on
/// each core: EEVDF moves a yielding thread's deadline back a slice), where waking a
/// parked worker costs tens of microseconds ([`MAX_LINGER`]'s measurement).
pub(crate) const SLOW_YIELD: Duration = Duration::from_micros(50);

/// The first pause in lingering after a slow yield; each pause that ends in another slow
/// yield doubles the next, up to [`MAX_PAUSE`], so a machine that stays busy costs one
/// slow yield a second.
const MIN_PAUSE: Duration = Duration::from_millis(10);

/// The longest pause in lingering.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// How long the worker stays awake after completing a flush: long enough to catch the
/// next flush when flushes have been coming that often (a hop flushes before its call
/// and after it; a remote hop's call takes tens of microseconds), [`MAX_SPIN`] otherwise.
///
/// Waking a parked worker costs a thread wake-up, which a busy machine stretches to tens
/// of microseconds; lingering costs yields of an otherwise idle thread. So the worker
/// learns the usual gap between completing a flush and the next request (a moving
/// average) and lingers for about twice that, up to [`MAX_LINGER`]; when flushes come
/// further apart than that, it does not stay up for them.
///
/// Lingering pays only while a yield comes back at once (a core to spare). When one takes
/// longer than [`SLOW_YIELD`] the worker stops and parks, and does not linger again for a
/// pause ([`MIN_PAUSE`], doubling to [`MAX_PAUSE`] while the next try is slow too): with
/// both cores of this machine kept busy, lingering made every pass of a JSON Lines server
/// wait for the scheduler's next turn, and it served 2 400–3 300 requests a second
/// against 12 700–15 000 without lingering (`crux-runtime/BENCHMARKS.md`, session 14).
#[derive(Debug)]
pub(crate) struct Linger {
    /// When the worker last completed a flush.
    last_completed: Option<Instant>,
    /// The recent gap from a completion to the next request, in ns (a moving average).
    gap_ns: u64,
    /// A slow yield paused lingering until then.
    paused_until: Option<Instant>,
    /// The next pause.
    pause: Duration,
}

impl Default for Linger {
    fn default() -> Self {
        Self {
            last_completed: None,
            gap_ns: 0,
            paused_until: None,
            pause: MIN_PAUSE,
        }
    }
}

impl Linger {
    /// A flush requested at `requested_at` is being completed: learn the gap since the
    /// previous completion (the earliest request of a pass is the one that counts).
    pub(crate) fn requested(&mut self, requested_at: Instant) {
        let Some(last) = self.last_completed.take() else {
            return;
        };
        // A gap past twice the cap counts as twice the cap, so a few quick gaps after a
        // long pause bring lingering back.
        let cap = 2 * MAX_LINGER.as_nanos() as u64;
        let gap = (requested_at.saturating_duration_since(last).as_nanos() as u64).min(cap);
        self.gap_ns = (3 * self.gap_ns + gap) / 4;
    }

    /// The flushes of a pass were completed now: how long to stay awake for the next
    /// (none while lingering is paused).
    pub(crate) fn completed(&mut self, now: Instant) -> Duration {
        self.last_completed = Some(now);
        if let Some(until) = self.paused_until {
            if now < until {
                return Duration::ZERO;
            }
            // Lingering since ended without any slow yield (each time the next flush came
            // first) for a whole pause's length: the busy spell is over, so a lone slow
            // yield later (a timer interrupt, the hypervisor) pauses for the shortest time.
            if now.saturating_duration_since(until) >= self.pause {
                self.paused_until = None;
                self.pause = MIN_PAUSE;
            }
        }
        let gap = Duration::from_nanos(self.gap_ns);
        if gap > MAX_LINGER {
            return MAX_SPIN;
        }
        (2 * gap + MAX_SPIN).min(MAX_LINGER)
    }

    /// A yield while lingering ended at `now` after `took`: whether to go on lingering. A
    /// slow one ([`SLOW_YIELD`]) pauses lingering, each pause twice the last; a quick one
    /// after a pause starts the pauses over.
    pub(crate) fn yielded(&mut self, now: Instant, took: Duration) -> bool {
        if took <= SLOW_YIELD {
            if self.paused_until.take().is_some() {
                self.pause = MIN_PAUSE;
            }
            return true;
        }
        self.paused_until = Some(now + self.pause);
        self.pause = (2 * self.pause).min(MAX_PAUSE);
        false
    }
}

/// The delivery counters when a flush began: its result counts what changed since, and
/// reports the failures no completed flush has reported yet.
pub(crate) struct Progress {
    delivered_at_start: u64,
    rejected_at_start: u64,
    failed_reported_at_start: u64,
    dropped_at_start: u64,
}

impl Progress {
    pub(crate) fn new(counters: &Counters) -> Self {
        Self {
            delivered_at_start: counters.delivered.load(Ordering::Acquire),
            rejected_at_start: counters.rejected.load(Ordering::Acquire),
            failed_reported_at_start: counters.failed_reported.load(Ordering::Acquire),
            dropped_at_start: counters.dropped.load(Ordering::Acquire),
        }
    }

    /// Delivered, rejected and dropped since the start.
    fn since(&self, counters: &Counters) -> (u64, u64, u64) {
        let since = |counter: &std::sync::atomic::AtomicU64, start: u64| {
            counter.load(Ordering::Acquire).saturating_sub(start)
        };
        (
            since(&counters.delivered, self.delivered_at_start),
            since(&counters.rejected, self.rejected_at_start),
            since(&counters.dropped, self.dropped_at_start),
        )
    }

    /// The result of a flush whose records were all handled, the sinks flushed with
    /// `sinks_ok`. A record that failed since the last completed flush makes it `Failed`,
    /// even when the worker delivered it before this flush began: the caller's records
    /// did not reach the sinks, whichever thread tried.
    pub(crate) fn completed(&self, sinks_ok: bool, counters: &Counters) -> FlushResult {
        let (delivered, rejected, dropped) = self.since(counters);
        let failed_now = counters.failed.load(Ordering::Acquire);
        let failed = failed_now > self.failed_reported_at_start;
        // A load first: flushes on every worker thread would otherwise each write the
        // shared line, although failures are rare.
        if failed && counters.failed_reported.load(Ordering::Acquire) < failed_now {
            counters
                .failed_reported
                .fetch_max(failed_now, Ordering::AcqRel);
        }
        FlushResult {
            status: if failed || !sinks_ok {
                FlushStatus::Failed
            } else {
                FlushStatus::Drained
            },
            delivered,
            rejected,
            dropped,
            remaining: 0,
            deadline_exceeded: false,
            bypassed: false,
        }
    }
}

/// One flush waiting on another thread's delivery pass (the worker's, or another flush's).
pub(crate) struct Waiter {
    pub(crate) target: u64,
    /// When the flush was requested (the worker reports the latency of each completion).
    pub(crate) requested_at: Instant,
    /// The sink call in progress when the flush registered (0: none), for the breaker.
    call_at_request: u64,
    progress: Progress,
    /// In the pipeline's list of flushes (changed under the queue lock only).
    pub(crate) listed: AtomicBool,
    /// Gave up waiting while listed (changed under the queue lock only).
    pub(crate) abandoned: AtomicBool,
    slot: Mutex<Slot>,
    /// Set once `slot.outcome` is filled, so a spinning flush polls without the lock.
    finished: AtomicBool,
    done: Condvar,
}

impl Waiter {
    pub(crate) fn new(target: u64, pipeline: &Pipeline) -> Self {
        let counters = &pipeline.counters;
        Self {
            target,
            requested_at: Instant::now(),
            call_at_request: pipeline.sink_call(),
            progress: Progress::new(counters),
            listed: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            slot: Mutex::new(Slot::default()),
            finished: AtomicBool::new(false),
            done: Condvar::new(),
        }
    }

    pub(crate) fn complete(&self, sinks_ok: bool, counters: &Counters) {
        let result = self.progress.completed(sinks_ok, counters);
        let (waker, blocked) = {
            let mut slot = lock(&self.slot);
            slot.outcome = Some(result);
            self.finished.store(true, Ordering::Release);
            (slot.waker.take(), slot.blocked)
        };
        // A notify is a system call even with nobody waiting: skip it unless someone is.
        if blocked {
            self.done.notify_all();
        }
        if let Some(w) = waker {
            wake(w);
        }
    }

    /// The result at the deadline; a sink stuck in one call since before the request
    /// opens the circuit breaker.
    fn deadline_result(&self, pipeline: &Pipeline) -> FlushResult {
        pipeline.deadline_passed(self.call_at_request);
        let (delivered, rejected, dropped) = self.progress.since(&pipeline.counters);
        let done = pipeline.done_upto.load(Ordering::Acquire);
        FlushResult {
            status: FlushStatus::Deadline,
            delivered,
            rejected,
            dropped,
            remaining: self.target.saturating_sub(done),
            deadline_exceeded: true,
            bypassed: false,
        }
    }
}

/// A flush in progress; resolves to its [`FlushResult`] by its deadline at the latest.
pub(crate) struct FlushWait {
    pipeline: Arc<Pipeline>,
    waiter: Arc<Waiter>,
    deadline: Instant,
    timer_armed: bool,
    /// Polled before: the first poll tries to help.
    polled: bool,
    /// The worker was called for this flush ([`Pipeline::call_worker`]). Not at first
    /// when another thread's pass was under way: that pass, or this thread's own once the
    /// lock is free, usually completes the flush with no thread woken.
    called_worker: bool,
}

/// How a flush starts: waiting on another thread's delivery, or done at once (delivered
/// on the calling thread, or bypassed with the circuit breaker open).
pub(crate) enum FlushStart {
    Wait(FlushWait),
    Done(FlushResult),
}

impl FlushStart {
    /// Blocks the current thread until done or the deadline.
    pub(crate) fn wait_blocking(self) -> FlushResult {
        match self {
            FlushStart::Wait(w) => w.wait_blocking(),
            FlushStart::Done(r) => r,
        }
    }
}

impl FlushWait {
    /// Starts a flush: done at once when delivered on this thread (or bypassed), else a
    /// waiter registered. The pipeline's handle is cloned only for a flush that waits (a
    /// reference count every thread's flushes would otherwise bounce).
    pub(crate) fn start(pipeline: &Arc<Pipeline>, timeout: Duration) -> FlushStart {
        if pipeline.sink_hung() {
            let accepted = pipeline.count_bypass();
            let done = pipeline.done_upto.load(Ordering::Acquire);
            return FlushStart::Done(FlushResult {
                status: FlushStatus::Deadline,
                remaining: accepted.saturating_sub(done),
                deadline_exceeded: true,
                bypassed: true,
                ..FlushResult::EMPTY
            });
        }
        let counters = &pipeline.counters;
        let mut declined = Declined::NotPrompt;
        if pipeline.inline {
            let progress = Progress::new(counters);
            // Timed only while nobody spins (a slow spell): a quick inline flush then
            // shows the sinks answer quickly again, as a quick completion does.
            let timed = pipeline.spin_stopped().then(Instant::now);
            let covered = |sinks_ok| {
                if let Some(started) = timed {
                    pipeline.record_flush_latency(started.elapsed());
                }
                progress.completed(sinks_ok, counters)
            };
            match pipeline.help(covered) {
                Ok(result) => return FlushStart::Done(result),
                Err(why) => declined = why,
            }
        }
        // Read the clock only for a flush that waits: most boundary flushes with prompt
        // sinks are done above, on this thread (the bound counts from here, so a declined
        // attempt, a quick `try_lock`, does not shorten it).
        let deadline = deadline_after(timeout);
        let waiter = pipeline.request_flush(|target| Waiter::new(target, pipeline));
        let mut wait = Self {
            pipeline: Arc::clone(pipeline),
            waiter,
            deadline,
            timer_armed: false,
            polled: false,
            called_worker: false,
        };
        if declined != Declined::Busy {
            wait.call_worker();
        }
        FlushStart::Wait(wait)
    }

    /// Hands the flush to the worker (once): it cannot be delivered on a flushing
    /// thread, or this one stops waiting for the pass under way.
    fn call_worker(&mut self) {
        if !self.called_worker {
            self.called_worker = true;
            self.pipeline.call_worker();
        }
    }

    /// Whether the flush was completed, helping first: when the delivery lock is free
    /// again (the pass that held it is over), this thread runs the next pass itself
    /// ([`Pipeline::help`]), which completes this flush. A flush that cannot be helped
    /// (a backlog for the worker) has the worker called: by this flush the first time, by
    /// `help` whenever it declines with flushes waiting.
    fn finished(&mut self) -> bool {
        if self.waiter.finished.load(Ordering::Acquire) {
            return true;
        }
        // Registered, then tries the lock: see `Pipeline::serve_latecomers`.
        std::sync::atomic::fence(Ordering::SeqCst);
        if let Err(why) = self.pipeline.help(|_| ())
            && why != Declined::Busy
        {
            self.call_worker();
        }
        self.waiter.finished.load(Ordering::Acquire)
    }

    /// Waits without parking, for as long as recent flushes took to complete (at most
    /// [`MAX_SPIN`], never past the deadline): the usual boundary flush is done by then
    /// and costs no thread wake-up. Yields the thread between checks, so the worker can
    /// run on a busy machine; a slow or hung sink makes the estimate exceed the cap, and
    /// then nobody spins (but helps once). A flush still waiting after that calls the
    /// worker before it sleeps.
    ///
    /// For a blocking flush only: an async one returns `Pending` instead (`poll`), so
    /// spinning would only delay the other tasks of the executor's thread (and each
    /// `yield` is a system call).
    fn spin(&mut self) -> Option<FlushResult> {
        let budget = self.pipeline.spin_budget();
        let done = if budget.is_zero() {
            self.finished()
        } else {
            let until = (Instant::now() + budget).min(self.deadline);
            let done = spin_until(until, || self.finished());
            if !done {
                self.pipeline.spin_missed();
            }
            done
        };
        if done {
            return lock(&self.waiter.slot).outcome;
        }
        self.call_worker();
        None
    }

    /// Blocks the current thread until done or the deadline.
    pub(crate) fn wait_blocking(mut self) -> FlushResult {
        if let Some(r) = self.spin() {
            return r;
        }
        let mut slot = lock(&self.waiter.slot);
        slot.blocked = true;
        loop {
            if let Some(r) = slot.outcome {
                return r;
            }
            let now = Instant::now();
            if now >= self.deadline {
                drop(slot);
                return self.waiter.deadline_result(&self.pipeline);
            }
            slot = self
                .waiter
                .done
                .wait_timeout(slot, self.deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

impl Drop for FlushWait {
    /// A flush that stops waiting (its deadline, or its future dropped) leaves nothing
    /// behind in the worker's list.
    fn drop(&mut self) {
        if !self.waiter.finished.load(Ordering::Acquire) {
            self.pipeline.abandon(&self.waiter);
        }
    }
}

impl Future for FlushWait {
    type Output = FlushResult;

    /// Never spins: whoever completes the flush (a thread that held the delivery lock, or
    /// the worker) wakes the task, and this thread runs other tasks meanwhile.
    ///
    /// Spinning cost a saturated server 2.4 `sched_yield` calls a request while it waited
    /// for another flushing thread's pass. Waiting for the worker (sinks that are not
    /// prompt) it cost more: on a machine whose cores are busy each yield gives the core
    /// away for a time slice, and with a flush spinning on each of them the request
    /// threads ran a fraction of the time.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<FlushResult> {
        if !self.polled {
            self.polled = true;
            // Another thread was delivering (prompt sinks): it completes this flush when it
            // lets go of the delivery lock (`Pipeline::serve_latecomers`). Helped at once
            // if the lock is free by now; an attempt that finds a backlog calls the worker.
            if !self.called_worker
                && self.finished()
                && let Some(r) = lock(&self.waiter.slot).outcome
            {
                return Poll::Ready(r);
            }
        }
        {
            let mut slot = lock(&self.waiter.slot);
            if let Some(r) = slot.outcome {
                return Poll::Ready(r);
            }
            if Instant::now() < self.deadline {
                slot.waker = Some(cx.waker().clone());
                drop(slot);
                if !self.timer_armed {
                    self.timer_armed = true;
                    timer().schedule(self.deadline, Arc::downgrade(&self.waiter));
                }
                return Poll::Pending;
            }
        }
        Poll::Ready(self.waiter.deadline_result(&self.pipeline))
    }
}

/// Wakes a flush's task. A waker that panics (a broken executor) costs that task its
/// wake-up only: the thread waking it, the delivery worker or the deadline timer, serves
/// every other flush too, and must neither unwind out of the middle of a batch nor die.
fn wake(waker: Waker) {
    let _ = catch_unwind(AssertUnwindSafe(|| waker.wake()));
}

/// `now + timeout`, saturating: a `Duration::MAX` timeout ("wait as long as it takes")
/// is about a century away instead of an `Instant` overflow panic.
pub fn deadline_after(timeout: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// Waits until `done()` or `until`, yielding the thread between checks; whether `done()`
/// held.
///
/// Yielding, not busy-waiting: the scheduler often puts the flushing thread and the
/// delivery worker on the same core, and on a virtual machine a `pause` loop makes the
/// hypervisor deschedule the vCPU; measured here, busy-waiting first made a flush round
/// trip 24 µs instead of 3.5 µs.
fn spin_until(until: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        yield_now();
    }
}

/// Gives up the thread's core ([`std::thread::yield_now`]), counted per thread in tests.
pub(crate) fn yield_now() {
    #[cfg(test)]
    YIELDS.with(|n| n.set(n.get() + 1));
    std::thread::yield_now();
}

#[cfg(test)]
thread_local! {
    /// The yields this thread made ([`yield_now`]).
    pub(crate) static YIELDS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// One armed deadline: wakes whatever waker its flush holds when `at` passes.
struct Deadline {
    at: Instant,
    waiter: Weak<Waiter>,
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Deadline {}
impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Deadline {
    /// Reversed, so the max-heap pops the earliest deadline first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

/// A tiny deadline timer on its own thread (a heap of deadlines, a condvar).
struct Timer {
    deadlines: Mutex<BinaryHeap<Deadline>>,
    /// The heap size at which deadlines of flushes that are gone are purged.
    purge_at: AtomicUsize,
    changed: Condvar,
}

/// The heap is never purged below this size.
const MIN_PURGE: usize = 1024;

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        // Should the thread fail to start, a flush still ends: the worker wakes it on
        // completion and every poll checks the deadline.
        let _ = std::thread::Builder::new()
            .name("crux-flush-timer".into())
            .spawn(|| timer().run());
        Timer {
            deadlines: Mutex::new(BinaryHeap::new()),
            purge_at: AtomicUsize::new(MIN_PURGE),
            changed: Condvar::new(),
        }
    })
}

impl Timer {
    fn schedule(&self, at: Instant, waiter: Weak<Waiter>) {
        let mut deadlines = lock(&self.deadlines);
        // A flush that completed or was dropped leaves its deadline until it passes, which
        // may be far away: drop those once the heap doubled since the last purge, so it
        // stays within twice the flushes alive (amortized O(log n) per deadline).
        if deadlines.len() >= self.purge_at.load(Ordering::Relaxed) {
            deadlines.retain(|d| d.waiter.strong_count() > 0);
            self.purge_at
                .store((2 * deadlines.len()).max(MIN_PURGE), Ordering::Relaxed);
        }
        let earliest = deadlines.peek().is_none_or(|d| at < d.at);
        deadlines.push(Deadline { at, waiter });
        if earliest {
            self.changed.notify_one();
        }
    }

    fn run(&self) {
        let mut due = Vec::new();
        let mut deadlines = lock(&self.deadlines);
        loop {
            let now = Instant::now();
            while deadlines.peek().is_some_and(|d| d.at <= now) {
                if let Some(waiter) = deadlines.pop().and_then(|d| d.waiter.upgrade()) {
                    due.push(waiter);
                }
            }
            if !due.is_empty() {
                // Wake without holding the heap: a waker may poll inline and re-arm.
                drop(deadlines);
                for waiter in due.drain(..) {
                    let waker = lock(&waiter.slot).waker.take();
                    if let Some(w) = waker {
                        wake(w);
                    }
                }
                deadlines = lock(&self.deadlines);
                continue;
            }
            deadlines = match deadlines.peek().map(|d| d.at) {
                Some(at) => {
                    self.changed
                        .wait_timeout(deadlines, at.saturating_duration_since(Instant::now()))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self
                    .changed
                    .wait(deadlines)
                    .unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `linger` flushes requested `gap` after each completion; the linger after the
    /// last one.
    fn linger_after(linger: &mut Linger, gap: Duration, flushes: usize) -> Duration {
        let mut now = Instant::now();
        let mut stay = Duration::ZERO;
        for _ in 0..flushes {
            now += gap;
            linger.requested(now);
            stay = linger.completed(now);
        }
        stay
    }

    #[test]
    fn the_worker_lingers_for_flushes_that_come_often_and_not_for_rare_ones() {
        let mut linger = Linger::default();
        // Before any flush: the short linger.
        assert_eq!(linger.completed(Instant::now()), MAX_SPIN);
        // Flushes 80 µs apart (a remote hop's call): the worker stays up past them.
        let stay = linger_after(&mut linger, Duration::from_micros(80), 20);
        assert!(
            stay > Duration::from_micros(80) && stay <= MAX_LINGER,
            "{stay:?}"
        );
        // Flushes 10 ms apart: no longer than before.
        assert_eq!(
            linger_after(&mut linger, Duration::from_millis(10), 20),
            MAX_SPIN
        );
        // A few quick ones bring it back.
        let stay = linger_after(&mut linger, Duration::from_micros(5), 8);
        assert!(stay >= MAX_SPIN && stay < MAX_LINGER, "{stay:?}");
    }

    #[test]
    fn a_pause_long_past_is_forgotten_without_a_quick_yield() {
        const SLOW: Duration = Duration::from_millis(3);
        let mut linger = Linger::default();
        let start = Instant::now();
        assert!(!linger.yielded(start, SLOW), "a slow yield stops");
        // The pause ends; lingering then always ends with the next flush, never a yield.
        let ended = start + MIN_PAUSE;
        assert_eq!(linger.completed(ended), MAX_SPIN);
        // A whole (doubled) pause later, one slow yield pauses for the shortest time again.
        let later = ended + 2 * MIN_PAUSE;
        assert_eq!(linger.completed(later), MAX_SPIN);
        assert!(!linger.yielded(later, SLOW));
        let us = Duration::from_micros(1);
        assert_eq!(linger.completed(later + MIN_PAUSE - us), Duration::ZERO);
        assert_eq!(linger.completed(later + MIN_PAUSE), MAX_SPIN);
    }

    #[test]
    fn a_slow_yield_pauses_lingering_each_pause_twice_the_last_until_a_quick_one() {
        const QUICK: Duration = Duration::from_micros(2);
        const SLOW: Duration = Duration::from_millis(3);
        let us = Duration::from_micros(1);
        let mut linger = Linger::default();
        let start = Instant::now();
        assert_eq!(linger.completed(start), MAX_SPIN);
        assert!(linger.yielded(start, QUICK), "a quick yield goes on");
        assert!(
            linger.yielded(start, SLOW_YIELD),
            "the bound itself is quick"
        );

        // The cores are busy: no lingering for the pause, then a try.
        assert!(!linger.yielded(start, SLOW), "a slow yield stops");
        assert_eq!(linger.completed(start + MIN_PAUSE - us), Duration::ZERO);
        let tried = start + MIN_PAUSE;
        assert_eq!(linger.completed(tried), MAX_SPIN);
        // Still busy: twice the pause.
        assert!(!linger.yielded(tried, SLOW));
        assert_eq!(linger.completed(tried + 2 * MIN_PAUSE - us), Duration::ZERO);
        let tried = tried + 2 * MIN_PAUSE;
        assert_eq!(linger.completed(tried), MAX_SPIN);

        // Quick again: lingering pays, and the next pause is the first one's length.
        assert!(linger.yielded(tried, QUICK));
        assert_eq!(linger.completed(tried + us), MAX_SPIN);
        assert!(!linger.yielded(tried + us, SLOW));
        assert_eq!(
            linger.completed(tried + us + MIN_PAUSE - us),
            Duration::ZERO
        );
        assert_eq!(linger.completed(tried + us + MIN_PAUSE), MAX_SPIN);

        // A machine that stays busy: the pauses stop growing at the cap.
        let mut now = tried + us + MIN_PAUSE;
        for _ in 0..20 {
            assert!(!linger.yielded(now, SLOW));
            // Tried again as each pause ends, and slow again.
            let ends = linger.paused_until.expect("paused");
            assert!(ends - now <= MAX_PAUSE, "paused past the cap");
            now = ends;
            assert_eq!(linger.completed(now), MAX_SPIN);
        }
        assert_eq!(linger.pause, MAX_PAUSE);
    }

    #[test]
    fn deadlines_of_flushes_that_are_gone_do_not_pile_up() {
        // Far-away deadlines of flushes that ended (or were dropped) long before them.
        let far = deadline_after(Duration::MAX);
        for _ in 0..10_000 {
            timer().schedule(far, Weak::new());
        }
        let held = lock(&timer().deadlines).len();
        assert!(held < 5_000, "{held} deadlines held for 0 live flushes");
    }
}
