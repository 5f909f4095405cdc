//! [`Trees`]: every run of a set of records, printed as `crux show` prints each one, and
//! the normalized form tests pin.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::fold::{self, Folding};
use crate::model::{self, Model, Run};
use crate::record::{Attributes, Record, decode_value};
use crate::render::run_text;
use crate::time::parse_iso8601;
use crate::view::{NodeView, RunView};

/// Decodes records given as JSON values (their positions, 1-based, stand for store lines).
/// Returns the usable records and one message per record that could not be read.
pub fn decode_values<'a>(
    values: impl IntoIterator<Item = &'a Value>,
) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut warnings = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        match decode_value(index + 1, value) {
            Ok(record) => records.push(record),
            Err(error) => warnings.push(format!("record {}: {}; skipped", index + 1, error.0)),
        }
    }
    (records, warnings)
}

/// The runs of a set of records as text: each run as `crux show RUN` prints it, in the
/// order the runs' first records were delivered, separated by a blank line. Records that
/// cannot be read are listed first as `warning: ...` lines.
///
/// [`Display`](fmt::Display) renders; the builder methods choose what:
/// [`all_spans`](Trees::all_spans) (`crux show --all`), [`with_attributes`](Trees::with_attributes)
/// (`--attributes`), [`run`](Trees::run) (one run) and [`normalized`](Trees::normalized)
/// (stable across executions, for snapshot tests).
#[derive(Debug)]
pub struct Trees {
    model: Model,
    warnings: Vec<String>,
    folding: Folding,
    attributes: bool,
    normalized: bool,
    only: Option<String>,
}

impl Trees {
    /// The runs of `values`, wire records as JSON, in delivery order (any order works; the
    /// position is only the last tie-break between records of the same instant).
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a Value>) -> Trees {
        let (records, warnings) = decode_values(values);
        let mut trees = Trees::from_records(records);
        trees.warnings = warnings;
        trees
    }

    /// The runs of records already decoded (see [`crate::record::decode_line`]).
    pub fn from_records(records: Vec<Record>) -> Trees {
        Trees {
            model: model::build(records),
            warnings: Vec::new(),
            folding: Folding::Fold,
            attributes: false,
            normalized: false,
            only: None,
        }
    }

    /// Every span as recorded, no hop folded (`crux show --all`).
    pub fn all_spans(mut self) -> Trees {
        self.folding = Folding::All;
        self
    }

    /// Attributes, metrics and artifacts too (`crux show --attributes`).
    pub fn with_attributes(mut self) -> Trees {
        self.attributes = true;
        self
    }

    /// Only the run with this id (text saying so when there is none).
    pub fn run(mut self, run_id: impl fmt::Display) -> Trees {
        self.only = Some(run_id.to_string());
        self
    }

    /// Text that stays the same across executions of the same program: run, span and other
    /// ids of the records (those of 8 characters or more) become `run#1`, `span#1`, `id#1`,
    /// numbered in order of first appearance in the text; start times, durations and event
    /// offsets are left out; attribute values that are timestamps print as `<time>`.
    pub fn normalized(mut self) -> Trees {
        self.normalized = true;
        self
    }

    /// The runs and span trees built from the records.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// One message per record that could not be read.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The runs shown, in delivery order.
    fn runs(&self) -> Vec<&Run> {
        let mut runs: Vec<&Run> = self
            .model
            .runs
            .iter()
            .filter(|r| self.only.as_ref().is_none_or(|id| *id == r.run_id))
            .collect();
        runs.sort_by_key(|r| r.first_line());
        runs
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for warning in &self.warnings {
            out.push_str("warning: ");
            out.push_str(warning);
            out.push('\n');
        }
        let runs = self.runs();
        if runs.is_empty() {
            match &self.only {
                Some(id) => out.push_str(&format!("(no run {id} in the records)\n")),
                None => out.push_str("(no runs)\n"),
            }
        }
        for (i, run) in runs.into_iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let mut view = fold::view(run, self.folding);
            if self.normalized {
                without_times(&mut view);
            }
            out.push_str(&run_text(&view, self.attributes));
        }
        if self.normalized {
            out = numbered_ids(&out, &self.model);
        }
        out
    }
}

