//! Spans: named, timed units of work with a canonical primitive, inside a run.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::attributes::{AttrValue, Attributes};
use crate::clock::Timestamp;
use crate::context::{self, Scope, SpanNode, WithContext};
use crate::ids::{ArtifactId, EdgeId, EventId, SpanId};
use crate::record::{
    Body, EdgeEnd, ErrorSummary, FinishedSpan, MetricError, Metrics, SpanField, SpanFields,
    SpanStatus,
};
use crate::run::Run;
use crate::wire::{MAX_ERROR_MESSAGE, MAX_ERROR_RAW, cap_text, capped_json};

/// A span about to start; see [`Scope::span`] and [`observe::span`](crate::observe::span).
#[must_use = "a span builder does nothing until `.start()`"]
pub struct SpanBuilder {
    scope: Option<Scope>,
    /// When the work began, if before [`start`](SpanBuilder::start).
    started_at: Option<Timestamp>,
    name: Cow<'static, str>,
    primitive: &'static str,
    attributes: Attributes,
    fields: SpanFields,
    metrics: Metrics,
}

impl SpanBuilder {
    pub(crate) fn new(
        scope: Option<Scope>,
        name: Cow<'static, str>,
        primitive: &'static str,
    ) -> Self {
        Self {
            scope,
            started_at: None,
            name,
            primitive,
            attributes: Attributes::new(),
            fields: SpanFields::new(),
            metrics: Metrics::new(),
        }
    }

    /// Sets the `model` field of `span:start` (the model a generation asked for).
    ///
    /// ```no_run
    /// use crux_runtime::observe::{self, Metrics, SpanStatus};
    ///
    /// let mut span = observe::span("draft reply", "generation.call")
    ///     .model("gpt-5-mini")
    ///     .provider("openai")
    ///     .start();
    /// span.set_metrics(Metrics::tokens(812, 96));
    /// span.end(SpanStatus::Ok);
    /// ```
    pub fn model(self, model: impl Into<Cow<'static, str>>) -> Self {
        self.field(SpanField::Model, model)
    }

    /// Sets the `provider` field of `span:start` (who serves the model).
    pub fn provider(self, provider: impl Into<Cow<'static, str>>) -> Self {
        self.field(SpanField::Provider, provider)
    }

    /// Sets one of the typed fields of `span:start` (`toolName`, `agentId`, ...); a later
    /// value wins, an empty one removes the field.
    ///
    /// ```no_run
    /// use crux_runtime::observe::{self, SpanField};
    ///
    /// let span = observe::span("look up order", "tool.call")
    ///     .field(SpanField::ToolName, "orders.lookup")
    ///     .start();
    /// ```
    pub fn field(mut self, field: SpanField, value: impl Into<Cow<'static, str>>) -> Self {
        if self.scope.is_some() {
            self.fields.set(field, value);
        }
        self
    }

