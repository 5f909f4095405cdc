//! The calling side of a boundary in this deployment, `ctx.crux`: calls that keep the
//! callee in the caller's run, scheduling, spans.
//!
//! Every helper hands the caller's context to the callee as its `__crux` argument (the
//! core's [`Hop`]), so the callee continues the run in its own segment as on the other
//! side of a real JSON boundary: a remote callee gets the envelope as JSON; a callee in
//! this deployment gets the envelope the strict decode of that JSON would give (the hop's
//! own, when [`Envelope::round_trips`] holds), or else the JSON text, decoded on arrival.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::console::LogLines;
use super::ctx::{Deadline, INHERITED_DEADLINE_MARGIN};
use super::deployment::Deployment;
use super::dispatch::{Caller, SentEnvelope, from_json_output, to_json_args};
use super::inherited::Inherited;
use super::scheduler::{Schedulable, delay_until};
use super::store::{Id, Transaction};
use super::{ActionCtx, MutationCtx, QueryCtx};
use crux_runtime::Result;
use crux_runtime::boundary::{ENVELOPE_KEY, Hop, continuation_envelope, schedule_span};
use crux_runtime::envelope::Envelope;
use crux_runtime::function::Function;
use crux_runtime::observe::{self, CapturedContext, FlushOptions, SpanBuilder, SpanStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What every `ctx.crux` shares: the deployment and, in a mutation or query, the
/// transaction nested calls join.
#[derive(Clone, Debug)]
struct Core {
    deployment: Deployment,
    txn: Option<Arc<Transaction>>,
    /// The call depth of the function this `ctx.crux` belongs to.
    depth: u32,
    /// Its deadline, which bounds the calls it makes.
    deadline: Deadline,
    /// What the calls it makes inherit (never a scheduled job).
    inherited: Inherited,
}

impl Core {
    /// Calls `F` with `envelope` as [`Via::local`] prepared it (the hop's own boxed
    /// envelope, or its text when that would not decode back to it).
    async fn call_as<F: Function>(
        &self,
        args: F::Args,
        envelope: Option<SentEnvelope>,
        caller: Caller,
    ) -> Result<F::Output> {
        let mut json = to_json_args(&args)?;
        drop(args);
        // `__crux` travels beside the args object; an args field of that name is replaced
        // by it, as if it were inserted into the object.
        let sent = match (envelope, json.as_object_mut()) {
            (Some(sent), Some(fields)) => {
                fields.remove(ENVELOPE_KEY);
                Some(sent)
            }
            _ => None,
        };
        // Boxed: the call's future lives on the heap, not in every frame polling this one.
        let out = Box::pin(self.deployment.dispatch_with(F::path(), json, sent, caller)).await?;
        from_json_output(F::path(), out)
    }

    /// `run_query`/`run_mutation`: a span named by the label, the context propagated, no
    /// boundary and no flush (queries and mutations cannot do network I/O on Convex).
    async fn run_nested<C, F: Callee<C>>(
        &self,
        label: &'static str,
        primitive: &'static str,
        f: &F,
        args: F::Args,
    ) -> Result<F::Output> {
        let via = Via {
            core: self,
            boundary: false,
        };
        Hop::nested(label, primitive, f.path())
            .to_deployment(f.deployment())
            .call(self.deployment.observer(), |envelope| {
                f.call(via, args, envelope)
            })
            .await
    }

    /// `run_action`: the boundary span, `requested`, a flush before the child starts, the
    /// call, the span's end, a flush after. Errors come back unchanged.
    async fn run_action<F: Callee<ActionCtx>>(
        &self,
        label: &'static str,
        f: &F,
        args: F::Args,
    ) -> Result<F::Output> {
        let via = Via {
            core: self,
            boundary: true,
        };
        Hop::action(label, f.path())
            .to_deployment(f.deployment())
            .call(self.deployment.observer(), |envelope| {
                f.call(via, args, envelope)
            })
            .await
    }
}

/// What `ctx.crux.run_action`/`run_query`/`run_mutation` call: a function of this
/// deployment (every [`Function`] whose context is `C`) or a function served elsewhere (a
/// remote reference, such as `crux_client`'s, which implements this trait).
///
/// `C` is the callee's context type (`ActionCtx`, `QueryCtx`, `MutationCtx`), so a query
/// cannot be passed where an action is expected, locally or remotely. The host records the
/// hop (span, `requested`, flushes) the same way for both; only [`Callee::call`] differs.
pub trait Callee<C>: Send + Sync {
    /// The argument object.
    type Args: Serialize + Send + 'static;
    /// What the callee returns on success.
    type Output: DeserializeOwned + Send + 'static;

    /// The callee's Convex path (`dir/file:export`), recorded as the span's `functionRef`.
    fn path(&self) -> &'static str;

    /// Where the callee runs when it is not in this deployment (e.g. its URL), recorded as
    /// the span's `deployment` attribute; `None` for a local function.
    fn deployment(&self) -> Option<&str> {
        None
    }

    /// Makes the call with `envelope` (boxed, as the hop keeps it) as the callee's `__crux`
    /// argument. `via` reaches this deployment (what a local function needs); a remote
    /// callee ignores it.
    fn call(
        &self,
        via: Via<'_>,
        args: Self::Args,
        envelope: Option<Box<Envelope>>,
    ) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// The calling deployment, handed to [`Callee::call`]: a local callee is dispatched
/// through it.
#[derive(Clone, Copy, Debug)]
pub struct Via<'a> {
    core: &'a Core,
    /// Whether the hop is an action boundary (the callee flushes on its own side only when
    /// reached from outside).
    boundary: bool,
}

impl<'a> Via<'a> {
    /// How long the callee may run: the time left before the calling function's execution
    /// limit, less the margin a local callee keeps (so the callee's timeout, not the
    /// caller's, is the one reported). A remote callee bounds its request by it.
    pub fn remaining(&self) -> Duration {
        self.core
            .deadline
            .at
            .saturating_duration_since(tokio::time::Instant::now())
            .saturating_sub(INHERITED_DEADLINE_MARGIN)
    }

    /// Where the calling function's log lines go, if its caller collects them: a remote
    /// callee appends the `logLines` of its reply there, as a local callee's lines land.
    pub fn log_lines(&self) -> Option<&LogLines> {
        self.core.inherited.log_lines.as_ref()
    }

    /// Calls the local function `F` of this deployment. The envelope stays in its box
    /// when its text would decode back to it ([`Envelope::round_trips`]: the callee gets
    /// what the decode would give, without the text being written and read in one
    /// process); otherwise it is written as text here, for the callee's strict decode to
    /// refuse as it would from anywhere. Either way the call's futures carry a pointer or
    /// a string, not the envelope (about 400 bytes, copied each time a future moves).
    fn local<F: Function>(
        self,
        args: F::Args,
        envelope: Option<Box<Envelope>>,
    ) -> impl Future<Output = Result<F::Output>> + Send + 'a {
        let sent = envelope.map(SentEnvelope::of);
        async move {
            let core = self.core;
            let caller = if self.boundary {
                Caller::Boundary {
                    depth: core.depth + 1,
                    deadline: core.deadline,
                    inherited: core.inherited.clone(),
                }
            } else {
                Caller::Function {
                    txn: core.txn.clone(),
                    depth: core.depth + 1,
                    deadline: core.deadline,
                    inherited: core.inherited.clone(),
                }
            };
            core.call_as::<F>(args, sent, caller).await
        }
    }
}

