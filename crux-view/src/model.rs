//! Runs and span trees built from records in any arrival order.
//!
//! Records of one run can arrive children before parents and ends before starts (they come
//! from several hosts through several queues). Order is rebuilt per run: each segment's
//! records by `segmentSeq` (the writer's own counter), segments interleaved by timestamp,
//! then `recordId` and line number as the last tie-breaks, so the result never depends on
//! the file's line order.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::record::{Artifact, Attributes, Body, Close, Edge, Event, Record, RunStart, SpanOpen};
use crate::time::{Nanos, millis_between};

/// The boundary events a callee reports on its caller's `runtime.convex.*` span.
pub const BOUNDARY_EVENT_PREFIX: &str = "runtime.convex.boundary.";

/// Every run in a store, newest first.
#[derive(Debug)]
pub struct Model {
    pub runs: Vec<Run>,
}

/// One Crux run.
#[derive(Debug)]
pub struct Run {
    pub run_id: String,
    /// `None` when the store has no `run:start` for it (incomplete run).
    pub start: Option<RunStart>,
    pub operation_id: Option<String>,
    pub trace_id: Option<String>,
    /// How many records carry this run id.
    pub records: usize,
    /// Segment ids in the order their first records happened.
    pub segments: Vec<String>,
    pub lifecycle: Vec<Lifecycle>,
    pub end: Option<Close>,
    /// `ok`, `error`, ... from `run:end`; else `suspended` after a suspend, else `running`.
    pub status: String,
    /// When the run started, or its earliest record when the start is missing.
    pub first_at: Nanos,
    /// The store line of that record: among runs started in the same instant, the one
    /// written later is the newer.
    first_line: usize,
    pub spans: Vec<Span>,
    /// Top-level spans (no parent, or a parent not in the store), in start order.
    pub roots: Vec<usize>,
    pub links: Vec<Link>,
}

/// A lifecycle record of a run.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// `run:start`, `run:suspend`, `run:resume` or `run:end`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub segment_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// For `run:resume`: the segment it continues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_segment_id: Option<String>,
    /// When it happened, as written.
    pub at: String,
    #[serde(skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

/// One span with everything recorded about it.
#[derive(Debug)]
pub struct Span {
    pub span_id: String,
    /// `None` until a `span:start` (or `span`) record is seen.
    pub open: Option<SpanOpen>,
    pub close: Option<Close>,
    /// The span's status; see [`Span::status_source`].
    pub status: String,
    /// Where the status came from when not from the span's own end record.
    pub status_source: Option<&'static str>,
    pub events: Vec<Event>,
    pub artifacts: Vec<Artifact>,
    pub children: Vec<usize>,
    pub parent: Option<usize>,
    /// The parent id this span names when that parent is not in the store.
    pub missing_parent: Option<String>,
    /// The parent id of a span nested deeper than [`MAX_TREE_DEPTH`], shown as a root.
    pub too_deep_under: Option<String>,
    pub links: Vec<Link>,
    /// Position of the span's first record in run order.
    order: usize,
}

impl Span {
    pub fn name(&self) -> &str {
        self.open
            .as_ref()
            .map_or("(no span:start)", |o| o.name.as_str())
    }

    pub fn primitive(&self) -> &str {
        self.open.as_ref().map_or("?", |o| o.primitive.as_str())
    }

    /// Whether the span is a Convex function hop (`runtime.convex.*`).
    pub fn is_boundary(&self) -> bool {
        self.primitive().starts_with("runtime.convex.")
    }

    pub fn duration_ms(&self) -> Option<f64> {
        let close = self.close.as_ref()?;
        close.duration_ms.or_else(|| {
            let open = self.open.as_ref()?;
            Some(millis_between(open.started_at_nanos, close.ended_at_nanos))
        })
    }

    pub fn started_at(&self) -> Option<Nanos> {
        self.open.as_ref().map(|o| o.started_at_nanos)
    }

    /// Start attributes with end attributes merged over them.
    pub fn attributes(&self) -> Attributes {
        let mut merged = self
            .open
            .as_ref()
            .map(|o| o.attributes.clone())
            .unwrap_or_default();
        if let Some(close) = &self.close {
            merged.extend(close.attributes.clone());
        }
        merged
    }
}

/// A link between runs or spans, seen from one side.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// The edge type (`triggered`, `caused`, ...), or `child` for `run:start.parentRunId`.
    pub edge_type: String,
    /// `out` when this side is the edge's `from`, `in` when it is the `to`.
    pub direction: Direction,
    pub other: Target,
}

/// Which end of a link this side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    Out,
    In,
}

/// The far end of a link, with names filled in when it is in the store.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// `run`, `span` or `artifact`.
    pub kind: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primitive: Option<String>,
}