    /// Metrics for the span's end (or for the record of
    /// [`record_finished`](SpanBuilder::record_finished)); metrics set on the [`Span`]
    /// later are added to these.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        if self.scope.is_some() {
            self.metrics.extend(metrics);
        }
        self
    }

    /// Adds a start attribute.
    pub fn attr(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<AttrValue>) -> Self {
        if self.scope.is_some() {
            self.attributes.set(key, value);
        }
        self
    }

    /// Adds several start attributes.
    // Inlined: a builder moved through an out-of-line call is copied in and out (an
    // integration's span, the `tracing` layer's, pays it on every span).
    #[inline]
    pub fn attrs(mut self, attributes: Attributes) -> Self {
        if self.scope.is_some() {
            self.attributes.extend(attributes);
        }
        self
    }

    /// The span's start time, for work that began before it was recorded (a request
    /// whose span joins the run the request started); default: when `start` is called.
    /// The duration on `span:end` is measured from it.
    pub fn started_at(mut self, at: Timestamp) -> Self {
        self.started_at = Some(at);
        self
    }

    /// Records a span that already finished, as one combined `span` record (start and
    /// end together); returns its id (`None` outside any context).
    ///
    /// For work timed elsewhere (a model call reported after the fact, a span imported
    /// from another tracer). A start after the end is recorded as a zero duration.
    pub fn record_finished(
        self,
        started_at: Timestamp,
        ended_at: Timestamp,
        status: SpanStatus,
    ) -> Option<SpanId> {
        let scope = self.scope.filter(|s| s.segment.enabled())?;
        let id = SpanId::generate();
        scope.segment.emit(Body::Span(Box::new(FinishedSpan {
            span_id: id,
            parent_span_id: scope.current_span_id(),
            primitive: self.primitive,
            name: self.name,
            started_at,
            ended_at,
            duration_ms: ended_at.millis_since(started_at),
            status,
            error: None,
            fields: self.fields,
            metrics: self.metrics,
            attributes: self.attributes,
        })));
        Some(id)
    }

    /// Emits `span:start` and returns the open span.
    ///
    /// A primitive outside the taxonomy is not a panic: the records are counted as
    /// `rejected` by delivery. The parent is the top of the builder's scope.
    pub fn start(self) -> Span {
        let Some(scope) = self.scope.filter(|s| s.segment.enabled()) else {
            return Span::disabled();
        };
        let started = self.started_at.unwrap_or_else(Timestamp::now);
        Span::open(
            scope,
            started,
            self.name,
            self.primitive,
            self.fields,
            self.attributes,
            self.metrics,
        )
    }

    /// [`start`](SpanBuilder::start), with the span's own scope built as
    /// [`Scope::start_span`] builds it: for an integration that makes the span's scope
    /// current again and again (each [`ScopedSpan::scope`] two reference counts, no
    /// allocation) and needs a builder's options ([`started_at`](SpanBuilder::started_at),
    /// fields).
    ///
    /// ```
    /// use crux_runtime::clock::Timestamp;
    /// use crux_runtime::observe::{Observer, RunOptions, SpanStatus};
    /// let run = Observer::builder().build().open_run(RunOptions::new("chat", "agent.run"));
    /// let t = Timestamp::now();
    /// let span = run.scope().span("request", "custom.operation").started_at(t).start_with_scope();
    /// assert_eq!(span.scope().unwrap().current_span_id(), span.id());
    /// span.end(SpanStatus::Ok);
    /// ```
    pub fn start_with_scope(self) -> ScopedSpan {
        ScopedSpan::new(self.start())
    }
}

impl Span {
    /// Emits `span:start` in `scope` (whose segment records) and returns the open span:
    /// the steps of [`SpanBuilder::start`], for it and [`start_current`](Span::start_current).
    // Always inlined: the parts go from the caller's frame straight into the record.
    #[inline(always)]
    fn open(
        scope: Scope,
        started: Timestamp,
        name: Cow<'static, str>,
        primitive: &'static str,
        fields: SpanFields,
        attributes: Attributes,
        metrics: Metrics,
    ) -> Span {
        let id = SpanId::generate();
        let parent_span_id = scope.current_span_id();
        // The body is built once the slot is taken, so its fields go from the builder
        // straight into the record.
        if let Some(slot) = scope.segment.reserve() {
            slot.fill(Body::SpanStart {
                span_id: id,
                parent_span_id,
                primitive,
                name,
                started_at: started,
                fields,
                attributes,
            });
        }
        Span {
            live: Some(Live {
                scope,
                id,
                started,
                end_attributes: Attributes::new(),
                metrics,
            }),
        }
    }

    /// Starts a span with start attributes `attributes` (and nothing else set) under the
    /// current scope: `observe::span(name, primitive).attrs(attributes).start()` without
    /// the builder, for a hop's span ([`Hop`](crate::boundary::Hop)), which sets nothing
    /// else. Built and passed to the out-of-line `start`, the builder (152 bytes) was
    /// copied once more on every hop.
    // Always inlined: the parts go from the caller's frame straight into the record.
    #[inline(always)]
    pub(crate) fn start_current(
        name: &'static str,
        primitive: &'static str,
        attributes: Attributes,
    ) -> Span {
        match context::current().filter(|s| s.segment.enabled()) {
            Some(scope) => Span::open(
                scope,
                Timestamp::now(),
                Cow::Borrowed(name),
                primitive,
                SpanFields::new(),
                attributes,
                Metrics::new(),
            ),
            None => Span::disabled(),
        }
    }

