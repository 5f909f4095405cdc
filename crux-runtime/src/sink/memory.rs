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
/// Readers copy the records out without holding up delivery: the records are kept in
/// shared, immutable batches, so a reader takes the batch handles under the lock (one
/// reference count each) and converts or clones the records after releasing it. A flush
/// delivering on its own thread ([`Sink::writes_promptly`]) therefore never waits for a
/// reader converting thousands of records.
///
/// ```
/// let memory = crux_runtime::sink::Memory::new();
/// assert!(memory.records().is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Memory {
    inner: Arc<Mutex<Store>>,
    /// The bound, read outside the lock: a batch is cut to it before it is kept.
    limit: Option<usize>,
}

/// One delivered batch, shared with readers that copied it out; the first `start`
/// records were dropped by the limit (they are freed with the batch).
#[derive(Clone)]
struct Batch {
    records: Arc<[Record]>,
    start: usize,
}

impl Batch {
    fn kept(&self) -> &[Record] {
        &self.records[self.start..]
    }
}

#[derive(Default)]
struct Store {
    batches: VecDeque<Batch>,
    /// Records kept, over every batch.
    len: usize,
}

impl Memory {
    /// An unbounded memory sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A memory sink keeping only the newest `limit` records (for long-running programs
    /// and benchmarks). A delivered batch is cut to `limit` before it is kept, and older
    /// batches are cut as newer ones arrive, so at most about twice `limit` records are
    /// held in memory at once (the front of the oldest batch is freed with its batch).
    pub fn bounded(limit: usize) -> Self {
        Self {
            inner: Arc::default(),
            limit: Some(limit.max(1)),
        }
    }

    /// How many of `n` delivered records to skip: those the bound would cut at once.
    fn cut(&self, n: usize) -> usize {
        self.limit.map_or(0, |limit| n.saturating_sub(limit))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The batches kept now: reference counts taken under the lock, nothing copied, so
    /// the caller converts them without holding it.
    fn snapshot(&self) -> Vec<Batch> {
        self.lock().batches.iter().cloned().collect()
    }

    /// Every record kept now, in delivery order, read outside the lock.
    /// `all`: `f` keeps every record, so the result is sized for them at once.
    fn each<T>(&self, all: bool, mut f: impl FnMut(&Record) -> Option<T>) -> Vec<T> {
        let batches = self.snapshot();
        let mut out = Vec::new();
        if all {
            out.reserve_exact(batches.iter().map(|b| b.kept().len()).sum());
        }
        out.extend(batches.iter().flat_map(Batch::kept).filter_map(&mut f));
        out
    }

    /// Every record received, as wire JSON, in delivery order.
    pub fn records(&self) -> Vec<Value> {
        self.each(true, |r| Some(r.to_json()))
    }

    /// The typed records received.
    pub fn typed_records(&self) -> Vec<Record> {
        self.each(true, |r| Some(r.clone()))
    }

    /// The records of one run, as wire JSON, in delivery order.
    pub fn records_of_run(&self, run_id: RunId) -> Vec<Value> {
        self.each(false, |r| (r.base.run_id == run_id).then(|| r.to_json()))
    }

    /// How many records were received (and kept).
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// Whether no record was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every record.
    pub fn clear(&self) {
        let mut store = self.lock();
        store.batches.clear();
        store.len = 0;
    }
}

impl Memory {
    /// Keeps one delivered batch (allocated before taking the lock), then drops the oldest
    /// records past the limit: whole batches, and the front of the oldest one left.
    fn keep(&self, records: Arc<[Record]>) {
        if records.is_empty() {
            return;
        }
        let mut store = self.lock();
        store.len += records.len();
        store.batches.push_back(Batch { records, start: 0 });
        let Some(limit) = self.limit else {
            return;
        };
        while store.len > limit {
            let excess = store.len - limit;
            let Some(front) = store.batches.front_mut() else {
                break;
            };
            let kept = front.kept().len();
            if kept <= excess {
                store.batches.pop_front();
                store.len -= kept;
            } else {
                front.start += excess;
                store.len -= excess;
            }
        }
    }
}

impl Sink for Memory {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        let records = &records[self.cut(records.len())..];
        self.keep(records.iter().cloned().collect());
        Ok(())
    }

