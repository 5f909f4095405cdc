//! The hidden `__crux` argument: what crosses a function boundary.
//!
//! SKELETON: shapes are fixed (reference §1.1, camelCase); strict decoding with
//! per-field errors, size caps and fixtures are the runtime-core work (issue 2).

use serde::{Deserialize, Serialize};

use crate::ids::{RunId, SegmentId, SpanId, TraceId};

/// The `__crux` envelope: `{ "v": 1, "observability": {...}, "boundary": {...} }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The envelope version; always 1.
    pub v: u32,
    /// The caller's captured context; absent for detached work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<CapturedContext>,
    /// The boundary the caller opened for this call, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<Boundary>,
}

/// A serializable snapshot of the current Crux context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapturedContext {
    /// The run the work belongs to.
    pub run_id: RunId,
    /// The operation (the root run of the family); equals `run_id` for a root run.
    pub operation_id: RunId,
    /// The W3C trace id.
    pub trace_id: TraceId,
    /// The segment of the capturing invocation.
    pub segment_id: SegmentId,
    /// Open spans, outermost first.
    pub span_stack: Vec<SpanId>,
    /// The innermost open span (the last of `span_stack`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_span_id: Option<SpanId>,
}

/// Which kind of hop a [`Boundary`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BoundaryKind {
    /// `ctx.crux.run_action`.
    Action,
    /// `ctx.crux.scheduler.run_after` with a continuation.
    Schedule,
}

/// The boundary span the caller opened for this call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Boundary {
    /// Equal to `span_id`.
    pub id: SpanId,
    /// The boundary span.
    pub span_id: SpanId,
    /// Action or schedule.
    pub kind: BoundaryKind,
    /// The caller's label.
    pub label: String,
    /// The canonical Convex path of the callee.
    #[serde(rename = "ref")]
    pub function_ref: String,
    /// The caller's span stack, ending with the boundary span.
    pub parent_span_stack: Vec<SpanId>,
    /// ISO-8601 lease expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
}
