//! `crux search`: find records by text in every run, folded boundaries included.

use crate::fold::is_hop;
use crate::model::{Model, Run};
use crate::record::{Attributes, Body, Close, Record};
use crate::view::{Hit, value_text};

/// Every place in `model` whose name, primitive, attribute value, event name or error
/// message contains `text` (ignoring case): runs newest first, spans in tree order.
pub fn search(model: &Model, text: &str) -> Vec<Hit> {
    model
        .runs
        .iter()
        .flat_map(|run| search_run(run, text))
        .collect()
}

/// What the names of missing records stand in for: a run or span without its start record
/// is shown (and searched) under these.
const PLACEHOLDERS: [&str; 3] = ["(no run:start)", "(no span:start)", "?"];

/// Whether `text` matches a placeholder name, which any run may show: then no run can be
/// ruled out by [`record_may_match`].
pub fn placeholder_matches(text: &str) -> bool {
    let needle = text.to_lowercase();
    PLACEHOLDERS.iter().any(|p| p.contains(&needle))
}

/// Whether `record` holds a text [`search`] may find for `text` (ignoring case): a run
/// none of whose records may match, has no match unless [`placeholder_matches`]. Lets a
/// reader keep only the runs worth building.
pub fn record_may_match(record: &Record, text: &str) -> bool {
    let needle = text.to_lowercase();
    let matches = |value: &str| value.to_lowercase().contains(&needle);
    let in_attributes =
        |attributes: &Attributes| attributes.values().any(|v| matches(&value_text(v)));
    let in_close = |close: &Close| {
        in_attributes(&close.attributes)
            || close.error.as_ref().is_some_and(|e| matches(&e.describe()))
    };
    match &record.body {
        Body::RunStart(start) => {
            matches(&start.name)
                || matches(&start.root_primitive)
                || in_attributes(&start.attributes)
        }
        Body::RunEnd(close) => close.error.as_ref().is_some_and(|e| matches(&e.describe())),
        Body::SpanStart(open) | Body::Span(open, _) => {
            matches(&open.name)
                || matches(&open.primitive)
                || open.details.iter().any(|(_, v)| matches(v))
                || in_attributes(&open.attributes)
                || matches!(&record.body, Body::Span(_, close) if in_close(close))
        }
        Body::SpanEnd(end) => in_close(&end.close),
        Body::Event(event) => matches(&event.name),
        _ => false,
    }
}

/// Every text of `record` that [`record_may_match`] compares with the needle: an index of
/// these texts (the collector's full-text index) finds every record that may match.
pub fn record_texts(record: &Record) -> Vec<String> {
    let parts = match &record.body {
        Body::RunStart(start) => TextParts {
            name: Some(&start.name),
            root_primitive: Some(&start.root_primitive),
            attributes: start.attributes.values().collect(),
            ..TextParts::new("run:start")
        },
        Body::RunEnd(close) => TextParts {
            error: close.error.clone(),
            ..TextParts::new("run:end")
        },
        Body::SpanStart(open) | Body::Span(open, _) => {
            let mut parts = TextParts {
                name: Some(&open.name),
                primitive: Some(&open.primitive),
                details: open.details.iter().map(|(_, v)| v.as_str()).collect(),
                attributes: open.attributes.values().collect(),
                ..TextParts::new("span:start")
            };
            if let Body::Span(_, close) = &record.body {
                parts.kind = "span";
                parts.attributes.extend(close.attributes.values());
                parts.error = close.error.clone();
            }
            parts
        }
        Body::SpanEnd(end) => TextParts {
            attributes: end.close.attributes.values().collect(),
            error: end.close.error.clone(),
            ..TextParts::new("span:end")
        },
        Body::Event(event) => TextParts {
            name: Some(&event.name),
            ..TextParts::new("span:event")
        },
        _ => TextParts::new(""),
    };
    parts.texts()
}

/// The fields of a record that its searchable texts come from, by record type: what
/// [`record_texts`] reads from a decoded record, and what a reader of the record's JSON
/// (the collector's ingest, which does not build a [`Record`]) collects itself, so both
/// index the same texts.
#[derive(Clone, Debug, Default)]
pub struct TextParts<'a> {
    /// The record's `type`.
    pub kind: &'a str,
    /// `name` (runs, spans, events).
    pub name: Option<&'a str>,
    /// `primitive` (spans).
    pub primitive: Option<&'a str>,
    /// `rootPrimitive` (`run:start`).
    pub root_primitive: Option<&'a str>,
    /// The identity fields of a span that are present (`model`, `toolName`, ...; see
    /// [`crate::record::DETAIL_KEYS`]).
    pub details: Vec<&'a str>,
    /// The attribute values.
    pub attributes: Vec<&'a serde_json::Value>,
    /// The error of a failed run or span.
    pub error: Option<crate::record::ErrorSummary>,
}

