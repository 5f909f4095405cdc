//! The Crux record model (schema v5) and its exact wire JSON (reference §7.2–7.6).
//!
//! A [`Record`] holds typed values only (ids as integers, timestamps as milliseconds,
//! `'static` names borrowed), so the hot path builds it without formatting anything; the
//! delivery worker assigns its [`RecordId`] and sinks serialize it.

use std::borrow::Cow;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::attributes::Attributes;
use crate::clock::Timestamp;
use crate::envelope::{Correlators, DeploymentIdentity};
use crate::ids::{ArtifactId, EdgeId, EventId, RecordId, RunId, SegmentId, SpanId, TraceId};
use crate::taxonomy;

mod escape;
mod json;

pub use crate::metrics::{KNOWN_METRICS, MetricError, Metrics, check_metric_key};
pub use crate::span_fields::{SpanField, SpanFields};

/// The Crux record schema version this crate writes.
pub const SCHEMA_VERSION: u32 = 5;

/// How a run ended (or paused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Finished successfully.
    Ok,
    /// Failed.
    Error,
    /// Stopped by a guardrail, approval or policy.
    Blocked,
    /// Abandoned (including handles dropped without an end).
    Cancelled,
    /// Paused, to be resumed elsewhere.
    Suspended,
}

impl RunStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
            RunStatus::Blocked => "blocked",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Suspended => "suspended",
        }
    }
}

/// How a span ended: the run statuses plus `skipped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanStatus {
    /// Finished successfully.
    Ok,
    /// Failed.
    Error,
    /// Stopped by a guardrail, approval or policy.
    Blocked,
    /// Abandoned (including spans dropped without an end).
    Cancelled,
    /// Paused with its run.
    Suspended,
    /// Deliberately not executed.
    Skipped,
}

impl SpanStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Ok => "ok",
            SpanStatus::Error => "error",
            SpanStatus::Blocked => "blocked",
            SpanStatus::Cancelled => "cancelled",
            SpanStatus::Suspended => "suspended",
            SpanStatus::Skipped => "skipped",
        }
    }
}

impl From<RunStatus> for SpanStatus {
    fn from(s: RunStatus) -> Self {
        match s {
            RunStatus::Ok => SpanStatus::Ok,
            RunStatus::Error => SpanStatus::Error,
            RunStatus::Blocked => SpanStatus::Blocked,
            RunStatus::Cancelled => SpanStatus::Cancelled,
            RunStatus::Suspended => SpanStatus::Suspended,
        }
    }
}

/// The error summary of `run:end`/`span:end`: `{message, name?}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorSummary {
    /// Non-empty message.
    pub message: String,
    /// The error's type name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
}

impl From<&crate::Error> for ErrorSummary {
    /// The error's message cut to [`MAX_ERROR_MESSAGE`](crate::wire::MAX_ERROR_MESSAGE)
    /// bytes (the cut marked), its name when the message is empty.
    fn from(e: &crate::Error) -> Self {
        let message = if e.message().is_empty() {
            e.name().to_owned()
        } else {
            crate::wire::cap_text(e.message(), crate::wire::MAX_ERROR_MESSAGE).into_owned()
        };
        Self {
            message,
            name: Some(e.name()),
        }
    }
}

/// One end of an edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeEnd {
    /// A run.
    Run(RunId),
    /// A span.
    Span(SpanId),
    /// An artifact.
    Artifact(ArtifactId),
}

impl Serialize for EdgeEnd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        match self {
            EdgeEnd::Run(id) => {
                m.serialize_entry("kind", "run")?;
                m.serialize_entry("id", id)?;
            }
            EdgeEnd::Span(id) => {
                m.serialize_entry("kind", "span")?;
                m.serialize_entry("id", id)?;
            }
            EdgeEnd::Artifact(id) => {
                m.serialize_entry("kind", "artifact")?;
                m.serialize_entry("id", id)?;
            }
        }
        m.end()
    }
}

/// Per-segment fields shared by every record of a segment (correlators, deployment).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SegmentExtra {
    /// Session/user correlation, stamped on every record.
    pub correlators: Option<Correlators>,
    /// The deployment identity (v3).
    pub deployment: Option<DeploymentIdentity>,
}

