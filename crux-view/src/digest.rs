//! Bounded summaries of runs built one record at a time, for readers that stream a store
//! instead of holding it (the `crux` binary on a JSON Lines store).
//!
//! [`Digests`] keeps one fixed-size [`RunDigest`] per run: counts, the earliest time and
//! line, and the few lifecycle facts `crux runs` prints (the first `run:start` and
//! `run:end` in run order, whether the last lifecycle record is a suspend). Run order
//! within one segment is the segment's own sort (`segmentSeq`, time, `recordId`, line), so
//! a run whose lifecycle records share one segment (or that has at most one start and one
//! end, and no suspend to weigh when it has not ended) is summarized exactly;
//! [`RunDigest::summary`] says `None` for the rare rest (lifecycle records spread over
//! segments whose interleaving decides the answer), which the reader then builds with
//! [`crate::model::build`] from that run's records alone.
//!
//! [`Related`] collects what a run's view can depend on outside the run (edges, the parent
//! references of `run:start`, which runs hold which span ids, by hash) so that `crux show`
//! can keep only the records of the runs its output names.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::record::{Body, Endpoint, Record};
use crate::time::{Nanos, millis_between};
use crate::view::RunSummary;

/// A record's place in its segment, as [`crate::model`] sorts a segment.
type SegmentKey = (u64, Nanos, Option<String>, usize);

fn segment_key(record: &Record) -> SegmentKey {
    (
        record.segment_seq,
        record.at,
        record.record_id.clone(),
        record.line,
    )
}

/// The key runs are listed by, newest first: when the run started (or its earliest record
/// when the start is missing) and the store line of that record.
pub type RunOrder = (Nanos, usize);

#[derive(Debug)]
struct StartFacts {
    name: String,
    root_primitive: String,
    started_at: String,
    at: Nanos,
    line: usize,
}

#[derive(Debug)]
struct EndFacts {
    status: String,
    ended_at_nanos: Nanos,
    duration_ms: Option<f64>,
}

/// What one run's records add up to, in a fixed amount of memory (its strings aside: the
/// run id and the first start's name, primitive and time).
#[derive(Debug)]
pub struct RunDigest {
    /// The run id.
    pub run_id: String,
    /// How many records carry this run id.
    pub records: usize,
    /// How many bytes of the store those records' lines take.
    pub bytes: u64,
    min_at: Nanos,
    min_line: usize,
    starts: usize,
    first_start: Option<(SegmentKey, StartFacts)>,
    ends: usize,
    first_end: Option<(SegmentKey, EndFacts)>,
    suspends: usize,
    /// The lifecycle record latest in its segment's order, and whether it is a suspend.
    last_lifecycle: Option<(SegmentKey, bool)>,
    lifecycle_segment: Option<String>,
    lifecycle_segments_many: bool,
}

impl RunDigest {
    fn new(run_id: String) -> RunDigest {
        RunDigest {
            run_id,
            records: 0,
            bytes: 0,
            min_at: Nanos::MAX,
            min_line: usize::MAX,
            starts: 0,
            first_start: None,
            ends: 0,
            first_end: None,
            suspends: 0,
            last_lifecycle: None,
            lifecycle_segment: None,
            lifecycle_segments_many: false,
        }
    }

    fn add(&mut self, record: &Record, bytes: u64) {
        self.records += 1;
        self.bytes += bytes;
        self.min_at = self.min_at.min(record.at);
        self.min_line = self.min_line.min(record.line);
        let suspend = match &record.body {
            Body::RunStart(start) => {
                self.starts += 1;
                let key = segment_key(record);
                if self.first_start.as_ref().is_none_or(|(k, _)| key < *k) {
                    self.first_start = Some((
                        key,
                        StartFacts {
                            name: start.name.clone(),
                            root_primitive: start.root_primitive.clone(),
                            started_at: start.started_at.clone(),
                            at: record.at,
                            line: record.line,
                        },
                    ));
                }
                false
            }
            Body::RunEnd(close) => {
                self.ends += 1;
                let key = segment_key(record);
                if self.first_end.as_ref().is_none_or(|(k, _)| key < *k) {
                    self.first_end = Some((
                        key,
                        EndFacts {
                            status: close.status.clone(),
                            ended_at_nanos: close.ended_at_nanos,
                            duration_ms: close.duration_ms,
                        },
                    ));
                }
                false
            }
            Body::RunSuspend { .. } => {
                self.suspends += 1;
                true
            }
            Body::RunResume { .. } => false,
            _ => return,
        };
        match &self.lifecycle_segment {
            None => self.lifecycle_segment = Some(record.segment_id.clone()),
            Some(segment) if *segment != record.segment_id => self.lifecycle_segments_many = true,
            Some(_) => {}
        }
        let key = segment_key(record);
        if self.last_lifecycle.as_ref().is_none_or(|(k, _)| key > *k) {
            self.last_lifecycle = Some((key, suspend));
        }
    }

