//! Turning Crux records into OpenTelemetry spans: open spans wait for their end record,
//! then leave as finished [`SpanData`].
//!
//! The mapping:
//! - `run:start` opens the run's span, id [`RunId::root_span_id`], named after the run;
//!   its parent is the triggering span of a parent run, else the parent run's span, else
//!   the remote W3C parent. `run:end`/`run:suspend` end it.
//! - `run:resume` opens a span for the resumed segment under the run's span.
//! - `span:start`/`span:end` (or one combined `span` record) map one to one, with the
//!   Crux span ids; a span whose
//!   `parentSpanId` is null hangs under its segment's span (run or resume).
//! - `span:event` becomes a span event (`exception` events keep the OTel names).
//! - an `edge` becomes a span link on whichever end is open here (a detached scheduled
//!   run links back to the span that enqueued it).
//! - `artifact` records stay in Crux (large payloads), counted on the span as
//!   `crux.artifacts`.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId as OtelSpanId, SpanKind, Status, TraceFlags,
    TraceId as OtelTraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::semconv::{Typed, genai_aliases, genai_attributes, openinference_kind, otel_value};
use crux_runtime::attributes::Attributes;
use crux_runtime::clock::Timestamp;
use crux_runtime::ids::{RunId, SegmentId, SpanId, TraceId};
use crux_runtime::record::{
    Base, Body, EdgeEnd, ErrorSummary, FinishedSpan, Record, SpanFields, SpanStatus,
};
use crux_runtime::taxonomy;

/// How many ids of spans and runs seen recently are remembered to resolve edges.
const REMEMBERED: usize = 65_536;

struct Open {
    data: SpanData,
    primitive: &'static str,
    /// Insertion order, to evict the oldest open span when over the cap.
    order: u64,
}

/// Finished spans plus the count of open spans evicted (never ended, over the cap).
#[derive(Default)]
pub(crate) struct Assembled {
    pub(crate) finished: Vec<SpanData>,
    pub(crate) evicted: u64,
}

pub(crate) struct Assembler {
    open: HashMap<SpanId, Open>,
    /// The span standing for a resumed segment (run spans are found by run id).
    segment_spans: Bounded<SegmentId, SpanId>,
    /// Trace of each span and run seen lately, to give edges a full span context.
    span_traces: Bounded<SpanId, TraceId>,
    run_traces: Bounded<RunId, TraceId>,
    max_open: usize,
    counter: u64,
    scope: InstrumentationScope,
    last_ids: Option<(SegmentId, SegmentIds)>,
}

#[derive(Clone)]
struct SegmentIds {
    run: Arc<str>,
    operation: Option<Arc<str>>,
    segment: Arc<str>,
}

impl Assembler {
    pub(crate) fn new(max_open: usize) -> Self {
        Self {
            open: HashMap::new(),
            segment_spans: Bounded::new(REMEMBERED),
            span_traces: Bounded::new(REMEMBERED),
            run_traces: Bounded::new(REMEMBERED),
            max_open: max_open.max(1),
            counter: 0,
            scope: InstrumentationScope::builder("crux")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            last_ids: None,
        }
    }

    pub(crate) fn open_count(&self) -> usize {
        self.open.len()
    }

