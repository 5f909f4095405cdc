//! The layer's per-span state, keyed by the `tracing` span id and owned by the layer.
//!
//! `tracing-subscriber`'s span extensions would hold it too, but each insert boxes the value
//! into a type map behind a lock, and every callback must look the span up by id in the
//! registry first: together ≈ 500 instructions per span. A table of the layer's own needs
//! neither the box nor the registry lookup.
//!
//! The table is direct-mapped first: each id has one slot (a few bits of its multiplied
//! value), a lock and the entry, so while nothing has overflowed a span's insert, lookups
//! and removal are a lock and one key comparison, no hashing or probing. The spans open at
//! once are few (a thread's nesting depth, times the threads), so they rarely meet in a
//! slot; an id whose slot is taken by another open span goes to the overflow, a few locked
//! shards of a hash map with a one-multiply hash, and is looked up there whenever its slot
//! does not hold it. While anything is in the overflow (a few hundred spans open at once),
//! an insert into an empty slot, and a lookup or removal that misses its slot, also lock
//! and probe one shard. An id is in one place only: its slot, or (while another id held
//! the slot at its insert) the overflow.
//!
//! Each slot also keeps the id it holds in an atomic, written under its lock and read
//! without it, so a lookup for an id its slot does not hold (a span opened outside any
//! context, or one of another layer's subscriber) takes no lock; and until the first insert
//! a lookup is one load. That is what lets the layer do without a global count of its open
//! spans, which cost two atomic read-modify-writes per span on one cache line shared by
//! every thread.
//!
//! Ids are unique among a subscriber's open spans and reused after a span closes: the
//! layer removes a span's entry in `on_close`, which the registry calls before it frees
//! the id, so a reused id never finds a previous span's state. Ids of different
//! subscribers may be equal, so a table belongs to one layer instance (one subscriber): a
//! cloned layer starts with an empty table of its own.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crux_runtime::helpers::lock;

use crate::spin::{SpinGuard, SpinLock};

use tracing_core::span::Id;

/// Direct-mapped slots (a power of two): more than the spans a process keeps open at once
/// in the usual case, few enough that a table stays small (a slot holds a lock, the id and
/// the entry: 144 bytes with the layer's entry, so ≈ 36 KiB per layer, allocated when
/// the layer is built).
const SLOTS: usize = 256;
const _: () = assert!(SLOTS.is_power_of_two());

/// Shards of the overflow: spans opened and closed on different threads at once rarely
/// share a lock.
const SHARDS: usize = 16;

/// A map from span id (as `u64`) hashed with [`IdHasher`].
pub(crate) type IdMap<T> = HashMap<u64, T, BuildHasherDefault<IdHasher>>;

/// A direct-mapped slot: the id held and its value, or nothing.
struct Slot<T> {
    /// The id `entry` holds (0, which no span id is, for none), written under the lock
    /// and read without it (see the module docs).
    key: AtomicU64,
    entry: SpinLock<Option<(u64, T)>>,
}

/// Values of type `T` by span id.
pub(crate) struct Table<T> {
    /// A fixed-length array, so indexing it by [`slot_index`] (its top bits, always in
    /// range) needs no bounds check.
    slots: Box<[Slot<T>; SLOTS]>,
    overflow: Box<[Mutex<IdMap<T>>]>,
    /// Entries in the overflow: while none is, an id not in its slot is in no shard either.
    overflowed: AtomicUsize,
    /// Whether anything was ever inserted: until then a lookup is this one load (a layer
    /// whose process never records, every span outside any context, pays no more).
    used: AtomicBool,
}