    /// Whether the digest decides the summary: the lifecycle records share one segment, or
    /// there is at most one start and one end and (without an end) no suspend.
    pub fn is_exact(&self) -> bool {
        !self.lifecycle_segments_many
            || (self.starts <= 1 && self.ends <= 1 && (self.ends == 1 || self.suspends == 0))
    }

    /// The run's line of `crux runs` and its place in the list, exactly as
    /// [`RunSummary::of`] on the built run gives them; `None` unless [`Self::is_exact`].
    pub fn summary(&self) -> Option<(RunSummary, RunOrder)> {
        if !self.is_exact() {
            return None;
        }
        let start = self.first_start.as_ref().map(|(_, s)| s);
        let end = self.first_end.as_ref().map(|(_, e)| e);
        let status = match (end, &self.last_lifecycle) {
            (Some(end), _) => end.status.clone(),
            (None, Some((_, true))) => "suspended".to_owned(),
            _ => "running".to_owned(),
        };
        let duration_ms = match (start, end) {
            (Some(start), Some(end)) => Some(millis_between(start.at, end.ended_at_nanos)),
            (None, Some(end)) => end.duration_ms,
            _ => None,
        };
        let order = match start {
            Some(start) => (start.at, start.line),
            None => (self.min_at, self.min_line),
        };
        let summary = RunSummary {
            run_id: self.run_id.clone(),
            name: start.map_or("(no run:start)", |s| &s.name).to_owned(),
            root_primitive: start.map_or("?", |s| &s.root_primitive).to_owned(),
            status,
            duration_ms,
            started_at: start.map(|s| s.started_at.clone()),
            records: self.records,
        };
        Some((summary, order))
    }
}

/// One [`RunDigest`] per run, in order of first appearance.
#[derive(Debug, Default)]
pub struct Digests {
    index: HashMap<String, u32>,
    runs: Vec<RunDigest>,
}

impl Digests {
    /// Adds one record whose store line is `bytes` long; returns the run's index.
    pub fn add(&mut self, record: &Record, bytes: u64) -> u32 {
        let index = match self.index.get(&record.run_id) {
            Some(&index) => index,
            None => {
                let index = u32::try_from(self.runs.len()).expect("fewer than 2^32 runs");
                self.index.insert(record.run_id.clone(), index);
                self.runs.push(RunDigest::new(record.run_id.clone()));
                index
            }
        };
        self.runs[index as usize].add(record, bytes);
        index
    }

    /// The digests, in order of first appearance (a run's index is its position).
    pub fn runs(&self) -> &[RunDigest] {
        &self.runs
    }

    /// The index of the run `run_id`, if any record carries it.
    pub fn index_of(&self, run_id: &str) -> Option<u32> {
        self.index.get(run_id).copied()
    }
}

