//! The export worker: a bounded queue of finished spans and a std thread that hands them
//! to a `SpanExporter` in batches, so neither the program nor crux's delivery worker ever
//! waits on the network outside a flush.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::lock;

/// A `SpanExporter` driven from a plain thread (its future is polled to completion there).
pub(crate) trait BlockingExport: Send {
    fn export(&mut self, batch: Vec<SpanData>) -> OTelSdkResult;
    fn shutdown(&mut self);
}

impl<E: SpanExporter + 'static> BlockingExport for E {
    fn export(&mut self, batch: Vec<SpanData>) -> OTelSdkResult {
        futures_executor::block_on(SpanExporter::export(self, batch))
    }
    fn shutdown(&mut self) {
        let _ = SpanExporter::shutdown_with_timeout(self, Duration::from_secs(1));
    }
}

/// Span counters since the sink was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Spans the exporter accepted.
    pub exported: u64,
    /// Spans in batches the exporter failed to send (collector down, refused, timed out).
    pub failed: u64,
    /// Spans dropped before export: the export queue was full, or the span was still open
    /// when the open-span cap was reached.
    pub dropped: u64,
    /// Finished spans waiting for export.
    pub queued: u64,
    /// Spans started whose end record has not arrived yet.
    pub open: u64,
}

impl ExportStats {
    /// Spans that will never reach the collector: `failed + dropped`.
    pub fn not_exported(&self) -> u64 {
        self.failed + self.dropped
    }
}

pub(crate) struct Settings {
    pub(crate) capacity: usize,
    pub(crate) batch_size: usize,
    pub(crate) delay: Duration,
    pub(crate) flush_timeout: Duration,
}

struct Queue {
    spans: VecDeque<SpanData>,
    /// Spans ever enqueued.
    enqueued: u64,
    /// Spans exported, failed or dropped.
    settled: u64,
    flush_wanted: bool,
    shutdown: bool,
}

pub(crate) struct Worker {
    queue: Mutex<Queue>,
    wake: Condvar,
    settled: Condvar,
    pub(crate) exported: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    /// The last export failed or a flush timed out: flushes stop waiting (the export
    /// thread keeps trying) until an export succeeds, so a dead or hung collector holds
    /// crux's delivery thread for one export timeout at most, not once per flush.
    unhealthy: AtomicBool,
    settings: Settings,
}

impl Worker {
    pub(crate) fn start(exporter: Box<dyn BlockingExport>, settings: Settings) -> Arc<Worker> {
        let worker = Arc::new(Worker {
            queue: Mutex::new(Queue {
                spans: VecDeque::new(),
                enqueued: 0,
                settled: 0,
                flush_wanted: false,
                shutdown: false,
            }),
            wake: Condvar::new(),
            settled: Condvar::new(),
            exported: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unhealthy: AtomicBool::new(false),
            settings,
        });
        let for_thread = Arc::clone(&worker);
        let spawned = std::thread::Builder::new()
            .name("crux-otel-export".into())
            .spawn(move || for_thread.run(exporter));
        if spawned.is_err() {
            // No thread, no export: everything enqueued is counted as dropped.
            lock(&worker.queue).shutdown = true;
        }
        worker
    }

    /// Enqueues finished spans; drops (and counts) the oldest when the queue is full.
    pub(crate) fn enqueue(&self, spans: Vec<SpanData>, also_dropped: u64) {
        if spans.is_empty() && also_dropped == 0 {
            return;
        }
        let mut q = lock(&self.queue);
        let n = spans.len() as u64;
        q.enqueued += n + also_dropped;
        let mut dropped = also_dropped;
        if q.shutdown {
            dropped += n;
        } else {
            q.spans.extend(spans);
            while q.spans.len() > self.settings.capacity {
                q.spans.pop_front();
                dropped += 1;
            }
        }
        q.settled += dropped;
        self.dropped.fetch_add(dropped, Ordering::AcqRel);
        self.wake.notify_one();
    }

    /// Waits until everything enqueued so far is exported or failed, at most the flush
    /// timeout. Returns whether it all went out.
    pub(crate) fn flush(&self) -> bool {
        let failed_before = self.failed.load(Ordering::Acquire);
        let deadline = crux_runtime::delivery::deadline_after(self.settings.flush_timeout);
        let mut q = lock(&self.queue);
        let target = q.enqueued;
        q.flush_wanted = true;
        self.wake.notify_one();
        if q.settled < target && self.unhealthy.load(Ordering::Acquire) {
            return false;
        }
        while q.settled < target {
            let now = Instant::now();
            if now >= deadline || q.shutdown {
                self.unhealthy.store(true, Ordering::Release);
                return false;
            }
            q = self
                .settled
                .wait_timeout(q, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        self.failed.load(Ordering::Acquire) == failed_before
    }

    pub(crate) fn queued(&self) -> u64 {
        lock(&self.queue).spans.len() as u64
    }

    pub(crate) fn shutdown(&self) {
        lock(&self.queue).shutdown = true;
        self.wake.notify_one();
    }

    fn run(&self, mut exporter: Box<dyn BlockingExport>) {
        loop {
            let batch = {
                let mut q = lock(&self.queue);
                let since = Instant::now();
                while !q.shutdown
                    && !q.flush_wanted
                    && q.spans.len() < self.settings.batch_size
                    && (since.elapsed() < self.settings.delay || q.spans.is_empty())
                {
                    let wait = if q.spans.is_empty() {
                        Duration::from_secs(3600)
                    } else {
                        self.settings.delay.saturating_sub(since.elapsed())
                    };
                    q = self
                        .wake
                        .wait_timeout(q, wait)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
                if q.spans.is_empty() {
                    q.flush_wanted = false;
                    self.settled.notify_all();
                    if q.shutdown {
                        break;
                    }
                    continue;
                }
                let n = q.spans.len().min(self.settings.batch_size);
                q.spans.drain(..n).collect::<Vec<_>>()
            };
            let n = batch.len() as u64;
            let ok =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exporter.export(batch)))
                    .is_ok_and(|r| r.is_ok());
            let counter = if ok { &self.exported } else { &self.failed };
            counter.fetch_add(n, Ordering::AcqRel);
            self.unhealthy.store(!ok, Ordering::Release);
            let mut q = lock(&self.queue);
            q.settled += n;
            self.settled.notify_all();
        }
        exporter.shutdown();
    }
}
