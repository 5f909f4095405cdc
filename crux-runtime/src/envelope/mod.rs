//! The hidden `__crux` argument: what crosses a function boundary (reference §1, §6.1).
//!
//! Encoding is plain serde (camelCase, absent options omitted). Decoding is strict and
//! bounded because `__crux` arrives from callers we do not trust: every id format is
//! checked, strings and arrays are capped, control characters and unknown versions are
//! rejected, nesting is limited, and the error names the field. Unknown keys are ignored
//! (a newer TypeScript writer may add fields) but count against the key cap.
//! [`Envelope::decode_str`] applies the same rules to JSON text, with a typed fast path.
//!
//! ```
//! use crux_runtime::envelope::Envelope;
//! let json = serde_json::json!({
//!     "v": 1,
//!     "observability": {
//!         "runId": "run_0123456789abcdef01234567",
//!         "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
//!         "segmentId": "seg_0123456789abcdef01234567",
//!         "spanStack": ["00f067aa0ba902b7"],
//!         "currentSpanId": "00f067aa0ba902b7"
//!     }
//! });
//! let env = Envelope::decode(&json).unwrap();
//! let ctx = env.observability.as_ref().unwrap();
//! assert_eq!(ctx.operation_id, ctx.run_id); // pre-v4 writers: the run is its own operation
//!
//! let bad = serde_json::json!({"v": 2});
//! assert_eq!(Envelope::decode(&bad).unwrap_err().to_string(),
//!     "invalid `__crux` envelope: `v` unsupported version 2 (this build understands version 1)");
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::ids::{RunId, SegmentId, SpanId, SpanStack, TraceId};
use crate::wire::{FieldError, MAX_DEPTH, Obj, Path, Reason, check_depth, id_item, type_name};

mod check;
mod encode;
mod text;

/// The only envelope version this build writes and accepts.
pub const ENVELOPE_VERSION: u64 = 1;
/// Most span ids in a span stack.
pub const MAX_SPAN_STACK: usize = 128;

/// Longest label, function reference, correlator or deployment field.
pub const MAX_LABEL: usize = 200;
/// Most correlator metadata entries.
pub const MAX_METADATA: usize = 16;
/// Longest correlator metadata key, in characters.
pub const MAX_METADATA_KEY: usize = 64;

/// A `__crux` value that failed strict decoding: the field and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid `__crux` envelope: {0}")]
pub struct EnvelopeError(pub FieldError);

impl EnvelopeError {
    /// The path of the offending field (`observability.spanStack[1]`).
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// What was wrong with it.
    pub fn reason(&self) -> &Reason {
        &self.0.reason
    }
}

/// The `__crux` envelope: `{ "v": 1, "observability": {...}, "boundary": {...} }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The envelope version; always 1.
    pub v: u32,
    /// The caller's captured context; absent for detached work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observability: Option<WireContext>,
    /// The boundary the caller opened for this call, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary: Option<Boundary>,
}

impl Envelope {
    /// An envelope carrying `observability` (and no boundary).
    pub fn new(observability: Option<WireContext>) -> Self {
        Self {
            v: ENVELOPE_VERSION as u32,
            observability,
            boundary: None,
        }
    }

    /// Strictly decodes an untrusted `__crux` value.
    pub fn decode(value: &Value) -> Result<Envelope, EnvelopeError> {
        decode_envelope(value).map_err(EnvelopeError)
    }

    /// Strictly decodes envelope JSON text: the same rules and results as
    /// [`decode`](Envelope::decode), with a fast typed path for well-formed input.
    #[inline]
    pub fn decode_str(json: &str) -> Result<Envelope, EnvelopeError> {
        let mut envelope = Envelope::new(None);
        if text::decode_fast(json, &mut envelope) {
            return Ok(envelope);
        }
        Envelope::decode_str_slow(json)
    }

