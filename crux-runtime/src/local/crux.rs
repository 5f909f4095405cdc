//! `ctx.crux`: calls that keep the callee in the caller's run, scheduling, spans.
//!
//! Every helper serializes the caller's context into the callee's `__crux` argument, so the
//! callee continues the run on the other side of a real JSON boundary (in its own segment).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::deployment::Deployment;
use super::dispatch::{Caller, ENVELOPE_KEY, EnvelopeText, from_json_output, to_json_args};
use super::scheduler::{Schedulable, delay_until};
use super::store::{Id, Transaction};
use super::{ActionCtx, MutationCtx, QueryCtx};
use crate::Result;
use crate::attributes::Attributes;
use crate::clock::Timestamp;
use crate::envelope::{Boundary, BoundaryKind, CapturedContext, Envelope};
use crate::function::Function;
use crate::observe::{self, FlushOptions, SpanBuilder, SpanStatus};

/// How long a boundary may stay open before a backend projects it as stale: 11 minutes,
/// just over Convex's 10-minute action limit (as in the TypeScript wrappers).
pub const BOUNDARY_LEASE: Duration = Duration::from_secs(11 * 60);

/// The span event names of the two-sided boundary acknowledgement.
pub(crate) mod events {
    pub(crate) const REQUESTED: &str = "runtime.convex.boundary.requested";
    pub(crate) const RECEIVED: &str = "runtime.convex.boundary.received";
    pub(crate) const COMPLETED: &str = "runtime.convex.boundary.completed";
    pub(crate) const FAILED: &str = "runtime.convex.boundary.failed";
}

/// The attributes every boundary event carries (reference §2.3).
pub(crate) fn boundary_attributes(boundary: &Boundary) -> Attributes {
    attributes_of(
        boundary,
        boundary.label.clone().into(),
        boundary.function_ref.clone().into(),
        boundary.lease_expires_at.clone(),
    )
}

/// [`boundary_attributes`], taking the boundary's strings instead of copying them.
pub(crate) fn into_boundary_attributes(mut boundary: Boundary) -> Attributes {
    let label = std::mem::take(&mut boundary.label);
    let function_ref = std::mem::take(&mut boundary.function_ref);
    let lease = boundary.lease_expires_at.take();
    attributes_of(&boundary, label.into(), function_ref.into(), lease)
}

/// The boundary attributes with the strings given (borrowed when they are `'static`).
fn attributes_of(
    boundary: &Boundary,
    label: Cow<'static, str>,
    function_ref: Cow<'static, str>,
    lease: Option<String>,
) -> Attributes {
    let id_value = |id: &crate::ids::SpanId| Value::String(id.encode().as_str().to_owned());
    let stack: Vec<Value> = boundary.parent_span_stack.iter().map(id_value).collect();
    let kind = match boundary.kind {
        BoundaryKind::Action => "action",
        BoundaryKind::Schedule => "schedule",
    };
    // Room for the acknowledgement's `status` and `error` too.
    let mut attrs = Attributes::with_capacity(9)
        .with("boundaryId", id_value(&boundary.id))
        .with("boundarySpanId", id_value(&boundary.span_id))
        .with("boundaryKind", kind)
        .with("boundaryLabel", label)
        .with("functionRef", function_ref)
        .with("parentSpanStack", Value::Array(stack));
    if let Some(lease) = lease {
        attrs.set("leaseExpiresAt", lease);
    }
    attrs
}

/// The label as the envelope carries it: the receiving decoder refuses an empty label,
/// more than [`MAX_LABEL`](crate::envelope::MAX_LABEL) characters or control characters,
/// and a refused envelope would cut the callee off the caller's run. The span keeps the
/// label as written; an empty one travels as the function's path.
fn wire_label(label: &str, path: &str) -> String {
    let label = if label.is_empty() { path } else { label };
    observe::wire_text(label.to_owned(), crate::envelope::MAX_LABEL)
}

/// The boundary span's name: the label, or the function's path for an empty one (a span
/// without a name is refused by the pipeline, and its callee would hang off nothing).
fn span_name(label: &'static str, path: &'static str) -> &'static str {
    if label.is_empty() { path } else { label }
}

