//! The receiving side of a hop: what runs around every handler body.
//!
//! - An incoming context (`__crux.observability`) is continued in a new segment of the
//!   caller's run; with a boundary, `received` is recorded before the body and `completed`
//!   or `failed` after it, on the caller's boundary span.
//! - An action without one opens a run (name, root and attributes from its metadata; the
//!   reserved keys `boundary`/`entrypoint` always win) and flushes `run:start` before the
//!   body. A rejected envelope is recorded in that fresh run as a `security.warning` span
//!   (one combined `span` record); a detached scheduled job gets an `edge` from the
//!   schedule span that enqueued it.
//! - Queries and mutations never open runs. A rejected envelope on one is recorded in a
//!   run of its own that holds only the `security.warning`.
//! - A panic in the body is a failed call ([`CatchPanic`]): the caller gets an error naming
//!   the function, and the run and the boundary end `error` with the (bounded) message.
//! - Actions end with a final flush bounded by their metadata; it never changes the result.
//!   (Skipped when [`Incoming::caller_flushes`]: a caller sharing the same pipeline flushes
//!   right after.)

use std::borrow::Cow;
use std::future::Future;

use serde_json::{Value, json};

use super::attributes::{into_boundary_attributes, requested_for};
use super::frozen::{self, Key};
use super::panic::CatchPanic;
use super::{ENVELOPE_KEY, events};
use crate::Result;
use crate::attributes::{AttrValue, Attributes};
use crate::carrier::TraceParent;
use crate::clock::Timestamp;
use crate::envelope::{Correlators, Envelope, EnvelopeError};
use crate::function::{FunctionKind, Metadata, Visibility};
use crate::ids::SpanId;
use crate::observe::{FlushOptions, Observer, RunOptions, RunStatus, Scope, SpanStatus};
use crate::record::EdgeEnd;
use crate::wire::{MAX_ERROR_MESSAGE, MAX_WARNING_REASON, cap_text};

/// The name of the `security.warning` span recording an ignored envelope.
const REJECTED_ENVELOPE: &str = "untrusted __crux envelope ignored";

/// The default root primitive of a run an action opens.
const DEFAULT_ROOT: &str = "runtime.convex.action";

/// What the host knows about one invocation beyond its envelope.
#[derive(Clone, Debug, Default)]
pub struct Incoming {
    /// Why an incoming `__crux` was ignored, if it was (recorded as a `security.warning`).
    pub rejected_envelope: Option<String>,
    /// The schedule span of a detached scheduled job: the run it opens links back to it.
    pub triggered_by: Option<SpanId>,
    /// The caller flushes the same pipeline right after the call returns, so the callee's
    /// final flush is skipped (one thread round trip sooner, same records, same order).
    pub caller_flushes: bool,
    /// A W3C `traceparent` that came with the call outside the envelope (an HTTP header):
    /// a run the action opens keeps its trace id and records its span as the remote parent
    /// ([`RunOptions::remote_parent`]). The host decides whether to trust it; an envelope's
    /// context wins over it.
    pub remote_parent: Option<TraceParent>,
    /// The subject of the user a client's call was made for, when the host records it: a
    /// run the action opens carries it as its `userId` correlator (never the token).
    pub user_id: Option<String>,
}

/// Takes `__crux` out of JSON args and decodes it strictly. `Ok(None)` when there is none;
/// an error names what was wrong, and the field is gone either way (a handler never sees
/// it). A host then records the error as [`Incoming::rejected_envelope`] and runs the
/// call as if no envelope had come: an untrusted envelope never fails a call.
pub fn take_envelope(args: &mut Value) -> std::result::Result<Option<Envelope>, EnvelopeError> {
    match args.as_object_mut().and_then(|o| o.remove(ENVELOPE_KEY)) {
        Some(raw) => Envelope::decode(&raw).map(Some),
        None => Ok(None),
    }
}

/// Runs a handler body inside its Crux boundary on `observer`: continues the caller's
/// context or opens a run (an action without context) or neither (a query or mutation),
/// records the acknowledgements, and ends actions with the bounded final flush. Returns
/// the body's result unchanged; a panic in the body is returned as an error naming the
/// function ([`CatchPanic`]) and recorded as one.
///
/// The envelope comes boxed, as the host decoded it: it is about 400 bytes, and this
/// future and the host's around it would otherwise each carry a copy.
pub async fn receive<T, Fut>(
    observer: &Observer,
    envelope: Option<Box<Envelope>>,
    metadata: &'static Metadata,
    incoming: &Incoming,
    body: Fut,
) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let body = CatchPanic::of(metadata, body);
    // The caller's context is read where it lies in the box, and the boundary becomes its
    // attribute set at once: only the scope and the set (a few words) move into the
    // futures below, not the envelope's fields.
    let continued = envelope.and_then(|mut envelope| {
        let scope = observer.continue_context(envelope.observability.as_ref()?);
        let acknowledged = envelope
            .boundary
            .take()
            .map(|b| requested_for(&b).unwrap_or_else(|| into_boundary_attributes(b)));
        Some((scope, acknowledged))
    });
    let result = match (continued, metadata.kind) {
        (Some((scope, acknowledged)), _) => continue_run(&scope, acknowledged, body).await,
        (None, FunctionKind::Action) => open_run(observer, metadata, incoming, body).await,
        (None, _) => {
            if let Some(reason) = &incoming.rejected_envelope {
                warn_in_own_run(observer, metadata, reason);
            }
            body.await
        }
    };
    if metadata.kind == FunctionKind::Action
        && !incoming.caller_flushes
        && let Some(timeout) = metadata.flush
    {
        observer
            .flush(FlushOptions {
                timeout,
                terminal: true,
            })
            .await;
    }
    result
}