    /// [`decode_str`](Envelope::decode_str), boxed: what a host keeps and hands to
    /// [`boundary::receive`](crate::boundary::receive). The envelope (about 400 bytes) is
    /// built in its box, not copied through each return on the way there.
    #[inline]
    pub fn decode_str_boxed(json: &str) -> Result<Box<Envelope>, EnvelopeError> {
        let mut envelope = Box::new(Envelope::new(None));
        if text::decode_fast(json, &mut envelope) {
            return Ok(envelope);
        }
        // The box is reused for the `Value` decoder's envelope.
        *envelope = Envelope::decode_str_slow(json)?;
        Ok(envelope)
    }

    /// The `Value` decoder on text the fast path did not take: the same rules and errors.
    fn decode_str_slow(json: &str) -> Result<Envelope, EnvelopeError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|_| EnvelopeError(Path::Root.err(Reason::Invalid("is not valid JSON"))))?;
        Envelope::decode(&value)
    }

    /// The envelope as JSON text: the same text as `serde_json::to_string(self)`, written
    /// directly (ids and the boundary kind need no escaping), since it runs on every hop.
    pub fn to_json_string(&self) -> String {
        let mut out = String::with_capacity(512);
        encode::envelope(&mut out, self);
        out
    }

    /// Whether [`decode_str`](Envelope::decode_str) of this envelope's JSON text
    /// ([`to_json_string`](Envelope::to_json_string)) gives back this very envelope: every
    /// field within the decoder's rules: version 1; ids not all zero; labels, function
    /// references, session and user ids and deployment fields non-empty, within
    /// [`MAX_LABEL`] characters, without control characters; at most [`MAX_METADATA`]
    /// metadata entries, keys within [`MAX_METADATA_KEY`] characters and values within
    /// [`MAX_LABEL`] (either may be empty), without control characters; `startedAtMs` at
    /// most 2^53; span stacks within [`MAX_SPAN_STACK`], `currentSpanId` the context's
    /// last; a boundary's `id` equal to its `spanId`; a lease with a four-digit year.
    /// Decided on the typed fields, without writing or reading any text.
    ///
    /// A host that would write an envelope it built itself only to decode it again in
    /// the same process may hand over the envelope instead when this holds: the callee
    /// gets what the decode would have given. When it does not hold, the text's strict
    /// decode says why. An envelope from outside the process is always decoded.
    ///
    /// ```
    /// use crux_runtime::envelope::Envelope;
    /// use crux_runtime::ids::{RunId, SegmentId, SpanId, SpanStack, TraceId};
    /// use crux_runtime::envelope::WireContext;
    ///
    /// let span = SpanId::generate();
    /// let run = RunId::generate();
    /// let mut envelope = Envelope::new(Some(WireContext {
    ///     run_id: run,
    ///     operation_id: run,
    ///     trace_id: TraceId::generate(),
    ///     segment_id: SegmentId::generate(),
    ///     started_at_ms: None,
    ///     correlators: None,
    ///     deployment: None,
    ///     span_stack: SpanStack::from([span]),
    ///     current_span_id: Some(span),
    ///     parent_run_id: None,
    ///     triggered_by_span_id: None,
    /// }));
    /// assert!(envelope.round_trips());
    /// assert_eq!(Envelope::decode_str(&envelope.to_json_string()), Ok(envelope.clone()));
    ///
    /// // A current span that is not the stack's last: the decoder refuses the text.
    /// envelope.observability.as_mut().unwrap().current_span_id = Some(SpanId::generate());
    /// assert!(!envelope.round_trips());
    /// assert!(Envelope::decode_str(&envelope.to_json_string()).is_err());
    /// ```
    pub fn round_trips(&self) -> bool {
        check::round_trips(self)
    }

    /// The JSON value to put under `__crux`.
    ///
    /// The same value as `serde_json::to_value(self)`, built directly: this runs on every
    /// boundary hop, and going through serde's value serializer cost twice as much.
    pub fn to_value(&self) -> Value {
        let mut root = Map::new();
        root.insert("v".to_owned(), Value::from(self.v));
        if let Some(context) = &self.observability {
            root.insert("observability".to_owned(), context_value(context));
        }
        if let Some(boundary) = &self.boundary {
            root.insert("boundary".to_owned(), boundary_value(boundary));
        }
        Value::Object(root)
    }
}

