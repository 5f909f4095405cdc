//! `crux search`: find records by text in every run, folded boundaries included.

use crate::fold::is_hop;
use crate::model::{Model, Run};
use crate::record::Attributes;
use crate::view::{Hit, value_text};

/// Every place in `model` whose name, primitive, attribute value, event name or error
/// message contains `text` (ignoring case): runs newest first, spans in tree order.
pub fn search(model: &Model, text: &str) -> Vec<Hit> {
    let needle = text.to_lowercase();
    let matches = |value: &str| value.to_lowercase().contains(&needle);
    let mut hits = Vec::new();
    for run in &model.runs {
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
