//! The layer's per-span state, keyed by the `tracing` span id and owned by the layer.
//!
//! `tracing-subscriber`'s span extensions would hold it too, but each insert boxes the value
//! into a type map behind a lock, and every callback must look the span up by id in the
//! registry first: together ≈ 500 instructions per span. A table of the layer's own, in a
//! few locked shards of a hash map with a one-multiply hash, needs neither the box nor the
//! registry lookup.
//!
//! Ids are unique among a subscriber's open spans and reused after a span closes: the
//! layer removes a span's entry in `on_close`, which the registry calls before it frees
//! the id, so a reused id never finds a previous span's state. Ids of different
//! subscribers may be equal, so a table belongs to one layer instance (one subscriber): a
//! cloned layer starts with an empty table of its own.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard};

use crux_runtime::helpers::lock;

use tracing_core::span::Id;

/// Shards: spans opened and closed on different threads at once rarely share a lock.
const SHARDS: usize = 16;

/// A map from span id (as `u64`) hashed with [`IdHasher`].
pub(crate) type IdMap<T> = HashMap<u64, T, BuildHasherDefault<IdHasher>>;

/// Values of type `T` by span id.
pub(crate) struct Table<T> {
    shards: Box<[Mutex<IdMap<T>>]>,
}

impl<T> Table<T> {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, id: &Id) -> MutexGuard<'_, IdMap<T>> {
        let id = id.into_u64();
        // Bits 40..44 of the multiplied id (every bit of the id moves them): not the top
        // seven, which hashbrown keeps as each entry's tag, so the tags within one shard
        // still vary in all seven bits.
        let at = (id.wrapping_mul(MIX) >> 40) as usize & (SHARDS - 1);
        // A panic while a shard was locked left no half-made entry (every update below is
        // one map call or a field assignment): the map is still sound, and `lock` takes it
        // poisoned or not.
        lock(&self.shards[at])
    }

    /// How many spans have a value.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Keeps `value` for span `id` (replacing what an earlier span of that id left, which
    /// `on_close` never does).
    pub(crate) fn insert(&self, id: &Id, value: T) {
        self.shard(id).insert(id.into_u64(), value);
    }

    /// Takes span `id`'s value out.
    pub(crate) fn remove(&self, id: &Id) -> Option<T> {
        self.shard(id).remove(&id.into_u64())
    }

    /// Runs `f` on span `id`'s value, if it has one, with its shard locked: `f` must not
    /// call into `tracing` or record anything (a callback could need the same shard).
    pub(crate) fn with<R>(&self, id: &Id, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.shard(id).get_mut(&id.into_u64()).map(f)
    }

    /// Whether span `id` has a value.
    pub(crate) fn contains(&self, id: &Id) -> bool {
        self.shard(id).contains_key(&id.into_u64())
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
    fn many_ids_spread_over_the_shards() {
        let table = Table::new();
        for i in 1..=1000u64 {
            table.insert(&Id::from_u64(i), i);
        }
        let used = table
            .shards
            .iter()
            .filter(|s| !s.lock().unwrap().is_empty())
            .count();
        assert_eq!(used, SHARDS);
        for i in 1..=1000u64 {
            assert_eq!(table.remove(&Id::from_u64(i)), Some(i));
        }
    }
}