/// An id as a JSON string.
macro_rules! id_value {
    ($id:expr) => {
        Value::String($id.encode().as_str().to_owned())
    };
}

fn span_stack_value(stack: &[SpanId]) -> Value {
    Value::Array(stack.iter().map(|id| id_value!(id)).collect())
}

/// `serde_json::to_value(context)`, built directly (see [`Envelope::to_value`]).
fn context_value(c: &WireContext) -> Value {
    let mut o = Map::new();
    o.insert("runId".to_owned(), id_value!(c.run_id));
    o.insert("operationId".to_owned(), id_value!(c.operation_id));
    o.insert("traceId".to_owned(), id_value!(c.trace_id));
    o.insert("segmentId".to_owned(), id_value!(c.segment_id));
    if let Some(ms) = c.started_at_ms {
        o.insert("startedAtMs".to_owned(), Value::from(ms));
    }
    // Rare and small: plain serde (it cannot fail for these types).
    if let Some(correlators) = &c.correlators {
        o.insert(
            "correlators".to_owned(),
            serde_json::to_value(correlators).unwrap_or(Value::Null),
        );
    }
    if let Some(deployment) = &c.deployment {
        o.insert(
            "deployment".to_owned(),
            serde_json::to_value(deployment).unwrap_or(Value::Null),
        );
    }
    o.insert("spanStack".to_owned(), span_stack_value(&c.span_stack));
    if let Some(id) = c.current_span_id {
        o.insert("currentSpanId".to_owned(), id_value!(id));
    }
    if let Some(id) = c.parent_run_id {
        o.insert("parentRunId".to_owned(), id_value!(id));
    }
    if let Some(id) = c.triggered_by_span_id {
        o.insert("triggeredBySpanId".to_owned(), id_value!(id));
    }
    Value::Object(o)
}

/// `serde_json::to_value(boundary)`, built directly (see [`Envelope::to_value`]).
fn boundary_value(b: &Boundary) -> Value {
    let kind = match b.kind {
        BoundaryKind::Action => "action",
        BoundaryKind::Schedule => "schedule",
    };
    let mut o = Map::new();
    o.insert("id".to_owned(), id_value!(b.id));
    o.insert("spanId".to_owned(), id_value!(b.span_id));
    o.insert("kind".to_owned(), Value::from(kind));
    o.insert("label".to_owned(), Value::from(&*b.label));
    o.insert("ref".to_owned(), Value::from(&*b.function_ref));
    o.insert(
        "parentSpanStack".to_owned(),
        span_stack_value(&b.parent_span_stack),
    );
    if let Some(lease) = b.lease_expires_at {
        o.insert("leaseExpiresAt".to_owned(), Value::from(lease.to_string()));
    }
    Value::Object(o)
}

impl<'de> Deserialize<'de> for Envelope {
    /// Deserializes through [`Envelope::decode`], so serde users get the same checks.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Envelope::decode(&v).map_err(serde::de::Error::custom)
    }
}

/// Correlation identifiers of a run: never trusted identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Correlators {
    /// The user's session, 1–200 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The user, 1–200 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Free-form string metadata, projected into attributes as `meta.<key>`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// Which deployment, manifest (code version) and project recorded a run: the deployment
/// identity of schema v3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentIdentity {
    /// The project.
    pub project_id: String,
    /// The manifest (code version).
    pub manifest_id: String,
    /// The deployment.
    pub deployment_id: String,
}

