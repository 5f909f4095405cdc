//! The runs an observer saw end, remembered so that a carrier cannot resume one.

use crate::ids::RunId;

/// The last `capacity` run ends, oldest overwritten first.
///
/// A ring, not a hash set: every run's end records one here (on the request's path), while
/// only `resume_run` looks one up, and rarely. Remembering is a store into a slot; the
/// lookup is a scan of at most `capacity` ids (10 000: a few microseconds, next to the
/// carrier's decode it follows). A set cost two hashes per run end and, with as many
/// removals as inserts, a rehash of the whole table in place every few thousand runs, on
/// the thread ending the run and holding the lock.
pub(super) struct EndedRuns {
    ids: Vec<RunId>,
    /// Where the next end goes once the ring is full (the oldest one).
    next: usize,
    capacity: usize,
}

impl EndedRuns {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            ids: Vec::new(),
            next: 0,
            capacity: capacity.max(1),
        }
    }

    /// Remembers that `run_id` ended. A run that ends twice (two resumptions of one
    /// carrier, each ended) takes two places.
    pub(super) fn remember(&mut self, run_id: RunId) {
        if self.ids.len() < self.capacity {
            // Exactly the ring's size, not the doubling growth's next power of two.
            if self.ids.is_empty() {
                self.ids.reserve_exact(self.capacity);
            }
            self.ids.push(run_id);
            return;
        }
        self.ids[self.next] = run_id;
        self.next = (self.next + 1) % self.capacity;
    }

    /// Whether `run_id` is among the ends remembered.
    pub(super) fn contains(&self, run_id: RunId) -> bool {
        self.ids.contains(&run_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_ends_and_forgets_the_oldest_first() {
        let ids: Vec<RunId> = (0..7).map(|_| RunId::generate()).collect();
        let mut ended = EndedRuns::new(4);
        for id in &ids[..4] {
            ended.remember(*id);
        }
        assert!(ids[..4].iter().all(|id| ended.contains(*id)));
        assert!(!ended.contains(ids[4]));
        // Three more ends push out the three oldest, in order.
        for id in &ids[4..] {
            ended.remember(*id);
        }
        assert!(ids[..3].iter().all(|id| !ended.contains(*id)));
        assert!(ids[3..].iter().all(|id| ended.contains(*id)));
    }

    #[test]
    fn the_ring_wraps_around_more_than_once() {
        let ids: Vec<RunId> = (0..11).map(|_| RunId::generate()).collect();
        let mut ended = EndedRuns::new(4);
        for id in &ids {
            ended.remember(*id);
        }
        assert!(ids[..7].iter().all(|id| !ended.contains(*id)));
        assert!(ids[7..].iter().all(|id| ended.contains(*id)));
        assert_eq!(ended.ids.len(), 4);
    }
}