impl Run {
    pub fn name(&self) -> &str {
        self.start
            .as_ref()
            .map_or("(no run:start)", |s| s.name.as_str())
    }

    pub fn root_primitive(&self) -> &str {
        self.start
            .as_ref()
            .map_or("?", |s| s.root_primitive.as_str())
    }

    pub fn started_at(&self) -> Option<&str> {
        self.start.as_ref().map(|s| s.started_at.as_str())
    }

    /// The position (store line, or index in a slice of records) of the run's first record:
    /// ordering runs by it gives the order they were delivered in.
    pub fn first_line(&self) -> usize {
        self.first_line
    }

    /// Wall time from start to end; `None` while the run has not ended.
    pub fn duration_ms(&self) -> Option<f64> {
        let end = self.end.as_ref()?;
        match &self.start {
            Some(_) => Some(millis_between(self.first_at, end.ended_at_nanos)),
            None => end.duration_ms,
        }
    }

    /// Spans in tree order (depth first, children in start order).
    pub fn spans_in_tree_order(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.spans.len());
        let mut stack: Vec<usize> = self.roots.iter().rev().copied().collect();
        while let Some(index) = stack.pop() {
            out.push(index);
            stack.extend(self.spans[index].children.iter().rev().copied());
        }
        out
    }

    /// The names of a span and its ancestors, outermost first.
    pub fn span_path(&self, index: usize) -> Vec<&str> {
        let mut path = vec![self.spans[index].name()];
        let mut at = self.spans[index].parent;
        while let Some(parent) = at {
            path.push(self.spans[parent].name());
            at = self.spans[parent].parent;
        }
        path.reverse();
        path
    }
}

/// Builds every run from a store's records.
pub fn build(records: Vec<Record>) -> Model {
    let mut by_run: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for record in records {
        by_run
            .entry(record.run_id.clone())
            .or_default()
            .push(record);
    }
    let mut edges = Vec::new();
    let mut runs: Vec<Run> = by_run
        .into_iter()
        .map(|(run_id, records)| build_run(run_id, records, &mut edges))
        .collect();
    runs.sort_by_key(|r| std::cmp::Reverse((r.first_at, r.first_line)));
    link_runs(&mut runs, edges);
    Model { runs }
}

/// Records of one run in causal order (see the module docs).
fn in_run_order(records: Vec<Record>) -> Vec<Record> {
    let mut segments: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for record in records {
        segments
            .entry(record.segment_id.clone())
            .or_default()
            .push(record);
    }
    let mut queues: Vec<std::collections::VecDeque<Record>> = segments
        .into_values()
        .map(|mut records| {
            records.sort_by(|a, b| {
                (a.segment_seq, a.at, &a.record_id, a.line).cmp(&(
                    b.segment_seq,
                    b.at,
                    &b.record_id,
                    b.line,
                ))
            });
            records.into()
        })
        .collect();
    let mut ordered = Vec::new();
    // Merge the segments by the time of each one's next record. Clocks tick in
    // milliseconds, so records of two segments often tie; the store's line order (the order
    // they were written) is the best evidence left for those.
    loop {
        let next = queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|r| (r.at, r.line, i)))
            .min();
        let Some((_, _, i)) = next else { break };
        ordered.extend(queues[i].pop_front());
    }
    ordered
}

