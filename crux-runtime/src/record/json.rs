//! [`Record::write_json`]: a record's wire JSON written straight into bytes.
//!
//! Field order and omissions follow `impl Serialize for Record` (`mod.rs`), which stays the
//! reference: `tests/record_json.rs` compares the two writers' bytes on generated records.
//! Keys are literals written as they are; ids, times, statuses and integers are written
//! without serde's generic serializer; strings go through [`escape::string`]. Floats, JSON
//! values and metrics, rare in records, are written by serde_json itself.

use serde::Serialize;

use super::{
    Base, Body, EdgeEnd, ErrorSummary, FinishedSpan, Record, SCHEMA_VERSION, escape,
    written_attributes,
};
use crate::attributes::{AttrValue, Attributes};
use crate::clock::Timestamp;
use crate::envelope::DeploymentIdentity;
use crate::json_text;
use crate::span_fields::SpanFields;
use crate::taxonomy;

/// `,"key":` (every key but the first, which opens the object).
macro_rules! key {
    ($out:expr, $key:literal) => {
        $out.extend_from_slice(concat!(",\"", $key, "\":").as_bytes())
    };
}

/// `"text"` of an id (its prefix and hex digits: nothing to escape).
macro_rules! id {
    ($out:expr, $id:expr) => {{
        $out.push(b'"');
        $out.extend_from_slice($id.encode().as_str().as_bytes());
        $out.push(b'"');
    }};
}

impl Record {
    /// Appends the record's wire JSON to `out`: exactly the bytes
    /// `serde_json::to_writer(&mut out, &record)` writes (its [`Serialize`] impl), without
    /// serde's generic machinery for the common fields, so sinks that write text (the JSON
    /// Lines file, the devtools sink) spend less per record. Public because sinks in other
    /// crates write records too.
    ///
    /// ```
    /// use crux_runtime::attributes::Attributes;
    /// use crux_runtime::clock::Timestamp;
    /// use crux_runtime::ids::{RunId, SegmentId, TraceId};
    /// use crux_runtime::record::{Base, Body, Record};
    ///
    /// let record = Record {
    ///     base: Base {
    ///         record_id: None,
    ///         run_id: RunId([1; 12]),
    ///         operation_id: RunId([1; 12]),
    ///         segment_id: SegmentId([2; 12]),
    ///         segment_seq: 1,
    ///         trace_id: TraceId(3),
    ///         extra: None,
    ///     },
    ///     body: Body::RunStart {
    ///         name: "support \"chat\"".into(),
    ///         root_primitive: "runtime.convex.action",
    ///         started_at: Timestamp::from_millis(1_767_323_045_678),
    ///         attributes: Attributes::new().with("attempt", 2),
    ///         parent_run_id: None,
    ///         triggered_by_span_id: None,
    ///         remote_parent_span_id: None,
    ///     },
    /// };
    /// let mut out = Vec::new();
    /// record.write_json(&mut out);
    /// assert_eq!(out, serde_json::to_vec(&record).unwrap());
    /// ```
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let b = &self.base;
        out.extend_from_slice(b"{\"schemaVersion\":");
        json_text::unsigned(out, u64::from(SCHEMA_VERSION));
        base(out, b);
        key!(out, "type");
        word(out, self.kind());
        body(out, b, &self.body);
        out.push(b'}');
    }
}

fn base(out: &mut Vec<u8>, b: &Base) {
    if let Some(id) = &b.record_id {
        key!(out, "recordId");
        id!(out, id);
    }
    key!(out, "runId");
    id!(out, b.run_id);
    key!(out, "operationId");
    id!(out, b.operation_id);
    key!(out, "segmentId");
    id!(out, b.segment_id);
    key!(out, "segmentSeq");
    json_text::unsigned(out, u64::from(b.segment_seq));
    key!(out, "traceId");
    id!(out, b.trace_id);
    if let Some(extra) = &b.extra {
        if let Some(c) = &extra.correlators {
            if let Some(v) = &c.session_id {
                key!(out, "sessionId");
                escape::string(out, v);
            }
            if let Some(v) = &c.user_id {
                key!(out, "userId");
                escape::string(out, v);
            }
        }
        if let Some(d) = &extra.deployment {
            key!(out, "deployment");
            deployment(out, d);
        }
    }
}

