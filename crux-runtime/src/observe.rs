//! The public facade: observers, runs, the current context, spans and events.
//!
//! ```
//! use crux_runtime::observe::{self, Observer, RunOptions};
//! use crux_runtime::record::{RunStatus, SpanStatus};
//! use crux_runtime::sink::Memory;
//! use crux_runtime::delivery::FlushOptions;
//!
//! let memory = Memory::new();
//! let observer = Observer::builder().sink(memory.clone()).build();
//! let run = observer.open_run(RunOptions::new("support chat", "agent.run"));
//! {
//!     let _in_run = run.scope().enter();
//!     let span = observe::span("plan", "plan.operation").start();
//!     span.end(SpanStatus::Ok);
//! }
//! let run_id = run.run_id();
//! run.end(RunStatus::Ok);
//! observer.flush_blocking(FlushOptions::FINAL);
//! let records = memory.records_of_run(run_id);
//! let types: Vec<&str> = records.iter().map(|r| r["type"].as_str().unwrap()).collect();
//! assert_eq!(types, ["run:start", "span:start", "span:end", "run:end"]);
//! assert_eq!(records[1]["name"], "plan");
//! assert_eq!(records[1]["parentSpanId"], serde_json::Value::Null);
//! assert_eq!(records[2]["status"], "ok");
//! ```

mod ended;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

pub use crate::attributes::{AttrValue, Attributes};
use crate::clock::Timestamp;
use crate::context::{self, Segment, SegmentInit};
use crate::delivery::{DEFAULT_CAPACITY, Pipeline, lock};
use crate::delivery::{FlushStart, FlushWait};
use crate::envelope::{Correlators, DeploymentIdentity, MAX_LABEL, MAX_METADATA};
use crate::ids::{RunId, SpanId, TraceId};
use crate::record::{Body, SegmentExtra};
use crate::wire::{clamp_id, clamp_text, fits_text};

pub use crate::carrier::{Carrier, CarrierError, TraceParent};
pub use crate::context::CapturedContext;
pub use crate::context::{EnterGuard, Scope, WithContext};
pub use crate::delivery::DeliveryStats;
pub use crate::delivery::{FlushOptions, FlushResult, FlushStatus};
pub use crate::envelope::WireContext;
pub use crate::record::{MetricError, Metrics, RunStatus, SpanField, SpanFields, SpanStatus};
pub use crate::run::Run;
use crate::sink::Sink;
pub use crate::span::{ScopedSpan, Span, SpanBuilder};

/// How many run ends an observer remembers, to refuse resuming those runs (a run ended
/// twice, through two resumptions of one carrier, takes two places).
const ENDED_RUNS_REMEMBERED: usize = 10_000;

type WarningHook = Box<dyn Fn(&str) + Send + Sync>;

struct ObserverInner {
    pipeline: Arc<Pipeline>,
    on_warning: WarningHook,
    /// The `dropped` counter as of the last warning about drops.
    dropped_warned: AtomicU64,
    ended: Mutex<ended::EndedRuns>,
}

impl Drop for ObserverInner {
    fn drop(&mut self) {
        self.pipeline.shutdown();
    }
}

/// Where records go: a delivery pipeline (bounded queue, background worker, sinks) and a
/// warning hook. Cheap to clone; clones share the pipeline.
#[derive(Clone, Default)]
pub struct Observer {
    inner: Option<Arc<ObserverInner>>,
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("Observer(disabled)"),
            Some(_) => f.debug_tuple("Observer").field(&self.stats()).finish(),
        }
    }
}

/// Builds an [`Observer`].
#[must_use = "call `.build()`"]
pub struct ObserverBuilder {
    sinks: Vec<Box<dyn Sink>>,
    capacity: usize,
    on_warning: Option<WarningHook>,
}

impl ObserverBuilder {
    /// Adds a sink (repeatable; sinks are written in the order added).
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// The queue capacity in records (default [`DEFAULT_CAPACITY`], 65 536). When full,
    /// the oldest record is dropped and counted, and the next terminal flush warns how many.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Where warnings go (incomplete terminal flushes, dropped records, a hung sink).
    /// Default: one line on stderr.
    pub fn on_warning(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_warning = Some(Box::new(hook));
        self
    }