fn build_run(run_id: String, records: Vec<Record>, edges: &mut Vec<(String, Edge)>) -> Run {
    let records = in_run_order(records);
    let mut run = Run {
        run_id,
        start: None,
        operation_id: None,
        trace_id: None,
        records: records.len(),
        segments: Vec::new(),
        lifecycle: Vec::new(),
        end: None,
        status: String::new(),
        first_at: records.iter().map(|r| r.at).min().unwrap_or_default(),
        first_line: records.iter().map(|r| r.line).min().unwrap_or_default(),
        spans: Vec::new(),
        roots: Vec::new(),
        links: Vec::new(),
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut span_at = |run: &mut Run, span_id: &str, order: usize| -> usize {
        *index.entry(span_id.to_owned()).or_insert_with(|| {
            run.spans.push(Span {
                span_id: span_id.to_owned(),
                open: None,
                close: None,
                status: String::new(),
                status_source: None,
                events: Vec::new(),
                artifacts: Vec::new(),
                children: Vec::new(),
                parent: None,
                missing_parent: None,
                too_deep_under: None,
                links: Vec::new(),
                order,
            });
            run.spans.len() - 1
        })
    };
    for (order, record) in records.into_iter().enumerate() {
        if !run.segments.contains(&record.segment_id) {
            run.segments.push(record.segment_id.clone());
        }
        if run.operation_id.is_none() {
            run.operation_id = record.operation_id.clone();
        }
        if run.trace_id.is_none() {
            run.trace_id = record.trace_id.clone();
        }
        let lifecycle = |kind, reason, status, attributes| Lifecycle {
            kind,
            segment_id: record.segment_id.clone(),
            reason,
            status,
            previous_segment_id: None,
            at: record.at_text.clone(),
            attributes,
        };
        match record.body {
            Body::RunStart(start) => {
                run.lifecycle
                    .push(lifecycle("run:start", None, None, Attributes::new()));
                if run.start.is_none() {
                    run.first_at = record.at;
                    run.first_line = record.line;
                    run.start = Some(start);
                }
            }
            Body::RunSuspend { reason, attributes } => {
                run.lifecycle
                    .push(lifecycle("run:suspend", Some(reason), None, attributes));
            }
            Body::RunResume {
                reason,
                previous_segment_id,
                attributes,
            } => {
                let mut resume = lifecycle("run:resume", Some(reason), None, attributes);
                resume.previous_segment_id = previous_segment_id;
                run.lifecycle.push(resume);
            }
            Body::RunEnd(close) => {
                run.lifecycle.push(lifecycle(
                    "run:end",
                    None,
                    Some(close.status.clone()),
                    close.attributes.clone(),
                ));
                // The first end wins, as in the writer ("exactly once").
                if run.end.is_none() {
                    run.end = Some(close);
                }
            }
            Body::SpanStart(open) => {
                let i = span_at(&mut run, &open.span_id, order);
                run.spans[i].open.get_or_insert(open);
            }
            Body::SpanEnd(end) => {
                let i = span_at(&mut run, &end.span_id, order);
                run.spans[i].close.get_or_insert(end.close);
            }
            Body::Span(open, close) => {
                let i = span_at(&mut run, &open.span_id, order);
                run.spans[i].open.get_or_insert(open);
                run.spans[i].close.get_or_insert(close);
            }
            Body::Event(event) => {
                let i = span_at(&mut run, &event.span_id, order);
                run.spans[i].events.push(event);
            }
            Body::Artifact(artifact) => {
                if let Some(span_id) = artifact.span_id.clone() {
                    let i = span_at(&mut run, &span_id, order);
                    run.spans[i].artifacts.push(artifact);
                }
            }
            Body::Edge(edge) => edges.push((run.run_id.clone(), edge)),
        }
    }
    for span in &mut run.spans {
        (span.status, span.status_source) = span_status(span);
    }
    let named: Vec<Option<String>> = run
        .spans
        .iter()
        .map(|s| s.open.as_ref().and_then(|o| o.parent_span_id.clone()))
        .collect();
    let resolved: Vec<Option<usize>> = named
        .iter()
        .map(|id| id.as_ref().and_then(|id| index.get(id).copied()))
        .collect();
    let closes_cycle = cycle_closers(resolved.len(), |i| resolved[i]);
    for (child, parent_id) in named.into_iter().enumerate() {
        match (parent_id, resolved[child]) {
            (Some(_), Some(parent)) if !closes_cycle[child] => {
                run.spans[parent].children.push(child);
                run.spans[child].parent = Some(parent);
            }
            (Some(parent_id), _) => {
                run.spans[child].missing_parent = Some(parent_id);
                run.roots.push(child);
            }
            (None, _) => run.roots.push(child),
        }
    }
    cut_deep_subtrees(&mut run);
    let keys: Vec<(Nanos, usize)> = run
        .spans
        .iter()
        .map(|s| (s.started_at().unwrap_or(Nanos::MAX), s.order))
        .collect();
    run.roots.sort_by_key(|&i| keys[i]);
    for span in &mut run.spans {
        span.children.sort_by_key(|&i| keys[i]);
    }
    run.status = match (&run.end, run.lifecycle.last()) {
        (Some(end), _) => end.status.clone(),
        (None, Some(last)) if last.kind == "run:suspend" => "suspended".to_owned(),
        _ => "running".to_owned(),
    };
    if run.end.is_some() {
        // The run is over, so a span still "running" lost its end (a worker that exited
        // before flushing, a dropped record): say so instead of showing it as live.
        for span in &mut run.spans {
            if span.close.is_none() && span.status_source.is_none() {
                span.status = "unfinished".to_owned();
                span.status_source = Some("no span:end before run:end");
            }
        }
    }
    run
}

/// Span nesting the viewer shows as one tree; a span deeper than this starts a tree of
/// its own. Real runs nest a few dozen levels; the cap keeps the recursive folding,
/// rendering and JSON output of a hostile or corrupt store within the stack.
pub const MAX_TREE_DEPTH: usize = 256;

/// Detaches every span at depth [`MAX_TREE_DEPTH`] from its parent and makes it a root
/// that says where it belongs, so no tree is deeper than the cap. One walk over the forest:
/// a detached span is measured again from depth 0, as the root it becomes.
fn cut_deep_subtrees(run: &mut Run) {
    let mut cut = vec![false; run.spans.len()];
    let mut stack: Vec<(usize, usize)> = run.roots.iter().map(|&i| (i, 0)).collect();
    while let Some((index, depth)) = stack.pop() {
        for &child in &run.spans[index].children {
            if depth + 1 >= MAX_TREE_DEPTH {
                cut[child] = true;
                stack.push((child, 0));
            } else {
                stack.push((child, depth + 1));
            }
        }
    }
    for child in (0..run.spans.len()).filter(|&c| cut[c]) {
        if let Some(parent) = run.spans[child].parent.take() {
            run.spans[child].too_deep_under = Some(run.spans[parent].span_id.clone());
            run.roots.push(child);
        }
    }
    // Once per span, not once per cut: a wide span at the cap can lose thousands of children.
    for span in &mut run.spans {
        span.children.retain(|&c| !cut[c]);
    }
}

/// Where a span stands in [`cycle_closers`]' walk.
#[derive(Clone, Copy)]
enum Walked {
    Not,
    /// On the current walk, at this position.
    On(usize),
    Done,
}

/// Guards against parent cycles in bad data: for spans `0..count` (in run order) with the
/// parent `parent_of` names, which links would close a cycle. On each cycle that is the
/// link of the span latest in run order, the one found closing it when spans are linked in
/// order, so the rest of the cycle is still shown as a chain.
///
/// Each span's parent is looked up once: a walk follows parents from each span not seen
/// yet and stops at a span seen before, so the whole check is linear in `count`.
fn cycle_closers(count: usize, mut parent_of: impl FnMut(usize) -> Option<usize>) -> Vec<bool> {
    let mut walked = vec![Walked::Not; count];
    let mut closes = vec![false; count];
    let mut walk = Vec::new();
    for start in 0..count {
        let mut next = Some(start);
        while let Some(at) = next {
            match walked[at] {
                Walked::Not => {
                    walked[at] = Walked::On(walk.len());
                    walk.push(at);
                    next = parent_of(at);
                }
                // Back on this walk: `walk[from..]` is a cycle (one span for a self-parent).
                Walked::On(from) => {
                    if let Some(&latest) = walk[from..].iter().max() {
                        closes[latest] = true;
                    }
                    break;
                }
                Walked::Done => break,
            }
        }
        for &span in &walk {
            walked[span] = Walked::Done;
        }
        walk.clear();
    }
    closes
}

/// The span's own end status; for an unended boundary span the callee's acknowledgement
/// (`completed` with its status, `failed` as error), as the Crux backend reconciles it.
fn span_status(span: &Span) -> (String, Option<&'static str>) {
    if let Some(close) = &span.close {
        return (close.status.clone(), None);
    }
    if span.is_boundary() {
        let acknowledged = span.events.iter().rev().find_map(|e| {
            match e.name.strip_prefix(BOUNDARY_EVENT_PREFIX)? {
                "completed" => Some(
                    e.attributes
                        .get("status")
                        .and_then(|s| s.as_str())
                        .unwrap_or("ok")
                        .to_owned(),
                ),
                "failed" => Some("error".to_owned()),
                _ => None,
            }
        });
        if let Some(status) = acknowledged {
            return (status, Some("from the callee's acknowledgement"));
        }
    }
    ("running".to_owned(), None)
}

/// Where a span lives: (run index, span index).
type SpanHome = (usize, usize);

/// An edge end as (kind, id).
type EndpointKey = (String, String);

/// Attaches links from `edge` records and from `run:start.parentRunId`/`triggeredBySpanId`
/// to both of their ends.
fn link_runs(runs: &mut [Run], edges: Vec<(String, Edge)>) {
    let run_index: HashMap<String, usize> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.run_id.clone(), i))
        .collect();
    let mut span_index: HashMap<String, SpanHome> = HashMap::new();
    for (r, run) in runs.iter().enumerate() {
        for (s, span) in run.spans.iter().enumerate() {
            span_index.entry(span.span_id.clone()).or_insert((r, s));
        }
    }
    let mut pairs: Vec<(String, EndpointKey, EndpointKey)> = edges
        .into_iter()
        .map(|(_, e)| (e.edge_type, (e.from.kind, e.from.id), (e.to.kind, e.to.id)))
        .collect();
    for run in runs.iter() {
        if let Some(start) = &run.start {
            let from = match (&start.triggered_by_span_id, &start.parent_run_id) {
                (Some(span), _) => ("span".to_owned(), span.clone()),
                (None, Some(parent)) => ("run".to_owned(), parent.clone()),
                (None, None) => continue,
            };
            let to = ("run".to_owned(), run.run_id.clone());
            let known = pairs.iter().any(|(_, f, t)| *f == from && *t == to);
            if !known {
                pairs.push(("child".to_owned(), from, to));
            }
        }
    }
    let describe = |runs: &[Run], (kind, id): &(String, String)| -> Target {
        let mut target = Target {
            kind: kind.clone(),
            id: id.clone(),
            run_id: None,
            run_name: None,
            span_name: None,
            primitive: None,
        };
        let home_run = match kind.as_str() {
            "run" => run_index.get(id).copied(),
            "span" => span_index.get(id).map(|&(r, s)| {
                target.span_name = Some(runs[r].spans[s].name().to_owned());
                target.primitive = Some(runs[r].spans[s].primitive().to_owned());
                r
            }),
            _ => None,
        };
        if let Some(r) = home_run {
            target.run_id = Some(runs[r].run_id.clone());
            target.run_name = Some(runs[r].name().to_owned());
        } else if kind == "run" {
            target.run_id = Some(id.clone());
        }
        target
    };
    for (edge_type, from, to) in pairs {
        let from_target = describe(runs, &from);
        let to_target = describe(runs, &to);
        for (side, direction, other) in [
            (&from, Direction::Out, to_target),
            (&to, Direction::In, from_target),
        ] {
            let link = Link {
                edge_type: edge_type.clone(),
                direction,
                other,
            };
            let slot = match side.0.as_str() {
                "run" => run_index.get(&side.1).map(|&r| &mut runs[r].links),
                "span" => span_index
                    .get(&side.1)
                    .map(|&(r, s)| &mut runs[r].spans[s].links),
                _ => None,
            };
            if let Some(links) = slot
                && !links.contains(&link)
            {
                links.push(link);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::records_from_lines;

    /// A compact record writer: `(run, segment, seq, millis, type-specific JSON fields)`.
    pub(crate) fn line(run: &str, seg: &str, seq: u64, ms: u64, fields: &str) -> String {
        let at = format!("2026-11-25T10:00:{:02}.{:03}Z", ms / 1000, ms % 1000);
        let fields = fields.replace("$AT", &at);
        format!(
            r#"{{"schemaVersion":5,"recordId":"rec_{run}_{seg}_{seq}","runId":"{run}","operationId":"{run}","segmentId":"{seg}","segmentSeq":{seq},"traceId":"0123456789abcdef0123456789abcdef",{fields}}}"#
        )
    }

    pub(crate) fn span_start(
        run: &str,
        (seg, seq, ms): (&str, u64, u64),
        id: &str,
        parent: Option<&str>,
        primitive: &str,
        name: &str,
    ) -> String {
        let parent = parent.map_or("null".to_owned(), |p| format!("{p:?}"));
        let family = primitive.split('.').next().unwrap();
        line(
            run,
            seg,
            seq,
            ms,
            &format!(
                r#""type":"span:start","spanId":"{id}","parentSpanId":{parent},"family":"{family}","primitive":"{primitive}","name":"{name}","startedAt":"$AT","status":"running""#
            ),
        )
    }

    pub(crate) fn span_end(
        run: &str,
        (seg, seq, ms): (&str, u64, u64),
        id: &str,
        status: &str,
    ) -> String {
        line(
            run,
            seg,
            seq,
            ms,
            &format!(r#""type":"span:end","spanId":"{id}","endedAt":"$AT","status":"{status}""#),
        )
    }

    fn lifecycle(run: &str, seg: &str, seq: u64, ms: u64, kind: &str) -> String {
        let fields = match kind {
            "start" => {
                r#""type":"run:start","name":"r","rootPrimitive":"agent.run","startedAt":"$AT","status":"running""#
            }
            "suspend" => r#""type":"run:suspend","suspendedAt":"$AT","reason":"wait""#,
            "resume" => r#""type":"run:resume","resumedAt":"$AT","reason":"go""#,
            _ => r#""type":"run:end","endedAt":"$AT","status":"ok""#,
        };
        line(run, seg, seq, ms, fields)
    }

    fn shape(model: &Model) -> Vec<String> {
        let mut out = Vec::new();
        for run in &model.runs {
            out.push(format!(
                "{} {} {}",
                run.run_id,
                run.status,
                run.segments.join(",")
            ));
            for i in run.spans_in_tree_order() {
                let span = &run.spans[i];
                let events: Vec<&str> = span.events.iter().map(|e| e.name.as_str()).collect();
                out.push(format!(
                    "{} {} {} parent={:?} events={events:?}",
                    run.span_path(i).join("/"),
                    span.primitive(),
                    span.status,
                    span.parent.map(|p| run.spans[p].span_id.clone())
                ));
            }
        }
        out
    }

    fn sample() -> Vec<String> {
        let r = "run_aaaaaaaaaaaaaaaaaaaaaaaa";
        vec![
            lifecycle(r, "seg_1", 1, 0, "start"),
            span_start(
                r,
                ("seg_1", 2, 10),
                "00000000000000b1",
                None,
                "runtime.convex.action",
                "hop",
            ),
            line(
                r,
                "seg_2",
                1,
                10,
                r#""type":"span:event","spanId":"00000000000000b1","name":"runtime.convex.boundary.received","timestamp":"$AT""#,
            ),
            span_start(
                r,
                ("seg_2", 2, 10),
                "00000000000000c1",
                Some("00000000000000b1"),
                "generation.call",
                "first",
            ),
            span_end(r, ("seg_2", 3, 20), "00000000000000c1", "ok"),
            span_start(
                r,
                ("seg_2", 4, 20),
                "00000000000000c2",
                Some("00000000000000b1"),
                "tool.call",
                "second",
            ),
            span_end(r, ("seg_2", 5, 20), "00000000000000c2", "error"),
            span_end(r, ("seg_1", 3, 30), "00000000000000b1", "error"),
            lifecycle(r, "seg_1", 4, 40, "suspend"),
            lifecycle(r, "seg_3", 1, 50, "resume"),
            lifecycle(r, "seg_3", 2, 60, "end"),
        ]
    }

    #[test]
    fn arrival_order_does_not_change_the_model() {
        let lines = sample();
        let expected = shape(&build(records_from_lines(&lines)));
        assert_eq!(
            expected,
            vec![
                "run_aaaaaaaaaaaaaaaaaaaaaaaa ok seg_1,seg_2,seg_3",
                "hop runtime.convex.action error parent=None events=[\"runtime.convex.boundary.received\"]",
                "hop/first generation.call ok parent=Some(\"00000000000000b1\") events=[]",
                "hop/second tool.call error parent=Some(\"00000000000000b1\") events=[]",
            ]
        );
        let mut reversed = lines.clone();
        reversed.reverse();
        assert_eq!(shape(&build(records_from_lines(&reversed))), expected);
        // Rotations move children before parents and ends before starts.
        for shift in 1..lines.len() {
            let mut rotated = lines.clone();
            rotated.rotate_left(shift);
            assert_eq!(
                shape(&build(records_from_lines(&rotated))),
                expected,
                "rotation {shift}"
            );
        }
    }

    #[test]
    fn sequence_numbers_order_a_segment_even_when_timestamps_tie() {
        let r = "run_aaaaaaaaaaaaaaaaaaaaaaaa";
        // Same millisecond: only segmentSeq says the suspend came after the resume.
        let lines = vec![
            lifecycle(r, "seg_1", 1, 0, "start"),
            lifecycle(r, "seg_1", 3, 5, "suspend"),
            lifecycle(r, "seg_1", 2, 5, "resume"),
        ];
        let model = build(records_from_lines(&lines));
        let kinds: Vec<&str> = model.runs[0].lifecycle.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, ["run:start", "run:resume", "run:suspend"]);
        assert_eq!(model.runs[0].status, "suspended");
    }

    #[test]
    fn run_status_follows_the_last_lifecycle_record() {
        let r = "run_aaaaaaaaaaaaaaaaaaaaaaaa";
        let status = |kinds: &[&str]| {
            let lines: Vec<String> = kinds
                .iter()
                .enumerate()
                .map(|(i, k)| lifecycle(r, &format!("seg_{i}"), 1, i as u64 * 10, k))
                .collect();
            build(records_from_lines(&lines)).runs[0].status.clone()
        };
        assert_eq!(status(&["start"]), "running");
        assert_eq!(status(&["start", "suspend"]), "suspended");
        assert_eq!(status(&["start", "suspend", "resume"]), "running");
        assert_eq!(status(&["start", "suspend", "resume", "end"]), "ok");
    }

    #[test]
    fn an_unended_boundary_takes_the_callee_acknowledgement() {
        let r = "run_aaaaaaaaaaaaaaaaaaaaaaaa";
        let lines = vec![
            span_start(
                r,
                ("seg_1", 1, 0),
                "00000000000000b1",
                None,
                "runtime.convex.action",
                "hop",
            ),
            line(
                r,
                "seg_2",
                1,
                5,
                r#""type":"span:event","spanId":"00000000000000b1","name":"runtime.convex.boundary.failed","timestamp":"$AT","attributes":{"status":"error"}"#,
            ),
            span_start(
                r,
                ("seg_1", 2, 6),
                "00000000000000b2",
                None,
                "generation.call",
                "plain",
            ),
        ];
        let run = &build(records_from_lines(&lines)).runs[0];
        assert_eq!(run.spans[0].status, "error");
        assert_eq!(
            run.spans[0].status_source,
            Some("from the callee's acknowledgement")
        );
        assert_eq!(run.spans[1].status, "running");
        assert_eq!(run.spans[1].status_source, None);
    }

    #[test]
    fn a_span_left_open_by_an_ended_run_is_unfinished() {
        let r = "run_aaaaaaaaaaaaaaaaaaaaaaaa";
        let open = span_start(
            r,
            ("seg_1", 2, 1),
            "00000000000000a1",
            None,
            "tool.call",
            "t",
        );
        let running = build(records_from_lines(&[
            lifecycle(r, "seg_1", 1, 0, "start"),
            open.clone(),
        ]));
        assert_eq!(running.runs[0].spans[0].status, "running");
        let ended = build(records_from_lines(&[
            lifecycle(r, "seg_1", 1, 0, "start"),
            open,
            lifecycle(r, "seg_1", 3, 2, "end"),
        ]));
        assert_eq!(ended.runs[0].spans[0].status, "unfinished");
    }

    #[test]
    fn a_parent_cycle_in_bad_data_does_not_hide_spans() {
        let r = "run_aaaaaaaaaaaaaaaaaaaaaaaa";
        let lines = vec![
            span_start(
                r,
                ("seg_1", 1, 0),
                "00000000000000a1",
                Some("00000000000000a2"),
                "tool.call",
                "a",
            ),
            span_start(
                r,
                ("seg_1", 2, 1),
                "00000000000000a2",
                Some("00000000000000a1"),
                "tool.call",
                "b",
            ),
        ];
        let run = &build(records_from_lines(&lines)).runs[0];
        assert_eq!(run.spans_in_tree_order().len(), 2);
    }

    /// The check as first written, linking spans in run order and refusing a link whose
    /// parent already has the child above it: quadratic, kept as the reference.
    fn closers_span_by_span(parents: &[Option<usize>]) -> Vec<bool> {
        let mut linked: Vec<Option<usize>> = vec![None; parents.len()];
        let mut closes = vec![false; parents.len()];
        for (child, &parent) in parents.iter().enumerate() {
            let Some(parent) = parent else { continue };
            let mut at = Some(parent);
            while let Some(p) = at
                && p != child
            {
                at = linked[p];
            }
            if at == Some(child) {
                closes[child] = true;
            } else {
                linked[child] = Some(parent);
            }
        }
        closes
    }

    #[test]
    fn the_cycle_check_drops_the_links_linking_in_order_would() {
        // Every parent assignment of up to 5 spans: chains, forests, self-parents, one or
        // more cycles with tails.
        for count in 1..=5usize {
            let choices = count + 1;
            for mut code in 0..choices.pow(count as u32) {
                let parents: Vec<Option<usize>> = (0..count)
                    .map(|_| {
                        let digit = code % choices;
                        code /= choices;
                        digit.checked_sub(1)
                    })
                    .collect();
                assert_eq!(
                    cycle_closers(count, |i| parents[i]),
                    closers_span_by_span(&parents),
                    "{parents:?}"
                );
            }
        }
    }

    const DEEP: usize = 50_000;

    #[test]
    fn the_cycle_check_looks_each_parent_up_once() {
        let chain: Vec<Option<usize>> = (0..DEEP).map(|i| i.checked_sub(1)).collect();
        let children_first: Vec<Option<usize>> =
            (0..DEEP).map(|i| (i + 1 < DEEP).then_some(i + 1)).collect();
        let mut ring = chain.clone();
        ring[0] = Some(DEEP - 1);
        for (name, parents, closer) in [
            ("chain", chain, None),
            ("children first", children_first, None),
            ("ring", ring, Some(DEEP - 1)),
        ] {
            let mut lookups = 0;
            let closes = cycle_closers(DEEP, |i| {
                lookups += 1;
                parents[i]
            });
            assert_eq!(lookups, DEEP, "{name}");
            let closers: Vec<usize> = (0..DEEP).filter(|&i| closes[i]).collect();
            assert_eq!(closers, Vec::from_iter(closer), "{name}");
        }
    }

    #[test]
    fn a_ring_50_000_deep_is_shown_as_capped_chains() {
        use crate::fold::{Folding, view};
        use crate::render::run_text;
        let r = "run_aaaaaaaaaaaaaaaaaaaaaaaa";
        let id = |i: usize| format!("{i:016x}");
        // s1 names the last span as its parent, so the chain is one 50 000-span cycle.
        let lines: Vec<String> = (1..=DEEP)
            .map(|i| {
                let parent = id(if i == 1 { DEEP } else { i - 1 });
                let at = ("seg_1", i as u64, 0);
                span_start(r, at, &id(i), Some(&parent), "flow.step", &format!("s{i}"))
            })
            .collect();
        let run = &build(records_from_lines(&lines)).runs[0];
        assert_eq!(run.spans_in_tree_order().len(), DEEP);
        // The last span in run order closed the cycle: it tops the chain s50000, s1, s2, ...
        let last = &run.spans[DEEP - 1];
        assert_eq!(last.parent, None);
        assert_eq!(last.missing_parent, Some(id(DEEP - 1)));
        assert_eq!(run.spans[0].parent, Some(DEEP - 1));
        // Cut every 256 levels: s256 is the first span at depth 256.
        let cuts = (DEEP - 1) / MAX_TREE_DEPTH;
        assert_eq!(run.roots.len(), 1 + cuts);
        assert_eq!(run.spans[255].too_deep_under, Some(id(255)));
        assert!((0..DEEP).all(|i| run.span_path(i).len() <= MAX_TREE_DEPTH));
        let text = run_text(&view(run, Folding::All), false);
        assert_eq!(
            text.matches("nested too deeply to show under it").count(),
            cuts
        );
        assert_eq!(text.matches(" is not in the store)").count(), 1);
        assert!(text.contains(&format!("s{DEEP}  flow.step")), "{text}");
    }

    #[test]
    fn a_wide_span_at_the_cap_loses_each_child_once() {
        let r = "run_aaaaaaaaaaaaaaaaaaaaaaaa";
        let id = |i: usize| format!("{i:016x}");
        let wide = 1000;
        let mut lines: Vec<String> = (1..=MAX_TREE_DEPTH)
            .map(|i| {
                let parent = (i > 1).then(|| id(i - 1));
                let at = ("seg_1", i as u64, 0);
                span_start(r, at, &id(i), parent.as_deref(), "flow.step", "deep")
            })
            .collect();
        lines.extend((1..=wide).map(|j| {
            let at = ("seg_1", (MAX_TREE_DEPTH + j) as u64, 0);
            let parent = id(MAX_TREE_DEPTH);
            span_start(
                r,
                at,
                &id(MAX_TREE_DEPTH + j),
                Some(&parent),
                "tool.call",
                "leaf",
            )
        }));
        let run = &build(records_from_lines(&lines)).runs[0];
        assert_eq!(run.roots.len(), 1 + wide);
        assert!(run.spans[MAX_TREE_DEPTH - 1].children.is_empty());
        let leaves = &run.spans[MAX_TREE_DEPTH..];
        assert!(leaves.iter().all(|s| s.parent.is_none()
            && s.too_deep_under.as_deref() == Some(id(MAX_TREE_DEPTH).as_str())));
        assert_eq!(run.spans_in_tree_order().len(), MAX_TREE_DEPTH + wide);
    }

    #[test]
    fn links_resolve_edges_and_child_runs_on_both_sides() {
        let parent = "run_aaaaaaaaaaaaaaaaaaaaaaaa";
        let child = "run_bbbbbbbbbbbbbbbbbbbbbbbb";
        let lines = vec![
            lifecycle(parent, "seg_1", 1, 0, "start"),
            span_start(
                parent,
                ("seg_1", 2, 1),
                "00000000000000d1",
                None,
                "runtime.convex.schedule",
                "later",
            ),
            line(
                child,
                "seg_2",
                1,
                5,
                &format!(
                    r#""type":"run:start","name":"child","rootPrimitive":"defer.run","startedAt":"$AT","status":"running","parentRunId":"{parent}","triggeredBySpanId":"00000000000000d1""#
                ),
            ),
        ];
        let model = build(records_from_lines(&lines));
        let child_run = model.runs.iter().find(|r| r.run_id == child).unwrap();
        let parent_run = model.runs.iter().find(|r| r.run_id == parent).unwrap();
        assert_eq!(child_run.links.len(), 1);
        assert_eq!(child_run.links[0].direction, Direction::In);
        assert_eq!(child_run.links[0].other.span_name.as_deref(), Some("later"));
        assert_eq!(child_run.links[0].other.run_id.as_deref(), Some(parent));
        let span_links = &parent_run.spans[0].links;
        assert_eq!(span_links.len(), 1);
        assert_eq!(span_links[0].direction, Direction::Out);
        assert_eq!(span_links[0].other.run_name.as_deref(), Some("child"));
    }
}