fn body(out: &mut Vec<u8>, b: &Base, body: &Body) {
    match body {
        Body::RunStart {
            name,
            root_primitive,
            started_at,
            attributes,
            parent_run_id,
            triggered_by_span_id,
            remote_parent_span_id,
        } => {
            key!(out, "name");
            escape::string(out, name);
            key!(out, "rootPrimitive");
            escape::string(out, root_primitive);
            key!(out, "startedAt");
            time(out, *started_at);
            key!(out, "status");
            out.extend_from_slice(b"\"running\"");
            if let Some(p) = parent_run_id {
                key!(out, "parentRunId");
                id!(out, p);
            }
            if let Some(t) = triggered_by_span_id {
                key!(out, "triggeredBySpanId");
                id!(out, t);
            }
            if let Some(r) = remote_parent_span_id {
                key!(out, "remoteParentSpanId");
                id!(out, r);
            }
            attrs(out, b, attributes);
        }
        Body::RunSuspend {
            suspended_at,
            reason,
            attributes,
        } => {
            key!(out, "suspendedAt");
            time(out, *suspended_at);
            key!(out, "reason");
            escape::string(out, reason);
            attrs(out, b, attributes);
        }
        Body::RunResume {
            resumed_at,
            reason,
            previous_segment_id,
            attributes,
        } => {
            key!(out, "resumedAt");
            time(out, *resumed_at);
            key!(out, "reason");
            escape::string(out, reason);
            if let Some(p) = previous_segment_id {
                key!(out, "previousSegmentId");
                id!(out, p);
            }
            attrs(out, b, attributes);
        }
        Body::RunEnd {
            ended_at,
            duration_ms,
            status,
            error,
            attributes,
        } => {
            key!(out, "endedAt");
            time(out, *ended_at);
            key!(out, "durationMs");
            json_text::unsigned(out, *duration_ms);
            key!(out, "status");
            word(out, status.as_str());
            if let Some(e) = error {
                key!(out, "error");
                error_summary(out, e);
            }
            attrs(out, b, attributes);
        }
        Body::SpanStart {
            span_id,
            parent_span_id,
            primitive,
            name,
            started_at,
            fields,
            attributes,
        } => {
            key!(out, "spanId");
            id!(out, span_id);
            span_identity(out, parent_span_id.as_ref(), primitive, name);
            key!(out, "startedAt");
            time(out, *started_at);
            key!(out, "status");
            out.extend_from_slice(b"\"running\"");
            span_fields(out, fields);
            attrs(out, b, attributes);
        }
        Body::SpanEnd {
            span_id,
            ended_at,
            duration_ms,
            status,
            error,
            metrics,
            attributes,
        } => {
            key!(out, "spanId");
            id!(out, span_id);
            key!(out, "endedAt");
            time(out, *ended_at);
            key!(out, "durationMs");
            json_text::unsigned(out, *duration_ms);
            key!(out, "status");
            word(out, status.as_str());
            if !metrics.is_empty() {
                key!(out, "metrics");
                by_serde(out, metrics);
            }
            if let Some(e) = error {
                key!(out, "error");
                error_summary(out, e);
            }
            attrs(out, b, attributes);
        }
        Body::Span(span) => {
            let FinishedSpan {
                span_id,
                parent_span_id,
                primitive,
                name,
                started_at,
                ended_at,
                duration_ms,
                status,
                error,
                fields,
                metrics,
                attributes,
            } = &**span;
            key!(out, "spanId");
            id!(out, span_id);
            span_identity(out, parent_span_id.as_ref(), primitive, name);
            key!(out, "startedAt");
            time(out, *started_at);
            key!(out, "endedAt");
            time(out, *ended_at);
            key!(out, "durationMs");
            json_text::unsigned(out, *duration_ms);
            key!(out, "status");
            word(out, status.as_str());
            span_fields(out, fields);
            if !metrics.is_empty() {
                key!(out, "metrics");
                by_serde(out, metrics);
            }
            if let Some(e) = error {
                key!(out, "error");
                error_summary(out, e);
            }
            attrs(out, b, attributes);
        }
        Body::SpanEvent {
            span_id,
            event_id,
            name,
            timestamp,
            attributes,
        } => {
            key!(out, "spanId");
            id!(out, span_id);
            key!(out, "eventId");
            id!(out, event_id);
            key!(out, "name");
            escape::string(out, name);
            key!(out, "timestamp");
            time(out, *timestamp);
            attrs(out, b, attributes);
        }
        Body::Edge {
            edge_id,
            edge_type,
            from,
            to,
            created_at,
            attributes,
        } => {
            key!(out, "edgeId");
            id!(out, edge_id);
            key!(out, "edgeType");
            escape::string(out, edge_type);
            key!(out, "from");
            edge_end(out, from);
            key!(out, "to");
            edge_end(out, to);
            key!(out, "createdAt");
            time(out, *created_at);
            attrs(out, b, attributes);
        }
        Body::Artifact {
            artifact_id,
            span_id,
            kind,
            created_at,
            content_type,
            encoding,
            size_bytes,
            preview,
        } => {
            key!(out, "artifactId");
            id!(out, artifact_id);
            if let Some(s) = span_id {
                key!(out, "spanId");
                id!(out, s);
            }
            key!(out, "kind");
            escape::string(out, kind);
            key!(out, "createdAt");
            time(out, *created_at);
            key!(out, "contentType");
            escape::string(out, content_type);
            key!(out, "encoding");
            escape::string(out, encoding);
            if let Some(n) = size_bytes {
                key!(out, "sizeBytes");
                json_text::unsigned(out, *n);
            }
            if let Some(p) = preview {
                key!(out, "preview");
                escape::string(out, p);
            }
        }
    }
}

