//! `tracing` integration for crux (the `crux` facade's feature `tracing`): [`CruxLayer`], a
//! `tracing_subscriber` layer that turns `tracing` spans opened inside a Crux context into
//! Crux spans and `tracing` events into `span:event` records on the innermost span, so
//! `#[instrument]`ed helpers, library spans and logs written inside a handler land in the
//! run's tree (and, through the `otel` feature's sink, in OpenTelemetry).
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//! let subscriber = tracing_subscriber::registry().with(crux_tracing::CruxLayer::new());
//! # let _ = subscriber;
//! ```
//!
//! Spans:
//! - A `tracing` span created inside a Crux context (or with an explicit `parent:` that is a
//!   Crux span already) becomes a Crux span under the current Crux span: its name, its
//!   creation to its close (an `.instrument()`ed future polled many times is one span), its
//!   fields as typed attributes (plus `level` and `target`). Fields recorded later
//!   (`Span::record`) are reported on `span:end`.
//! - Entering it makes its Crux scope current, so Crux spans and `tracing` spans opened
//!   inside nest under it, also in a task spawned with `.instrument(span)`.
//! - An `error` field, or an `ERROR` event inside it (what `#[instrument(err)]` writes),
//!   ends it as `error` with that message.
//! - Its primitive: a `crux.primitive` field naming a canonical primitive, else the first
//!   matching rule of [`CruxLayer::primitive_for_target`]/[`CruxLayer::primitive_for_name`],
//!   else [`DEFAULT_PRIMITIVE`].
//! - A span opened outside any Crux context whose target matches
//!   [`CruxLayer::outer_spans_for_target`] (by default `tower_http`: tower-http's
//!   `TraceLayer` opens its request span before the handler's run starts) joins the first
//!   run, or continued segment, that starts while it is entered: it becomes a Crux span at
//!   the root of that segment (under the caller's span for a continued context), with its
//!   own start time and the fields it was opened with, and ends when it closes (for
//!   tower-http, once the response body is sent: after `run:end`, in the same segment).
//!   Work inside the run nests under the run, not under it: the run's context is installed
//!   inside the request's future.
//!
//! Events become Crux events named after their message (or their callsite name), with the
//! attributes `level`, `target` and every field, on the innermost span (the `tracing`
//! span's or a Crux span opened inside it); an explicit `parent:` that is a Crux span
//! wins. Outside any Crux context the layer costs a thread-local read per span and event
//! opened (whether a context is current) and per exit (the thread's entered spans), an
//! atomic load per enter and two per close (whether its table ever held a span; whether
//! any span is pending), and a check of the span's target against the outer targets
//! (`tower_http`): 852 instructions a span against 702 under a layer that does nothing
//! (crux-otel's `tracing_span` bench). Once the layer has recorded a span, enter and close
//! also load the id its table holds in the span's slot and whether any span overflowed
//! its slot.
//!
//! One `CruxLayer` per subscriber: the layer keeps the Crux spans of its subscriber's open
//! `tracing` spans itself, so a clone starts empty (for another subscriber, whose span ids
//! may equal this one's), and replacing the layer while spans are open (for instance through
//! `tracing_subscriber::reload`) ends those spans at once as `cancelled` with
//! `crux.dropped = true`; spans opened after the swap are recorded as usual. A span entered
//! across the swap gives its scope back when it exits if the new layer is a clone of the
//! old one (`modify(|l| *l = l.clone())`, which keeps the old layer's name for its entered
//! spans); through any other layer its scope stays current until the Crux scope it was
//! entered in is left.

use std::any::TypeId;
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing_core::span::{self, Id};
use tracing_core::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crux_runtime::attributes::Attributes;
use crux_runtime::clock::Timestamp;
use crux_runtime::observe::{self, Scope, ScopedSpan, SpanStatus};

mod fields;
mod spin;
mod table;
use fields::Fields;
use table::Table;

/// The primitive of a `tracing` span with no `crux.primitive` field and no matching rule:
/// `custom.operation`, the canonical taxonomy's catch-all.
pub const DEFAULT_PRIMITIVE: &str = "custom.operation";

/// The field that names a span's Crux primitive (`crux.primitive = "tool.call"`).
pub const PRIMITIVE_FIELD: &str = "crux.primitive";

