//! [`Record::write_json`]: a record's wire JSON written straight into bytes.
//!
//! Field order and omissions follow `impl Serialize for Record` (`mod.rs`), which stays the
//! reference: `tests/record_json.rs` compares the two writers' bytes on generated records.
//! Keys are literals written as they are, joined with what surrounds them where that is
//! fixed (the record type, an id's quote and prefix); ids and times are written from their
//! integer form at their fixed length (copies of known size, no intermediate text);
//! statuses and integers without serde's generic serializer; strings go through
//! [`escape::string`]; JSON attribute values are walked here, their numbers (and floats and
//! metrics, rare in records) written by serde_json itself.

use std::cell::Cell;
use std::thread::LocalKey;

use serde::Serialize;

use super::{
    Base, Body, EdgeEnd, ErrorSummary, FinishedSpan, Record, SCHEMA_VERSION, escape,
    written_attributes,
};
use crate::attributes::{AttrValue, Attributes};
use crate::clock::Timestamp;
use crate::envelope::DeploymentIdentity;
use crate::hex;
use crate::ids::{RunId, SegmentId, SpanId, TraceId};
use crate::json_text;
use crate::span_fields::SpanFields;
use crate::taxonomy::{self, KnownPrimitives};

/// `,"key":` (every key but the first, which opens the object).
macro_rules! key {
    ($out:expr, $key:literal) => {
        $out.extend_from_slice(concat!(",\"", $key, "\":").as_bytes())
    };
}

/// `head` (literal bytes ending in an id's opening quote and prefix), the id's `digits` and
/// the closing quote.
#[inline(always)]
fn id<const N: usize>(out: &mut Vec<u8>, head: &'static str, digits: [u8; N]) {
    quoted(out, head, &digits);
}

/// `head` (literal bytes ending in an opening quote), `value` (an id's digits, a time's
/// text) and the closing quote, put together in a fixed array that is appended whole and
/// cut back: one capacity check instead of three. Every `head` today is a literal short
/// enough for head, value and quote to fit the 64 bytes (the longest: an artifact record's
/// type and id key, 42 + 16 + 1); a longer one added later takes the three appends instead
/// (the length test folds away for a literal head).
#[inline(always)]
fn quoted<const N: usize>(out: &mut Vec<u8>, head: &'static str, value: &[u8; N]) {
    quoted_first(out, head, value, N);
}

/// [`quoted`] with only the first `len` bytes of `value` (a text of varying length kept
/// left-aligned in a fixed array, a record id's): the whole array is still copied, a copy
/// of known size, and cut back.
#[inline(always)]
fn quoted_first<const N: usize>(
    out: &mut Vec<u8>,
    head: &'static str,
    value: &[u8; N],
    len: usize,
) {
    let head = head.as_bytes();
    if head.len() + N + 1 > 64 {
        out.extend_from_slice(head);
        out.extend_from_slice(&value[..len]);
        out.push(b'"');
        return;
    }
    let mut buf = [0u8; 64];
    buf[..head.len()].copy_from_slice(head);
    buf[head.len()..head.len() + N].copy_from_slice(value);
    buf[head.len() + len] = b'"';
    json_text::push_first(out, &buf, head.len() + len + 1);
}

/// `,"key":"<prefix><digits>"` of an id.
macro_rules! key_id {
    ($out:expr, $key:literal, $prefix:literal, $id:expr) => {
        id($out, concat!(",\"", $key, "\":\"", $prefix), $id.digits())
    };
}

/// `,"key":"<ISO-8601 time>"`.
macro_rules! key_time {
    ($out:expr, $key:literal, $time:expr) => {
        time($out, concat!(",\"", $key, "\":\""), $time)
    };
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
        // The version is part of the literal: a new one must be written here too.
        const { assert!(SCHEMA_VERSION == 5) };
        out.extend_from_slice(b"{\"schemaVersion\":5");
        base(out, b);
        body(out, b, &self.body);
        out.push(b'}');
    }
}

