//! One Crux graph record, decoded from one line of the store.
//!
//! The wire shape is the TypeScript Crux record schema (v5): base fields on every record,
//! a `type` tag, then the fields of that type. Unknown fields are ignored so that newer
//! writers stay readable; a missing required field or an unreadable timestamp makes the line
//! corrupt, with a message naming the field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::{Nanos, parse_iso8601};

/// Attribute maps as written (`attributes` on runs, spans, events, edges, artifacts).
pub type Attributes = BTreeMap<String, Value>;

/// The record types this viewer understands, as spelled in the `type` field.
pub const RECORD_TYPES: [&str; 10] = [
    "run:start",
    "run:suspend",
    "run:resume",
    "run:end",
    "span:start",
    "span:end",
    "span",
    "span:event",
    "edge",
    "artifact",
];

/// `{message, name?, category?, retryable?, statusCode?}` on failed runs and spans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorSummary {
    /// What went wrong.
    pub message: String,
    /// The error's type name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A coarse category (for example `validation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Whether retrying may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// An HTTP-like status code, when the error carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
}

impl ErrorSummary {
    /// `Name: message`, or the message alone.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(name) if !name.is_empty() => format!("{name}: {}", self.message),
            _ => self.message.clone(),
        }
    }
}

/// One end of an `edge`: a run, a span or an artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `run`, `span` or `artifact`.
    pub kind: String,
    /// The id of that run, span or artifact.
    pub id: String,
}

/// A decoded record: base fields, its own timestamp and the type-specific body.
#[derive(Clone, Debug)]
pub struct Record {
    /// The 1-based line of the store it came from.
    pub line: usize,
    pub record_id: Option<String>,
    pub run_id: String,
    pub operation_id: Option<String>,
    pub segment_id: String,
    pub segment_seq: u64,
    pub trace_id: Option<String>,
    /// When the record says it happened (`startedAt`, `endedAt`, `timestamp`, ...).
    pub at: Nanos,
    /// The same instant as written.
    pub at_text: String,
    pub body: Body,
}

/// The type-specific part of a record.
#[derive(Clone, Debug)]
pub enum Body {
    RunStart(RunStart),
    RunSuspend {
        reason: String,
        attributes: Attributes,
    },
    RunResume {
        reason: String,
        previous_segment_id: Option<String>,
        attributes: Attributes,
    },
    RunEnd(Close),
    SpanStart(SpanOpen),
    SpanEnd(SpanClose),
    /// A span recorded in one piece (start and end together).
    Span(SpanOpen, Close),
    Event(Event),
    Edge(Edge),
    Artifact(Artifact),
}

/// `run:start`.
#[derive(Clone, Debug)]
pub struct RunStart {
    pub name: String,
    pub root_primitive: String,
    pub started_at: String,
    pub attributes: Attributes,
    pub parent_run_id: Option<String>,
    pub triggered_by_span_id: Option<String>,
}

/// What `run:end`, `span:end` and the end half of `span` share.
#[derive(Clone, Debug)]
pub struct Close {
    pub ended_at: String,
    pub ended_at_nanos: Nanos,
    pub status: String,
    pub duration_ms: Option<f64>,
    pub error: Option<ErrorSummary>,
    pub metrics: Attributes,
    pub attributes: Attributes,
}

/// `span:end`.
#[derive(Clone, Debug)]
pub struct SpanClose {
    pub span_id: String,
    pub close: Close,
}

/// `span:start` (and the start half of `span`).
#[derive(Clone, Debug)]
pub struct SpanOpen {
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub primitive: String,
    pub started_at: String,
    pub started_at_nanos: Nanos,
    /// The optional identity fields (`model`, `toolName`, ...) that are present.
    pub details: Vec<(String, String)>,
    pub attributes: Attributes,
}

/// `span:event`.
#[derive(Clone, Debug)]
pub struct Event {
    pub span_id: String,
    pub event_id: Option<String>,
    pub name: String,
    pub timestamp: String,
    pub attributes: Attributes,
}

/// `edge`.
#[derive(Clone, Debug)]
pub struct Edge {
    pub edge_type: String,
    pub from: Endpoint,
    pub to: Endpoint,
}

/// `artifact`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub artifact_id: Option<String>,
    #[serde(skip)]
    pub span_id: Option<String>,
    pub kind: String,
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// Why a line could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError(pub String);