/// A `tracing_subscriber` layer that records `tracing` spans and events in the current Crux
/// run (see the [crate docs](crate)).
#[derive(Clone, Debug)]
pub struct CruxLayer {
    max_level: Level,
    rules: Vec<Rule>,
    default_primitive: &'static str,
    /// Targets (prefixes) of spans that, opened outside any context, join the next run.
    outer_targets: Vec<Cow<'static, str>>,
    /// Set once the layer is added to a subscriber (`on_layer`): how the segment hook
    /// finds this subscriber's spans.
    adopter: Option<Adopter>,
    /// The `tracing` spans of this layer's subscriber that hold a Crux span, by id (kept
    /// here rather than in the registry's span extensions: no box and no registry lookup
    /// per span; see `table`).
    recorded: Table<Recorded>,
    /// What names this layer's spans in the thread's entered spans ([`ENTERED`]).
    token: Token,
}

/// A layer's name in [`ENTERED`], from [`NEXT_TOKEN`]: a fresh one in `on_layer` (a clone
/// added to another subscriber is another layer: two subscribers' span ids may be equal,
/// and a thread may use both, one `set_default` inside another), copied by `Clone` (a
/// clone put in its place by `reload` keeps it: the spans entered across the swap exit
/// through it). A layer whose `on_layer` never ran takes one on its first entered span.
#[derive(Debug)]
struct Token(AtomicUsize);

impl Token {
    /// The token, taken from [`NEXT_TOKEN`] if this is the first use.
    #[inline(always)]
    fn get(&self) -> usize {
        match self.0.load(Ordering::Relaxed) {
            0 => self.take_fresh(),
            token => token,
        }
    }

    #[cold]
    fn take_fresh(&self) -> usize {
        let fresh = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        match self
            .0
            .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => fresh,
            Err(set) => set,
        }
    }
}

impl Clone for Token {
    fn clone(&self) -> Self {
        Token(AtomicUsize::new(self.0.load(Ordering::Relaxed)))
    }
}

/// The next layer token (0 is none yet).
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(1);

/// Attaches the pending spans current on this thread to a segment that just opened; one
/// per subscriber type, reached from the current `Dispatch` through `downcast_raw`.
#[derive(Clone, Copy, Debug)]
struct Adopter(fn(&Dispatch, &Scope));

#[derive(Clone, Debug)]
struct Rule {
    on_target: bool,
    prefix: Cow<'static, str>,
    primitive: &'static str,
}

impl Default for CruxLayer {
    fn default() -> Self {
        Self {
            max_level: Level::TRACE,
            rules: Vec::new(),
            default_primitive: DEFAULT_PRIMITIVE,
            outer_targets: vec![Cow::Borrowed("tower_http")],
            adopter: None,
            recorded: Table::new(),
            token: Token(AtomicUsize::new(0)),
        }
    }
}

impl CruxLayer {
    /// Records spans and events of every level.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records only spans and events at `level` or more severe (`Level::INFO` keeps `INFO`,
    /// `WARN` and `ERROR`). Work inside a span left out nests under its nearest recorded
    /// ancestor.
    pub fn with_max_level(mut self, level: Level) -> Self {
        self.max_level = level;
        self
    }

    /// Spans whose target starts with `prefix` (`"tower_http"`, `"sqlx"`) get `primitive`
    /// (canonical or `custom.*`; another is counted as `rejected` by delivery). Rules are
    /// tried in the order added; a `crux.primitive` field wins over them.
    pub fn primitive_for_target(
        mut self,
        prefix: impl Into<Cow<'static, str>>,
        primitive: &'static str,
    ) -> Self {
        self.rules.push(Rule {
            on_target: true,
            prefix: prefix.into(),
            primitive,
        });
        self
    }

    /// Spans whose name starts with `prefix` get `primitive` (see
    /// [`primitive_for_target`](CruxLayer::primitive_for_target)).
    pub fn primitive_for_name(
        mut self,
        prefix: impl Into<Cow<'static, str>>,
        primitive: &'static str,
    ) -> Self {
        self.rules.push(Rule {
            on_target: false,
            prefix: prefix.into(),
            primitive,
        });
        self
    }

    /// Spans whose target starts with `prefix`, opened outside any Crux context, join the
    /// first run (or continued segment) that starts while they are entered, as Crux spans
    /// keeping their own start time (see the [crate docs](crate)). `tower_http` is in the
    /// list from the start; spans of other targets opened outside a context cost only this
    /// prefix check.
    pub fn outer_spans_for_target(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.outer_targets.push(prefix.into());
        self
    }

    /// No span opened outside a Crux context joins a run (not even tower-http's).
    pub fn without_outer_spans(mut self) -> Self {
        self.outer_targets.clear();
        self
    }

    /// The primitive of spans no field or rule names (default [`DEFAULT_PRIMITIVE`]).
    pub fn default_primitive(mut self, primitive: &'static str) -> Self {
        self.default_primitive = primitive;
        self
    }