    /// Keeps the batch without cloning it: the records kept are moved in, straight from
    /// where they lie (a batch past the bound is not first shifted to the front of its
    /// buffer: that was a second copy of every record kept), then the ones cut are dropped.
    fn write_owned(&self, records: &mut Vec<Record>) -> Result<(), SinkError> {
        let kept = records.drain(self.cut(records.len())..).collect();
        records.clear();
        self.keep(kept);
        Ok(())
    }

    /// `true`: writing is moving records into memory under a lock held only for that
    /// (readers hold it only to take the batches' handles), and flushing does nothing.
    fn writes_promptly(&self) -> bool {
        true
    }

    /// `false`: a written record is readable at once; there is nothing to flush.
    fn needs_flush(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::FlushOptions;
    use crate::observe::{Observer, RunOptions};
    use crate::record::RunStatus;

    /// `n` distinct records (a run with spans), as delivered.
    fn records(n: usize) -> Vec<Record> {
        let all = Memory::new();
        let o = Observer::builder().sink(all.clone()).build();
        let run = o.open_run(RunOptions::new("r", "agent.run"));
        while all.len() + 1 < n {
            let scope = run.scope();
            scope
                .span("s", "tool.call")
                .start()
                .end(crate::record::SpanStatus::Ok);
            o.flush_blocking(FlushOptions::BOUNDARY);
        }
        run.end(RunStatus::Ok);
        o.flush_blocking(FlushOptions::BOUNDARY);
        let mut records = all.typed_records();
        records.truncate(n);
        records
    }

    #[test]
    fn the_bound_keeps_the_newest_records_across_lent_and_handed_over_batches() {
        let records = records(20);
        let memory = Memory::bounded(7);
        let reader = memory.clone();
        let mut expected: Vec<Value> = Vec::new();
        // Batches of 3 (lent), 5 (handed over), 1, 9, 2: the bound cuts whole batches and
        // the front of the oldest one kept.
        let mut at = 0;
        for (i, size) in [3, 5, 1, 9, 2].into_iter().enumerate() {
            let batch = &records[at..at + size];
            if i % 2 == 0 {
                memory.write(batch).unwrap();
            } else {
                memory.write_owned(&mut batch.to_vec()).unwrap();
            }
            at += size;
            expected.extend(batch.iter().map(Record::to_json));
            let newest = &expected[expected.len().saturating_sub(7)..];
            assert_eq!(reader.records(), newest, "after {at} records");
            assert_eq!(reader.len(), newest.len());
        }
        let run = records[0].base.run_id;
        assert_eq!(reader.records_of_run(run), expected[13..]);
        let typed: Vec<Value> = reader.typed_records().iter().map(Record::to_json).collect();
        assert_eq!(typed, expected[13..]);
        reader.clear();
        assert!(memory.is_empty() && memory.records().is_empty());
        memory.write(&records[..2]).unwrap();
        assert_eq!(memory.records(), expected[..2]);
    }

    /// Records held in memory, cut ones included (they live as long as their batch).
    fn held(memory: &Memory) -> usize {
        memory.lock().batches.iter().map(|b| b.records.len()).sum()
    }

    #[test]
    fn a_batch_past_the_bound_is_cut_before_it_is_kept() {
        let records = records(20);
        let memory = Memory::bounded(4);
        memory.write(&records[..15]).unwrap();
        assert_eq!(
            held(&memory),
            4,
            "only the newest 4 of a lent batch are copied"
        );
        memory.write_owned(&mut records[..15].to_vec()).unwrap();
        assert_eq!(
            held(&memory),
            4,
            "a handed-over batch is cut before it is kept"
        );
        let newest: Vec<Value> = records[11..15].iter().map(Record::to_json).collect();
        assert_eq!(memory.records(), newest);
        // Small batches after a full one: the oldest is cut at its front, never more than
        // twice the bound held.
        for record in &records[15..] {
            memory.write(std::slice::from_ref(record)).unwrap();
            assert!(held(&memory) <= 2 * 4, "{} held", held(&memory));
        }
        let newest: Vec<Value> = records[16..20].iter().map(Record::to_json).collect();
        assert_eq!(memory.records(), newest);
    }
}