fn lease_expiry() -> String {
    Timestamp::now()
        .plus_millis(BOUNDARY_LEASE.as_millis() as u64)
        .to_string()
}

fn presentation() -> Value {
    json!({"display": "detail"})
}

/// What every `ctx.crux` shares: the deployment and, in a mutation or query, the
/// transaction nested calls join.
#[derive(Clone, Debug)]
struct Core {
    deployment: Deployment,
    txn: Option<Arc<Transaction>>,
}

impl Core {
    /// Calls `F` with `args` plus `__crux`, as another function.
    async fn call<F: Function>(
        &self,
        args: &F::Args,
        envelope: Option<Envelope>,
    ) -> Result<F::Output> {
        self.call_as::<F>(args, envelope, Caller::Function(self.txn.clone()))
            .await
    }

    async fn call_as<F: Function>(
        &self,
        args: &F::Args,
        envelope: Option<Envelope>,
        caller: Caller,
    ) -> Result<F::Output> {
        let mut json = to_json_args(args)?;
        // `__crux` travels as JSON text beside the args object; an args field of that name
        // is replaced by it, as if it were inserted into the object.
        let text = match (envelope, json.as_object_mut()) {
            (Some(envelope), Some(fields)) => {
                fields.remove(ENVELOPE_KEY);
                Some(EnvelopeText::encode(&envelope))
            }
            _ => None,
        };
        let out = self
            .deployment
            .dispatch_with(F::path(), json, text, caller)
            .await?;
        from_json_output(F::path(), out)
    }

    /// `run_query`/`run_mutation`: a span named by the label, the context propagated, no
    /// boundary and no flush (queries and mutations cannot do network I/O on Convex).
    async fn run_nested<F: Function>(
        &self,
        label: &'static str,
        primitive: &'static str,
        args: F::Args,
    ) -> Result<F::Output> {
        let span = observe::span(span_name(label, F::path()), primitive)
            .attr("functionRef", F::path())
            .attr("presentation", presentation())
            .start();
        let envelope = span
            .scope()
            .map(|scope| Envelope::new(Some(scope.capture())));
        let result = self.call::<F>(&args, envelope).await;
        match &result {
            Ok(_) => span.end(SpanStatus::Ok),
            Err(err) => span.fail(err),
        }
        result
    }

    /// `run_action`: the boundary span, `requested`, a flush before the child starts, the
    /// call, the span's end, a flush after. Errors come back unchanged.
    async fn run_action<F: Function>(
        &self,
        label: &'static str,
        args: F::Args,
    ) -> Result<F::Output> {
        let path = F::path();
        let span = observe::span(span_name(label, path), "runtime.convex.action")
            .attr("functionRef", path)
            .attr("boundary", "convex.action")
            .attr("presentation", presentation())
            .start();
        let (Some(scope), Some(span_id)) = (span.scope(), span.id()) else {
            return self.call::<F>(&args, Some(Envelope::new(None))).await;
        };
        let captured = scope.capture();
        let boundary = Boundary {
            id: span_id,
            span_id,
            kind: BoundaryKind::Action,
            label: wire_label(label, path),
            function_ref: path.to_owned(),
            parent_span_stack: captured.span_stack.clone(),
            lease_expires_at: Some(lease_expiry()),
        };
        let requested = attributes_of(
            &boundary,
            label.into(),
            path.into(),
            boundary.lease_expires_at.clone(),
        );
        span.event(events::REQUESTED, requested);
        let observer = self.deployment.observer();
        observer.flush(FlushOptions::BOUNDARY).await;
        let envelope = Envelope {
            v: 1,
            observability: Some(captured),
            boundary: Some(boundary),
        };
        let result = self
            .call_as::<F>(&args, Some(envelope), Caller::Boundary)
            .await;
        match &result {
            Ok(_) => span.end(SpanStatus::Ok),
            Err(err) => span.fail(err),
        }
        observer.flush(FlushOptions::BOUNDARY).await;
        result
    }
}

/// Options of an observed schedule. The default is detached: the scheduled function opens
/// its own run (new trace), linked back to the schedule span by an `edge` record.
#[derive(Clone, Debug, Default)]
pub struct ScheduleOptions {
    /// Join this context instead: the scheduled function continues that run, nested under
    /// its current span, with `received`/`completed` acknowledgements on that span.
    /// Typically a `ctx.crux.capture()` taken earlier.
    pub continuation: Option<CapturedContext>,
}