fn base(out: &mut Vec<u8>, b: &Base) {
    thread_local! {
        // Each starts as id 0 with its digits, so a lookup is right for any id.
        static RECORD_RANDOM: Cell<(u64, [u8; 16])> = const { Cell::new((0, [b'0'; 16])) };
        static RUN: Cell<(RunId, [u8; 24])> = const { Cell::new((RunId([0; 12]), [b'0'; 24])) };
        static SEGMENT: Cell<(SegmentId, [u8; 24])> =
            const { Cell::new((SegmentId([0; 12]), [b'0'; 24])) };
        static TRACE: Cell<(TraceId, [u8; 32])> = const { Cell::new((TraceId(0), [b'0'; 32])) };
    }
    if let Some(id) = &b.record_id {
        // A pipeline's records share the random part.
        let random = remembered(&RECORD_RANDOM, id.random, |r| hex::encode_u64(*r));
        let (text, len) = id.text_with(random);
        quoted_first(out, ",\"recordId\":\"", &text, len);
    }
    let run = remembered(&RUN, b.run_id, RunId::digits);
    id(out, ",\"runId\":\"run_", run);
    // Mostly the run itself: its digits again.
    let operation = if b.operation_id == b.run_id {
        run
    } else {
        b.operation_id.digits()
    };
    id(out, ",\"operationId\":\"run_", operation);
    let segment = remembered(&SEGMENT, b.segment_id, SegmentId::digits);
    id(out, ",\"segmentId\":\"seg_", segment);
    key!(out, "segmentSeq");
    json_text::unsigned(out, u64::from(b.segment_seq));
    let trace = remembered(&TRACE, b.trace_id, TraceId::digits);
    id(out, ",\"traceId\":\"", trace);
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

/// `id`'s digits, from `slot` when it holds them: the last run, segment or trace id (or a
/// record id's random part) written on this thread. A batch's records share these (a request's twelve name one run, one
/// trace and three segments, mostly in runs), and their 80 hex digits were the largest part
/// of a record's text made from numbers.
#[inline]
fn remembered<I: Copy + PartialEq, const N: usize>(
    slot: &'static LocalKey<Cell<(I, [u8; N])>>,
    id: I,
    digits: fn(&I) -> [u8; N],
) -> [u8; N] {
    let found = slot.try_with(|slot| match slot.get() {
        (last, text) if last == id => text,
        _ => {
            let text = digits(&id);
            slot.set((id, text));
            text
        }
    });
    found.unwrap_or_else(|_| digits(&id))
}

/// The record type (joined to the first key after it) and the body's fields.
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
            out.extend_from_slice(b",\"type\":\"run:start\",\"name\":");
            escape::string(out, name);
            key!(out, "rootPrimitive");
            escape::string(out, root_primitive);
            key_time!(out, "startedAt", *started_at);
            out.extend_from_slice(b",\"status\":\"running\"");
            if let Some(p) = parent_run_id {
                key_id!(out, "parentRunId", "run_", p);
            }
            if let Some(t) = triggered_by_span_id {
                key_id!(out, "triggeredBySpanId", "", t);
            }
            if let Some(r) = remote_parent_span_id {
                key_id!(out, "remoteParentSpanId", "", r);
            }
            attrs(out, b, attributes, &OwnSpan::NONE);
        }
        Body::RunSuspend {
            suspended_at,
            reason,
            attributes,
        } => {
            out.extend_from_slice(b",\"type\":\"run:suspend\"");
            key_time!(out, "suspendedAt", *suspended_at);
            key!(out, "reason");
            escape::string(out, reason);
            attrs(out, b, attributes, &OwnSpan::NONE);
        }
        Body::RunResume {
            resumed_at,
            reason,
            previous_segment_id,
            attributes,
        } => {
            out.extend_from_slice(b",\"type\":\"run:resume\"");
            key_time!(out, "resumedAt", *resumed_at);
            key!(out, "reason");
            escape::string(out, reason);
            if let Some(p) = previous_segment_id {
                key_id!(out, "previousSegmentId", "seg_", p);
            }
            attrs(out, b, attributes, &OwnSpan::NONE);
        }
        Body::RunEnd {
            ended_at,
            duration_ms,
            status,
            error,
            attributes,
        } => {
            out.extend_from_slice(b",\"type\":\"run:end\"");
            key_time!(out, "endedAt", *ended_at);
            key!(out, "durationMs");
            json_text::unsigned(out, *duration_ms);
            key!(out, "status");
            word(out, status.as_str());
            if let Some(e) = error {
                key!(out, "error");
                error_summary(out, e);
            }
            attrs(out, b, attributes, &OwnSpan::NONE);
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
            let own = OwnSpan::new(*span_id);
            id(out, ",\"type\":\"span:start\",\"spanId\":\"", own.digits);
            span_identity(out, parent_span_id.as_ref(), primitive, name);
            key_time!(out, "startedAt", *started_at);
            out.extend_from_slice(b",\"status\":\"running\"");
            span_fields(out, fields);
            attrs(out, b, attributes, &own);
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
            let own = OwnSpan::new(*span_id);
            id(out, ",\"type\":\"span:end\",\"spanId\":\"", own.digits);
            key_time!(out, "endedAt", *ended_at);
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
            attrs(out, b, attributes, &own);
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
            let own = OwnSpan::new(*span_id);
            id(out, ",\"type\":\"span\",\"spanId\":\"", own.digits);
            span_identity(out, parent_span_id.as_ref(), primitive, name);
            key_time!(out, "startedAt", *started_at);
            key_time!(out, "endedAt", *ended_at);
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
            attrs(out, b, attributes, &own);
        }
        Body::SpanEvent {
            span_id,
            event_id,
            name,
            timestamp,
            attributes,
        } => {
            let own = OwnSpan::new(*span_id);
            id(out, ",\"type\":\"span:event\",\"spanId\":\"", own.digits);
            key_id!(out, "eventId", "event_", event_id);
            key!(out, "name");
            escape::string(out, name);
            key_time!(out, "timestamp", *timestamp);
            attrs(out, b, attributes, &own);
        }
        Body::Edge {
            edge_id,
            edge_type,
            from,
            to,
            created_at,
            attributes,
        } => {
            id(
                out,
                ",\"type\":\"edge\",\"edgeId\":\"edge_",
                edge_id.digits(),
            );
            key!(out, "edgeType");
            escape::string(out, edge_type);
            key!(out, "from");
            edge_end(out, from);
            key!(out, "to");
            edge_end(out, to);
            key_time!(out, "createdAt", *created_at);
            attrs(out, b, attributes, &OwnSpan::NONE);
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
            id(
                out,
                ",\"type\":\"artifact\",\"artifactId\":\"artifact_",
                artifact_id.digits(),
            );
            if let Some(s) = span_id {
                key_id!(out, "spanId", "", s);
            }
            key!(out, "kind");
            escape::string(out, kind);
            key_time!(out, "createdAt", *created_at);
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

/// A span record's own span id and its digits: a boundary's attributes name it again
/// (`boundaryId`, `boundarySpanId`, the stack's last entry), copied from these.
struct OwnSpan {
    id: SpanId,
    digits: [u8; 16],
}

impl OwnSpan {
    /// For records of no span: id 0 with its digits, so `digits_of` is right for any id.
    const NONE: OwnSpan = OwnSpan {
        id: SpanId(0),
        digits: *b"0000000000000000",
    };

    fn new(id: SpanId) -> Self {
        Self {
            id,
            digits: id.digits(),
        }
    }

    fn digits_of(&self, id: SpanId) -> [u8; 16] {
        if id == self.id {
            self.digits
        } else {
            id.digits()
        }
    }
}

/// `parentSpanId` (`null` for a root span), `family` (`null` outside the taxonomy),
/// `primitive` and `name`: the same four keys in `span:start` and `span`.
fn span_identity(out: &mut Vec<u8>, parent: Option<&SpanId>, primitive: &'static str, name: &str) {
    match parent {
        Some(p) => key_id!(out, "parentSpanId", "", p),
        None => out.extend_from_slice(b",\"parentSpanId\":null"),
    }
    key!(out, "family");
    match family(primitive) {
        Some(f) => escape::string(out, f),
        None => out.extend_from_slice(b"null"),
    }
    key!(out, "primitive");
    escape::string(out, primitive);
    key!(out, "name");
    escape::string(out, name);
}

/// [`taxonomy::family_of`], remembered per thread by the primitive's address
/// ([`KnownPrimitives`]): most records skip the search of the taxonomy, a fifth of a span
/// record's whole text.
fn family(primitive: &'static str) -> Option<&'static str> {
    thread_local! {
        static KNOWN: KnownPrimitives = const { KnownPrimitives::new() };
    }
    KNOWN
        .try_with(|known| known.family_of(primitive))
        .unwrap_or_else(|_| taxonomy::family_of(primitive))
}

/// A word of the wire's own vocabulary, quoted (a record type, a status: lowercase ASCII,
/// nothing to escape).
fn word(out: &mut Vec<u8>, text: &'static str) {
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// `head` (literal bytes ending in an opening quote), the time's ISO-8601 text and the
/// closing quote: copies of known size.
#[inline(always)]
fn time(out: &mut Vec<u8>, head: &'static str, t: Timestamp) {
    quoted(out, head, &t.to_iso_bytes());
}

fn span_fields(out: &mut Vec<u8>, fields: &SpanFields) {
    // Most spans set none, and `iter` looks up each of the ten in turn.
    if fields.is_empty() {
        return;
    }
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
        EdgeEnd::Run(r) => id(out, "{\"kind\":\"run\",\"id\":\"run_", r.digits()),
        EdgeEnd::Span(s) => id(out, "{\"kind\":\"span\",\"id\":\"", s.digits()),
        EdgeEnd::Artifact(a) => id(out, "{\"kind\":\"artifact\",\"id\":\"artifact_", a.digits()),
    }
    out.push(b'}');
}

/// `,"attributes":{...}` when the record writes any (`written_attributes`: the same rule,
/// correlator metadata included, as the serde writer).
fn attrs(out: &mut Vec<u8>, b: &Base, a: &Attributes, own: &OwnSpan) {
    let Some(all) = written_attributes(b, a) else {
        return;
    };
    out.extend_from_slice(b",\"attributes\":{");
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        escape::key(out, k);
        attr_value(out, v, own);
    }
    out.push(b'}');
}

fn attr_value(out: &mut Vec<u8>, v: &AttrValue, own: &OwnSpan) {
    match v {
        AttrValue::Str(s) => escape::string(out, s),
        AttrValue::Int(n) => json_text::signed(out, *n),
        AttrValue::Bool(true) => out.extend_from_slice(b"true"),
        AttrValue::Bool(false) => out.extend_from_slice(b"false"),
        AttrValue::SpanId(s) => id(out, "\"", own.digits_of(*s)),
        AttrValue::SpanIds(ids) => {
            out.push(b'[');
            for (i, s) in ids.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                id(out, "\"", own.digits_of(*s));
            }
            out.push(b']');
        }
        AttrValue::Timestamp(t) => time(out, "\"", *t),
        AttrValue::Json(j) => json_value(out, j),
        AttrValue::SharedJson(j) => json_value(out, j),
        // Floats (ryu, non-finite as `null`): serde_json's own text.
        AttrValue::Float(_) => by_serde(out, v),
    }
}

/// A JSON value as serde_json writes it: its structure, strings and keys here (a
/// boundary's `presentation` is on every boundary span), numbers by serde_json (its float
/// text, and whatever its features make of a number's text).
fn json_value(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => by_serde(out, n),
        Value::String(s) => escape::string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(entries) => {
            out.push(b'{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                escape::key(out, k);
                json_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// `value` as serde_json writes it: for the rare values whose text is its (floats,
/// numbers in JSON values, metrics).
fn by_serde(out: &mut Vec<u8>, value: &impl Serialize) {
    // Into a `Vec` nothing fails: no I/O, and these values have string keys only (a value
    // that could fail would leave a cut text behind: the assertion is for a future one).
    let written = serde_json::to_writer(&mut *out, value);
    debug_assert!(written.is_ok(), "{written:?}");
}