/// `parentSpanId` (`null` for a root span), `family` (`null` outside the taxonomy),
/// `primitive` and `name`: the same four keys in `span:start` and `span`.
fn span_identity(
    out: &mut Vec<u8>,
    parent: Option<&crate::ids::SpanId>,
    primitive: &str,
    name: &str,
) {
    key!(out, "parentSpanId");
    match parent {
        Some(p) => id!(out, p),
        None => out.extend_from_slice(b"null"),
    }
    key!(out, "family");
    match taxonomy::family_of(primitive) {
        Some(f) => escape::string(out, f),
        None => out.extend_from_slice(b"null"),
    }
    key!(out, "primitive");
    escape::string(out, primitive);
    key!(out, "name");
    escape::string(out, name);
}

/// A word of the wire's own vocabulary, quoted (a record type, a status: lowercase ASCII,
/// nothing to escape).
fn word(out: &mut Vec<u8>, text: &'static str) {
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

fn time(out: &mut Vec<u8>, t: Timestamp) {
    out.push(b'"');
    out.extend_from_slice(&t.to_iso_bytes());
    out.push(b'"');
}

fn span_fields(out: &mut Vec<u8>, fields: &SpanFields) {
    for (field, value) in fields.iter() {
        // The keys are the crate's camelCase constants: nothing to escape.
        out.extend_from_slice(b",\"");
        out.extend_from_slice(field.as_str().as_bytes());
        out.extend_from_slice(b"\":");
        escape::string(out, value);
    }
}

// Both structs derive `Serialize`: unpacked whole, so a field added to either fails to
// compile here until this writer writes it too.
fn error_summary(out: &mut Vec<u8>, e: &ErrorSummary) {
    let ErrorSummary { message, name } = e;
    out.extend_from_slice(b"{\"message\":");
    escape::string(out, message);
    if let Some(name) = name {
        key!(out, "name");
        escape::string(out, name);
    }
    out.push(b'}');
}

fn deployment(out: &mut Vec<u8>, d: &DeploymentIdentity) {
    let DeploymentIdentity {
        project_id,
        manifest_id,
        deployment_id,
    } = d;
    out.extend_from_slice(b"{\"projectId\":");
    escape::string(out, project_id);
    key!(out, "manifestId");
    escape::string(out, manifest_id);
    key!(out, "deploymentId");
    escape::string(out, deployment_id);
    out.push(b'}');
}

fn edge_end(out: &mut Vec<u8>, end: &EdgeEnd) {
    match end {
        EdgeEnd::Run(id) => {
            out.extend_from_slice(b"{\"kind\":\"run\",\"id\":");
            id!(out, id);
        }
        EdgeEnd::Span(id) => {
            out.extend_from_slice(b"{\"kind\":\"span\",\"id\":");
            id!(out, id);
        }
        EdgeEnd::Artifact(id) => {
            out.extend_from_slice(b"{\"kind\":\"artifact\",\"id\":");
            id!(out, id);
        }
    }
    out.push(b'}');
}

/// `,"attributes":{...}` when the record writes any (`written_attributes`: the same rule,
/// correlator metadata included, as the serde writer).
fn attrs(out: &mut Vec<u8>, b: &Base, a: &Attributes) {
    let Some(all) = written_attributes(b, a) else {
        return;
    };
    key!(out, "attributes");
    out.push(b'{');
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        escape::string(out, k);
        out.push(b':');
        attr_value(out, v);
    }
    out.push(b'}');
}

fn attr_value(out: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::Str(s) => escape::string(out, s),
        AttrValue::Int(n) => json_text::signed(out, *n),
        AttrValue::Bool(true) => out.extend_from_slice(b"true"),
        AttrValue::Bool(false) => out.extend_from_slice(b"false"),
        AttrValue::SpanId(id) => id!(out, id),
        AttrValue::SpanIds(ids) => {
            out.push(b'[');
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                id!(out, id);
            }
            out.push(b']');
        }
        AttrValue::Timestamp(t) => time(out, *t),
        // Floats (ryu, non-finite as `null`) and JSON values: serde_json's own text.
        AttrValue::Float(_) | AttrValue::Json(_) | AttrValue::SharedJson(_) => by_serde(out, v),
    }
}

/// `value` as serde_json writes it: for the rare values whose text is its (floats, JSON
/// values, metrics).
fn by_serde(out: &mut Vec<u8>, value: &impl Serialize) {
    // Into a `Vec` nothing fails: no I/O, and these values have string keys only (a value
    // that could fail would leave a cut text behind: the assertion is for a future one).
    let written = serde_json::to_writer(&mut *out, value);
    debug_assert!(written.is_ok(), "{written:?}");
}
