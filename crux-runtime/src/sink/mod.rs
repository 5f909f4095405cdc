//! Where records go: the [`Sink`] trait and the built-in sinks.
//!
//! Sinks run on the delivery worker thread, in order, never on the caller's task: a slow
//! or hung sink delays delivery but never the program.

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

/// A destination for Crux records, called on the delivery worker thread.
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

    /// Makes everything written so far durable or visible (called by flushes).
    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
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
}