/// Decodes one store line. `Ok(None)` for a blank line.
pub fn decode_line(line: usize, text: &str) -> Result<Option<Record>, LineError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Raw>(trimmed) {
        Ok(raw) => raw.into_record(line).map(Some).map_err(|e| {
            let kind = kind_of(trimmed).unwrap_or_default();
            LineError(format!("{kind} record: {e}"))
        }),
        // The fast path failed: look again to say what is wrong in the user's terms.
        Err(error) => Err(match serde_json::from_str::<Value>(trimmed) {
            Ok(value) => diagnose(&value, &error),
            Err(e) => LineError(format!("not valid JSON ({e})")),
        }),
    }
}

/// Decodes one record already parsed as JSON (from `sink::Memory::records`, say); `line`
/// is its position, used as the last tie-break when ordering records.
pub fn decode_value(line: usize, value: &Value) -> Result<Record, LineError> {
    match Raw::deserialize(value) {
        Ok(raw) => raw.into_record(line).map_err(|e| {
            let kind = value
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            LineError(format!("{kind} record: {e}"))
        }),
        Err(error) => Err(diagnose(value, &error)),
    }
}

fn kind_of(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Kind>(text).ok().map(|k| k.kind)
}

fn diagnose(value: &Value, error: &serde_json::Error) -> LineError {
    let Some(object) = value.as_object() else {
        return LineError("not a JSON object".to_owned());
    };
    match object.get("type") {
        Some(Value::String(kind)) if RECORD_TYPES.contains(&kind.as_str()) => {
            LineError(format!("{kind} record: {error}"))
        }
        Some(Value::String(kind)) => LineError(format!(
            "unknown record type {kind:?} (expected one of {})",
            RECORD_TYPES.join(", ")
        )),
        Some(_) => LineError("field `type` is not a string".to_owned()),
        None => LineError("missing field `type`".to_owned()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    record_id: Option<String>,
    run_id: String,
    operation_id: Option<String>,
    segment_id: String,
    segment_seq: u64,
    trace_id: Option<String>,
    #[serde(flatten)]
    body: RawBody,
}

// Decoded once per line and converted at once, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
#[serde(tag = "type")]
enum RawBody {
    #[serde(rename = "run:start", rename_all = "camelCase")]
    RunStart {
        name: String,
        root_primitive: String,
        started_at: String,
        attributes: Option<Attributes>,
        parent_run_id: Option<String>,
        triggered_by_span_id: Option<String>,
    },
    #[serde(rename = "run:suspend", rename_all = "camelCase")]
    RunSuspend {
        suspended_at: String,
        reason: String,
        attributes: Option<Attributes>,
    },
    #[serde(rename = "run:resume", rename_all = "camelCase")]
    RunResume {
        resumed_at: String,
        reason: String,
        previous_segment_id: Option<String>,
        attributes: Option<Attributes>,
    },
    #[serde(rename = "run:end")]
    RunEnd(RawClose),
    #[serde(rename = "span:start")]
    SpanStart(RawOpen),
    #[serde(rename = "span:end", rename_all = "camelCase")]
    SpanEnd {
        span_id: String,
        #[serde(flatten)]
        close: RawClose,
    },
    #[serde(rename = "span")]
    Span {
        #[serde(flatten)]
        open: RawOpen,
        #[serde(flatten)]
        close: RawClose,
    },
    #[serde(rename = "span:event", rename_all = "camelCase")]
    Event {
        span_id: String,
        event_id: Option<String>,
        name: String,
        timestamp: String,
        attributes: Option<Attributes>,
    },
    #[serde(rename = "edge", rename_all = "camelCase")]
    Edge {
        edge_type: String,
        from: Endpoint,
        to: Endpoint,
        created_at: String,
    },
    #[serde(rename = "artifact", rename_all = "camelCase")]
    Artifact {
        artifact_id: Option<String>,
        span_id: Option<String>,
        kind: String,
        created_at: String,
        content_type: Option<String>,
        preview: Option<Value>,
    },
}

/// The optional identity fields of a span (`SpanOpen::details`), in the order shown.
pub const DETAIL_KEYS: [&str; 10] = [
    "model",
    "provider",
    "promptId",
    "contextId",
    "agentId",
    "toolName",
    "flowId",
    "stepId",
    "memoryId",
    "retrieverId",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOpen {
    span_id: String,
    parent_span_id: Option<String>,
    name: String,
    primitive: String,
    started_at: String,
    attributes: Option<Attributes>,
    model: Option<String>,
    provider: Option<String>,
    prompt_id: Option<String>,
    context_id: Option<String>,
    agent_id: Option<String>,
    tool_name: Option<String>,
    flow_id: Option<String>,
    step_id: Option<String>,
    memory_id: Option<String>,
    retriever_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawClose {
    ended_at: String,
    status: String,
    duration_ms: Option<f64>,
    error: Option<ErrorSummary>,
    metrics: Option<Attributes>,
    attributes: Option<Attributes>,
}

fn timestamp(field: &str, text: &str) -> Result<Nanos, String> {
    parse_iso8601(text)
        .ok_or_else(|| format!("field `{field}` is not an ISO-8601 UTC timestamp: {text:?}"))
}

impl RawClose {
    fn into_close(self) -> Result<Close, String> {
        Ok(Close {
            ended_at_nanos: timestamp("endedAt", &self.ended_at)?,
            ended_at: self.ended_at,
            status: self.status,
            duration_ms: self.duration_ms,
            error: self.error,
            metrics: self.metrics.unwrap_or_default(),
            attributes: self.attributes.unwrap_or_default(),
        })
    }
}

impl RawOpen {
    fn into_open(self) -> Result<SpanOpen, String> {
        let details = DETAIL_KEYS
            .into_iter()
            .zip([
                self.model,
                self.provider,
                self.prompt_id,
                self.context_id,
                self.agent_id,
                self.tool_name,
                self.flow_id,
                self.step_id,
                self.memory_id,
                self.retriever_id,
            ])
            .filter_map(|(key, value)| value.map(|v| (key.to_owned(), v)))
            .collect();
        Ok(SpanOpen {
            started_at_nanos: timestamp("startedAt", &self.started_at)?,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            name: self.name,
            primitive: self.primitive,
            started_at: self.started_at,
            details,
            attributes: self.attributes.unwrap_or_default(),
        })
    }
}

impl Raw {
    fn into_record(self, line: usize) -> Result<Record, String> {
        let ((at, at_text), body) = match self.body {
            RawBody::RunStart {
                name,
                root_primitive,
                started_at,
                attributes,
                parent_run_id,
                triggered_by_span_id,
            } => (
                (timestamp("startedAt", &started_at)?, started_at.clone()),
                Body::RunStart(RunStart {
                    name,
                    root_primitive,
                    started_at,
                    attributes: attributes.unwrap_or_default(),
                    parent_run_id,
                    triggered_by_span_id,
                }),
            ),
            RawBody::RunSuspend {
                suspended_at,
                reason,
                attributes,
            } => (
                (
                    timestamp("suspendedAt", &suspended_at)?,
                    suspended_at.clone(),
                ),
                Body::RunSuspend {
                    reason,
                    attributes: attributes.unwrap_or_default(),
                },
            ),
            RawBody::RunResume {
                resumed_at,
                reason,
                previous_segment_id,
                attributes,
            } => (
                (timestamp("resumedAt", &resumed_at)?, resumed_at.clone()),
                Body::RunResume {
                    reason,
                    previous_segment_id,
                    attributes: attributes.unwrap_or_default(),
                },
            ),
            RawBody::RunEnd(close) => {
                let close = close.into_close()?;
                (
                    (close.ended_at_nanos, close.ended_at.clone()),
                    Body::RunEnd(close),
                )
            }
            RawBody::SpanStart(open) => {
                let open = open.into_open()?;
                (
                    (open.started_at_nanos, open.started_at.clone()),
                    Body::SpanStart(open),
                )
            }
            RawBody::SpanEnd { span_id, close } => {
                let close = close.into_close()?;
                (
                    (close.ended_at_nanos, close.ended_at.clone()),
                    Body::SpanEnd(SpanClose { span_id, close }),
                )
            }
            RawBody::Span { open, close } => {
                let open = open.into_open()?;
                let close = close.into_close()?;
                (
                    (open.started_at_nanos, open.started_at.clone()),
                    Body::Span(open, close),
                )
            }
            RawBody::Event {
                span_id,
                event_id,
                name,
                timestamp: at,
                attributes,
            } => (
                (timestamp("timestamp", &at)?, at.clone()),
                Body::Event(Event {
                    span_id,
                    event_id,
                    name,
                    timestamp: at,
                    attributes: attributes.unwrap_or_default(),
                }),
            ),
            RawBody::Edge {
                edge_type,
                from,
                to,
                created_at,
            } => (
                (timestamp("createdAt", &created_at)?, created_at.clone()),
                Body::Edge(Edge {
                    edge_type,
                    from,
                    to,
                }),
            ),
            RawBody::Artifact {
                artifact_id,
                span_id,
                kind,
                created_at,
                content_type,
                preview,
            } => (
                (timestamp("createdAt", &created_at)?, created_at.clone()),
                Body::Artifact(Artifact {
                    artifact_id,
                    span_id,
                    kind,
                    content_type,
                    preview: preview.map(|p| match p {
                        Value::String(text) => text,
                        other => other.to_string(),
                    }),
                }),
            ),
        };
        if self.run_id.is_empty() {
            return Err("field `runId` is empty".to_owned());
        }
        Ok(Record {
            line,
            record_id: self.record_id,
            run_id: self.run_id,
            operation_id: self.operation_id,
            segment_id: self.segment_id,
            segment_seq: self.segment_seq,
            trace_id: self.trace_id,
            at,
            at_text,
            body,
        })
    }
}

/// Records from JSON lines, for tests of the modules that consume them.
#[cfg(test)]
pub fn records_from_lines(lines: &[String]) -> Vec<Record> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            decode_line(i + 1, line)
                .unwrap_or_else(|e| panic!("line {}: {}", i + 1, e.0))
                .expect("not blank")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#""schemaVersion":5,"recordId":"rec_1","runId":"run_000000000000000000000001","operationId":"run_000000000000000000000001","segmentId":"seg_000000000000000000000001","segmentSeq":2,"traceId":"0123456789abcdef0123456789abcdef""#;

    fn line(fields: &str) -> String {
        format!("{{{BASE},{fields}}}")
    }

    #[test]
    fn decodes_a_span_start_with_identity_fields() {
        let text = line(
            r#""type":"span:start","spanId":"00000000000000a1","parentSpanId":null,"family":"generation","primitive":"generation.call","name":"draft","startedAt":"2026-11-25T10:00:00.000Z","model":"m1","attributes":{"k":1}"#,
        );
        let record = decode_line(3, &text).unwrap().unwrap();
        assert_eq!(record.line, 3);
        assert_eq!(record.segment_seq, 2);
        let Body::SpanStart(open) = record.body else {
            panic!("not a span start")
        };
        assert_eq!(open.parent_span_id, None);
        assert_eq!(open.details, vec![("model".to_owned(), "m1".to_owned())]);
        assert_eq!(open.attributes["k"], 1);
    }

    #[test]
    fn decodes_a_combined_span() {
        let text = line(
            r#""type":"span","spanId":"00000000000000a1","family":"tool","primitive":"tool.call","name":"lookup","startedAt":"2026-11-25T10:00:00.000Z","endedAt":"2026-11-25T10:00:00.040Z","status":"error","error":{"message":"boom","name":"Timeout"}"#,
        );
        let record = decode_line(1, &text).unwrap().unwrap();
        let Body::Span(open, close) = record.body else {
            panic!("not a span")
        };
        assert_eq!(open.name, "lookup");
        assert_eq!(close.status, "error");
        assert_eq!(close.error.unwrap().describe(), "Timeout: boom");
        assert_eq!(close.ended_at_nanos - open.started_at_nanos, 40_000_000);
    }

    #[test]
    fn blank_lines_are_not_records() {
        assert!(decode_line(1, "   ").unwrap().is_none());
    }

    #[test]
    fn names_what_is_wrong_with_a_line() {
        let cases = [
            ("{not json", "not valid JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"runId":"r"}"#, "missing field `type`"),
            (
                r#"{"type":"run:begin"}"#,
                "unknown record type \"run:begin\"",
            ),
        ];
        for (text, expected) in cases {
            let err = decode_line(1, text).unwrap_err();
            assert!(err.0.contains(expected), "{text}: {}", err.0);
        }
        let missing =
            line(r#""type":"span:end","endedAt":"2026-11-25T10:00:00.000Z","status":"ok""#);
        let err = decode_line(1, &missing).unwrap_err();
        assert!(
            err.0.contains("span:end record") && err.0.contains("spanId"),
            "{}",
            err.0
        );
        let bad_time = line(r#""type":"run:suspend","suspendedAt":"soon","reason":"wait""#);
        let err = decode_line(1, &bad_time).unwrap_err();
        assert!(err.0.contains("`suspendedAt`"), "{}", err.0);
    }
}
