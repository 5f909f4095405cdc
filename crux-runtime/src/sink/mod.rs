//! Where records go: the [`Sink`] trait and the built-in sinks.
//!
//! Sinks run one call at a time, in queue order, on the delivery worker thread: a slow or
//! hung sink delays delivery but never the program. Sinks that promise to answer
//! promptly ([`Sink::writes_promptly`], like [`Memory`]) may also be called by a flushing
//! thread, which then delivers the queue itself instead of waiting for the worker.

mod jsonl;
mod memory;

pub use jsonl::JsonLines;
pub use memory::Memory;

use crate::record::Record;

/// A sink's failure; counted as `failed` delivery, never surfaced to business logic.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// An I/O failure.
    #[error("sink I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// Any other failure, described.
    #[error("sink failed: {0}")]
    Other(String),
}

/// A destination for Crux records, called on the delivery worker thread (and, when every
/// sink [writes promptly](Sink::writes_promptly), on flushing threads too). An observer's
/// calls never overlap: one delivery pass at a time writes its sinks, in queue order (a
/// sink shared by two observers sees both observers' calls).
///
/// ```
/// use crux_runtime::record::Record;
/// use crux_runtime::sink::{Sink, SinkError};
///
/// struct Count(std::sync::atomic::AtomicUsize);
/// impl Sink for Count {
///     fn write(&self, records: &[Record]) -> Result<(), SinkError> {
///         self.0.fetch_add(records.len(), std::sync::atomic::Ordering::Relaxed);
///         Ok(())
///     }
/// }
/// ```
pub trait Sink: Send + Sync + 'static {
    /// Writes a batch, in enqueue order.
    fn write(&self, records: &[Record]) -> Result<(), SinkError>;

    /// Writes a batch the sink may keep: it can move records out of `records` instead of
    /// cloning them (what it leaves is dropped afterwards). The delivery worker calls this
    /// on the last sink; the default calls [`write`](Sink::write). [`Memory`] overrides it.
    fn write_owned(&self, records: &mut Vec<Record>) -> Result<(), SinkError> {
        self.write(records)
    }

    /// Makes everything written so far durable or visible (called by flushes, unless
    /// [`needs_flush`](Sink::needs_flush) is `false`).
    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Whether [`flush`](Sink::flush) has work to do. Default `true`; a sink whose writes
    /// are visible as soon as they return (nothing buffered) says `false`, and delivery
    /// then never calls its `flush`: a flush costs it nothing (no call, no circuit-breaker
    /// timestamp). Read once, when the observer is built.
    ///
    /// Built-in sinks: [`Memory`] `false`; [`JsonLines`] `true` (its writes are buffered);
    /// the devtools and OpenTelemetry sinks `true` (their `flush` sends and waits).
    fn needs_flush(&self) -> bool {
        true
    }

    /// Whether [`write`](Sink::write), [`write_owned`](Sink::write_owned) and
    /// [`flush`](Sink::flush) always answer promptly: they never wait on I/O that can stall
    /// (a socket, a network file system), on a remote peer, or on another thread that may do
    /// either (a lock held across I/O, a channel to an exporter). Default `false`. A file on
    /// a local disk is a judgement call its owner makes ([`JsonLines::prompt`]): its
    /// `write(2)` is usually prompt, and stalls only when the disk or the page cache does.
    ///
    /// When every sink of an observer says `true`, a flush delivers the queued records on
    /// its own thread instead of handing them to the delivery thread and waiting for it
    /// (the common flush then costs no thread wake-up). The flush's bound relies on this
    /// promise there: a sink that says `true` and then blocks blocks the caller past the
    /// bound (the circuit breaker still opens for other flushes). Such a sink must also
    /// not take a lock that code calling a flush may hold (the call may run on that
    /// thread, where it would deadlock; on the delivery thread it only waited). The calls
    /// run outside the flushing caller's Crux context, as on the delivery thread: what a
    /// sink records through the current context (an event, a span, its own `tracing`
    /// instrumentation through `CruxLayer`) finds none and joins no run. A panic is
    /// caught as on the delivery thread and counted as failed. Read once, when the
    /// observer is built.
    ///
    /// Built-in sinks: [`Memory`] `true`; [`JsonLines`] `false` (its write and flush reach
    /// the file through `write(2)`, which a full page cache, a hung disk or a network file
    /// system can stall for longer than a flush's bound), `true` once declared
    /// [`prompt`](JsonLines::prompt) (a file on a local disk); the devtools and OpenTelemetry
    /// sinks `false` (their `flush` waits for the collector's answer).
    fn writes_promptly(&self) -> bool {
        false
    }

    /// Whether the sink's calls never record anything through Crux: they open no span,
    /// emit no event, and run no `tracing` instrumentation that a `CruxLayer` could turn
    /// into records. Default `false`. A flush delivering on its own thread
    /// ([`writes_promptly`](Sink::writes_promptly)) calls sinks that all say `true`
    /// without first setting its caller's Crux context aside (what a sink records must
    /// not join the caller's run; these record nothing), which saves two thread-local
    /// swaps a flush. Read once, when the observer is built.
    ///
    /// Say `true` only for a sink whose calls also never panic: a panic's hook runs where
    /// it happened, in the caller's context, so a hook that logs through `tracing` would
    /// record into the caller's run. A sink wrapping others says `true` only if all of
    /// them do.
    ///
    /// [`Memory`] and [`JsonLines`] say `true`; the OpenTelemetry and devtools sinks
    /// `false` (their HTTP clients may be instrumented with `tracing`).
    fn records_nothing(&self) -> bool {
        false
    }
}

impl<S: Sink + ?Sized> Sink for std::sync::Arc<S> {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        (**self).write(records)
    }
    fn write_owned(&self, records: &mut Vec<Record>) -> Result<(), SinkError> {
        (**self).write_owned(records)
    }
    fn flush(&self) -> Result<(), SinkError> {
        (**self).flush()
    }
    fn needs_flush(&self) -> bool {
        (**self).needs_flush()
    }
    fn writes_promptly(&self) -> bool {
        (**self).writes_promptly()
    }
    fn records_nothing(&self) -> bool {
        (**self).records_nothing()
    }
}