impl<T> Table<T> {
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    key: AtomicU64::new(0),
                    entry: SpinLock::new(None),
                })
                .collect::<Box<[_]>>()
                .try_into()
                .unwrap_or_else(|_| unreachable!("SLOTS slots collected")),
            overflow: (0..SHARDS).map(|_| Mutex::default()).collect(),
            overflowed: AtomicUsize::new(0),
            used: AtomicBool::new(false),
        }
    }

    // A panic while a slot or shard was locked left no half-made entry (every update
    // below is one assignment, `mem::replace`, `Option::take` or one map call; a `with`
    // closure that panics leaves its value whole, only partly updated): a shard's lock is
    // taken poisoned or not (`lock`), a slot's does not poison.

    /// Span `id`'s slot, locked.
    fn slot(&self, id: u64) -> SpinGuard<'_, Option<(u64, T)>> {
        self.slots[slot_index(id)].entry.lock()
    }

    /// Whether span `id`'s slot may hold it, read without the lock: `false` means it does
    /// not. Ids are inserted before the span is entered or closed anywhere (the registry
    /// hands the id out after `on_new_span` returns), so the write is seen by then.
    #[inline(always)]
    fn maybe_slotted(&self, id: u64) -> bool {
        self.slots[slot_index(id)].key.load(Ordering::Acquire) == id
    }

    /// Whether anything was ever inserted.
    #[inline(always)]
    pub(crate) fn ever_used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }

    /// Span `id`'s overflow shard, locked.
    fn shard(&self, id: u64) -> MutexGuard<'_, IdMap<T>> {
        // Bits 40..44 of the multiplied id: not the top seven, which hashbrown keeps as
        // each entry's tag, so the tags within one shard still vary in all seven bits.
        let at = (id.wrapping_mul(MIX) >> 40) as usize & (SHARDS - 1);
        lock(&self.overflow[at])
    }

    /// How many spans have a value.
    #[cfg(test)]
    fn len(&self) -> usize {
        let slotted = self
            .slots
            .iter()
            .filter(|s| s.entry.lock().is_some())
            .count();
        slotted + self.overflow.iter().map(|s| lock(s).len()).sum::<usize>()
    }

    /// Keeps `value` for span `id` (replacing what an earlier span of that id left, which
    /// `on_close` never does).
    #[inline(always)]
    pub(crate) fn insert(&self, id: &Id, value: T) {
        let id = id.into_u64();
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
        let at = &self.slots[slot_index(id)];
        let mut slot = at.entry.lock();
        match &mut *slot {
            Some((k, v)) if *k == id => {
                // The value replaced is dropped with the slot unlocked: its drop (a Crux
                // span ending) may reach the table.
                let replaced = std::mem::replace(v, value);
                drop(slot);
                drop(replaced);
            }
            Some(_) => {
                drop(slot);
                // Likewise, the shard's lock is released before a replaced value drops.
                let replaced = self.shard(id).insert(id, value);
                if replaced.is_none() {
                    self.overflowed.fetch_add(1, Ordering::Relaxed);
                }
            }
            empty @ None => {
                *empty = Some((id, value));
                at.key.store(id, Ordering::Release);
                drop(slot);
                // The id's earlier value, had it overflowed (an insert for an id still
                // open, which the layer never makes), goes, so the id stays in one place.
                if self.overflowed.load(Ordering::Relaxed) > 0 {
                    self.take_overflow(id);
                }
            }
        }
    }

    /// Takes span `id`'s value out.
    #[inline]
    pub(crate) fn remove(&self, id: &Id) -> Option<T> {
        let id = id.into_u64();
        if !self.ever_used() {
            return None;
        }
        if self.maybe_slotted(id) {
            let at = &self.slots[slot_index(id)];
            let mut slot = at.entry.lock();
            if slot.as_ref().is_some_and(|(k, _)| *k == id) {
                at.key.store(0, Ordering::Release);
                return slot.take().map(|(_, v)| v);
            }
        }
        if self.overflowed.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.take_overflow(id)
    }

    fn take_overflow(&self, id: u64) -> Option<T> {
        let taken = self.shard(id).remove(&id);
        if taken.is_some() {
            self.overflowed.fetch_sub(1, Ordering::Relaxed);
        }
        taken
    }

    /// Runs `f` on span `id`'s value, if it has one, with its slot (or shard) locked: `f`
    /// must not call into `tracing` or record anything (a callback could need the same
    /// lock).
    #[inline]
    pub(crate) fn with<R>(&self, id: &Id, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let id = id.into_u64();
        if !self.ever_used() {
            return None;
        }
        if self.maybe_slotted(id) {
            let mut slot = self.slot(id);
            if let Some((k, v)) = &mut *slot
                && *k == id
            {
                return Some(f(v));
            }
        }
        if self.overflowed.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.shard(id).get_mut(&id).map(f)
    }

    /// Whether span `id` has a value.
    pub(crate) fn contains(&self, id: &Id) -> bool {
        self.with(id, |_| ()).is_some()
    }
}

impl<T> Clone for Table<T> {
    /// An empty table: a clone of a layer serves another subscriber, whose ids are not
    /// this one's.
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table").finish_non_exhaustive()
    }
}