impl<'a> TextParts<'a> {
    /// No parts yet, for a record of type `kind`.
    pub fn new(kind: &'a str) -> TextParts<'a> {
        TextParts {
            kind,
            ..TextParts::default()
        }
    }

    /// The texts a search compares, for the parts the record's type shows (the others
    /// are ignored, as the viewer ignores them).
    pub fn texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        let attributes =
            |out: &mut Vec<String>| out.extend(self.attributes.iter().map(|v| value_text(v)));
        let error = |out: &mut Vec<String>| out.extend(self.error.as_ref().map(|e| e.describe()));
        match self.kind {
            "run:start" => {
                out.extend(self.name.map(str::to_owned));
                out.extend(self.root_primitive.map(str::to_owned));
                attributes(&mut out);
            }
            "run:end" => error(&mut out),
            "span:start" | "span" => {
                out.extend(self.name.map(str::to_owned));
                out.extend(self.primitive.map(str::to_owned));
                out.extend(self.details.iter().map(|d| (*d).to_owned()));
                attributes(&mut out);
                if self.kind == "span" {
                    error(&mut out);
                }
            }
            "span:end" => {
                attributes(&mut out);
                error(&mut out);
            }
            "span:event" => out.extend(self.name.map(str::to_owned)),
            _ => {}
        }
        out
    }
}

/// [`search`] over one run.
pub fn search_run(run: &Run, text: &str) -> Vec<Hit> {
    let needle = text.to_lowercase();
    let matches = |value: &str| value.to_lowercase().contains(&needle);
    let mut hits = Vec::new();
    {
        let mut found = |field: &str, key: Option<&str>, value: String| {
            if matches(&value) {
                hits.push(hit(run, None, field, key, value));
            }
        };
        found("run name", None, run.name().to_owned());
        found("root primitive", None, run.root_primitive().to_owned());
        if let Some(start) = &run.start {
            for (key, value) in sorted(&start.attributes) {
                found("attribute", Some(key), value);
            }
        }
        if let Some(error) = run.end.as_ref().and_then(|e| e.error.as_ref()) {
            found("error", None, error.describe());
        }
        for index in run.spans_in_tree_order() {
            let span = &run.spans[index];
            let mut found = |field: &str, key: Option<&str>, value: String| {
                if matches(&value) {
                    hits.push(hit(run, Some(index), field, key, value));
                }
            };
            found("name", None, span.name().to_owned());
            found("primitive", None, span.primitive().to_owned());
            if let Some(open) = &span.open {
                for (key, value) in &open.details {
                    found("attribute", Some(key), value.clone());
                }
            }
            for (key, value) in sorted(&span.attributes()) {
                found("attribute", Some(key), value);
            }
            for event in &span.events {
                found("event", None, event.name.clone());
            }
            if let Some(error) = span.close.as_ref().and_then(|c| c.error.as_ref()) {
                found("error", None, error.describe());
            }
        }
    }
    hits
}

fn sorted(attributes: &Attributes) -> Vec<(&str, String)> {
    let mut pairs: Vec<(&str, String)> = attributes
        .iter()
        .map(|(k, v)| (k.as_str(), value_text(v)))
        .collect();
    pairs.sort();
    pairs
}

fn hit(run: &Run, span: Option<usize>, field: &str, key: Option<&str>, value: String) -> Hit {
    Hit {
        run_id: run.run_id.clone(),
        run_name: run.name().to_owned(),
        span_id: span.map(|i| run.spans[i].span_id.clone()),
        span_path: span
            .map(|i| run.span_path(i).into_iter().map(str::to_owned).collect())
            .unwrap_or_default(),
        folded: span.is_some_and(|i| is_hop(&run.spans[i])),
        field: field.to_owned(),
        key: key.map(str::to_owned),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::decode_line;

    /// `record_texts` holds a match exactly when `record_may_match` says one may exist.
    #[test]
    fn record_texts_are_what_record_may_match_compares() {
        let mut checked = 0;
        for store in ["support_chat", "research", "continuation", "runtime_core"] {
            let path = format!(
                "{}/../tests/fixtures/stores/{store}.jsonl",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(path).unwrap();
            for (i, line) in text.lines().enumerate() {
                let Ok(Some(record)) = decode_line(i + 1, line) else {
                    continue;
                };
                let texts = record_texts(&record);
                let mut needles: Vec<String> = texts.clone();
                needles
                    .extend(["ok", "thread", "ERROR", "zzz-none", "plan", ": "].map(String::from));
                for needle in needles.iter().filter(|n| !n.is_empty()) {
                    let lower = needle.to_lowercase();
                    let in_texts = texts.iter().any(|t| t.to_lowercase().contains(&lower));
                    assert_eq!(
                        in_texts,
                        record_may_match(&record, needle),
                        "{needle:?} in {line}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }
}