/// The Crux context as it crosses the wire: the envelope's `observability` (reference
/// §6.1). Pure data: the live in-process handle of a capture is
/// [`observe::CapturedContext`](crate::observe::CapturedContext), which holds one of these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireContext {
    /// The run the work belongs to.
    pub run_id: RunId,
    /// The operation (the root run of the family); equals `run_id` for a root run.
    pub operation_id: RunId,
    /// The W3C trace id.
    pub trace_id: TraceId,
    /// The segment of the capturing invocation.
    pub segment_id: SegmentId,
    /// When the run started, in ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    /// Session/user correlation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlators: Option<Correlators>,
    /// The deployment identity (v3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentIdentity>,
    /// Open spans, outermost first (shared: the boundary sent with it holds the same).
    pub span_stack: SpanStack,
    /// The innermost open span (the last of `span_stack`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_span_id: Option<SpanId>,
    /// The parent run of a child run (v4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<RunId>,
    /// The span of the parent run that triggered this run (v4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggered_by_span_id: Option<SpanId>,
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
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Boundary {
    /// Equal to `span_id`.
    pub id: SpanId,
    /// The boundary span.
    pub span_id: SpanId,
    /// Action or schedule.
    pub kind: BoundaryKind,
    /// The caller's label (borrowed when the caller's `'static` label is sent as it is,
    /// owned when decoded).
    pub label: Cow<'static, str>,
    /// The canonical Convex path of the callee.
    #[serde(rename = "ref")]
    pub function_ref: Cow<'static, str>,
    /// The caller's span stack, ending with the boundary span.
    pub parent_span_stack: SpanStack,
    /// When the boundary goes stale: sent as ISO-8601 text (`2026-01-02T03:04:05.678Z`,
    /// the one form the decoder accepts, so a decoded lease is written back as it came).
    /// Kept as the time, not its text: the text is written only when serialized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<Timestamp>,
}

fn decode_envelope(value: &Value) -> Result<Envelope, FieldError> {
    let root = Obj::new(value, Path::Root)?;
    check_depth(value, MAX_DEPTH, Path::Root)?;
    let v_path = Path::Key(&Path::Root, "v");
    let v = match root.get("v") {
        None => return Err(v_path.err(Reason::Missing)),
        Some(Value::Number(n)) if n.as_u64() == Some(ENVELOPE_VERSION) => 1,
        Some(Value::Number(n)) => {
            let mut found = n.to_string();
            found.truncate(20);
            return Err(v_path.err(Reason::UnsupportedVersion { found }));
        }
        Some(other) => {
            return Err(v_path.err(Reason::WrongType {
                expected: "the number 1",
                found: type_name(other),
            }));
        }
    };
    let observability = match root.opt_obj("observability")? {
        Some(o) => Some(decode_context(&o)?),
        None => None,
    };
    let boundary = match root.opt_obj("boundary")? {
        Some(b) => Some(decode_boundary(&b)?),
        None => None,
    };
    Ok(Envelope {
        v,
        observability,
        boundary,
    })
}

/// Strictly decodes a captured context object (the `observability` field).
pub(crate) fn decode_context(o: &Obj<'_>) -> Result<WireContext, FieldError> {
    let run_id: RunId = o.req_id("runId")?;
    let operation_id = o.opt_id("operationId")?.unwrap_or(run_id);
    let trace_id = o.req_id("traceId")?;
    let segment_id = o.req_id("segmentId")?;
    let started_at_ms = o.opt_u64("startedAtMs")?;
    let correlators = match o.opt_obj("correlators")? {
        Some(c) => Some(decode_correlators(&c)?),
        None => None,
    };
    let deployment = match o.opt_obj("deployment")? {
        Some(d) => Some(decode_deployment(&d)?),
        None => None,
    };
    let span_stack: SpanStack = o
        .opt_array("spanStack", MAX_SPAN_STACK, id_item::<SpanId>)?
        .ok_or_else(|| Path::Key(&o.path, "spanStack").err(Reason::Missing))?
        .into();
    let current_span_id: Option<SpanId> = o.opt_id("currentSpanId")?;
    if current_span_id.is_some() && current_span_id != span_stack.last().copied() {
        return Err(Path::Key(&o.path, "currentSpanId")
            .err(Reason::Invalid("must equal the last id of spanStack")));
    }
    Ok(WireContext {
        run_id,
        operation_id,
        trace_id,
        segment_id,
        started_at_ms,
        correlators,
        deployment,
        span_stack,
        current_span_id,
        parent_run_id: o.opt_id("parentRunId")?,
        triggered_by_span_id: o.opt_id("triggeredBySpanId")?,
    })
}