/// `ctx.crux.scheduler`: scheduling that records a `runtime.convex.schedule` span.
#[derive(Clone, Debug)]
pub struct CruxScheduler {
    core: Core,
    options: ScheduleOptions,
}

impl CruxScheduler {
    /// The same scheduler with `options` for the next calls.
    ///
    /// ```ignore
    /// let here = ctx.crux.capture();
    /// ctx.crux.scheduler
    ///     .with_options(ScheduleOptions { continuation: here })
    ///     .run_after("resume review", Duration::ZERO, review::resume, args)
    ///     .await?;
    /// ```
    pub fn with_options(&self, options: ScheduleOptions) -> CruxScheduler {
        CruxScheduler {
            core: self.core.clone(),
            options,
        }
    }

    /// Runs `f(args)` after `delay`; returns the job id. In a mutation, the job is enqueued
    /// only if the mutation commits.
    pub async fn run_after<F>(
        &self,
        label: &'static str,
        delay: Duration,
        f: F,
        args: F::Args,
    ) -> Result<Id>
    where
        F: Function,
        F::Context: Schedulable,
    {
        let _ = f;
        let path = F::path();
        let span = observe::span(span_name(label, path), "runtime.convex.schedule")
            .attr("functionRef", path)
            .attr("boundary", "convex.schedule")
            .attr("delayMs", delay.as_millis() as u64)
            .attr("presentation", presentation())
            .start();
        let (envelope, link) = match &self.options.continuation {
            Some(continuation) => (
                self.continuation_envelope(label, path, continuation).await,
                None,
            ),
            None => (Envelope::new(None), span.scope().map(|s| s.capture())),
        };
        let scheduled = to_json_args(&args).and_then(|mut json| {
            if let Some(fields) = json.as_object_mut() {
                fields.insert(ENVELOPE_KEY.to_owned(), envelope.to_value());
            }
            self.core
                .deployment
                .schedule_json(self.core.txn.as_ref(), path, json, delay, link)
        });
        match &scheduled {
            Ok(_) => span.end(SpanStatus::Ok),
            Err(err) => span.fail(err),
        }
        scheduled
    }

    /// The envelope of a continuation: its context plus a `schedule` boundary on its
    /// current span, announced there with `requested` (the acknowledgements land on the
    /// same span, unlike the TypeScript wrappers) and flushed before enqueueing.
    async fn continuation_envelope(
        &self,
        label: &'static str,
        path: &'static str,
        continuation: &CapturedContext,
    ) -> Envelope {
        let target = continuation
            .current_span_id
            .or_else(|| continuation.span_stack.last().copied());
        let boundary = target.map(|id| Boundary {
            id,
            span_id: id,
            kind: BoundaryKind::Schedule,
            label: wire_label(label, path),
            function_ref: path.to_owned(),
            parent_span_stack: if continuation.span_stack.is_empty() {
                vec![id]
            } else {
                continuation.span_stack.clone()
            },
            lease_expires_at: Some(lease_expiry()),
        });
        if let Some(boundary) = &boundary {
            let attrs = boundary_attributes(boundary);
            observe::with_context(Some(continuation.clone()), async move {
                observe::event(events::REQUESTED, attrs);
            })
            .await;
            self.core
                .deployment
                .observer()
                .flush(FlushOptions::BOUNDARY)
                .await;
        }
        Envelope {
            v: 1,
            observability: Some(continuation.clone()),
            boundary,
        }
    }

    /// Runs `f(args)` at `when` (right away if it has passed); returns the job id.
    pub async fn run_at<F>(
        &self,
        label: &'static str,
        when: SystemTime,
        f: F,
        args: F::Args,
    ) -> Result<Id>
    where
        F: Function,
        F::Context: Schedulable,
    {
        self.run_after(label, delay_until(when), f, args).await
    }

    /// Cancels a job that has not started; a running or finished job is left alone.
    pub async fn cancel(&self, id: &Id) -> Result<()> {
        self.core.deployment.cancel_job(self.core.txn.as_ref(), id)
    }
}

