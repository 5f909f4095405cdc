use std::collections::VecDeque;
use std::mem::MaybeUninit;
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
/// shared batches, so a reader takes the batch handles under the lock (one reference
/// count each) and converts or clones the records after releasing it. A flush
/// delivering on its own thread ([`Sink::writes_promptly`]) therefore never waits for a
/// reader converting thousands of records.
///
/// Deliveries are appended to the newest batch in place while no reader holds it (a
/// server's flushes deliver a few records each, and a batch per delivery cost an
/// allocation of its own size, long-lived, so from malloc's slow path, and a copy), and
/// the bound drops the oldest records from a batch no reader holds one by one, as they
/// go. A batch a reader holds is left as it is: later records go to a new one, and the
/// bound only hides its front until the reader lets go of it.
///
/// A delivery is appended as one block copy, and the bound drops records at a batch's
/// front in place: appending record by record (as `Option`s, so the bound
/// could drop one in place) moved each through a temporary, two copies of its 240 bytes.
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

/// Records delivered one after another, shared with readers that copied it out. The
/// first `start` of its live records were cut by the limit while a reader held the batch:
/// they go with it, or when the bound next finds it unshared (records cut from an
/// unshared batch are dropped at once).
#[derive(Clone)]
struct Batch {
    records: Arc<Block>,
    start: usize,
}

impl Batch {
    fn kept(&self) -> impl Iterator<Item = &Record> {
        self.records.live()[self.start..].iter()
    }

    fn kept_len(&self) -> usize {
        self.records.live().len() - self.start
    }
}

/// A batch's records in one allocation of fixed room, never grown: appended at the back
/// as a block, dropped in place at the front. Slots `..front` held records dropped
/// already, `front..len` hold the live ones, the rest is room.
struct Block {
    slots: Vec<MaybeUninit<Record>>,
    front: usize,
}

impl Block {
    fn with_room(room: usize) -> Self {
        Self {
            slots: Vec::with_capacity(room),
            front: 0,
        }
    }

    /// The records appended and not dropped, oldest first.
    fn live(&self) -> &[Record] {
        let live = &self.slots[self.front..];
        // SAFETY: slots from `front` to the length are initialised (`append` wrote them,
        // `drop_front` moves `front` past those it drops), and `MaybeUninit<Record>` has
        // `Record`'s layout.
        unsafe { std::slice::from_raw_parts(live.as_ptr().cast::<Record>(), live.len()) }
    }

    /// Slots written so far (dropped, live) plus room: whether `n` more fit.
    fn fits(&self, n: usize) -> bool {
        n <= self.slots.capacity() - self.slots.len()
    }

    /// Moves `records[from..]` to the back in one copy, leaving `records` the first
    /// `from`. The caller checked that they [fit](Block::fits).
    fn append(&mut self, records: &mut Vec<Record>, from: usize) {
        let n = records.len() - from;
        assert!(self.fits(n), "a batch is never grown");
        let at = self.slots.len();
        // SAFETY: the `n` records after `from` are initialised; the room after `at` holds
        // at least `n` slots (asserted) and is not the records' buffer. Their ownership
        // moves here: `records` forgets them (`set_len`), this block counts them (its
        // length) and drops them (`Drop`), so each is dropped once.
        unsafe {
            std::ptr::copy_nonoverlapping(
                records.as_ptr().add(from),
                self.slots.as_mut_ptr().add(at).cast::<Record>(),
                n,
            );
            records.set_len(from);
            self.slots.set_len(at + n);
        }
    }

    /// Drops the oldest `n` live records (all of them if fewer), in place.
    fn drop_front(&mut self, n: usize) {
        let start = self.front;
        let n = n.min(self.slots.len() - start);
        // Moved first: if a record's drop panicked, the slice's drop would go on with the
        // rest while unwinding, and none of them would be dropped again.
        self.front = start + n;
        // SAFETY: slots `start..start + n` were live (within the length, from the old
        // `front`) and are no longer counted as live.
        unsafe {
            let dropped = self.slots.as_mut_ptr().add(start).cast::<Record>();
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(dropped, n));
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // The slots' buffer is freed by their `Vec`, which drops no `MaybeUninit`.
        self.drop_front(usize::MAX);
    }
}

/// The most room a new batch is given: deliveries are appended to the newest batch while
/// they fit, and a delivery that does not starts a batch with twice the last one's room,
/// up to this (a larger delivery gets a batch of exactly its size). Never grown in place:
/// a reallocation would copy every record it holds.
const BATCH_RECORDS: usize = 256;