    /// Starts the delivery worker and returns the observer.
    pub fn build(self) -> Observer {
        Observer {
            inner: Some(Arc::new(ObserverInner {
                pipeline: Pipeline::start(self.sinks, self.capacity, context::outside_any),
                on_warning: self
                    .on_warning
                    .unwrap_or_else(|| Box::new(|msg: &str| eprintln!("{msg}"))),
                dropped_warned: AtomicU64::new(0),
                ended: Mutex::new(ended::EndedRuns::new(ENDED_RUNS_REMEMBERED)),
            })),
        }
    }
}

/// What a new run is.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The run's human name.
    pub name: Cow<'static, str>,
    /// The root primitive (canonical; an unknown one gets `run:start` rejected).
    pub root: &'static str,
    /// User attributes of `run:start`.
    pub attributes: Attributes,
    /// The parent run of a child run (v4 `parentRunId`/`triggeredBySpanId`).
    pub parent: Option<ParentRun>,
    /// Session/user correlation, stamped on every record.
    pub correlators: Option<Correlators>,
    /// The deployment identity (v3), stamped on every record.
    pub deployment: Option<DeploymentIdentity>,
    /// An incoming W3C `traceparent` (for example from an OpenTelemetry-instrumented HTTP
    /// client): a root run keeps its trace id and records its span as the remote parent.
    /// Ignored when [`parent`](RunOptions::parent) is set (a child run stays in its
    /// parent's trace).
    pub remote_parent: Option<TraceParent>,
}

impl RunOptions {
    /// A root run named `name` with root primitive `root`.
    pub fn new(name: impl Into<Cow<'static, str>>, root: &'static str) -> Self {
        Self {
            name: name.into(),
            root,
            attributes: Attributes::new(),
            parent: None,
            correlators: None,
            deployment: None,
            remote_parent: None,
        }
    }

    /// With these attributes.
    // Inlined: out of line, the options (about 300 bytes) go in and out through memory.
    #[inline]
    pub fn attributes(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// As a child of `parent`.
    pub fn parent(mut self, parent: ParentRun) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Under an incoming W3C `traceparent` (see [`RunOptions::remote_parent`]).
    ///
    /// ```
    /// use crux_runtime::observe::{Observer, RunOptions};
    /// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
    /// let run = Observer::disabled().open_run(RunOptions::new("chat", "agent.run").remote_parent(tp));
    /// assert_eq!(run.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// ```
    pub fn remote_parent(mut self, traceparent: TraceParent) -> Self {
        self.remote_parent = Some(traceparent);
        self
    }

    /// With these correlators. Values beyond what the `__crux` envelope and the carrier
    /// carry (ids over 200 characters, control characters, more than 16 metadata entries,
    /// keys over 64 characters) are cut to fit, so the run still crosses boundaries.
    pub fn correlators(mut self, correlators: Correlators) -> Self {
        self.correlators = Some(correlators);
        self
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions::new("run", "run")
    }
}

/// The parent of a child run: same operation and trace, linked by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentRun {
    /// The parent run.
    pub run_id: RunId,
    /// The parent's operation, which the child joins.
    pub operation_id: RunId,
    /// The parent's trace, which the child continues.
    pub trace_id: TraceId,
    /// The parent's span that triggered the child.
    pub triggered_by_span_id: Option<SpanId>,
}

impl ParentRun {
    /// The parent described by a scope (its top span is the trigger).
    pub fn from_scope(scope: &Scope) -> Self {
        Self {
            run_id: scope.run_id(),
            operation_id: scope.operation_id(),
            trace_id: scope.trace_id(),
            triggered_by_span_id: scope.current_span_id(),
        }
    }

    /// The parent described by a captured context.
    pub fn from_context(ctx: &WireContext) -> Self {
        Self {
            run_id: ctx.run_id,
            operation_id: ctx.operation_id,
            trace_id: ctx.trace_id,
            triggered_by_span_id: ctx.span_stack.last().copied(),
        }
    }
}

fn extra(
    correlators: Option<Correlators>,
    deployment: Option<DeploymentIdentity>,
) -> Option<Arc<SegmentExtra>> {
    let correlators = correlators.map(wire_correlators);
    let deployment = deployment.and_then(wire_deployment);
    (correlators.is_some() || deployment.is_some()).then(|| {
        Arc::new(SegmentExtra {
            correlators,
            deployment,
        })
    })
}