/// The direct-mapped slot of span `id`: the top bits of its multiplied value (every bit
/// of the id moves them: the registry's ids differ in their low bits within a thread and
/// in middle bits between threads).
fn slot_index(id: u64) -> usize {
    (id.wrapping_mul(MIX) >> (u64::BITS - SLOTS.ilog2())) as usize
}

/// 2^64 / φ, odd: multiplying by it spreads an id's bits to the high end (Fibonacci hashing).
pub(crate) const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// Hashes a span id (a `u64`) with one multiply; the map sees no attacker-chosen keys (ids
/// come from the subscriber), so no keyed hash is needed.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for `u64` keys; this keeps the hasher correct for others.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(MIX);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // hashbrown takes the bucket from the low bits and the tag from the top 7: fold
        // the high half down so both depend on the whole id.
        let h = n.wrapping_mul(MIX);
        self.0 = h ^ (h >> 32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value replaced by an insert for its id is dropped once its slot is unlocked: its
    /// drop (a Crux span ending as cancelled) may reach the table again.
    #[test]
    fn a_replaced_value_is_dropped_with_its_slot_unlocked() {
        struct Probe {
            table: &'static Table<Probe>,
            id: u64,
            slot_locked_at_drop: &'static AtomicBool,
        }
        impl Drop for Probe {
            fn drop(&mut self) {
                let locked = self.table.slots[slot_index(self.id)].entry.is_locked();
                self.slot_locked_at_drop.store(locked, Ordering::Relaxed);
            }
        }
        let table: &'static Table<Probe> = Box::leak(Box::new(Table::new()));
        let locked: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let probe = || Probe {
            table,
            id: 7,
            slot_locked_at_drop: locked,
        };
        table.insert(&Id::from_u64(7), probe());
        table.insert(&Id::from_u64(7), probe());
        assert!(!locked.load(Ordering::Relaxed));
        let left = table.remove(&Id::from_u64(7));
        assert!(left.is_some());
    }

    #[test]
    fn values_are_kept_taken_and_updated_by_id() {
        let table = Table::new();
        let (a, b) = (Id::from_u64(1), Id::from_u64(1 << 40));
        table.insert(&a, "a");
        table.insert(&b, "b");
        assert!(table.contains(&a));
        assert_eq!(table.with(&b, |v| std::mem::replace(v, "b2")), Some("b"));
        assert_eq!(table.remove(&b), Some("b2"));
        assert_eq!(table.remove(&b), None);
        assert!(!table.contains(&b));
        assert_eq!(table.with(&b, |_| ()), None);
        assert_eq!(table.remove(&a), Some("a"));
    }

    #[test]
    fn a_clone_starts_empty() {
        let table = Table::new();
        table.insert(&Id::from_u64(7), 7);
        assert!(!table.clone().contains(&Id::from_u64(7)));
        assert!(table.contains(&Id::from_u64(7)));
    }

    #[test]
    fn many_ids_fill_the_slots_then_spread_over_the_overflow() {
        let table = Table::new();
        for i in 1..=1000u64 {
            table.insert(&Id::from_u64(i), i);
        }
        assert_eq!(table.len(), 1000);
        let slotted = table.slots.iter().filter(|s| s.entry.lock().is_some());
        assert_eq!(slotted.count(), SLOTS);
        let used = table
            .overflow
            .iter()
            .filter(|s| !s.lock().unwrap().is_empty())
            .count();
        assert_eq!(used, SHARDS);
        assert_eq!(table.overflowed.load(Ordering::Relaxed), 1000 - SLOTS);
        for i in (1..=1000u64).rev() {
            assert_eq!(table.with(&Id::from_u64(i), |v| *v), Some(i));
            assert_eq!(table.remove(&Id::from_u64(i)), Some(i));
        }
        assert_eq!(table.len(), 0);
        assert_eq!(table.overflowed.load(Ordering::Relaxed), 0);
    }

    /// Two ids of one slot: the first takes the slot, the second the overflow; each is
    /// found, updated and taken as its own, whichever leaves first, and an id inserted
    /// again lives in one place only.
    #[test]
    fn ids_sharing_a_slot_stay_apart() {
        let slot_of = slot_index;
        let a = 1u64;
        let b = (2..).find(|&i| slot_of(i) == slot_of(a)).unwrap();
        let (a, b) = (Id::from_u64(a), Id::from_u64(b));
        let table = Table::new();
        table.insert(&a, "a");
        table.insert(&b, "b");
        assert_eq!(table.overflowed.load(Ordering::Relaxed), 1);
        assert_eq!(table.with(&b, |v| std::mem::replace(v, "b2")), Some("b"));
        assert_eq!(table.remove(&a), Some("a"));
        assert!(!table.contains(&a));
        assert_eq!(table.with(&b, |v| *v), Some("b2"));
        // `b` is still in the overflow with its slot free: inserting it again moves it to
        // the slot, and nothing of it stays behind.
        table.insert(&b, "b3");
        assert_eq!(table.overflowed.load(Ordering::Relaxed), 0);
        assert_eq!(table.len(), 1);
        assert_eq!(table.remove(&b), Some("b3"));
        assert_eq!(table.remove(&b), None);
        assert_eq!(table.len(), 0);
    }

    /// A lookup or removal of an id its slot does not hold (a span the layer did not
    /// record) reads the slot's key and takes no lock: it returns while another thread
    /// holds that slot's lock.
    #[test]
    fn an_id_not_held_is_looked_up_without_the_slots_lock() {
        use std::sync::{Arc, mpsc};
        use std::time::Duration;

        let a = 1u64;
        let b = (2..).find(|&i| slot_index(i) == slot_index(a)).unwrap();
        let table = Arc::new(Table::new());
        table.insert(&Id::from_u64(a), "a");
        let held = table.slots[slot_index(a)].entry.lock();
        let (tx, rx) = mpsc::channel();
        let lookup = {
            let table = table.clone();
            std::thread::spawn(move || {
                let found = table.with(&Id::from_u64(b), |v| *v);
                let removed = table.remove(&Id::from_u64(b));
                tx.send((found, removed)).unwrap();
            })
        };
        let answer = rx.recv_timeout(Duration::from_secs(10));
        drop(held);
        lookup.join().unwrap();
        assert_eq!(answer, Ok((None, None)));
        assert_eq!(table.remove(&Id::from_u64(a)), Some("a"));
    }

    /// Ids sharing three slots, reused after close, opened and looked up on some threads
    /// and closed on others: each lookup finds its own value, each removal takes it once.
    #[test]
    fn colliding_reused_ids_across_threads_stay_apart() {
        use std::sync::atomic::AtomicU64;
        use std::sync::{Arc, mpsc};

        let slot_of = slot_index;
        let mut ids: Vec<u64> = Vec::new();
        for target in [slot_of(1), slot_of(2), slot_of(3)] {
            ids.extend((1..).filter(|&i| slot_of(i) == target).take(6));
        }
        ids.extend(4..10);
        let free = Arc::new(Mutex::new(ids));
        let table: Arc<Table<(u64, u64)>> = Arc::new(Table::new());
        let generation = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel::<(u64, u64)>();
        let rx = Arc::new(Mutex::new(rx));
        let mut openers = Vec::new();
        for _ in 0..3 {
            let (free, table, generation, errors, tx) = (
                free.clone(),
                table.clone(),
                generation.clone(),
                errors.clone(),
                tx.clone(),
            );
            openers.push(std::thread::spawn(move || {
                for _ in 0..20_000 {
                    let Some(id) = lock(&free).pop() else {
                        std::thread::yield_now();
                        continue;
                    };
                    let g = generation.fetch_add(1, Ordering::Relaxed);
                    table.insert(&Id::from_u64(id), (id, g));
                    for _ in 0..3 {
                        if table.with(&Id::from_u64(id), |v| *v) != Some((id, g)) {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tx.send((id, g)).unwrap();
                }
            }));
        }
        drop(tx);
        let mut closers = Vec::new();
        for _ in 0..2 {
            let (free, table, errors, rx) =
                (free.clone(), table.clone(), errors.clone(), rx.clone());
            closers.push(std::thread::spawn(move || {
                loop {
                    let Ok((id, g)) = lock(&rx).recv() else { break };
                    if !table.contains(&Id::from_u64(id)) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    if table.remove(&Id::from_u64(id)) != Some((id, g)) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    if table.remove(&Id::from_u64(id)).is_some() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    lock(&free).push(id);
                }
            }));
        }
        for t in openers.into_iter().chain(closers) {
            t.join().unwrap();
        }
        assert_eq!(errors.load(Ordering::Relaxed), 0);
        assert_eq!(table.len(), 0);
        assert_eq!(table.overflowed.load(Ordering::Relaxed), 0);
    }
}