/// The room of the first batch. One following a batch a reader holds (a reader copying
/// records out makes the next delivery start a new batch) has just the delivery's room,
/// so that frequent readers leave no mostly empty batches behind; the next doubles it.
const FIRST_ROOM: usize = 16;

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
    /// and benchmarks). A delivered batch is cut to `limit` before it is kept, and the
    /// oldest records are freed as newer ones arrive; those of a batch a reader is copying
    /// out are freed with it, so at most about twice `limit` records are held at once.
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
            out.reserve_exact(batches.iter().map(Batch::kept_len).sum());
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
    /// Keeps `records[from..]` (those before are cut by the bound) and leaves `records`
    /// the first `from`: appended to the newest batch when no reader holds it and it has
    /// room, else in a new batch; then drops the oldest records past the limit. Inlined:
    /// `write_owned` is little else, so a delivery's call reaches it directly.
    #[inline(always)]
    fn keep(&self, records: &mut Vec<Record>, from: usize) {
        let n = records.len() - from;
        if n == 0 {
            return;
        }
        // A bound below the batch size caps it too.
        let most = self.limit.map_or(BATCH_RECORDS, |l| l.min(BATCH_RECORDS));
        let mut store = self.lock();
        // Appended to the newest batch when no reader holds it and the delivery fits;
        // else the room of the new batch: `FIRST_ROOM` for the first, twice the full one
        // before it, just this delivery's after one a reader holds (a reader polling
        // between deliveries leaves no mostly empty batches behind).
        let new_room = match store
            .batches
            .back_mut()
            .map(|b| Arc::get_mut(&mut b.records))
        {
            Some(Some(open)) if open.fits(n) => {
                open.append(records, from);
                None
            }
            Some(Some(full)) => Some((2 * full.slots.capacity()).min(most)),
            Some(None) => Some(0),
            None => Some(FIRST_ROOM.min(most)),
        };
        if let Some(room) = new_room {
            let mut batch = Block::with_room(n.max(room));
            batch.append(records, from);
            store.batches.push_back(Batch {
                records: Arc::new(batch),
                start: 0,
            });
        }
        store.len += n;
        let Some(limit) = self.limit else {
            return;
        };
        while store.len > limit {
            let excess = store.len - limit;
            let Some(front) = store.batches.front_mut() else {
                break;
            };
            let kept = front.kept_len();
            if kept <= excess {
                store.batches.pop_front();
                store.len -= kept;
                continue;
            }
            front.start += excess;
            // No reader holds it: the records go now, in place (nothing moves), with any
            // cut while a reader held it.
            if let Some(records) = Arc::get_mut(&mut front.records) {
                records.drop_front(std::mem::take(&mut front.start));
            }
            store.len -= excess;
        }
    }
}