/// The longest metadata key the envelope decoder accepts.
const MAX_METADATA_KEY: usize = 64;

/// Correlators as every envelope and carrier of the run will carry them, within the
/// limits the receiving decoders enforce: a value they refuse would cut every callee off
/// the run (a `security.warning` instead) and make `resume_run` fail. An id too long (or
/// with control characters) keeps a prefix and a digest of the whole ([`clamp_id`]), so
/// two long ids do not become one by accident (correlators are not trusted identity: an id
/// written to match another's cut form on purpose could); metadata texts are cut to their limit with
/// control characters as spaces; an empty id is dropped; metadata keeps its first
/// [`MAX_METADATA`] entries.
fn wire_correlators(c: Correlators) -> Correlators {
    let id_fits = |s: &Option<String>| {
        s.as_deref()
            .is_none_or(|s| !s.is_empty() && fits_text(s, MAX_LABEL))
    };
    if id_fits(&c.session_id)
        && id_fits(&c.user_id)
        && c.metadata.len() <= MAX_METADATA
        && c.metadata
            .iter()
            .all(|(k, v)| fits_text(k, MAX_METADATA_KEY) && fits_text(v, MAX_LABEL))
    {
        // The usual case, checked without rebuilding the map.
        return c;
    }
    let id = |s: Option<String>| s.filter(|s| !s.is_empty()).map(|s| clamp_id(s, MAX_LABEL));
    Correlators {
        session_id: id(c.session_id),
        user_id: id(c.user_id),
        metadata: c
            .metadata
            .into_iter()
            .map(|(k, v)| (clamp_text(k, MAX_METADATA_KEY), clamp_text(v, MAX_LABEL)))
            .take(MAX_METADATA)
            .collect(),
    }
}

/// The deployment identity within the decoders' limits; dropped if a field is empty.
fn wire_deployment(d: DeploymentIdentity) -> Option<DeploymentIdentity> {
    let fields = [&d.project_id, &d.manifest_id, &d.deployment_id];
    if fields.iter().any(|f| f.is_empty()) {
        return None;
    }
    Some(DeploymentIdentity {
        project_id: clamp_text(d.project_id, MAX_LABEL),
        manifest_id: clamp_text(d.manifest_id, MAX_LABEL),
        deployment_id: clamp_text(d.deployment_id, MAX_LABEL),
    })
}

impl Observer {
    /// A builder with no sinks and the default capacity.
    pub fn builder() -> ObserverBuilder {
        ObserverBuilder {
            sinks: Vec::new(),
            capacity: DEFAULT_CAPACITY,
            on_warning: None,
        }
    }

    /// An observer that records nothing (ids are still made, so code paths match).
    pub fn disabled() -> Observer {
        Observer { inner: None }
    }

    /// Whether records go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    #[inline]
    pub(crate) fn pipeline(&self) -> Option<&Arc<Pipeline>> {
        self.inner.as_ref().map(|i| &i.pipeline)
    }

    /// Waits until every record enqueued before this call reached the sinks (and the
    /// sinks flushed), or `opts.timeout` passes. Never panics, never errors; works
    /// under any executor. A terminal flush that does not drain calls the warning hook.
    pub async fn flush(&self, opts: FlushOptions) -> FlushResult {
        let Some(inner) = &self.inner else {
            return FlushResult::EMPTY;
        };
        // Matched here rather than through an `async fn` of `FlushStart`: most flushes
        // are done at once, and a nested coroutine's state is moved and polled for nothing.
        let result = match FlushWait::start(&inner.pipeline, opts.timeout) {
            FlushStart::Done(result) => result,
            FlushStart::Wait(wait) => wait.await,
        };
        self.report(opts, result);
        result
    }

    /// [`flush`](Observer::flush) for synchronous code: blocks the thread, bounded.
    pub fn flush_blocking(&self, opts: FlushOptions) -> FlushResult {
        let Some(inner) = &self.inner else {
            return FlushResult::EMPTY;
        };
        let result = FlushWait::start(&inner.pipeline, opts.timeout).wait_blocking();
        self.report(opts, result);
        result
    }