    /// Starts a span with start attributes `attributes` (and nothing else set) in `scope`,
    /// whose segment records: what [`SpanBuilder::start`] does, for
    /// [`Scope::start_span`] and [`observe::start_span`](crate::observe::start_span),
    /// without a builder (its 152 bytes built and moved into an out-of-line `start`), with
    /// the node of its own scope beside it ([`ScopedSpan`]).
    ///
    /// The steps of [`Span::open`], written again on purpose: this calling `open` and
    /// building the node from the span it returns measured 23 instructions more per
    /// `tracing` span (`crux-otel/benches/tracing-span-callgrind.sh` under
    /// `--fair-sched=yes`: 2 128 -> 2 151 with one field, 1 811 -> 1 834 without), and
    /// `SpanBuilder::start` calling this, 26 more per span (452 -> 478).
    // Always inlined: the parts go from the caller's frame straight into the record.
    #[inline(always)]
    pub(crate) fn start_in(
        scope: Scope,
        name: Cow<'static, str>,
        primitive: &'static str,
        attributes: Attributes,
    ) -> ScopedSpan {
        let id = SpanId::generate();
        let started = Timestamp::now();
        let parent_span_id = scope.current_span_id();
        if let Some(slot) = scope.segment.reserve() {
            slot.fill(Body::SpanStart {
                span_id: id,
                parent_span_id,
                primitive,
                name,
                started_at: started,
                fields: SpanFields::new(),
                attributes,
            });
        }
        // The span's own scope's node, built here so the span and the node are written
        // straight into the returned value (`ScopedSpan::new(span)`, the span moved into
        // it, measured 6 instructions more per `tracing` span).
        let node = context::span_node(id, scope.top.clone());
        ScopedSpan {
            span: Span {
                live: Some(Live {
                    scope,
                    id,
                    started,
                    end_attributes: Attributes::new(),
                    metrics: Metrics::new(),
                }),
            },
            node: Some(node),
        }
    }
}

struct Live {
    /// The scope the span was opened in (its parent's frame).
    scope: Scope,
    id: SpanId,
    started: Timestamp,
    end_attributes: Attributes,
    metrics: Metrics,
}

/// An open span. End it with [`end`](Span::end) or [`fail`](Span::fail).
///
/// Dropping a span without ending it (for example when its future is cancelled) records
/// `span:end` with status `cancelled`, so trees never keep phantom running spans.
pub struct Span {
    live: Option<Live>,
}

// `into_live` skips `Drop` with `ManuallyDrop` and takes `live` out: leak-free only while
// `live` is the span's one field.
const _: () = assert!(std::mem::size_of::<Span>() == std::mem::size_of::<Option<Live>>());

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span").field("id", &self.id()).finish()
    }
}

impl Span {
    /// A span that records nothing.
    pub fn disabled() -> Span {
        Span { live: None }
    }

    /// Whether this span records anything.
    pub fn is_recording(&self) -> bool {
        self.live.is_some()
    }

    /// The span id (`None` for a disabled span).
    pub fn id(&self) -> Option<SpanId> {
        self.live.as_ref().map(|l| l.id)
    }

    /// The scope the span was started in (its parent's): what a boundary reads its context
    /// from, without reading the thread's current scope a second time.
    pub(crate) fn parent_scope(&self) -> Option<&Scope> {
        self.live.as_ref().map(|l| &l.scope)
    }

    /// When the span started (`None` for a disabled span): a boundary's lease runs from it,
    /// without reading the clock again.
    pub(crate) fn started(&self) -> Option<Timestamp> {
        self.live.as_ref().map(|l| l.started)
    }

    /// The scope with this span pushed on the stack: work run under it nests here.
    pub fn scope(&self) -> Option<Scope> {
        self.live.as_ref().map(|l| l.scope.push(l.id))
    }

    /// Runs `fut` with this span current, so spans started inside it nest under this one.
    ///
    /// A disabled span runs `fut` under the context current at this call.
    ///
    /// ```no_run
    /// # async fn embed() {}
    /// use crux_runtime::observe;
    /// use crux_runtime::record::SpanStatus;
    ///
    /// # async fn demo() {
    /// let span = observe::span("embed chunks", "embedding.call").start();
    /// span.in_scope(embed()).await;
    /// span.end(SpanStatus::Ok);
    /// # }
    /// ```
    pub fn in_scope<F: std::future::Future>(&self, fut: F) -> WithContext<F> {
        match self.scope() {
            Some(scope) => scope.in_scope(fut),
            None => WithContext::new(crate::context::current(), fut),
        }
    }

    /// Records a `span:event` on this span.
    pub fn event(&self, name: impl Into<Cow<'static, str>>, attributes: Attributes) {
        if let Some(l) = &self.live {
            l.scope.segment.span_event(l.id, name.into(), attributes);
        }
    }

