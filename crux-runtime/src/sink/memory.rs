use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{Sink, SinkError};
use crate::ids::RunId;
use crate::record::Record;

/// An in-memory sink for tests and examples. Cloning gives another handle to the same
/// records. To print or pin them as run trees, use the `crux` facade's `crux::view::Trees`
/// and `crux::testing`.
///
/// ```
/// let memory = crux_runtime::sink::Memory::new();
/// assert!(memory.records().is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Memory {
    inner: Arc<Mutex<Store>>,
}

#[derive(Default)]
struct Store {
    records: VecDeque<Record>,
    limit: Option<usize>,
}

impl Memory {
    /// An unbounded memory sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A memory sink keeping only the newest `limit` records (for long-running programs
    /// and benchmarks).
    pub fn bounded(limit: usize) -> Self {
        let m = Self::default();
        m.lock().limit = Some(limit.max(1));
        m
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every record received, as wire JSON, in delivery order.
    pub fn records(&self) -> Vec<Value> {
        self.lock().records.iter().map(Record::to_json).collect()
    }

    /// The typed records received.
    pub fn typed_records(&self) -> Vec<Record> {
        self.lock().records.iter().cloned().collect()
    }

    /// The records of one run, as wire JSON, in delivery order.
    pub fn records_of_run(&self, run_id: RunId) -> Vec<Value> {
        self.lock()
            .records
            .iter()
            .filter(|r| r.base.run_id == run_id)
            .map(Record::to_json)
            .collect()
    }

    /// How many records were received (and kept).
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether no record was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every record.
    pub fn clear(&self) {
        self.lock().records.clear();
    }
}

impl Memory {
    fn keep(&self, records: impl Iterator<Item = Record>) {
        let mut store = self.lock();
        store.records.extend(records);
        if let Some(limit) = store.limit {
            let excess = store.records.len().saturating_sub(limit);
            store.records.drain(..excess);
        }
    }
}

impl Sink for Memory {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        self.keep(records.iter().cloned());
        Ok(())
    }

    /// Keeps the batch without cloning it: the records are moved in.
    fn write_owned(&self, records: &mut Vec<Record>) -> Result<(), SinkError> {
        self.keep(records.drain(..));
        Ok(())
    }

    /// `true`: writing is moving records into memory under a lock held only for that
    /// (readers hold it to copy them out), and flushing does nothing.
    fn writes_promptly(&self) -> bool {
        true
    }
}