/// Runs the body in the caller's run, acknowledging the boundary (whose attributes are
/// `acknowledged`) on both sides of it.
async fn continue_run<T>(
    scope: &Scope,
    acknowledged: Option<Attributes>,
    body: impl Future<Output = Result<T>>,
) -> Result<T> {
    let Some(attrs) = acknowledged else {
        return scope.in_scope(body).await;
    };
    // One set for both acknowledgements: `completed`/`failed` add to what `received` holds.
    let mut attrs = attrs.freeze();
    acknowledge(scope, events::RECEIVED, attrs.clone());
    let result = scope.in_scope(body).await;
    // `status` and `error` are not boundary keys: added without a search.
    match &result {
        Ok(_) => {
            acknowledge(
                scope,
                events::COMPLETED,
                attrs.with_constant_tail(&STATUS_OK),
            );
        }
        Err(err) => {
            attrs.push_new("status", "error");
            attrs.push_new(
                "error",
                json!({
                    "name": err.name(),
                    "message": cap_text(err.message(), MAX_ERROR_MESSAGE),
                }),
            );
            acknowledge(scope, events::FAILED, attrs);
        }
    }
    result
}

/// What `completed` adds to the boundary's set: a constant, borrowed by every such
/// record ([`Attributes::with_constant_tail`]), not a list allocated for one entry.
static STATUS_OK: [(Cow<'static, str>, AttrValue); 1] =
    [(Cow::Borrowed("status"), AttrValue::Str(Cow::Borrowed("ok")))];

/// Records a boundary event on the scope's innermost span: the caller's boundary span
/// (directly: the scope is not made current just to record one event).
fn acknowledge(scope: &Scope, name: &'static str, attrs: Attributes) {
    scope.event(name, attrs);
}

/// Attribute keys the boundary owns; the macro rejects them at compile time, and a
/// hand-written `Function` cannot sneak them in either.
fn is_reserved(key: &str) -> bool {
    matches!(
        key,
        "boundary" | "entrypoint" | "functionRef" | "presentation"
    ) || key.starts_with("crux.")
}

/// Records why an incoming `__crux` envelope was ignored, as one `security.warning` span
/// (the reason cut to [`MAX_WARNING_REASON`] bytes: a decoder's path can echo a hostile key).
fn record_rejection(scope: &Scope, metadata: &Metadata, reason: &str) {
    let now = Timestamp::now();
    scope
        .span(REJECTED_ENVELOPE, "security.warning")
        .attr("reason", cap_text(reason, MAX_WARNING_REASON).into_owned())
        .attr("functionRef", metadata.convex_path())
        .record_finished(now, now, SpanStatus::Ok);
}

/// A query or mutation has no run to hold the warning, and its work still never opens one:
/// the warning gets a run of its own that holds nothing else.
fn warn_in_own_run(observer: &Observer, metadata: &Metadata, reason: &str) {
    let run = observer.open_run_unhooked(RunOptions::new(REJECTED_ENVELOPE, "security.warning"));
    record_rejection(&run.scope(), metadata, reason);
    run.end(RunStatus::Ok);
}

/// The attributes of the run an action opens: its metadata's, then the reserved keys
/// (`boundary`, and `entrypoint` for an internal action), which always win.
fn run_attributes(metadata: &Metadata) -> Attributes {
    let internal = metadata.visibility == Visibility::Internal;
    let mut attributes = Attributes::new();
    for (key, value) in metadata.attributes {
        if !is_reserved(key) {
            attributes.set(*key, *value);
        }
    }
    attributes.set(
        "boundary",
        if internal {
            "convex.internalAction"
        } else {
            "convex.action"
        },
    );
    if internal {
        attributes.set("entrypoint", "standalone-internal");
    }
    attributes
}

/// Opens the run of an action called without context, and runs the body in it (its
/// attributes shared, [`frozen`]: the same for every call of the action).
async fn open_run<T>(
    observer: &Observer,
    metadata: &'static Metadata,
    incoming: &Incoming,
    body: impl Future<Output = Result<T>>,
) -> Result<T> {
    let key = Key::Run {
        metadata: std::ptr::from_ref(metadata) as usize,
    };
    let attributes = frozen::shared(key, || run_attributes(metadata));
    let name: Cow<'static, str> = match metadata.name {
        Some(name) => name.into(),
        None => metadata.convex_path().into(),
    };
    let mut options =
        RunOptions::new(name, metadata.root.unwrap_or(DEFAULT_ROOT)).attributes(attributes);
    if let Some(traceparent) = incoming.remote_parent {
        options = options.remote_parent(traceparent);
    }
    if let Some(user_id) = &incoming.user_id {
        options = options.correlators(Correlators {
            user_id: Some(user_id.clone()),
            ..Correlators::default()
        });
    }
    let run = observer.open_run(options);
    let scope = run.scope();
    if let Some(reason) = &incoming.rejected_envelope {
        record_rejection(&scope, metadata, reason);
    }
    if let Some(span) = incoming.triggered_by {
        run.link_from(EdgeEnd::Span(span), "triggered", Attributes::new());
    }
    observer.flush(FlushOptions::BOUNDARY).await;
    let result = scope.in_scope(body).await;
    match &result {
        Ok(_) => run.end(RunStatus::Ok),
        Err(err) => run.fail(err),
    }
    result
}