    /// Sets an attribute reported on `span:end`.
    pub fn set_attr(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<AttrValue>) {
        if let Some(l) = &mut self.live {
            l.end_attributes.set(key, value);
        }
    }

    /// Sets a metric reported on `span:end` (`inputTokens`, `costUsd`, `gen.*`,
    /// `custom.*`, ...; see [`Metrics`]).
    ///
    /// A key the schema does not allow is refused with [`MetricError::UnknownKey`] and
    /// nothing is recorded for it; a non-finite value is stripped. On a disabled span the
    /// key is still checked, so a typo shows up whether or not anything records.
    pub fn set_metric(
        &mut self,
        key: impl Into<Cow<'static, str>>,
        value: f64,
    ) -> Result<(), MetricError> {
        let key = key.into();
        crate::record::check_metric_key(&key)?;
        if let Some(l) = &mut self.live {
            l.metrics.set(key, value)?;
        }
        Ok(())
    }

    /// Adds `metrics` (already checked) to those reported on `span:end`.
    pub fn set_metrics(&mut self, metrics: Metrics) {
        if let Some(l) = &mut self.live {
            l.metrics.extend(metrics);
        }
    }

    /// Emits an `edge` (`triggered`) from this span to `run`.
    pub fn link_run(&self, run: &Run) {
        self.link(EdgeEnd::Run(run.run_id()), "triggered", Attributes::new());
    }

    /// Emits an `edge` of `edge_type` (canonical or `custom.*`) from this span to `to`.
    pub fn link(&self, to: EdgeEnd, edge_type: &'static str, attributes: Attributes) {
        if let Some(l) = &self.live {
            l.scope.segment.emit(Body::Edge {
                edge_id: EdgeId::generate(),
                edge_type,
                from: EdgeEnd::Span(l.id),
                to,
                created_at: Timestamp::now(),
                attributes,
            });
        }
    }

    /// Ends the span with `status`.
    pub fn end(self, status: SpanStatus) {
        if let Some(live) = self.into_live() {
            live.finish(status, None);
        }
    }

    /// The open span's state, taken without running [`Drop`]: an ended span would only
    /// check it again, and the drop glue of the emptied field is one more call per span.
    fn into_live(self) -> Option<Live> {
        std::mem::ManuallyDrop::new(self).live.take()
    }

    /// Ends the span as `error`, recording the evidence: an `exception` event, an
    /// `error.raw` artifact with the error's JSON, and the error summary on `span:end`.
    ///
    /// Messages are cut to [`MAX_ERROR_MESSAGE`] and the artifact's preview to
    /// [`MAX_ERROR_RAW`] bytes (the cut marked, `sizeBytes` the full size), so a huge error
    /// cannot blow up a record; `error` itself is untouched.
    pub fn fail(self, error: &crate::Error) {
        // The evidence is built while the span still owns its state, so a panic on the way
        // leaves it to `Drop` (recorded as cancelled), never without its `span:end`.
        let Some(l) = &self.live else {
            return;
        };
        let seg = &l.scope.segment;
        let now = Timestamp::now();
        seg.emit(Body::SpanEvent {
            span_id: l.id,
            event_id: EventId::generate(),
            name: Cow::Borrowed("exception"),
            timestamp: now,
            attributes: Attributes::new()
                .with("exception.type", error.name())
                .with(
                    "exception.message",
                    cap_text(error.message(), MAX_ERROR_MESSAGE).into_owned(),
                )
                .with("error.kind", format!("{:?}", error.kind())),
        });
        let (raw, size) = capped_json(error, MAX_ERROR_RAW);
        seg.emit(Body::Artifact {
            artifact_id: ArtifactId::generate(),
            span_id: Some(l.id),
            kind: "error.raw",
            created_at: now,
            content_type: "application/json",
            encoding: "json",
            size_bytes: Some(size as u64),
            preview: Some(raw),
        });
        let summary = ErrorSummary::from(error);
        if let Some(l) = self.into_live() {
            l.finish(SpanStatus::Error, Some(summary));
        }
    }
}