/// The helpers every `ctx.crux` has.
macro_rules! common_helpers {
    () => {
        /// The current context, to hand to a later continuation
        /// ([`ScheduleOptions::continuation`]) or to `observe::with_context`.
        pub fn capture(&self) -> Option<CapturedContext> {
            observe::capture_context()
        }

        /// A span in the current context, nested under the innermost open span.
        pub fn span(
            &self,
            name: impl Into<Cow<'static, str>>,
            primitive: &'static str,
        ) -> SpanBuilder {
            observe::span(name, primitive)
        }

        /// Runs a query in this run: a `runtime.convex.query` span named by `label`, the
        /// context propagated to the query.
        pub async fn run_query<F>(
            &self,
            label: &'static str,
            f: F,
            args: F::Args,
        ) -> Result<F::Output>
        where
            F: Function<Context = QueryCtx>,
        {
            let _ = f;
            self.core
                .run_nested::<F>(label, "runtime.convex.query", args)
                .await
        }
    };
}

/// `ctx.crux` in an action.
#[derive(Debug)]
pub struct ActionCrux {
    core: Core,
    /// Scheduling with a `runtime.convex.schedule` span; detached unless given a continuation.
    pub scheduler: CruxScheduler,
}

impl ActionCrux {
    pub(crate) fn new(deployment: Deployment) -> Self {
        let core = Core {
            deployment,
            txn: None,
        };
        Self {
            scheduler: CruxScheduler {
                core: core.clone(),
                options: ScheduleOptions::default(),
            },
            core,
        }
    }

    common_helpers!();

    /// Runs another action in this run: a `runtime.convex.action` boundary span named by
    /// `label`, a `requested` event, a bounded flush before the child starts and after it
    /// returns. The child's error comes back unchanged.
    ///
    /// ```ignore
    /// let plan = ctx.crux.run_action("plan research", research::plan, PlanArgs { .. }).await?;
    /// ```
    pub async fn run_action<F>(&self, label: &'static str, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = ActionCtx>,
    {
        let _ = f;
        self.core.run_action::<F>(label, args).await
    }

    /// Runs a mutation in this run (its own transaction): a `runtime.convex.mutation` span
    /// named by `label`, the context propagated.
    pub async fn run_mutation<F>(
        &self,
        label: &'static str,
        f: F,
        args: F::Args,
    ) -> Result<F::Output>
    where
        F: Function<Context = MutationCtx>,
    {
        let _ = f;
        self.core
            .run_nested::<F>(label, "runtime.convex.mutation", args)
            .await
    }

    /// Flushes the deployment's records, bounded by `timeout`; never fails.
    pub async fn flush(&self, timeout: Duration) -> observe::FlushResult {
        self.core.deployment.flush(timeout).await
    }
}

/// `ctx.crux` in a query.
#[derive(Debug)]
pub struct QueryCrux {
    core: Core,
}

impl QueryCrux {
    pub(crate) fn new(deployment: Deployment, view: Arc<Transaction>) -> Self {
        Self {
            core: Core {
                deployment,
                txn: Some(view),
            },
        }
    }

    pub(crate) fn view(&self) -> Option<&Arc<Transaction>> {
        self.core.txn.as_ref()
    }

    common_helpers!();
}

/// `ctx.crux` in a mutation.
#[derive(Debug)]
pub struct MutationCrux {
    core: Core,
    /// Scheduling with a `runtime.convex.schedule` span; enqueued only if the mutation commits.
    pub scheduler: CruxScheduler,
}

impl MutationCrux {
    pub(crate) fn new(deployment: Deployment, txn: Arc<Transaction>) -> Self {
        let core = Core {
            deployment,
            txn: Some(txn),
        };
        Self {
            scheduler: CruxScheduler {
                core: core.clone(),
                options: ScheduleOptions::default(),
            },
            core,
        }
    }

    common_helpers!();

    /// Runs a mutation as a sub-transaction in this run: a `runtime.convex.mutation` span
    /// named by `label`, the context propagated.
    pub async fn run_mutation<F>(
        &self,
        label: &'static str,
        f: F,
        args: F::Args,
    ) -> Result<F::Output>
    where
        F: Function<Context = MutationCtx>,
    {
        let _ = f;
        self.core
            .run_nested::<F>(label, "runtime.convex.mutation", args)
            .await
    }
}