    /// Warnings after a flush, through the hook: an incomplete terminal flush (not for a
    /// bypassed one: the breaker warned once when it opened); records dropped from the full
    /// queue since the last such warning (at terminal flushes); the circuit breaker opening
    /// (once, whatever the flush).
    // Inlined, the warnings out of line: most flushes are a hop's boundary flushes on a
    // healthy pipeline (two to a hop), which warn of nothing, so they pay one load and a
    // test, not a call into the formatting code's frame.
    #[inline]
    fn report(&self, opts: FlushOptions, r: FlushResult) {
        let Some(inner) = &self.inner else {
            return;
        };
        let hung = inner.pipeline.take_hung_report();
        if hung || opts.terminal {
            warn_after_flush(inner, opts, r, hung);
        }
    }

    /// Delivery counters.
    pub fn stats(&self) -> DeliveryStats {
        self.pipeline().map(|p| p.stats()).unwrap_or_default()
    }

    /// Opens a run: a new segment whose first record (seq 1) is `run:start`.
    pub fn open_run(&self, opts: RunOptions) -> Run {
        let run = self.open_run_unhooked(opts);
        segment_opened(|| run.scope());
        run
    }

    /// [`open_run`](Observer::open_run) without the [segment hook](set_segment_hook): for
    /// a run that holds one record and ends at once (a warning's own run).
    pub(crate) fn open_run_unhooked(&self, opts: RunOptions) -> Run {
        let run_id = RunId::generate();
        let parent = opts.parent;
        let remote = opts.remote_parent.filter(|_| parent.is_none());
        let started = Timestamp::now();
        let segment = Segment::open(
            self.clone(),
            SegmentInit {
                run_id,
                operation_id: parent.map_or(run_id, |p| p.operation_id),
                trace_id: match (parent, remote) {
                    (Some(p), _) => p.trace_id,
                    (None, Some(r)) => r.trace_id,
                    (None, None) => TraceId::generate(),
                },
                extra: extra(opts.correlators, opts.deployment),
                started_at_ms: Some(started.as_millis()),
                parent_run_id: parent.map(|p| p.run_id),
                triggered_by_span_id: parent.and_then(|p| p.triggered_by_span_id),
            },
        );
        // The body built once the slot is taken ([`Segment::reserve`]): written straight
        // into the queued record.
        if let Some(slot) = segment.reserve() {
            slot.fill(Body::RunStart {
                name: opts.name,
                root_primitive: opts.root,
                started_at: started,
                attributes: opts.attributes,
                parent_run_id: parent.map(|p| p.run_id),
                triggered_by_span_id: parent.and_then(|p| p.triggered_by_span_id),
                remote_parent_span_id: remote.map(|r| r.parent_id),
            });
        }
        Run {
            segment,
            started,
            open: true,
        }
    }

    /// Resumes a suspended run in a new segment whose first record (seq 1) is
    /// `run:resume`. The carrier is validated again; a run this observer saw end cannot be
    /// resumed.
    pub fn resume_run(&self, carrier: &Carrier, reason: &str) -> Result<Run, CarrierError> {
        if reason.trim().is_empty() {
            return Err(CarrierError::EmptyReason);
        }
        // Re-validate: a carrier may have been built or edited by hand.
        let carrier = Carrier::decode(&carrier.to_value())?;
        let run_id = carrier.crux.run_id;
        if let Some(inner) = &self.inner
            && lock(&inner.ended).contains(run_id)
        {
            return Err(CarrierError::TerminalRun(run_id));
        }
        let correlators = (carrier.crux.session_id.is_some() || carrier.crux.user_id.is_some())
            .then(|| Correlators {
                session_id: carrier.crux.session_id.clone(),
                user_id: carrier.crux.user_id.clone(),
                metadata: Default::default(),
            });
        let started = Timestamp::now();
        let segment = Segment::open(
            self.clone(),
            SegmentInit {
                run_id,
                operation_id: carrier.crux.operation_id.unwrap_or(run_id),
                trace_id: carrier.traceparent.trace_id,
                extra: extra(correlators, carrier.crux.deployment.clone()),
                started_at_ms: None,
                parent_run_id: None,
                triggered_by_span_id: None,
            },
        );
        segment.emit(Body::RunResume {
            resumed_at: started,
            reason: Cow::Owned(reason.to_owned()),
            previous_segment_id: carrier.crux.previous_segment_id,
            attributes: Attributes::new(),
        });
        let run = Run {
            segment,
            started,
            open: true,
        };
        segment_opened(|| run.scope());
        Ok(run)
    }