    pub(crate) fn push(&mut self, records: &[Record], out: &mut Assembled) {
        for r in records {
            self.record(r, out);
        }
        while self.open.len() > self.max_open {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, o)| o.order)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.open.remove(&k);
                out.evicted += 1;
            }
        }
    }

    fn record(&mut self, r: &Record, out: &mut Assembled) {
        let b = &r.base;
        match &r.body {
            Body::RunStart {
                name,
                root_primitive,
                started_at,
                attributes,
                parent_run_id,
                triggered_by_span_id,
                remote_parent_span_id,
            } => {
                self.run_traces.insert(b.run_id, b.trace_id);
                let (parent, remote) = match (parent_run_id, triggered_by_span_id) {
                    (_, Some(span)) => (Some(*span), false),
                    (Some(run), None) => (Some(run.root_span_id()), false),
                    (None, None) => (*remote_parent_span_id, remote_parent_span_id.is_some()),
                };
                let mut attrs = Vec::with_capacity(attributes.len() + 8);
                attrs.push(KeyValue::new("crux.run.name", name.clone()));
                if let Some(p) = parent_run_id {
                    attrs.push(KeyValue::new("crux.parent_run.id", p.to_string()));
                }
                self.open(
                    b,
                    b.run_id.root_span_id(),
                    parent,
                    remote,
                    name.clone(),
                    root_primitive,
                    *started_at,
                    Typed::NONE,
                    attributes,
                    attrs,
                );
            }
            Body::RunResume {
                resumed_at,
                reason,
                previous_segment_id,
                attributes,
            } => {
                let id = SpanId::generate();
                self.segment_spans.insert(b.segment_id, id);
                let mut attrs = vec![KeyValue::new("crux.resume.reason", reason.clone())];
                if let Some(prev) = previous_segment_id {
                    attrs.push(KeyValue::new(
                        "crux.resume.previous_segment.id",
                        prev.to_string(),
                    ));
                }
                self.open(
                    b,
                    id,
                    Some(b.run_id.root_span_id()),
                    false,
                    Cow::Owned(format!("resume: {reason}")),
                    "runtime.convex.resume",
                    *resumed_at,
                    Typed::NONE,
                    attributes,
                    attrs,
                );
            }
            Body::RunSuspend {
                suspended_at,
                reason,
                attributes,
            } => {
                let id = self.segment_span(b);
                let mut extra = attributes.clone();
                extra.set("crux.suspend.reason", reason.clone());
                self.close(
                    id,
                    *suspended_at,
                    SpanStatus::Suspended,
                    None,
                    Typed::NONE,
                    &extra,
                    out,
                );
            }
            Body::RunEnd {
                ended_at,
                status,
                error,
                attributes,
                ..
            } => {
                let id = self.segment_span(b);
                self.close(
                    id,
                    *ended_at,
                    SpanStatus::from(*status),
                    error.as_ref(),
                    Typed::NONE,
                    attributes,
                    out,
                );
            }
            Body::SpanStart {
                span_id,
                parent_span_id,
                primitive,
                name,
                started_at,
                fields,
                attributes,
            } => self.open_recorded(
                b,
                *span_id,
                *parent_span_id,
                name.clone(),
                primitive,
                *started_at,
                fields,
                attributes,
            ),
            Body::SpanEnd {
                span_id,
                ended_at,
                status,
                error,
                metrics,
                attributes,
                ..
            } => self.close(
                *span_id,
                *ended_at,
                *status,
                error.as_ref(),
                Typed {
                    fields: None,
                    metrics: Some(metrics),
                },
                attributes,
                out,
            ),
            Body::Span(span) => {
                let FinishedSpan {
                    span_id,
                    parent_span_id,
                    primitive,
                    name,
                    started_at,
                    ended_at,
                    status,
                    error,
                    fields,
                    metrics,
                    attributes,
                    ..
                } = &**span;
                // A combined record: the span opened and closed at once.
                self.open_recorded(
                    b,
                    *span_id,
                    *parent_span_id,
                    name.clone(),
                    primitive,
                    *started_at,
                    fields,
                    attributes,
                );
                let none = Attributes::new();
                let typed = Typed {
                    fields: None,
                    metrics: Some(metrics),
                };
                self.close(
                    *span_id,
                    *ended_at,
                    *status,
                    error.as_ref(),
                    typed,
                    &none,
                    out,
                );
            }
            Body::SpanEvent {
                span_id,
                name,
                timestamp,
                attributes,
                ..
            } => {
                if let Some(o) = self.open.get_mut(span_id) {
                    let attrs = attributes
                        .iter()
                        .map(|(k, v)| KeyValue::new(k.to_owned(), otel_value(v)))
                        .collect();
                    o.data
                        .events
                        .events
                        .push(Event::new(name.clone(), time(*timestamp), attrs, 0));
                }
            }
            Body::Edge {
                edge_type,
                from,
                to,
                attributes,
                ..
            } => self.edge(edge_type, *from, *to, attributes),
            Body::Artifact { span_id, kind, .. } => {
                if let Some(o) = span_id.and_then(|s| self.open.get_mut(&s)) {
                    o.data
                        .attributes
                        .push(KeyValue::new("crux.artifact.kind", *kind));
                }
            }
        }
    }

    /// The id strings of a segment's records, formatted once per segment (records of a
    /// segment arrive together).
    fn segment_ids(&mut self, b: &Base) -> SegmentIds {
        match &self.last_ids {
            Some((seg, ids)) if *seg == b.segment_id => ids.clone(),
            _ => {
                let ids = SegmentIds {
                    run: Arc::from(b.run_id.to_string()),
                    operation: (b.operation_id != b.run_id)
                        .then(|| Arc::from(b.operation_id.to_string())),
                    segment: Arc::from(b.segment_id.to_string()),
                };
                self.last_ids = Some((b.segment_id, ids.clone()));
                ids
            }
        }
    }

    /// The span that null-parent spans of this segment hang under.
    fn segment_span(&self, b: &Base) -> SpanId {
        self.segment_spans
            .get(&b.segment_id)
            .unwrap_or_else(|| b.run_id.root_span_id())
    }

    /// Opens a span recorded by `span:start` or a combined `span` record; a span with no
    /// parent hangs under its segment's span (the run's root, or a resume span).
    #[allow(clippy::too_many_arguments)]
    fn open_recorded(
        &mut self,
        b: &Base,
        id: SpanId,
        parent_span_id: Option<SpanId>,
        name: Cow<'static, str>,
        primitive: &'static str,
        started_at: Timestamp,
        fields: &SpanFields,
        attributes: &Attributes,
    ) {
        let parent = parent_span_id.unwrap_or_else(|| self.segment_span(b));
        let typed = Typed {
            fields: Some(fields),
            metrics: None,
        };
        self.open(
            b,
            id,
            Some(parent),
            false,
            name,
            primitive,
            started_at,
            typed,
            attributes,
            Vec::new(),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        b: &Base,
        id: SpanId,
        parent: Option<SpanId>,
        parent_is_remote: bool,
        name: Cow<'static, str>,
        primitive: &'static str,
        started_at: Timestamp,
        typed: Typed<'_>,
        attributes: &Attributes,
        mut attrs: Vec<KeyValue>,
    ) {
        self.span_traces.insert(id, b.trace_id);
        attrs.reserve(attributes.len() + 8);
        attrs.push(KeyValue::new(
            "openinference.span.kind",
            openinference_kind(primitive),
        ));
        attrs.push(KeyValue::new("crux.primitive", primitive));
        if let Some(family) = taxonomy::family_of(primitive) {
            attrs.push(KeyValue::new("crux.family", family));
        }
        let ids = self.segment_ids(b);
        attrs.push(KeyValue::new("crux.run.id", ids.run.clone()));
        if let Some(op) = &ids.operation {
            attrs.push(KeyValue::new("crux.operation.id", op.clone()));
        }
        attrs.push(KeyValue::new("crux.segment.id", ids.segment.clone()));
        if let Some(c) = b.extra.as_ref().and_then(|e| e.correlators.as_ref()) {
            if let Some(s) = &c.session_id {
                attrs.push(KeyValue::new("session.id", s.clone()));
            }
            if let Some(u) = &c.user_id {
                attrs.push(KeyValue::new("user.id", u.clone()));
            }
            for (k, v) in &c.metadata {
                attrs.push(KeyValue::new(format!("meta.{k}"), v.clone()));
            }
        }
        genai_attributes(primitive, typed, attributes, &mut attrs);
        typed.push_all(&mut attrs);
        for (k, v) in attributes.iter() {
            attrs.push(KeyValue::new(k.to_owned(), otel_value(v)));
        }
        self.counter += 1;
        let data = SpanData {
            span_context: context(b.trace_id, id, false),
            parent_span_id: parent.map_or(OtelSpanId::INVALID, otel_span),
            parent_span_is_remote: parent_is_remote,
            span_kind: SpanKind::Internal,
            name,
            start_time: time(started_at),
            end_time: time(started_at),
            attributes: attrs,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: self.scope.clone(),
        };
        self.open.insert(
            id,
            Open {
                data,
                primitive,
                order: self.counter,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn close(
        &mut self,
        id: SpanId,
        ended_at: Timestamp,
        status: SpanStatus,
        error: Option<&ErrorSummary>,
        typed: Typed<'_>,
        attributes: &Attributes,
        out: &mut Assembled,
    ) {
        let Some(Open {
            mut data,
            primitive,
            ..
        }) = self.open.remove(&id)
        else {
            return;
        };
        // Token counts and response models usually arrive with the end.
        genai_aliases(primitive, typed, attributes, &mut data.attributes);
        data.end_time = time(ended_at).max(data.start_time);
        data.attributes
            .push(KeyValue::new("crux.status", status.as_str()));
        typed.push_all(&mut data.attributes);
        for (k, v) in attributes.iter() {
            data.attributes
                .push(KeyValue::new(k.to_owned(), otel_value(v)));
        }
        data.status = match status {
            SpanStatus::Ok => Status::Ok,
            SpanStatus::Error => {
                Status::error(error.map_or_else(|| "error".to_owned(), |e| e.message.clone()))
            }
            _ => Status::Unset,
        };
        if let Some(e) = error {
            data.attributes
                .push(KeyValue::new("crux.error.message", e.message.clone()));
            if let Some(name) = e.name {
                data.attributes.push(KeyValue::new("error.type", name));
            }
            // Spans failed through `Span::fail` already carry an `exception` event.
            if !data.events.iter().any(|ev| ev.name == "exception") {
                let mut attrs = vec![KeyValue::new("exception.message", e.message.clone())];
                if let Some(name) = e.name {
                    attrs.push(KeyValue::new("exception.type", name));
                }
                data.events
                    .events
                    .push(Event::new("exception", data.end_time, attrs, 0));
            }
        }
        out.finished.push(data);
    }

    fn edge(&mut self, edge_type: &'static str, from: EdgeEnd, to: EdgeEnd, attrs: &Attributes) {
        let resolve = |this: &Self, end: EdgeEnd| -> Option<(SpanId, Option<TraceId>)> {
            match end {
                EdgeEnd::Span(s) => Some((s, this.span_traces.get(&s))),
                EdgeEnd::Run(r) => Some((r.root_span_id(), this.run_traces.get(&r))),
                EdgeEnd::Artifact(_) => None,
            }
        };
        let (Some((from_span, from_trace)), Some((to_span, to_trace))) =
            (resolve(self, from), resolve(self, to))
        else {
            return;
        };
        // The link goes on the end that is still open here, pointing at the other end.
        let (holder, (target, target_trace)) = if self.open.contains_key(&to_span) {
            (to_span, (from_span, from_trace))
        } else if self.open.contains_key(&from_span) {
            (from_span, (to_span, to_trace))
        } else {
            return;
        };
        let Some(target_trace) = target_trace else {
            // The other end's trace is unknown here: keep the edge as attributes.
            if let Some(o) = self.open.get_mut(&holder) {
                o.data
                    .attributes
                    .push(KeyValue::new("crux.edge.span_id", target.to_string()));
                o.data
                    .attributes
                    .push(KeyValue::new("crux.edge.type", edge_type));
            }
            return;
        };
        if let Some(o) = self.open.get_mut(&holder) {
            let mut link_attrs = vec![KeyValue::new("crux.edge.type", edge_type)];
            link_attrs.extend(
                attrs
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.to_owned(), otel_value(v))),
            );
            o.data.links.links.push(Link::new(
                context(target_trace, target, true),
                link_attrs,
                0,
            ));
        }
    }
}

fn otel_span(id: SpanId) -> OtelSpanId {
    OtelSpanId::from(id.0)
}

fn context(trace: TraceId, span: SpanId, remote: bool) -> SpanContext {
    SpanContext::new(
        OtelTraceId::from(trace.0),
        otel_span(span),
        TraceFlags::SAMPLED,
        remote,
        TraceState::NONE,
    )
}

fn time(t: Timestamp) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(t.as_millis())
}

/// A map that forgets its oldest entries past a bound.
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    cap: usize,
}

impl<K: Hash + Eq + Copy, V: Copy> Bounded<K, V> {
    fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k, v).is_none() {
            self.order.push_back(k);
            if self.order.len() > self.cap
                && let Some(old) = self.order.pop_front()
            {
                self.map.remove(&old);
            }
        }
    }

    fn get(&self, k: &K) -> Option<V> {
        self.map.get(k).copied()
    }
}