/// The base fields every record carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Base {
    /// Assigned by the delivery worker; `None` until then.
    pub record_id: Option<RecordId>,
    /// The run.
    pub run_id: RunId,
    /// The operation (root run of the family).
    pub operation_id: RunId,
    /// The physical invocation.
    pub segment_id: SegmentId,
    /// Position within the segment, from 1.
    pub segment_seq: u32,
    /// The W3C trace.
    pub trace_id: TraceId,
    /// Correlators and deployment, shared by the segment.
    pub extra: Option<Arc<SegmentExtra>>,
}

/// What a record says, by type.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// `run:start`.
    RunStart {
        /// The run's name.
        name: Cow<'static, str>,
        /// The root primitive.
        root_primitive: &'static str,
        /// Start time.
        started_at: Timestamp,
        /// User attributes.
        attributes: Attributes,
        /// Parent run of a child run (v4).
        parent_run_id: Option<RunId>,
        /// Span of the parent run that triggered this one (v4).
        triggered_by_span_id: Option<SpanId>,
        /// The span of an incoming W3C `traceparent` the run started under (written as
        /// `remoteParentSpanId`, only when present).
        remote_parent_span_id: Option<SpanId>,
    },
    /// `run:suspend`.
    RunSuspend {
        /// When.
        suspended_at: Timestamp,
        /// Why.
        reason: Cow<'static, str>,
        /// Attributes.
        attributes: Attributes,
    },
    /// `run:resume`.
    RunResume {
        /// When.
        resumed_at: Timestamp,
        /// Why.
        reason: Cow<'static, str>,
        /// The segment that suspended.
        previous_segment_id: Option<SegmentId>,
        /// Attributes.
        attributes: Attributes,
    },
    /// `run:end`.
    RunEnd {
        /// When.
        ended_at: Timestamp,
        /// Since this handle's start (or resume).
        duration_ms: u64,
        /// Final status.
        status: RunStatus,
        /// Error summary when failed.
        error: Option<ErrorSummary>,
        /// Attributes.
        attributes: Attributes,
    },
    /// `span:start`.
    SpanStart {
        /// The span.
        span_id: SpanId,
        /// Its parent within the run.
        parent_span_id: Option<SpanId>,
        /// The canonical primitive (its family is derived).
        primitive: &'static str,
        /// The span's name.
        name: Cow<'static, str>,
        /// Start time.
        started_at: Timestamp,
        /// The typed fields (`model`, `provider`, ...), each written only when set.
        fields: SpanFields,
        /// Attributes.
        attributes: Attributes,
    },
    /// `span:end`.
    SpanEnd {
        /// The span.
        span_id: SpanId,
        /// When.
        ended_at: Timestamp,
        /// Since the span's start.
        duration_ms: u64,
        /// Final status.
        status: SpanStatus,
        /// Error summary when failed.
        error: Option<ErrorSummary>,
        /// `metrics`, written only when not empty.
        metrics: Metrics,
        /// Attributes set after the start.
        attributes: Attributes,
    },
    /// `span`: a finished span in one record (start and end together). Boxed: the
    /// largest variant sets the size of every record, and every record is written into
    /// the delivery queue and read back by the worker; unboxed, its fields made every
    /// record 320 bytes instead of 240 ([`FinishedSpan`]). The price: building or
    /// cloning a `span` record allocates once; `span:start`/`span:end` do not.
    Span(Box<FinishedSpan>),
    /// `span:event`.
    SpanEvent {
        /// The span.
        span_id: SpanId,
        /// The event.
        event_id: EventId,
        /// Its name.
        name: Cow<'static, str>,
        /// When.
        timestamp: Timestamp,
        /// Attributes.
        attributes: Attributes,
    },
    /// `edge`.
    Edge {
        /// The edge.
        edge_id: EdgeId,
        /// Canonical or `custom.*`.
        edge_type: &'static str,
        /// Source.
        from: EdgeEnd,
        /// Target.
        to: EdgeEnd,
        /// When.
        created_at: Timestamp,
        /// Attributes.
        attributes: Attributes,
    },
    /// `artifact`.
    Artifact {
        /// The artifact.
        artifact_id: ArtifactId,
        /// The span it belongs to.
        span_id: Option<SpanId>,
        /// Canonical or `custom.*` kind.
        kind: &'static str,
        /// When.
        created_at: Timestamp,
        /// MIME type.
        content_type: &'static str,
        /// `json`, `text`, `bytes` or `reference`.
        encoding: &'static str,
        /// Size of the content.
        size_bytes: Option<u64>,
        /// The content (or a prefix of it).
        preview: Option<String>,
    },
}