    /// Continues a context received over the wire: a NEW segment on the same run, with
    /// the received span stack. No `run:resume` is written; the first record of the new
    /// segment is simply seq 1.
    pub fn continue_context(&self, ctx: &WireContext) -> Scope {
        let segment = Segment::open(
            self.clone(),
            SegmentInit {
                run_id: ctx.run_id,
                operation_id: ctx.operation_id,
                trace_id: ctx.trace_id,
                extra: extra(ctx.correlators.clone(), ctx.deployment.clone()),
                started_at_ms: ctx.started_at_ms,
                parent_run_id: ctx.parent_run_id,
                triggered_by_span_id: ctx.triggered_by_span_id,
            },
        );
        let scope = Scope::with_stack(segment, &ctx.span_stack);
        segment_opened(|| scope.clone());
        scope
    }

    /// Makes this the process-wide observer used where no context names one (see
    /// [`with_context`]). Only the first call wins; returns whether this one did.
    pub fn install_global(&self) -> bool {
        GLOBAL.set(self.clone()).is_ok()
    }

    /// The process-wide observer ([`Observer::disabled`] until one is installed).
    pub fn global() -> Observer {
        GLOBAL.get().cloned().unwrap_or_default()
    }

    pub(crate) fn remember_ended(&self, run_id: RunId) {
        if let Some(inner) = &self.inner {
            lock(&inner.ended).remember(run_id);
        }
    }
}

/// [`Observer::report`]'s warnings, `hung` taken from the pipeline already.
#[inline(never)]
fn warn_after_flush(inner: &ObserverInner, opts: FlushOptions, r: FlushResult, hung: bool) {
    let warn = |msg: String| {
        let hook = &inner.on_warning;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&msg)));
    };
    if hung {
        warn(format!(
            "[crux] a sink has not answered for a whole flush bound ({} ms): flushes stop \
             waiting for it until it answers; records beyond the queue's capacity are \
             dropped and counted",
            opts.timeout.as_millis()
        ));
    }
    if !opts.terminal {
        return;
    }
    if r.status != FlushStatus::Drained && !r.bypassed {
        warn(format!(
            "[crux] observability drain did not fully complete before the boundary returned: \
             status={} delivered={} rejected={} dropped={} remaining={} (bound {} ms)",
            r.status.as_str(),
            r.delivered,
            r.rejected,
            r.dropped,
            r.remaining,
            opts.timeout.as_millis()
        ));
    }
    let dropped = inner.pipeline.counters.dropped.load(Ordering::Acquire);
    // A load first: every action's final flush gets here, and a locked update would
    // take the shared line each time although drops are rare.
    if dropped <= inner.dropped_warned.load(Ordering::Acquire) {
        return;
    }
    let before = inner.dropped_warned.fetch_max(dropped, Ordering::AcqRel);
    if dropped > before {
        warn(format!(
            "[crux] {} records were dropped (oldest first) because the delivery queue was \
             full ({} in all); raise `ObserverBuilder::capacity` or check the sinks",
            dropped - before,
            dropped
        ));
    }
}

static GLOBAL: OnceLock<Observer> = OnceLock::new();

static SEGMENT_HOOK: OnceLock<fn(&Scope)> = OnceLock::new();

/// Installs a process-wide function called with the root scope of every segment this
/// process opens ([`Observer::open_run`], [`Observer::resume_run`],
/// [`Observer::continue_context`]), on the thread that opens it, after its first record
/// and before any of its work runs. Only the first call wins; returns whether this one did.
///
/// For integrations that keep context of their own and attach it to the run starting
/// under it: `crux-tracing` attaches a `tracing` span opened outside any Crux context
/// (tower-http's request span) to the run its request starts. The hook must not open a
/// segment itself; a panic in it propagates to the code opening the segment.
pub fn set_segment_hook(hook: fn(&Scope)) -> bool {
    SEGMENT_HOOK.set(hook).is_ok()
}