/// A 64-bit hash of an id, for sets that must stay small per record.
pub fn id_hash(id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

/// What links runs to each other: every `edge`, every `run:start`'s parent references, and
/// which runs hold each span id (by 64-bit hash: about 16 bytes per span, plus the table's
/// slack). A hash collision only adds a run to [`Related::closure`], never drops one.
#[derive(Debug, Default)]
pub struct Related {
    span_owner: HashMap<u64, u32>,
    /// Further owners of a span hash held by more than one run (bad data, or a collision).
    more_owners: HashMap<u64, Vec<u32>>,
    edges: Vec<(u32, Endpoint, Endpoint)>,
    starts: Vec<(u32, Option<String>, Option<String>)>,
}

impl Related {
    /// Notes what `record` (of the run with index `run`, from [`Digests::add`]) links.
    pub fn add(&mut self, run: u32, record: &Record) {
        let span_id = match &record.body {
            Body::SpanStart(open) | Body::Span(open, _) => Some(&open.span_id),
            Body::SpanEnd(end) => Some(&end.span_id),
            Body::Event(event) => Some(&event.span_id),
            Body::Artifact(artifact) => artifact.span_id.as_ref(),
            Body::Edge(edge) => {
                self.edges.push((run, edge.from.clone(), edge.to.clone()));
                None
            }
            Body::RunStart(start) => {
                self.starts.push((
                    run,
                    start.parent_run_id.clone(),
                    start.triggered_by_span_id.clone(),
                ));
                None
            }
            _ => None,
        };
        if let Some(span_id) = span_id {
            let hash = id_hash(span_id);
            match self.span_owner.get(&hash) {
                None => {
                    self.span_owner.insert(hash, run);
                }
                Some(&owner) if owner == run => {}
                Some(_) => {
                    let more = self.more_owners.entry(hash).or_default();
                    if !more.contains(&run) {
                        more.push(run);
                    }
                }
            }
        }
    }

    fn span_owners(&self, span_id: &str) -> Vec<u32> {
        let hash = id_hash(span_id);
        let mut owners: Vec<u32> = self.span_owner.get(&hash).copied().into_iter().collect();
        owners.extend(self.more_owners.get(&hash).into_iter().flatten().copied());
        owners
    }

    fn owners(&self, digests: &Digests, (kind, id): (&str, &str)) -> Vec<u32> {
        match kind {
            "run" => digests.index_of(id).into_iter().collect(),
            "span" => self.span_owners(id),
            _ => Vec::new(),
        }
    }

    /// The runs whose records decide how run `run` is shown: the run itself, the runs
    /// holding the other end of each of its links (their names are shown), the runs whose
    /// edges or `run:start` link to it, and the runs sharing one of its span ids.
    /// [`crate::model::build`] on the records of these runs alone gives `run` exactly as
    /// on the whole store.
    pub fn closure(&self, digests: &Digests, run: u32) -> HashSet<u32> {
        let run_id = digests.runs[run as usize].run_id.as_str();
        let mut needed = HashSet::from([run]);
        let touches = |(kind, id): (&str, &str)| match kind {
            "run" => id == run_id,
            "span" => self.span_owners(id).contains(&run),
            _ => false,
        };
        for (first, more) in &self.more_owners {
            let owner = self.span_owner[first];
            if owner == run || more.contains(&run) {
                needed.insert(owner);
                needed.extend(more.iter().copied());
            }
        }
        for (owner, from, to) in &self.edges {
            let (from, to) = ((&*from.kind, &*from.id), (&*to.kind, &*to.id));
            if touches(from) || touches(to) {
                needed.insert(*owner);
                needed.extend(self.owners(digests, from));
                needed.extend(self.owners(digests, to));
            }
        }
        for (started, parent_run, by_span) in &self.starts {
            let from = match (by_span, parent_run) {
                (Some(span), _) => ("span", span.as_str()),
                (None, Some(parent)) => ("run", parent.as_str()),
                (None, None) => continue,
            };
            if *started == run {
                needed.extend(self.owners(digests, from));
            }
            if touches(from) {
                needed.insert(*started);
            }
        }
        needed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::build;
    use crate::model::tests::{line, span_end, span_start};
    use crate::record::records_from_lines;

    fn lifecycle(run: &str, seg: &str, seq: u64, ms: u64, kind: &str) -> String {
        let fields = match kind {
            "start" => {
                r#""type":"run:start","name":"r","rootPrimitive":"agent.run","startedAt":"$AT","status":"running""#
            }
            "suspend" => r#""type":"run:suspend","suspendedAt":"$AT","reason":"wait""#,
            "resume" => r#""type":"run:resume","resumedAt":"$AT","reason":"go""#,
            "error" => r#""type":"run:end","endedAt":"$AT","status":"error""#,
            _ => r#""type":"run:end","endedAt":"$AT","status":"ok""#,
        };
        line(run, seg, seq, ms, fields)
    }

    /// Every exact digest equals the summary of the built run; the others say `None`.
    fn check(lines: &[String]) -> Vec<bool> {
        let records = records_from_lines(lines);
        let mut digests = Digests::default();
        for record in &records {
            digests.add(record, 1);
        }
        let model = build(records);
        let mut exact = Vec::new();
        for digest in digests.runs() {
            let run = model
                .runs
                .iter()
                .find(|r| r.run_id == digest.run_id)
                .unwrap();
            let expected = RunSummary::of(run);
            match digest.summary() {
                Some((summary, order)) => {
                    assert_eq!(
                        format!("{summary:?}"),
                        format!("{expected:?}"),
                        "{lines:#?}"
                    );
                    assert_eq!(order, (run.first_at, run.first_line()));
                    exact.push(true);
                }
                None => exact.push(false),
            }
        }
        exact
    }

    #[test]
    fn digests_match_the_built_runs() {
        let a = "run_aaaaaaaaaaaaaaaaaaaaaaaa";
        let span = ("seg_1", 2, 5);
        // Ended, in any line order.
        let mut lines = vec![
            lifecycle(a, "seg_1", 1, 0, "start"),
            span_start(a, span, "00000000000000a1", None, "tool.call", "t"),
            span_end(a, ("seg_1", 3, 9), "00000000000000a1", "ok"),
            lifecycle(a, "seg_2", 1, 10, "error"),
        ];
        assert_eq!(check(&lines), [true]);
        lines.reverse();
        assert_eq!(check(&lines), [true]);
        // Suspended in one segment; two ends in one segment (the first in order wins).
        let b = "run_bbbbbbbbbbbbbbbbbbbbbbbb";
        let lines = vec![
            lifecycle(b, "seg_1", 3, 20, "suspend"),
            lifecycle(b, "seg_1", 1, 0, "start"),
            lifecycle(a, "seg_3", 2, 30, "ok"),
            lifecycle(a, "seg_3", 1, 30, "error"),
        ];
        assert_eq!(check(&lines), [true, true]);
        // No start: the earliest record and line order the run.
        let lines = vec![span_end(a, ("seg_9", 4, 50), "00000000000000a1", "ok")];
        assert_eq!(check(&lines), [true]);
        // Suspended, resumed and suspended again in another segment: left to the model.
        let lines = vec![
            lifecycle(b, "seg_1", 1, 0, "start"),
            lifecycle(b, "seg_1", 2, 10, "suspend"),
            lifecycle(b, "seg_2", 1, 20, "resume"),
            lifecycle(b, "seg_2", 2, 30, "suspend"),
        ];
        assert_eq!(check(&lines), [false]);
    }

    #[test]
    fn the_closure_holds_both_ends_of_every_link() {
        let (a, b, c, d) = (
            "run_aaaaaaaaaaaaaaaaaaaaaaaa",
            "run_bbbbbbbbbbbbbbbbbbbbbbbb",
            "run_cccccccccccccccccccccccc",
            "run_dddddddddddddddddddddddd",
        );
        let lines = vec![
            span_start(
                a,
                ("seg_a", 1, 0),
                "00000000000000a1",
                None,
                "tool.call",
                "t",
            ),
            // b is triggered by a's span; c has an edge to b's run; d is unrelated.
            line(
                b,
                "seg_b",
                1,
                1,
                r#""type":"run:start","name":"b","rootPrimitive":"agent.run","startedAt":"$AT","triggeredBySpanId":"00000000000000a1""#,
            ),
            line(
                c,
                "seg_c",
                1,
                2,
                &format!(
                    r#""type":"edge","edgeType":"caused","createdAt":"$AT","from":{{"kind":"run","id":"{c}"}},"to":{{"kind":"run","id":"{b}"}}"#
                ),
            ),
            span_start(
                d,
                ("seg_d", 1, 3),
                "00000000000000d1",
                None,
                "tool.call",
                "t",
            ),
        ];
        let mut digests = Digests::default();
        let mut related = Related::default();
        for record in records_from_lines(&lines) {
            let run = digests.add(&record, 1);
            related.add(run, &record);
        }
        let ids = |set: HashSet<u32>| {
            let mut ids: Vec<&str> = set
                .into_iter()
                .map(|i| digests.runs()[i as usize].run_id.as_str())
                .collect();
            ids.sort();
            ids
        };
        let of = |id| digests.index_of(id).unwrap();
        assert_eq!(ids(related.closure(&digests, of(b))), [a, b, c]);
        assert_eq!(ids(related.closure(&digests, of(a))), [a, b]);
        assert_eq!(ids(related.closure(&digests, of(c))), [b, c]);
        assert_eq!(ids(related.closure(&digests, of(d))), [d]);
    }
}