impl fmt::Display for Trees {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Drops what differs between two executions of the same program: instants and durations.
fn without_times(run: &mut RunView) {
    run.started_at = None;
    run.ended_at = None;
    run.duration_ms = None;
    stable_values(&mut run.attributes);
    for lifecycle in &mut run.lifecycle {
        lifecycle.at.clear();
        stable_values(&mut lifecycle.attributes);
    }
    let mut stack: Vec<&mut NodeView> = run.spans.iter_mut().collect();
    while let Some(node) = stack.pop() {
        node.started_at = None;
        node.ended_at = None;
        node.duration_ms = None;
        stable_values(&mut node.attributes);
        for event in &mut node.events {
            event.timestamp.clear();
            event.offset_ms = None;
            stable_values(&mut event.attributes);
        }
        stack.extend(node.via.iter_mut());
        stack.extend(node.children.iter_mut());
    }
}

/// Timestamps inside attribute values (a lease's expiry, say) become `<time>`.
fn stable_values(attributes: &mut Attributes) {
    fn walk(value: &mut Value) {
        match value {
            Value::String(text) if parse_iso8601(text).is_some() => *text = "<time>".to_owned(),
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    attributes.values_mut().for_each(walk);
}

/// Ids shorter than this are left alone: hand-written records use ids like `a1`, which
/// would otherwise match words of the text.
const MIN_ID_LEN: usize = 8;

/// What an id names, for its placeholder.
#[derive(Clone, Copy)]
enum IdKind {
    Run,
    Span,
    Other,
}

/// Every id the records carry, by kind. A run id seen as a span id too stays a run id.
fn known_ids(model: &Model) -> HashMap<&str, IdKind> {
    let mut found: Vec<(&str, IdKind)> = Vec::new();
    for run in &model.runs {
        found.push((&run.run_id, IdKind::Run));
        found.extend(run.operation_id.as_deref().map(|o| (o, IdKind::Run)));
        found.extend(run.trace_id.as_deref().map(|t| (t, IdKind::Other)));
        found.extend(run.segments.iter().map(|s| (s.as_str(), IdKind::Other)));
        if let Some(start) = &run.start {
            found.extend(start.parent_run_id.as_deref().map(|p| (p, IdKind::Run)));
            found.extend(
                start
                    .triggered_by_span_id
                    .as_deref()
                    .map(|s| (s, IdKind::Span)),
            );
        }
        let links = run
            .links
            .iter()
            .chain(run.spans.iter().flat_map(|s| &s.links));
        for link in links {
            let kind = match link.other.kind.as_str() {
                "run" => IdKind::Run,
                "span" => IdKind::Span,
                _ => IdKind::Other,
            };
            found.push((&link.other.id, kind));
            found.extend(link.other.run_id.as_deref().map(|r| (r, IdKind::Run)));
        }
        for span in &run.spans {
            found.push((&span.span_id, IdKind::Span));
            found.extend(span.missing_parent.as_deref().map(|p| (p, IdKind::Span)));
            found.extend(span.too_deep_under.as_deref().map(|p| (p, IdKind::Span)));
            found.extend(
                span.events
                    .iter()
                    .filter_map(|e| e.event_id.as_deref())
                    .map(|e| (e, IdKind::Other)),
            );
            found.extend(
                span.artifacts
                    .iter()
                    .filter_map(|a| a.artifact_id.as_deref())
                    .map(|a| (a, IdKind::Other)),
            );
        }
    }
    let mut ids: HashMap<&str, IdKind> = HashMap::new();
    for (id, kind) in found.into_iter().filter(|(id, _)| id.len() >= MIN_ID_LEN) {
        let entry = ids.entry(id).or_insert(kind);
        if matches!(kind, IdKind::Run) {
            *entry = kind;
        }
    }
    ids
}

/// Replaces each id of the records found in `text` (as a whole word of letters, digits,
/// `_` and `-`) by its placeholder, numbered per kind in order of first appearance.
fn numbered_ids(text: &str, model: &Model) -> String {
    let known = known_ids(model);
    let mut assigned: HashMap<&str, String> = HashMap::new();
    let mut counts = [0usize; 3];
    let mut out = String::with_capacity(text.len());
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut rest = text;
    while !rest.is_empty() {
        let word_len = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        if word_len == 0 {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let (word, tail) = rest.split_at(word_len);
        match known.get_key_value(word) {
            Some((&id, &kind)) => {
                let placeholder = assigned.entry(id).or_insert_with(|| {
                    let (slot, prefix) = match kind {
                        IdKind::Run => (0, "run"),
                        IdKind::Span => (1, "span"),
                        IdKind::Other => (2, "id"),
                    };
                    counts[slot] += 1;
                    format!("{prefix}#{}", counts[slot])
                });
                out.push_str(placeholder);
            }
            None => out.push_str(word),
        }
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{line, span_end, span_start};

    const R: &str = "run_aaaaaaaaaaaaaaaaaaaaaaaa";

    fn values(lines: &[String]) -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn an_unended_span_of_an_ended_run_is_unfinished_and_of_a_live_run_running() {
        let mut lines = vec![
            line(
                R,
                "seg_1",
                1,
                0,
                r#""type":"run:start","name":"chat","rootPrimitive":"agent.run","startedAt":"$AT""#,
            ),
            span_start(
                R,
                ("seg_1", 2, 1),
                "00000000000000a1",
                None,
                "tool.call",
                "lookup",
            ),
        ];
        assert_eq!(
            Trees::from_values(&values(&lines)).normalized().to_string(),
            "run run#1 \"chat\" (agent.run)\nstatus running · 2 records · 1 segment\n\n\
             └─ lookup  tool.call  running\n"
        );
        lines.push(line(
            R,
            "seg_1",
            3,
            9,
            r#""type":"run:end","endedAt":"$AT","status":"ok""#,
        ));
        assert_eq!(
            Trees::from_values(&values(&lines)).normalized().to_string(),
            "run run#1 \"chat\" (agent.run)\nstatus ok · 3 records · 1 segment\n\n\
             └─ lookup  tool.call  unfinished (no span:end before run:end)\n"
        );
    }

    #[test]
    fn normalized_text_numbers_ids_and_drops_times() {
        let other = "run_bbbbbbbbbbbbbbbbbbbbbbbb";
        let lines = vec![
            line(
                R,
                "seg_1",
                1,
                0,
                r#""type":"run:start","name":"chat","rootPrimitive":"agent.run","startedAt":"$AT","attributes":{"leaseExpiresAt":"$AT","stack":["00000000000000a1"],"at":{"when":"$AT"}}"#,
            ),
            span_start(
                R,
                ("seg_1", 2, 1),
                "00000000000000a1",
                None,
                "tool.call",
                "first",
            ),
            line(
                R,
                "seg_1",
                3,
                2,
                r#""type":"span:event","spanId":"00000000000000a1","name":"exception","timestamp":"$AT","attributes":{"exception.message":"span 00000000000000a1 failed"}"#,
            ),
            span_end(R, ("seg_1", 4, 5), "00000000000000a1", "ok"),
            span_start(
                other,
                ("seg_2", 1, 7),
                "00000000000000b1",
                Some("00000000000000ff"),
                "tool.call",
                "second",
            ),
        ];
        let trees = Trees::from_values(&values(&lines))
            .normalized()
            .with_attributes();
        assert_eq!(
            trees.to_string(),
            "run run#1 \"chat\" (agent.run)\nstatus running · 4 records · 1 segment\n\
             · at = {\"when\":\"<time>\"}\n· leaseExpiresAt = <time>\n· stack = [\"span#1\"]\n\n\
             └─ first  tool.call  ok\n     • exception: span span#1 failed\n\n\
             run run#2 \"(no run:start)\" (?)\nstatus running · 1 record · 1 segment\n\
             incomplete: the store has no run:start for this run\n\n\
             └─ second  tool.call  running  (parent span span#2 is not in the store)\n"
        );
        // Without normalizing: the real ids, times and durations.
        let plain = Trees::from_values(&values(&lines)).to_string();
        assert!(
            plain.starts_with(&format!("run {R} \"chat\" (agent.run)\n")),
            "{plain}"
        );
        assert!(plain.contains("first  tool.call  ok  4ms\n"), "{plain}");
        assert!(
            plain.contains("• exception +1ms: span 00000000000000a1 failed"),
            "{plain}"
        );
        assert_eq!(trees.model().runs.len(), 2);
        // One run only, by its real id.
        let one = Trees::from_values(&values(&lines)).normalized().run(other);
        assert!(
            one.to_string().starts_with("run run#1 \"(no run:start)\""),
            "{one}"
        );
        let none = Trees::from_values(&values(&lines)).run("run_nothere");
        assert_eq!(none.to_string(), "(no run run_nothere in the records)\n");
    }

    #[test]
    fn unreadable_records_are_listed_first() {
        let records = [serde_json::json!({"type": "run:begin"})];
        assert_eq!(
            Trees::from_values(&records).to_string(),
            "warning: record 1: unknown record type \"run:begin\" (expected one of run:start, \
             run:suspend, run:resume, run:end, span:start, span:end, span, span:event, edge, \
             artifact); skipped\n(no runs)\n"
        );
    }
}