/// Calls the segment hook, if any, with the scope `scope` builds (built only then).
#[inline]
fn segment_opened(scope: impl FnOnce() -> Scope) {
    if let Some(hook) = SEGMENT_HOOK.get() {
        hook(&scope());
    }
}

/// The current scope, if code runs inside one.
pub fn current_scope() -> Option<Scope> {
    context::current()
}

/// Makes `scope` current on this thread (`None`: no context) and returns the scope that
/// was current, which the caller restores later with another call.
///
/// For integrations whose enter and exit are two callbacks, so that no guard can live
/// between them (a `tracing` layer's `on_enter`/`on_exit`); code that can hold a guard
/// uses [`Scope::enter`] or [`Scope::in_scope`] instead.
///
/// ```
/// use crux_runtime::observe::{self, Observer, RunOptions};
/// let run = Observer::builder().build().open_run(RunOptions::new("chat", "agent.run"));
/// let previous = observe::replace_current_scope(Some(run.scope()));
/// assert_eq!(observe::current_scope().map(|s| s.run_id()), Some(run.run_id()));
/// observe::replace_current_scope(previous);
/// assert!(observe::current_scope().is_none());
/// ```
pub fn replace_current_scope(scope: Option<Scope>) -> Option<Scope> {
    context::swap_current(scope)
}

/// Whether code runs inside a Crux context (a run, a continued segment, a span): one
/// thread-local read, for integrations (a `tracing` layer) deciding whether to record at
/// all before doing any work for it.
pub fn in_context() -> bool {
    context::with_current(|s| s.is_some())
}

/// Whether code runs inside an open Crux span: one thread-local read, for integrations
/// (a `tracing` layer) that must cost next to nothing outside a run.
pub fn in_span() -> bool {
    context::with_current(|s| s.is_some_and(|s| s.current_span_id().is_some()))
}

/// A snapshot of the current context (`None` outside any), keeping its live segment.
pub fn capture_context() -> Option<CapturedContext> {
    context::with_current(|s| s.map(Scope::capture))
}

/// Runs `fut` under a captured context.
///
/// - `None`: `fut` runs as is (it inherits nothing and clears nothing).
/// - an in-process capture (still live): continues that very segment and span stack.
/// - a deserialized one: continues the run in a NEW segment (opened on the first poll),
///   on the observer of the scope current where the future runs, or else the [global](Observer::global) one (records
///   nothing if none is installed).
pub fn with_context<F: Future>(ctx: Option<CapturedContext>, fut: F) -> WithContext<F> {
    match ctx.map(CapturedContext::into_parts) {
        None => WithContext::new(None, fut),
        Some((_, Some(scope))) => WithContext::new(Some(scope), fut),
        Some((received, None)) => WithContext::received(received, fut),
    }
}

/// The observer of the current scope, or else the [global](Observer::global) one.
pub fn current_observer() -> Observer {
    context::with_current(|s| s.map(|s| s.segment.observer.clone()))
        .unwrap_or_else(Observer::global)
}

/// Resumes a suspended run on the [current observer](current_observer): see
/// [`Observer::resume_run`].
///
/// ```
/// use crux_runtime::observe::{self, Observer, RunOptions};
/// let observer = Observer::builder().build();
/// let carrier = observer.open_run(RunOptions::new("flow", "flow.run")).suspend("await approval");
/// let carrier: observe::Carrier = serde_json::from_value(carrier.to_value()).unwrap(); // a durable table
/// // Later, inside some other run of the same observer:
/// let host = observer.open_run(RunOptions::new("signal handler", "agent.run"));
/// let _in_host = host.scope().enter();
/// let resumed = observe::resume_run(&carrier, "approved").unwrap();
/// assert_eq!(resumed.run_id(), carrier.crux.run_id);
/// ```
pub fn resume_run(carrier: &Carrier, reason: &str) -> Result<Run, CarrierError> {
    current_observer().resume_run(carrier, reason)
}

/// A span in the current context (a disabled one that records nothing outside any).
#[inline]
pub fn span(name: impl Into<Cow<'static, str>>, primitive: &'static str) -> SpanBuilder {
    SpanBuilder::new(context::current(), name.into(), primitive)
}