impl Sink for Memory {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        // Cloned before the lock: readers never wait for the copies.
        let mut cloned = records[self.cut(records.len())..].to_vec();
        self.keep(&mut cloned, 0);
        Ok(())
    }

    /// Keeps the batch without cloning it: the records kept are moved in as one block,
    /// straight from where they lie (a batch past the bound is not first shifted to the
    /// front of its buffer: that was a second copy of every record kept); the ones cut
    /// are left in `records`, dropped by the caller.
    fn write_owned(&self, records: &mut Vec<Record>) -> Result<(), SinkError> {
        let cut = self.cut(records.len());
        self.keep(records, cut);
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

    /// `true`: writing moves records into memory and frees old ones; nothing is recorded.
    fn records_nothing(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::FlushOptions;
    use crate::observe::{Observer, RunOptions};
    use crate::record::RunStatus;

    /// `n` distinct records (a run with spans), as delivered.
    pub(super) fn records(n: usize) -> Vec<Record> {
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
        o.flush_blocking(FlushOptions::FINAL);
        let mut records = all.typed_records();
        assert!(
            records.len() >= n,
            "{} of {n} records delivered",
            records.len()
        );
        records.truncate(n);
        records
    }

    #[test]
    fn the_bound_keeps_the_newest_records_across_lent_and_handed_over_batches() {
        let records = records(20);
        let memory = Memory::bounded(7);
        let reader = memory.clone();
        let mut expected: Vec<Value> = Vec::new();
        // Batches of 3 (lent), 5 (handed over), 1, 9, 2: the bound drops the oldest
        // records, whole batches and the front of the oldest one kept.
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

    /// Records held in memory, cut ones included: those of a batch a reader held when they
    /// were cut live until the bound next finds it unshared (or it goes); others are freed
    /// at once.
    fn held(memory: &Memory) -> usize {
        let store = memory.lock();
        store.batches.iter().map(|b| b.records.live().len()).sum()
    }

    #[test]
    fn deliveries_share_a_batch_until_a_reader_holds_it_and_its_copy_stays_whole() {
        let records = records(12);
        let json = |rs: &[Record]| rs.iter().map(Record::to_json).collect::<Vec<Value>>();
        let memory = Memory::bounded(5);
        for record in &records[..3] {
            memory.write_owned(&mut vec![record.clone()]).unwrap();
        }
        assert_eq!(memory.lock().batches.len(), 1, "appended to one batch");
        // A reader holds the batch (as `each` does while it converts): the next
        // deliveries go to a new batch, and the bound only hides the held one's front.
        let held_copy = memory.snapshot();
        for record in &records[3..7] {
            memory.write(std::slice::from_ref(record)).unwrap();
        }
        {
            let store = memory.lock();
            assert_eq!(
                store.batches[0].records.live().len(),
                3,
                "the held batch is not appended to"
            );
            // Just the delivery's room after a held batch, then doubling: 1, 2, 4.
            let rooms: Vec<usize> = store
                .batches
                .iter()
                .map(|b| b.records.slots.capacity())
                .collect();
            assert_eq!(rooms[1..], [1, 2, 4]);
        }
        assert_eq!(memory.records(), json(&records[2..7]));
        let copied: Vec<Record> = held_copy.iter().flat_map(Batch::kept).cloned().collect();
        assert_eq!(
            json(&copied),
            json(&records[..3]),
            "the reader's copy is whole"
        );
        assert_eq!(held(&memory), 7, "the held batch keeps its cut records");
        // Let go: the next delivery frees the cut records and the front as it goes.
        drop(held_copy);
        memory.write(&records[7..9]).unwrap();
        assert_eq!(held(&memory), 5);
        assert_eq!(memory.records(), json(&records[4..9]));
        memory.write_owned(&mut records[9..12].to_vec()).unwrap();
        assert_eq!(memory.records(), json(&records[7..12]));
        assert_eq!(memory.len(), 5);
        assert_eq!(
            held(&memory),
            5,
            "cut records of unshared batches are freed"
        );
    }

    #[test]
    fn every_record_is_dropped_once_cut_kept_or_gone_with_its_batch() {
        // Each record holds a count on `alive`: the count is the records alive.
        let alive = Arc::new(crate::record::SegmentExtra::default());
        let mut records = records(40);
        for r in &mut records {
            r.base.extra = Some(Arc::clone(&alive));
        }
        let json = |rs: &[Record]| rs.iter().map(Record::to_json).collect::<Vec<Value>>();
        let expected = json(&records);
        let live = |extra: usize| Arc::strong_count(&alive) - 1 - extra;
        let memory = Memory::bounded(6);
        // Past the bound: the 4 cut are left to the caller, the 6 kept moved in one block.
        let mut delivered = records[..10].to_vec();
        memory.write_owned(&mut delivered).unwrap();
        assert_eq!(delivered.len(), 4, "the cut records are left to the caller");
        drop(delivered);
        assert_eq!(live(40), 6);
        // Small deliveries: the front of the oldest batch is dropped in place as they go,
        // then whole batches, while the newest is appended to.
        for at in (10..30).step_by(2) {
            memory
                .write_owned(&mut records[at..at + 2].to_vec())
                .unwrap();
            assert_eq!(live(40), 6, "after {}", at + 2);
            assert_eq!(memory.records(), expected[at + 2 - 6..at + 2]);
        }
        // A reader's copy holds its batches whole: the cut records live until it goes,
        // then the next delivery drops them.
        let held_copy = memory.snapshot();
        memory.write_owned(&mut records[30..33].to_vec()).unwrap();
        assert_eq!(memory.records(), expected[27..33]);
        assert!(live(40) > 6, "the held batches keep their cut records");
        drop(held_copy);
        memory.write(&records[33..34]).unwrap();
        assert_eq!(live(40), 6);
        assert_eq!(memory.records(), expected[28..34]);
        // Unbounded, then forgotten: every record goes.
        let all = Memory::new();
        all.write_owned(&mut records[..20].to_vec()).unwrap();
        all.write(&records[20..]).unwrap();
        assert_eq!(all.records(), expected);
        drop(records);
        assert_eq!(live(0), 6 + 40);
        all.clear();
        drop(memory);
        assert_eq!(live(0), 0, "every record dropped");
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
        // Small batches after a full one: the oldest is cut at its front, its cut records
        // freed in place (no reader holds it), so exactly the bound is held.
        for record in &records[15..] {
            memory.write(std::slice::from_ref(record)).unwrap();
            assert_eq!(held(&memory), 4);
        }
        let newest: Vec<Value> = records[16..20].iter().map(Record::to_json).collect();
        assert_eq!(memory.records(), newest);
    }
}

/// A Memory sink against a model of what it should hold, and under concurrent use; every
/// record counted alive through its `extra` handle, so a record dropped twice or never
/// shows.
#[cfg(test)]
mod stress {
    use super::tests::records;
    use super::*;

    #[test]
    fn random_writes_reads_and_clears_keep_what_a_model_keeps() {
        let pool = records(64);
        let alive = Arc::new(crate::record::SegmentExtra::default());
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        let mut rnd = |m: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        for round in 0..60 {
            let limit = [None, Some(1), Some(3), Some(7), Some(20), Some(300)][round % 6];
            let mut step = 0;
            let memory = limit.map_or_else(Memory::new, Memory::bounded);
            let mut model: Vec<serde_json::Value> = Vec::new();
            let mut held: Vec<Vec<Batch>> = Vec::new();
            let mut held_json: Vec<Vec<serde_json::Value>> = Vec::new();
            for _ in 0..120 {
                step += 1;
                match rnd(10) {
                    0..=3 => {
                        let k = rnd(12);
                        let mut batch: Vec<Record> = (0..k)
                            .map(|_| {
                                let mut r = pool[rnd(pool.len())].clone();
                                r.base.extra = Some(Arc::clone(&alive));
                                r
                            })
                            .collect();
                        model.extend(batch.iter().map(Record::to_json));
                        if rnd(2) == 0 {
                            memory.write(&batch).unwrap();
                        } else {
                            memory.write_owned(&mut batch).unwrap();
                        }
                        drop(batch);
                    }
                    4 | 5 => {
                        let s = memory.snapshot();
                        let j: Vec<_> = s
                            .iter()
                            .flat_map(Batch::kept)
                            .map(Record::to_json)
                            .collect();
                        held.push(s);
                        held_json.push(j);
                    }
                    6 | 7 if !held.is_empty() => {
                        let i = rnd(held.len());
                        let s = held.swap_remove(i);
                        let j = held_json.swap_remove(i);
                        let now: Vec<_> = s
                            .iter()
                            .flat_map(Batch::kept)
                            .map(Record::to_json)
                            .collect();
                        assert_eq!(now, j, "a held copy changed");
                    }
                    8 if rnd(8) == 0 => {
                        memory.clear();
                        model.clear();
                    }
                    _ => {}
                }
                if let Some(l) = limit {
                    let cut = model.len().saturating_sub(l);
                    model.drain(..cut);
                }
                assert_eq!(memory.len(), model.len());
                // Every record compared every few steps (as JSON: slow in a debug build).
                if step % 8 == 0 {
                    assert_eq!(memory.records(), model);
                }
            }
            assert_eq!(memory.records(), model);
            drop(held);
            drop(memory);
            assert_eq!(
                Arc::strong_count(&alive),
                1,
                "round {round}: every record dropped once"
            );
        }
    }

    #[test]
    fn concurrent_readers_and_writers_lose_and_double_nothing() {
        let pool = records(32);
        let alive = Arc::new(crate::record::SegmentExtra::default());
        let memory = Memory::bounded(50);
        std::thread::scope(|s| {
            for t in 0..2 {
                let memory = memory.clone();
                let pool = &pool;
                let alive = &alive;
                s.spawn(move || {
                    for i in 0..3000 {
                        let mut b: Vec<Record> = (0..(i % 7))
                            .map(|j| {
                                let mut r = pool[(i + j + t) % pool.len()].clone();
                                r.base.extra = Some(Arc::clone(alive));
                                r
                            })
                            .collect();
                        if i % 2 == 0 {
                            memory.write_owned(&mut b).unwrap()
                        } else {
                            memory.write(&b).unwrap()
                        }
                    }
                });
            }
            for _ in 0..2 {
                let memory = memory.clone();
                s.spawn(move || {
                    for _ in 0..3000 {
                        let r = memory.typed_records();
                        assert!(r.len() <= 50);
                    }
                });
            }
        });
        assert_eq!(memory.len(), 50);
        drop(memory);
        assert_eq!(Arc::strong_count(&alive), 1);
    }
}