    /// Whether spans of `target` opened outside any context wait for the next run.
    fn is_outer_target(&self, target: &str) -> bool {
        let first = target.as_bytes().first();
        self.outer_targets.iter().any(|t| {
            // The first bytes first: most targets differ there, and the rest is compared by
            // a call (885 → 865 instructions per span outside any context, for a target not
            // starting with `t`; one sharing a prefix's first byte still pays the compare).
            t.as_bytes().first().is_none_or(|b| first == Some(b)) && target.starts_with(&**t)
        })
    }

    fn primitive_for(&self, meta: &Metadata<'_>) -> &'static str {
        self.rules
            .iter()
            .find(|r| {
                let s = if r.on_target {
                    meta.target()
                } else {
                    meta.name()
                };
                s.starts_with(&*r.prefix)
            })
            .map_or(self.default_primitive, |r| r.primitive)
    }
}

/// What the layer keeps for a `tracing` span recorded as a Crux span.
struct Recorded {
    /// Its scope (`span.scope()`, the span on top) is made current while the `tracing` span
    /// is entered: started with `start_span`, that is two reference counts.
    span: ScopedSpan,
    /// The first error recorded in it (an `error` field or an `ERROR` event).
    error: Option<String>,
}

/// A span opened outside any Crux context that will join the next segment opened while it
/// is entered: what it was opened with.
struct Pending {
    started_at: Timestamp,
    name: &'static str,
    primitive: &'static str,
    attributes: Attributes,
    /// Fields recorded after it opened, reported on `span:end`.
    later: Attributes,
    error: Option<String>,
}

/// How many `tracing` spans are [`Pending`], in any subscriber: while none is, the segment
/// hook returns at once.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// The segment hook (`observe::set_segment_hook`): the current dispatcher's layer attaches
/// its pending spans to the segment that just opened.
fn adopt_outer_spans(root: &Scope) {
    if PENDING.load(Ordering::Relaxed) == 0 {
        return;
    }
    tracing_core::dispatcher::get_default(|dispatch| {
        if let Some(adopter) = dispatch.downcast_ref::<Adopter>() {
            (adopter.0)(dispatch, root);
        }
    });
}

/// [`Adopter`] for subscriber type `S`: walks from the current span to the root, stopping
/// at a span that holds a Crux span already, and turns the pending spans on the way into
/// Crux spans of `root`'s segment, outermost first (each nested in the previous one).
fn adopt<S>(dispatch: &Dispatch, root: &Scope)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let (Some(subscriber), Some(layer)) = (
        dispatch.downcast_ref::<S>(),
        dispatch.downcast_ref::<CruxLayer>(),
    ) else {
        return;
    };
    let Some(current) = subscriber.current_span().id().cloned() else {
        return;
    };
    let Some(span) = subscriber.span(&current) else {
        return;
    };
    let mut pending = Vec::new();
    for s in span.scope() {
        if layer.recorded.contains(&s.id()) {
            break;
        }
        if s.extensions().get::<Pending>().is_some() {
            pending.push(s);
        }
    }
    let mut parent = root.clone();
    for s in pending.into_iter().rev() {
        let Some(p) = s.extensions_mut().remove::<Pending>() else {
            continue;
        };
        PENDING.fetch_sub(1, Ordering::Relaxed);
        let mut span = parent
            .span(p.name, p.primitive)
            .attrs(p.attributes)
            .started_at(p.started_at)
            .start_with_scope();
        for (key, value) in p.later.iter() {
            span.set_attr(key.to_owned(), value.clone());
        }
        let Some(scope) = span.scope() else {
            return; // a disabled observer: nothing to record
        };
        parent = scope;
        layer.recorded.insert(
            &s.id(),
            Recorded {
                span,
                error: p.error,
            },
        );
    }
}

/// A span entered on this thread: its layer's [`Token`] and its id.
type Entered = (usize, u64);

thread_local! {
    /// The `tracing` spans this thread entered that installed a Crux scope, innermost last,
    /// each with the scope it replaced, named by their layer's [`Token`] and id: two
    /// subscribers' span ids may be equal, and a thread may use both (one `set_default`
    /// inside another).
    static ENTERED: RefCell<Vec<(Entered, Option<Scope>)>> = const { RefCell::new(Vec::new()) };
}

impl CruxLayer {
    /// Keeps what a span opened outside any context needs to join a run later.
    fn open_pending<S>(&self, attrs: &span::Attributes<'_>, id: &Id, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = attrs.metadata();
        let Some(s) = ctx.span(id) else { return };
        let mut fields = Fields::new(meta);
        attrs.record(&mut fields);
        s.extensions_mut().insert(Pending {
            started_at: Timestamp::now(),
            name: meta.name(),
            primitive: fields.primitive.unwrap_or_else(|| self.primitive_for(meta)),
            attributes: fields.attributes,
            later: Attributes::new(),
            error: fields.error,
        });
        PENDING.fetch_add(1, Ordering::Relaxed);
    }