impl Live {
    /// Records `span:end`.
    fn finish(self, status: SpanStatus, error: Option<ErrorSummary>) {
        let now = Timestamp::now();
        let duration_ms = now.millis_since(self.started);
        let Live {
            scope,
            id,
            end_attributes,
            metrics,
            ..
        } = self;
        // As in `start`: the body built once the slot is taken.
        if let Some(slot) = scope.segment.reserve() {
            slot.fill(Body::SpanEnd {
                span_id: id,
                ended_at: now,
                duration_ms,
                status,
                error,
                metrics,
                attributes: end_attributes,
            });
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        // A span ended with `end`/`fail` never gets here (`into_live`): only a span
        // dropped while open is recorded as cancelled.
        if let Some(mut live) = self.live.take() {
            live.end_attributes.set("crux.dropped", true);
            live.finish(SpanStatus::Cancelled, None);
        }
    }
}

/// A span started with the node of its own scope: from [`Scope::start_span`],
/// [`observe::start_span`](crate::observe::start_span) or
/// [`SpanBuilder::start_with_scope`], for integrations that make a span's scope current
/// again and again (a `tracing` layer's `on_enter`). [`scope`](ScopedSpan::scope) is then
/// two reference counts, no allocation, every call a scope on the same node; ending the
/// span gives the node back to the thread for its next such span, once the last of those
/// scopes is dropped. Everything else is the [`Span`]'s (`Deref`).
///
/// The node is kept beside the span, not in its state, so a plain [`Span`] carries and
/// checks nothing for it (callgrind, `overhead::span::crux`: 458 instructions per span with
/// the node inside, 452 without). Dropping one without ending it records the span as
/// cancelled, as for any [`Span`]; its node is then freed, not kept.
pub struct ScopedSpan {
    span: Span,
    /// `None` for a disabled span.
    node: Option<Arc<SpanNode>>,
}

impl ScopedSpan {
    /// `span` with its own scope's node built.
    #[inline(always)]
    pub(crate) fn new(span: Span) -> ScopedSpan {
        let node = span
            .live
            .as_ref()
            .map(|l| context::span_node(l.id, l.scope.top.clone()));
        ScopedSpan { span, node }
    }

    /// The scope with this span pushed on the stack (its own node): work run under it
    /// nests here.
    pub fn scope(&self) -> Option<Scope> {
        match (&self.span.live, &self.node) {
            (Some(l), Some(node)) => Some(l.scope.with_top(Arc::clone(node))),
            _ => None,
        }
    }

    /// Runs `fut` with this span current, as [`Span::in_scope`] does, on the span's own node.
    pub fn in_scope<F: std::future::Future>(&self, fut: F) -> WithContext<F> {
        match self.scope() {
            Some(scope) => scope.in_scope(fut),
            None => WithContext::new(crate::context::current(), fut),
        }
    }

    /// Ends the span with `status` ([`Span::end`]) and gives its node back.
    pub fn end(self, status: SpanStatus) {
        // The parts taken out where they are, not the span moved out and then its state
        // moved out of it (`Span::end`): `ScopedSpan` has no `Drop`, and `Span`'s finds
        // nothing once `live` is taken. Nothing may be left to drop: the pattern names
        // every field (no `..`), so a field added to either struct fails to compile here
        // rather than leak (and see the size check below).
        let mut this = std::mem::ManuallyDrop::new(self);
        let ScopedSpan {
            span: Span { live },
            node,
        } = &mut *this;
        // Before the end record: the node's parent is let go of while it is still warm.
        if let Some(node) = node.take() {
            context::keep_spare(node);
        }
        if let Some(live) = live.take() {
            live.finish(status, None);
        }
    }

    /// Ends the span as `error` ([`Span::fail`]) and gives its node back.
    pub fn fail(self, error: &crate::Error) {
        let ScopedSpan { span, node } = self;
        if let Some(node) = node {
            context::keep_spare(node);
        }
        span.fail(error);
    }
}

// `end` skips `Drop` with `ManuallyDrop` and takes both fields out: leak-free only while
// they are the scoped span's only fields.
const _: () = assert!(
    std::mem::size_of::<ScopedSpan>()
        == std::mem::size_of::<Span>() + std::mem::size_of::<Option<Arc<SpanNode>>>()
);

impl std::ops::Deref for ScopedSpan {
    type Target = Span;

    fn deref(&self) -> &Span {
        &self.span
    }
}

impl std::ops::DerefMut for ScopedSpan {
    fn deref_mut(&mut self) -> &mut Span {
        &mut self.span
    }
}

impl fmt::Debug for ScopedSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedSpan")
            .field("id", &self.id())
            .finish()
    }
}