impl<F: Function> Callee<F::Context> for F {
    type Args = F::Args;
    type Output = F::Output;

    fn path(&self) -> &'static str {
        F::path()
    }

    fn call(
        &self,
        via: Via<'_>,
        args: F::Args,
        envelope: Option<Box<Envelope>>,
    ) -> impl Future<Output = Result<F::Output>> + Send {
        via.local::<F>(args, envelope)
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
        let span = schedule_span(label, path, delay.as_millis() as u64);
        let (envelope, link) = match &self.options.continuation {
            Some(continuation) => {
                let envelope = continuation_envelope(label, path, continuation).await;
                if envelope.boundary.is_some() {
                    self.core
                        .deployment
                        .observer()
                        .flush(FlushOptions::BOUNDARY)
                        .await;
                }
                (envelope, None)
            }
            None => (Envelope::new(None), span.id()),
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

/// The helpers every `ctx.crux` has. `$query` bounds what `run_query` accepts: any
/// [`Callee`] in an action, only this deployment's queries in a query or mutation (a
/// remote call would hold the store's snapshot or write lock across the network, and its
/// writes could not roll back with the caller's, so Convex allows none there either).
macro_rules! common_helpers {
    ($query:path) => {
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
            F: $query,
        {
            self.core
                .run_nested(label, "runtime.convex.query", &f, args)
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
    pub(crate) fn new(
        deployment: Deployment,
        depth: u32,
        deadline: Deadline,
        inherited: Inherited,
    ) -> Self {
        let core = Core {
            deployment,
            txn: None,
            depth,
            deadline,
            inherited,
        };
        Self {
            scheduler: CruxScheduler {
                core: core.clone(),
                options: ScheduleOptions::default(),
            },
            core,
        }
    }

    common_helpers!(Callee<QueryCtx>);

    /// Runs another action in this run: a `runtime.convex.action` boundary span named by
    /// `label`, a `requested` event, a bounded flush before the child starts and after it
    /// returns. The child's error comes back unchanged.
    ///
    /// ```ignore
    /// let plan = ctx.crux.run_action("plan research", research::plan, PlanArgs { .. }).await?;
    /// ```
    pub async fn run_action<F>(&self, label: &'static str, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Callee<ActionCtx>,
    {
        self.core.run_action(label, &f, args).await
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
        F: Callee<MutationCtx>,
    {
        self.core
            .run_nested(label, "runtime.convex.mutation", &f, args)
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
    pub(crate) fn new(
        deployment: Deployment,
        view: Arc<Transaction>,
        depth: u32,
        deadline: Deadline,
        inherited: Inherited,
    ) -> Self {
        Self {
            core: Core {
                deployment,
                txn: Some(view),
                depth,
                deadline,
                inherited,
            },
        }
    }

    pub(crate) fn view(&self) -> Option<&Arc<Transaction>> {
        self.core.txn.as_ref()
    }

    common_helpers!(Function<Context = QueryCtx>);
}

/// `ctx.crux` in a mutation.
#[derive(Debug)]
pub struct MutationCrux {
    core: Core,
    /// Scheduling with a `runtime.convex.schedule` span; enqueued only if the mutation commits.
    pub scheduler: CruxScheduler,
}

impl MutationCrux {
    pub(crate) fn new(
        deployment: Deployment,
        txn: Arc<Transaction>,
        depth: u32,
        deadline: Deadline,
        inherited: Inherited,
    ) -> Self {
        let core = Core {
            deployment,
            txn: Some(txn),
            depth,
            deadline,
            inherited,
        };
        Self {
            scheduler: CruxScheduler {
                core: core.clone(),
                options: ScheduleOptions::default(),
            },
            core,
        }
    }

    common_helpers!(Function<Context = QueryCtx>);

    /// Runs a mutation of this deployment as a sub-transaction in this run: a
    /// `runtime.convex.mutation` span named by `label`, the context propagated. (A remote
    /// mutation is for actions: it could not roll back with this one.)
    pub async fn run_mutation<F>(
        &self,
        label: &'static str,
        f: F,
        args: F::Args,
    ) -> Result<F::Output>
    where
        F: Function<Context = MutationCtx>,
    {
        self.core
            .run_nested(label, "runtime.convex.mutation", &f, args)
            .await
    }
}