    /// The scope a span with an explicit `parent:` opens in: that parent's nearest ancestor
    /// (itself included) holding a Crux span. `None` for a contextual span, or when no
    /// ancestor holds one: the span opens in the current scope, if there is one.
    fn explicit_parent_scope<S>(
        &self,
        attrs: &span::Attributes<'_>,
        ctx: &Context<'_, S>,
    ) -> Option<Scope>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // A table that never held a span has no ancestor's: no walk up the registry.
        let parent = attrs.parent().filter(|_| self.recorded.ever_used())?;
        ctx.span_scope(parent).and_then(|mut spans| {
            spans.find_map(|s| self.recorded.with(&s.id(), |r| r.span.scope()).flatten())
        })
    }
}

impl<S> Layer<S> for CruxLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_layer(&mut self, _subscriber: &mut S) {
        self.adopter = Some(Adopter(adopt::<S>));
        // A layer of its own, even when cloned from one in another subscriber.
        self.token = Token(AtomicUsize::new(NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)));
        // The hook is process-wide and the same function for every layer: the first
        // install wins and the others find it installed.
        observe::set_segment_hook(adopt_outer_spans);
    }

    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == TypeId::of::<Adopter>() {
            self.adopter
                .as_ref()
                .map(|a| a as *const Adopter as *const ())
        } else {
            None
        }
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        if *meta.level() > self.max_level {
            return;
        }
        let explicit = self.explicit_parent_scope(attrs, &ctx);
        if explicit.is_none() && !observe::in_context() {
            if self.is_outer_target(meta.target()) {
                self.open_pending(attrs, id, &ctx);
            }
            return;
        }
        let (attributes, primitive, error) = if attrs.is_empty() {
            (Fields::without_values(meta), self.primitive_for(meta), None)
        } else {
            let mut fields = Fields::new(meta);
            attrs.record(&mut fields);
            let primitive = fields.primitive.unwrap_or_else(|| self.primitive_for(meta));
            (fields.attributes, primitive, fields.error)
        };
        // Started without a builder (nothing but the attributes to set); in the current
        // scope the span takes its own clone of it: holding one here too would cost two
        // more reference-count round trips per span.
        let span = match &explicit {
            Some(parent) => parent.start_span(meta.name(), primitive, attributes),
            None => observe::start_span(meta.name(), primitive, attributes),
        };
        if !span.is_recording() {
            return; // a disabled observer: nothing to record
        }
        self.recorded.insert(id, Recorded { span, error });
    }

    fn on_record(&self, id: &Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if PENDING.load(Ordering::Relaxed) > 0
            && let Some(s) = ctx.span(id)
        {
            let mut ext = s.extensions_mut();
            if let Some(p) = ext.get_mut::<Pending>() {
                let mut fields = Fields::later();
                values.record(&mut fields);
                p.later.extend(fields.attributes);
                if p.error.is_none() {
                    p.error = fields.error;
                }
                return;
            }
        }
        if !self.recorded.contains(id) {
            return;
        }
        // Visited before the table is locked: a field's `Debug` may itself use `tracing`.
        let mut fields = Fields::later();
        values.record(&mut fields);
        self.recorded.with(id, |rec| {
            for (key, value) in fields.attributes.iter() {
                rec.span.set_attr(key.to_owned(), value.clone());
            }
            if rec.error.is_none() {
                rec.error = fields.error;
            }
        });
    }

    fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
        let Some(scope) = self.recorded.with(id, |r| r.span.scope()).flatten() else {
            return;
        };
        let previous = observe::replace_current_scope(Some(scope));
        let entered = (self.token.get(), id.into_u64());
        let _ = ENTERED.try_with(|e| e.borrow_mut().push((entered, previous)));
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        let _ = ENTERED.try_with(|e| {
            let mut entered = e.borrow_mut();
            // Nothing entered on this thread (outside any context, every span): nothing
            // to restore, and the layer's token is not even read. Not gated on this layer
            // having recorded: a clone put in by `reload` exits its predecessor's spans.
            if entered.is_empty() {
                return;
            }
            let id = (self.token.get(), id.into_u64());
            if entered.last().is_some_and(|(i, _)| *i == id) {
                // The usual case, the innermost span exits: a pop, no search, no shifting.
                let previous = entered.pop().and_then(|(_, previous)| previous);
                drop(entered);
                observe::replace_current_scope(previous);
            } else if let Some(at) = entered.iter().rposition(|(i, _)| *i == id) {
                let (_, previous) = entered.remove(at);
                // Exited out of order: the span entered after this one now restores what
                // this one replaced, and the current scope stays that later span's.
                entered[at].1 = previous;
            }
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        // The usual case first: one table lookup for a recorded span. Taken apart here, so
        // the span is not copied out of the entry once more on its way to its end.
        if let Some(Recorded { span, error }) = self.recorded.remove(&id) {
            match error {
                None => span.end(SpanStatus::Ok),
                Some(message) => span.fail(&crux_runtime::Error::msg(message)),
            }
            return;
        }
        if PENDING.load(Ordering::Relaxed) > 0
            && let Some(s) = ctx.span(&id)
            && s.extensions_mut().remove::<Pending>().is_some()
        {
            // Closed before any run started under it: nothing to record.
            PENDING.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > self.max_level {
            return;
        }
        // An explicit parent holding a Crux span takes the event; else the current span.
        let explicit = event
            .parent()
            .and_then(|p| self.recorded.with(p, |r| r.span.scope()).flatten());
        // Cheap exit outside a Crux span: no field is visited.
        if explicit.is_none() && !observe::in_span() {
            return;
        }
        let mut fields = Fields::new(meta);
        event.record(&mut fields);
        let name = match fields.message.take() {
            Some(m) if !m.is_empty() => Cow::Owned(m),
            _ => Cow::Borrowed(meta.name()),
        };
        if *meta.level() == Level::ERROR {
            // The event's innermost `tracing` span holding a Crux span ends as `error`.
            if let Some(spans) = ctx.event_scope(event) {
                for s in spans {
                    let found = self.recorded.with(&s.id(), |rec| {
                        if rec.error.is_none() {
                            rec.error =
                                Some(fields.error.clone().unwrap_or_else(|| name.to_string()));
                        }
                    });
                    if found.is_some() {
                        break;
                    }
                }
            }
        }
        match explicit {
            // The parent's scope has its Crux span on top: made current just for the
            // event, which then lands on that span (not recorded under the table's lock).
            Some(scope) => {
                let previous = observe::replace_current_scope(Some(scope));
                observe::event(name, fields.attributes);
                observe::replace_current_scope(previous);
            }
            None => observe::event(name, fields.attributes),
        }
    }
}

/// A `tracing_subscriber::fmt` event format that starts every line written inside a Crux
/// context with `crux.run_id=… crux.trace_id=… `, then writes what `inner` writes.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// let fmt = tracing_subscriber::fmt::layer()
///     .event_format(crux_tracing::WithCruxIds::new(tracing_subscriber::fmt::format()));
/// let subscriber = tracing_subscriber::registry()
///     .with(crux_tracing::CruxLayer::new())
///     .with(fmt);
/// # let _ = subscriber;
/// ```
#[derive(Clone, Debug, Default)]
pub struct WithCruxIds<E> {
    inner: E,
}

impl<E> WithCruxIds<E> {
    /// Wraps an event format (`tracing_subscriber::fmt::format()`, `.compact()`, ...).
    pub fn new(inner: E) -> Self {
        Self { inner }
    }
}

impl<S, N, E> FormatEvent<S, N> for WithCruxIds<E>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    E: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = observe::current_scope().map(|s| (s.run_id(), s.trace_id()));
        if let Some((run_id, trace_id)) = ids {
            write!(writer, "crux.run_id={run_id} crux.trace_id={trace_id} ")?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::CruxLayer;

    /// Outer targets are prefixes, compared first byte first: what matches is exactly what
    /// `str::starts_with` matches, the empty prefix included.
    #[test]
    fn outer_targets_match_as_prefixes() {
        let layer = CruxLayer::new();
        assert!(layer.is_outer_target("tower_http::trace::on_request"));
        assert!(layer.is_outer_target("tower_http"));
        for other in ["tower", "tower_htt", "xtower_http", "my_app", ""] {
            assert!(!layer.is_outer_target(other), "{other:?}");
        }
        let all = CruxLayer::new().outer_spans_for_target("");
        assert!(all.is_outer_target("my_app") && all.is_outer_target(""));
        let sqlx = CruxLayer::new().outer_spans_for_target("sqlx");
        assert!(sqlx.is_outer_target("sqlx::query") && sqlx.is_outer_target("tower_http"));
        assert!(!sqlx.is_outer_target("sql"));
        assert!(
            !CruxLayer::new()
                .without_outer_spans()
                .is_outer_target("tower_http")
        );
    }
}