pub(crate) fn decode_correlators(c: &Obj<'_>) -> Result<Correlators, FieldError> {
    let mut metadata = BTreeMap::new();
    if let Some(m) = c.opt_obj("metadata")? {
        if m.map.len() > MAX_METADATA {
            return Err(m.path.err(Reason::TooMany { max: MAX_METADATA }));
        }
        for key in m.map.keys() {
            let key_path = Path::Key(&m.path, key);
            crate::wire::check_text(key, MAX_METADATA_KEY, key_path)?;
            let value = m.req_str(key, MAX_LABEL)?;
            metadata.insert(key.clone(), value.to_owned());
        }
    }
    Ok(Correlators {
        session_id: c.opt_text("sessionId", MAX_LABEL)?.map(str::to_owned),
        user_id: c.opt_text("userId", MAX_LABEL)?.map(str::to_owned),
        metadata,
    })
}

pub(crate) fn decode_deployment(d: &Obj<'_>) -> Result<DeploymentIdentity, FieldError> {
    let field = |k| -> Result<String, FieldError> {
        match d.req_str(k, MAX_LABEL)? {
            "" => Err(Path::Key(&d.path, k).err(Reason::Empty)),
            s => Ok(s.to_owned()),
        }
    };
    Ok(DeploymentIdentity {
        project_id: field("projectId")?,
        manifest_id: field("manifestId")?,
        deployment_id: field("deploymentId")?,
    })
}

fn decode_boundary(b: &Obj<'_>) -> Result<Boundary, FieldError> {
    let id: SpanId = b.req_id("id")?;
    let span_id: SpanId = b.req_id("spanId")?;
    if id != span_id {
        return Err(Path::Key(&b.path, "id").err(Reason::Invalid("must equal spanId")));
    }
    let kind_path = Path::Key(&b.path, "kind");
    let kind = match b.req_str("kind", 16)? {
        "action" => BoundaryKind::Action,
        "schedule" => BoundaryKind::Schedule,
        _ => return Err(kind_path.err(Reason::Invalid("expected \"action\" or \"schedule\""))),
    };
    let label = b
        .opt_text("label", MAX_LABEL)?
        .ok_or_else(|| Path::Key(&b.path, "label").err(Reason::Missing))?;
    let function_ref = b
        .opt_text("ref", MAX_LABEL)?
        .ok_or_else(|| Path::Key(&b.path, "ref").err(Reason::Missing))?;
    let parent_span_stack: SpanStack = b
        .opt_array("parentSpanStack", MAX_SPAN_STACK, id_item::<SpanId>)?
        .ok_or_else(|| Path::Key(&b.path, "parentSpanStack").err(Reason::Missing))?
        .into();
    let lease_expires_at = match b.opt_str("leaseExpiresAt", 32)? {
        None => None,
        Some(s) => Some(s.parse::<Timestamp>().map_err(|_| {
            Path::Key(&b.path, "leaseExpiresAt").err(Reason::Invalid(
                "expected an ISO-8601 UTC timestamp like 2026-01-02T03:04:05.678Z",
            ))
        })?),
    };
    Ok(Boundary {
        id,
        span_id,
        kind,
        label: Cow::Owned(label.to_owned()),
        function_ref: Cow::Owned(function_ref.to_owned()),
        parent_span_stack,
        lease_expires_at,
    })
}
