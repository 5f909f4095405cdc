//! The receiving side of a function boundary: what runs around every handler body.
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
//! - Actions end with a final flush bounded by their metadata; it never changes the result.
//!   (Skipped for a callee of `ctx.crux.run_action` in this deployment, whose caller flushes
//!   the same shared pipeline right after.)

use std::any::Any;
use std::future::Future;

use serde_json::json;

use super::crux::{boundary_attributes, events, into_boundary_attributes};
use super::ctx::{Host, HostContext};
use super::{ActionCtx, MutationCtx, QueryCtx};
use crate::Result;
use crate::attributes::Attributes;
use crate::clock::Timestamp;
use crate::envelope::{Boundary, Envelope};
use crate::function::{FunctionKind, Metadata, Visibility};
use crate::observe::{FlushOptions, Observer, RunOptions, RunStatus, Scope, SpanStatus};
use crate::record::EdgeEnd;

/// The name of the `security.warning` span recording an ignored envelope.
const REJECTED_ENVELOPE: &str = "untrusted __crux envelope ignored";

/// The default root primitive of a run an action opens.
const DEFAULT_ROOT: &str = "runtime.convex.action";

/// The host behind a handler's context, if `C` is one of the three context types.
pub(crate) fn host_of<C: 'static>(ctx: &C) -> Option<&Host> {
    let ctx: &dyn Any = ctx;
    if let Some(ctx) = ctx.downcast_ref::<ActionCtx>() {
        return Some(ctx.host());
    }
    if let Some(ctx) = ctx.downcast_ref::<QueryCtx>() {
        return Some(ctx.host());
    }
    ctx.downcast_ref::<MutationCtx>().map(HostContext::host)
}

pub(crate) async fn invoke<T, Fut>(
    host: &Host,
    envelope: Option<Envelope>,
    metadata: &'static Metadata,
    body: Fut,
) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let observer = host.deployment.observer();
    let (incoming, boundary) = match envelope {
        Some(Envelope {
            observability: Some(incoming),
            boundary,
            ..
        }) => (Some(incoming), boundary),
        _ => (None, None),
    };
    let result = match (incoming, metadata.kind) {
        (Some(incoming), _) => {
            let scope = observer.continue_context(&incoming);
            continue_run(&scope, boundary, body).await
        }
        (None, FunctionKind::Action) => open_run(observer, metadata, &host.invocation, body).await,
        (None, _) => {
            if let Some(reason) = &host.invocation.rejected_envelope {
                warn_in_own_run(observer, metadata, reason);
            }
            body.await
        }
    };
    // The final flush. A callee of `ctx.crux.run_action` in this deployment leaves it to
    // the caller's post-call flush: the pipeline is shared, so the same records reach the
    // sinks in the same order before the caller goes on, one thread round trip sooner.
    if metadata.kind == FunctionKind::Action
        && !host.invocation.caller_flushes
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

/// Runs the body in the caller's run, acknowledging the boundary on both sides of it.
async fn continue_run<T>(
    scope: &Scope,
    boundary: Option<Boundary>,
    body: impl Future<Output = Result<T>>,
) -> Result<T> {
    let Some(boundary) = boundary else {
        return scope.in_scope(body).await;
    };
    acknowledge(scope, events::RECEIVED, boundary_attributes(&boundary));
    let result = scope.in_scope(body).await;
    let attrs = into_boundary_attributes(boundary);
    match &result {
        Ok(_) => acknowledge(scope, events::COMPLETED, attrs.with("status", "ok")),
        Err(err) => acknowledge(
            scope,
            events::FAILED,
            attrs.with("status", "error").with(
                "error",
                json!({"name": err.name(), "message": err.message()}),
            ),
        ),
    }
    result
}

/// Records a boundary event on the scope's innermost span: the caller's boundary span.
fn acknowledge(scope: &Scope, name: &'static str, attrs: Attributes) {
    let _entered = scope.enter();
    crate::observe::event(name, attrs);
}

/// Attribute keys the boundary owns; the macro rejects them at compile time, and a
/// hand-written `Function` cannot sneak them in either.
fn is_reserved(key: &str) -> bool {
    matches!(
        key,
        "boundary" | "entrypoint" | "functionRef" | "presentation"
    ) || key.starts_with("crux.")
}

/// Records why an incoming `__crux` envelope was ignored, as one `security.warning` span.
fn record_rejection(scope: &Scope, metadata: &Metadata, reason: &str) {
    let now = Timestamp::now();
    scope
        .span(REJECTED_ENVELOPE, "security.warning")
        .attr("reason", reason.to_owned())
        .attr("functionRef", metadata.convex_path())
        .record_finished(now, now, SpanStatus::Ok);
}

/// A query or mutation has no run to hold the warning, and its work still never opens one:
/// the warning gets a run of its own that holds nothing else.
fn warn_in_own_run(observer: &Observer, metadata: &Metadata, reason: &str) {
    let run = observer.open_run(RunOptions::new(REJECTED_ENVELOPE, "security.warning"));
    record_rejection(&run.scope(), metadata, reason);
    run.end(RunStatus::Ok);
}

/// Opens the run of an action called without context, and runs the body in it.
async fn open_run<T>(
    observer: &Observer,
    metadata: &'static Metadata,
    invocation: &super::ctx::Invocation,
    body: impl Future<Output = Result<T>>,
) -> Result<T> {
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
    let name: std::borrow::Cow<'static, str> = match metadata.name {
        Some(name) => name.into(),
        None => metadata.convex_path().into(),
    };
    let options =
        RunOptions::new(name, metadata.root.unwrap_or(DEFAULT_ROOT)).attributes(attributes);
    let run = observer.open_run(options);
    let scope = run.scope();
    if let Some(reason) = &invocation.rejected_envelope {
        record_rejection(&scope, metadata, reason);
    }
    if let Some(span) = invocation
        .schedule_link
        .as_ref()
        .and_then(|link| link.current_span_id)
    {
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