/// Starts a span with start attributes `attributes` under the current context (nothing
/// recorded outside any): `span(name, primitive).attrs(attributes).start()` in one call,
/// for integrations that open a span per callback (a `tracing` layer) and set nothing
/// else on it before it starts. See [`Scope::start_span`].
///
/// ```
/// use crux_runtime::attributes::Attributes;
/// use crux_runtime::observe::{self, Observer, RunOptions, SpanStatus};
/// let run = Observer::builder().build().open_run(RunOptions::new("chat", "agent.run"));
/// {
///     let _entered = run.scope().enter();
///     let span = observe::start_span("query", "custom.operation", Attributes::new().with("rows", 3));
///     assert!(span.is_recording());
///     span.end(SpanStatus::Ok);
/// }
/// // Outside any context: a disabled span, nothing recorded.
/// let span = observe::start_span("query", "custom.operation", Attributes::new());
/// assert!(!span.is_recording());
/// ```
pub fn start_span(
    name: impl Into<Cow<'static, str>>,
    primitive: &'static str,
    attributes: Attributes,
) -> ScopedSpan {
    context::with_current(|s| match s {
        Some(s) => s.start_span(name, primitive, attributes),
        None => ScopedSpan::new(Span::disabled()),
    })
}

/// Records a `span:event` on the current span (nothing outside any span).
pub fn event(name: impl Into<Cow<'static, str>>, attributes: Attributes) {
    context::with_current(|s| {
        if let Some(s) = s {
            s.event(name, attributes);
        }
    });
}

/// The W3C `traceparent` of the current context (its innermost span, else the run's own
/// span), to inject into an outgoing request; `None` outside any context.
pub fn current_traceparent() -> Option<TraceParent> {
    context::with_current(|s| s.map(Scope::traceparent))
}

impl Scope {
    /// Records a `span:event` on this scope's innermost span (nothing when none is open),
    /// as [`event`] does for the current scope, without making this one current first.
    pub(crate) fn event(&self, name: impl Into<Cow<'static, str>>, attributes: Attributes) {
        if let Some(id) = self.current_span_id() {
            self.segment.span_event(id, name.into(), attributes);
        }
    }

    /// The W3C `traceparent` naming this scope's innermost span (the run's own span,
    /// [`RunId::root_span_id`], when no span is open), sampled.
    pub fn traceparent(&self) -> TraceParent {
        TraceParent {
            trace_id: self.trace_id(),
            parent_id: self
                .current_span_id()
                .unwrap_or_else(|| self.run_id().root_span_id()),
            flags: 1,
        }
    }

    /// A span whose parent is the top of this scope's stack.
    pub fn span(&self, name: impl Into<Cow<'static, str>>, primitive: &'static str) -> SpanBuilder {
        SpanBuilder::new(Some(self.clone()), name.into(), primitive)
    }

    /// Starts a span named `name` with start attributes `attributes` in this scope (its
    /// parent is this scope's innermost span): `self.span(name, primitive).attrs(attributes)
    /// .start()` in one call, for integrations that open a span per callback (a `tracing`
    /// layer) and set nothing else on it. A disabled observer gives a disabled span.
    ///
    /// The span is started with its own scope built: [`ScopedSpan::scope`] is then two
    /// reference counts, and its end gives the scope's allocation back to the thread for
    /// the next span (once no scope made from it lives on), for integrations that make
    /// every span's scope current (`on_enter`).
    ///
    /// ```
    /// use crux_runtime::attributes::Attributes;
    /// use crux_runtime::observe::{Observer, RunOptions, SpanStatus};
    /// let run = Observer::builder().build().open_run(RunOptions::new("chat", "agent.run"));
    /// let span = run.scope().start_span("query", "custom.operation", Attributes::new().with("rows", 3));
    /// assert!(span.is_recording());
    /// span.end(SpanStatus::Ok);
    /// ```
    pub fn start_span(
        &self,
        name: impl Into<Cow<'static, str>>,
        primitive: &'static str,
        attributes: Attributes,
    ) -> ScopedSpan {
        if !self.segment.enabled() {
            return ScopedSpan::new(Span::disabled());
        }
        Span::start_in(self.clone(), name.into(), primitive, attributes)
    }
}