/// The fields of a [`Body::Span`] record: a span recorded whole, start and end together
/// ([`SpanBuilder::record_finished`](crate::span::SpanBuilder::record_finished)).
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedSpan {
    /// The span.
    pub span_id: SpanId,
    /// Its parent within the run.
    pub parent_span_id: Option<SpanId>,
    /// The canonical primitive (its family is derived).
    pub primitive: &'static str,
    /// The span's name.
    pub name: Cow<'static, str>,
    /// Start time.
    pub started_at: Timestamp,
    /// End time.
    pub ended_at: Timestamp,
    /// `ended_at - started_at`, never negative.
    pub duration_ms: u64,
    /// Final status.
    pub status: SpanStatus,
    /// Error summary when failed.
    pub error: Option<ErrorSummary>,
    /// The typed fields (`model`, `provider`, ...), each written only when set.
    pub fields: SpanFields,
    /// `metrics`, written only when not empty.
    pub metrics: Metrics,
    /// Attributes.
    pub attributes: Attributes,
}

/// One Crux record: base fields plus a typed body.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Base fields.
    pub base: Base,
    /// The record's type and fields.
    pub body: Body,
}

/// Why a record cannot be sent (counted as `rejected`, never thrown).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecord {
    /// A span names a primitive outside the taxonomy.
    #[error("unknown primitive `{0}`")]
    UnknownPrimitive(&'static str),
    /// An edge type or artifact kind outside the taxonomy.
    #[error("unknown edge type or artifact kind `{0}`")]
    UnknownKind(&'static str),
    /// A name, reason or message that must not be empty is.
    #[error("empty {0}")]
    Empty(&'static str),
    /// `run:start`/`run:resume` not first in their segment.
    #[error("{0} must be the first record of its segment")]
    NotFirst(&'static str),
}

impl Record {
    /// The wire `type`.
    pub fn kind(&self) -> &'static str {
        match self.body {
            Body::RunStart { .. } => "run:start",
            Body::RunSuspend { .. } => "run:suspend",
            Body::RunResume { .. } => "run:resume",
            Body::RunEnd { .. } => "run:end",
            Body::SpanStart { .. } => "span:start",
            Body::SpanEnd { .. } => "span:end",
            Body::Span(_) => "span",
            Body::SpanEvent { .. } => "span:event",
            Body::Edge { .. } => "edge",
            Body::Artifact { .. } => "artifact",
        }
    }

    /// Checks the schema rules the type system does not enforce.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        self.validate_with(|p| taxonomy::family_of(p).is_some())
    }

    /// [`validate`](Record::validate), asking `canonical` whether a primitive is one of
    /// the taxonomy's: delivery answers from the primitives it has already seen
    /// ([`taxonomy::KnownPrimitives`]).
    pub(crate) fn validate_with(
        &self,
        mut canonical: impl FnMut(&'static str) -> bool,
    ) -> Result<(), InvalidRecord> {
        match &self.body {
            Body::RunStart {
                name,
                root_primitive,
                ..
            } => {
                if name.is_empty() {
                    return Err(InvalidRecord::Empty("run name"));
                }
                if !canonical(root_primitive) {
                    return Err(InvalidRecord::UnknownPrimitive(root_primitive));
                }
                if self.base.segment_seq != 1 {
                    return Err(InvalidRecord::NotFirst("run:start"));
                }
            }
            Body::RunResume { reason, .. } => {
                if reason.is_empty() {
                    return Err(InvalidRecord::Empty("resume reason"));
                }
                if self.base.segment_seq != 1 {
                    return Err(InvalidRecord::NotFirst("run:resume"));
                }
            }
            Body::RunSuspend { reason, .. } if reason.is_empty() => {
                return Err(InvalidRecord::Empty("suspend reason"));
            }
            Body::SpanStart {
                primitive, name, ..
            } => {
                if !canonical(primitive) {
                    return Err(InvalidRecord::UnknownPrimitive(primitive));
                }
                if name.is_empty() {
                    return Err(InvalidRecord::Empty("span name"));
                }
            }
            Body::Span(span) => {
                let FinishedSpan {
                    primitive, name, ..
                } = &**span;
                if !canonical(primitive) {
                    return Err(InvalidRecord::UnknownPrimitive(primitive));
                }
                if name.is_empty() {
                    return Err(InvalidRecord::Empty("span name"));
                }
            }
            Body::SpanEvent { name, .. } if name.is_empty() => {
                return Err(InvalidRecord::Empty("event name"));
            }
            Body::Edge { edge_type, .. } if !taxonomy::is_edge_type(edge_type) => {
                return Err(InvalidRecord::UnknownKind(edge_type));
            }
            Body::Artifact { kind, .. } if !taxonomy::is_artifact_kind(kind) => {
                return Err(InvalidRecord::UnknownKind(kind));
            }
            _ => {}
        }
        Ok(())
    }

    /// The record's wire JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// The `attributes` a record of `base` writes: `a`, with the segment's correlator metadata
/// merged in as `meta.<key>` (a copy: only segments with metadata pay for it); `None` when
/// there is nothing to write. One rule for both writers ([`Serialize`] and
/// [`Record::write_json`]).
fn written_attributes<'a>(base: &Base, a: &'a Attributes) -> Option<Cow<'a, Attributes>> {
    let meta = base
        .extra
        .as_ref()
        .and_then(|e| e.correlators.as_ref())
        .map(|c| &c.metadata)
        .filter(|m| !m.is_empty());
    match meta {
        None if a.is_empty() => None,
        None => Some(Cow::Borrowed(a)),
        Some(meta) => {
            let mut all = a.clone();
            for (k, v) in meta {
                all.set(format!("meta.{k}"), v.clone());
            }
            Some(Cow::Owned(all))
        }
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = &self.base;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("schemaVersion", &SCHEMA_VERSION)?;
        if let Some(id) = &b.record_id {
            m.serialize_entry("recordId", id)?;
        }
        m.serialize_entry("runId", &b.run_id)?;
        m.serialize_entry("operationId", &b.operation_id)?;
        m.serialize_entry("segmentId", &b.segment_id)?;
        m.serialize_entry("segmentSeq", &b.segment_seq)?;
        m.serialize_entry("traceId", &b.trace_id)?;
        if let Some(extra) = &b.extra {
            if let Some(c) = &extra.correlators {
                if let Some(v) = &c.session_id {
                    m.serialize_entry("sessionId", v)?;
                }
                if let Some(v) = &c.user_id {
                    m.serialize_entry("userId", v)?;
                }
            }
            if let Some(d) = &extra.deployment {
                m.serialize_entry("deployment", d)?;
            }
        }
        m.serialize_entry("type", self.kind())?;
        let attrs = |m: &mut S::SerializeMap, a: &Attributes| -> Result<(), S::Error> {
            match written_attributes(b, a) {
                None => Ok(()),
                Some(all) => m.serialize_entry("attributes", &*all),
            }
        };
        match &self.body {
            Body::RunStart {
                name,
                root_primitive,
                started_at,
                attributes,
                parent_run_id,
                triggered_by_span_id,
                remote_parent_span_id,
            } => {
                m.serialize_entry("name", name)?;
                m.serialize_entry("rootPrimitive", root_primitive)?;
                m.serialize_entry("startedAt", started_at)?;
                m.serialize_entry("status", "running")?;
                if let Some(p) = parent_run_id {
                    m.serialize_entry("parentRunId", p)?;
                }
                if let Some(t) = triggered_by_span_id {
                    m.serialize_entry("triggeredBySpanId", t)?;
                }
                if let Some(r) = remote_parent_span_id {
                    m.serialize_entry("remoteParentSpanId", r)?;
                }
                attrs(&mut m, attributes)?;
            }
            Body::RunSuspend {
                suspended_at,
                reason,
                attributes,
            } => {
                m.serialize_entry("suspendedAt", suspended_at)?;
                m.serialize_entry("reason", reason)?;
                attrs(&mut m, attributes)?;
            }
            Body::RunResume {
                resumed_at,
                reason,
                previous_segment_id,
                attributes,
            } => {
                m.serialize_entry("resumedAt", resumed_at)?;
                m.serialize_entry("reason", reason)?;
                if let Some(p) = previous_segment_id {
                    m.serialize_entry("previousSegmentId", p)?;
                }
                attrs(&mut m, attributes)?;
            }
            Body::RunEnd {
                ended_at,
                duration_ms,
                status,
                error,
                attributes,
            } => {
                m.serialize_entry("endedAt", ended_at)?;
                m.serialize_entry("durationMs", duration_ms)?;
                m.serialize_entry("status", status.as_str())?;
                if let Some(e) = error {
                    m.serialize_entry("error", e)?;
                }
                attrs(&mut m, attributes)?;
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
                m.serialize_entry("spanId", span_id)?;
                m.serialize_entry("parentSpanId", parent_span_id)?;
                m.serialize_entry("family", &taxonomy::family_of(primitive))?;
                m.serialize_entry("primitive", primitive)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("startedAt", started_at)?;
                m.serialize_entry("status", "running")?;
                for (field, value) in fields.iter() {
                    m.serialize_entry(field.as_str(), value)?;
                }
                attrs(&mut m, attributes)?;
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
                m.serialize_entry("spanId", span_id)?;
                m.serialize_entry("endedAt", ended_at)?;
                m.serialize_entry("durationMs", duration_ms)?;
                m.serialize_entry("status", status.as_str())?;
                if !metrics.is_empty() {
                    m.serialize_entry("metrics", metrics)?;
                }
                if let Some(e) = error {
                    m.serialize_entry("error", e)?;
                }
                attrs(&mut m, attributes)?;
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
                m.serialize_entry("spanId", span_id)?;
                m.serialize_entry("parentSpanId", parent_span_id)?;
                m.serialize_entry("family", &taxonomy::family_of(primitive))?;
                m.serialize_entry("primitive", primitive)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("startedAt", started_at)?;
                m.serialize_entry("endedAt", ended_at)?;
                m.serialize_entry("durationMs", duration_ms)?;
                m.serialize_entry("status", status.as_str())?;
                for (field, value) in fields.iter() {
                    m.serialize_entry(field.as_str(), value)?;
                }
                if !metrics.is_empty() {
                    m.serialize_entry("metrics", metrics)?;
                }
                if let Some(e) = error {
                    m.serialize_entry("error", e)?;
                }
                attrs(&mut m, attributes)?;
            }
            Body::SpanEvent {
                span_id,
                event_id,
                name,
                timestamp,
                attributes,
            } => {
                m.serialize_entry("spanId", span_id)?;
                m.serialize_entry("eventId", event_id)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("timestamp", timestamp)?;
                attrs(&mut m, attributes)?;
            }
            Body::Edge {
                edge_id,
                edge_type,
                from,
                to,
                created_at,
                attributes,
            } => {
                m.serialize_entry("edgeId", edge_id)?;
                m.serialize_entry("edgeType", edge_type)?;
                m.serialize_entry("from", from)?;
                m.serialize_entry("to", to)?;
                m.serialize_entry("createdAt", created_at)?;
                attrs(&mut m, attributes)?;
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
                m.serialize_entry("artifactId", artifact_id)?;
                if let Some(s) = span_id {
                    m.serialize_entry("spanId", s)?;
                }
                m.serialize_entry("kind", kind)?;
                m.serialize_entry("createdAt", created_at)?;
                m.serialize_entry("contentType", content_type)?;
                m.serialize_entry("encoding", encoding)?;
                if let Some(n) = size_bytes {
                    m.serialize_entry("sizeBytes", n)?;
                }
                if let Some(p) = preview {
                    m.serialize_entry("preview", p)?;
                }
            }
        }
        m.end()
    }
}
