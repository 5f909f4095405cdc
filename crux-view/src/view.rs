//! What the commands print: the shapes shared by the text and `--json` renderers.
//!
//! Field names are camelCase like the records, so `--json` output reads like the wire.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::model::{Lifecycle, Link, Run};
use crate::record::{Artifact, Attributes, ErrorSummary};

/// One line of `crux runs`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub run_id: String,
    pub name: String,
    pub root_primitive: String,
    pub status: String,
    pub duration_ms: Option<f64>,
    pub started_at: Option<String>,
    pub records: usize,
}

impl RunSummary {
    /// The summary of `run`.
    pub fn of(run: &Run) -> RunSummary {
        RunSummary {
            run_id: run.run_id.clone(),
            name: run.name().to_owned(),
            root_primitive: run.root_primitive().to_owned(),
            status: run.status.clone(),
            duration_ms: run.duration_ms(),
            started_at: run.started_at().map(str::to_owned),
            records: run.records,
        }
    }
}

/// One match of `crux search`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    pub run_id: String,
    pub run_name: String,
    /// `None` when the match is on the run itself.
    pub span_id: Option<String>,
    /// Span names from the top of the run down to the matching span.
    pub span_path: Vec<String>,
    /// The matching span is folded away in the default `crux show` view.
    pub folded: bool,
    /// What matched: `name`, `primitive`, `attribute`, `event`, `error`, ...
    pub field: String,
    /// The attribute key or event name, when the field has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub value: String,
}

/// A run ready to print or serialize.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub run_id: String,
    pub name: String,
    pub root_primitive: String,
    pub status: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: Option<f64>,
    pub records: usize,
    pub segments: Vec<String>,
    pub operation_id: Option<String>,
    pub trace_id: Option<String>,
    pub incomplete: bool,
    pub attributes: Attributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorSummary>,
    pub lifecycle: Vec<Lifecycle>,
    pub links: Vec<Link>,
    pub spans: Vec<NodeView>,
}

/// A span in the view, possibly carrying the boundaries folded into it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub span_id: String,
    pub name: String,
    pub primitive: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_source: Option<&'static str>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: Option<f64>,
    /// Identity fields from the start record (`model`, `toolName`, ...).
    pub details: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorSummary>,
    pub events: Vec<EventView>,
    pub attributes: Attributes,
    pub metrics: Attributes,
    pub artifacts: Vec<Artifact>,
    pub links: Vec<Link>,
    /// The parent span id when that parent is not in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_parent: Option<String>,
    /// The parent span id of a span nested too deeply to show under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_deep_under: Option<String>,
    /// Boundaries folded into this node, outermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<NodeView>,
    /// This node is itself a boundary with no child work, shown compactly.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub folded: bool,
    pub children: Vec<NodeView>,
}

/// A span event as shown: its name, when, and its attributes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub event_id: Option<String>,
    pub name: String,
    pub timestamp: String,
    /// Milliseconds after the span started, when its start is known.
    pub offset_ms: Option<f64>,
    pub attributes: Attributes,
}

/// A string for an attribute value: strings as they are, anything else as JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
