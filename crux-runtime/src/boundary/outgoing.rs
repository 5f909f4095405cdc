//! The calling side of a hop: the boundary span and the envelope sent with the call.

use super::attributes::{
    attributes_of, boundary_attributes, keep_requested, lease_expiry, presentation, span_name,
    wire_label,
};
use super::events;
use super::frozen::{self, Key};
use crate::Result;
use crate::attributes::Attributes;
use crate::clock::Timestamp;
use crate::context::Scope;
use crate::delivery::FlushOptions;
use crate::envelope::{Boundary, BoundaryKind, Envelope, WireContext};
use crate::ids::{SpanId, SpanStack};
use crate::observe::{self, Observer, Span, SpanStatus};

/// One call from the current context to another function, as the caller records it.
///
/// ```
/// use crux_runtime::boundary::Hop;
/// use crux_runtime::observe::{Observer, RunOptions};
///
/// let observer = Observer::builder().build();
/// let run = observer.open_run(RunOptions::new("support chat", "agent.run"));
/// let _entered = run.scope().enter();
/// let mut hop = Hop::action("plan research", "research:plan");
/// // flush (FlushOptions::BOUNDARY), then send `hop.envelope()` as the args' `__crux` ...
/// let envelope = hop.envelope().expect("inside a run");
/// assert!(envelope.boundary.is_some());
/// let reply: crux_runtime::Result<()> = Ok(());
/// hop.end(&reply);
/// ```
#[derive(Debug)]
pub struct Hop {
    span: Span,
    /// Boxed: a hop is moved through several calls and futures before the envelope is
    /// sent, and the envelope is most of its size (about 400 bytes).
    envelope: Option<Box<Envelope>>,
    /// An action boundary: [`Hop::call`] flushes around it.
    flushes: bool,
}

impl Hop {
    /// `run_action`: opens a `runtime.convex.action` boundary span named by `label` (the
    /// path when empty) under the current span and records `requested` on it. Outside any
    /// context the hop records nothing and sends a bare `{v: 1}` envelope.
    pub fn action(label: &'static str, path: &'static str) -> Hop {
        let span = Span::start_current(
            span_name(label, path),
            "runtime.convex.action",
            span_attributes(path, Some("convex.action")),
        );
        // The envelope is built in its box from the scope the span started under (kept by
        // the span: the thread's current scope is read once, by the span's builder): no
        // pushed scope is built only to be read and dropped, and no context or boundary
        // is copied on the way into the box.
        let envelope = span
            .id()
            .zip(span.parent_scope())
            .zip(span.started())
            .map(|((id, parent), opened)| action_envelope(parent, id, opened, label, path));
        let Some(boundary) = envelope.as_ref().and_then(|e| e.boundary.as_ref()) else {
            return Hop {
                span,
                envelope: Some(Box::new(Envelope::new(None))),
                flushes: true,
            };
        };
        // Frozen and kept for the callee, whose acknowledgements carry the same set.
        let requested = attributes_of(
            boundary,
            label.into(),
            path.into(),
            boundary.parent_span_stack.clone(),
            boundary.lease_expires_at,
        )
        .freeze();
        keep_requested(boundary, label, path, &requested);
        span.event(events::REQUESTED, requested);
        Hop {
            span,
            envelope,
            flushes: true,
        }
    }

    /// `run_query`/`run_mutation`: a span named by `label` with the given primitive, the
    /// context propagated to the callee; no boundary, no acknowledgements (and the caller
    /// does not flush: queries and mutations do no network I/O on Convex).
    pub fn nested(label: &'static str, primitive: &'static str, path: &'static str) -> Hop {
        let span = Span::start_current(
            span_name(label, path),
            primitive,
            span_attributes(path, None),
        );
        // From the scope the span started under, with the span's id pushed: the wire
        // context its scope would give, without building that scope only to read it.
        let envelope = span.id().zip(span.parent_scope()).map(|(id, parent)| {
            // Allocated first, written into (as `action_envelope`'s).
            let boxed = Box::new_uninit();
            Box::write(
                boxed,
                Envelope::new(Some(parent.wire_context_with(Some(id)))),
            )
        });
        Hop {
            span,
            envelope,
            flushes: false,
        }
    }

    /// With the callee's deployment (a remote service's URL) as the span's `deployment`
    /// attribute; `None` (a function of this deployment) leaves the span as it is.
    pub fn to_deployment(mut self, deployment: Option<&str>) -> Hop {
        if let Some(deployment) = deployment {
            self.span.set_attr("deployment", deployment.to_owned());
        }
        self
    }

    /// Makes the call the hop records, the same way for every host and callee: for an
    /// action boundary a bounded flush of `observer` first (so the boundary's records are
    /// out before the callee runs), then `call` with the envelope to send as `__crux`, the
    /// span ended as the reply says, and for an action boundary a second flush. The
    /// reply comes back unchanged; a flush never changes it. The envelope is handed over
    /// in the box the hop keeps it in (about 400 bytes: not copied into each future).
    pub async fn call<T, F>(
        mut self,
        observer: &Observer,
        call: impl FnOnce(Option<Box<Envelope>>) -> F,
    ) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        if self.flushes {
            observer.flush(FlushOptions::BOUNDARY).await;
        }
        let envelope = self.envelope.take();
        let result = call(envelope).await;
        let flushes = self.flushes;
        self.end(&result);
        if flushes {
            observer.flush(FlushOptions::BOUNDARY).await;
        }
        result
    }

    /// The envelope to send as `__crux` (taken: a second call returns `None`). `None` for
    /// a nested hop outside any context: the callee gets no `__crux` at all.
    pub fn envelope(&mut self) -> Option<Envelope> {
        self.envelope.take().map(|envelope| *envelope)
    }

    /// The boundary span (for attributes the host adds, such as a remote deployment).
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The boundary span, to set attributes reported on its end (such as the remote
    /// deployment a call went to).
    pub fn span_mut(&mut self) -> &mut Span {
        &mut self.span
    }

    /// Ends the span as the reply says: `ok`, or the error recorded on it.
    pub fn end<T>(self, result: &Result<T>) {
        match result {
            Ok(_) => self.span.end(SpanStatus::Ok),
            Err(err) => self.span.fail(err),
        }
    }
}

/// The start attributes of a hop's span (`boundary` for an action's): the same for every
/// hop to `path`, so shared ([`frozen`]).
fn span_attributes(path: &'static str, boundary: Option<&'static str>) -> Attributes {
    let key = Key::HopSpan {
        path: (path.as_ptr() as usize, path.len()),
        boundary: boundary.map_or((0, 0), |b| (b.as_ptr() as usize, b.len())),
    };
    frozen::shared(key, || build_span_attributes(path, boundary))
}

/// [`span_attributes`] built: one list of their exact number, without a search per key.
fn build_span_attributes(path: &'static str, boundary: Option<&'static str>) -> Attributes {
    let mut attrs = Attributes::with_capacity(2 + usize::from(boundary.is_some()));
    attrs.push_new("functionRef", path);
    if let Some(boundary) = boundary {
        attrs.push_new("boundary", boundary);
    }
    attrs.push_new("presentation", presentation());
    attrs
}

/// The envelope of an action boundary whose span `id` started under `parent` at `opened`
/// (the lease runs from the span's start): the span's context and the boundary on it.
fn action_envelope(
    parent: &Scope,
    id: SpanId,
    opened: Timestamp,
    label: &'static str,
    path: &'static str,
) -> Box<Envelope> {
    // The box taken first and the context written into it: `Box::new` takes a value
    // already built on the stack (its argument is evaluated before it allocates) and
    // copies it in, about 400 bytes a hop; the boundary is set on it there.
    let mut envelope = Box::write(
        Box::new_uninit(),
        Envelope::new(Some(parent.wire_context_with(Some(id)))),
    );
    // One stack for the context, the boundary and the `requested` event: shared.
    let parent_span_stack = envelope
        .observability
        .as_ref()
        .map(|c| c.span_stack.clone())
        .expect("the context was just set");
    envelope.boundary = Some(Boundary {
        id,
        span_id: id,
        kind: BoundaryKind::Action,
        label: wire_label(label, path),
        function_ref: path.into(),
        parent_span_stack,
        lease_expires_at: Some(lease_expiry(opened)),
    });
    envelope
}

/// The envelope of a scheduled continuation: `continuation`'s context plus a `schedule`
/// boundary on its current span, announced there with `requested` (the acknowledgements
/// land on the same span). The caller flushes
/// ([`FlushOptions::BOUNDARY`](crate::delivery::FlushOptions::BOUNDARY)) before enqueueing
/// when [`Envelope::boundary`] is set.
pub async fn continuation_envelope(
    label: &'static str,
    path: &'static str,
    continuation: &observe::CapturedContext,
) -> Envelope {
    let wire: &WireContext = continuation;
    let target = wire
        .current_span_id
        .or_else(|| wire.span_stack.last().copied());
    let boundary = target.map(|id| Boundary {
        id,
        span_id: id,
        kind: BoundaryKind::Schedule,
        label: wire_label(label, path),
        function_ref: path.into(),
        parent_span_stack: if wire.span_stack.is_empty() {
            SpanStack::from([id])
        } else {
            wire.span_stack.clone()
        },
        lease_expires_at: Some(lease_expiry(Timestamp::now())),
    });
    if let Some(boundary) = &boundary {
        let attrs = boundary_attributes(boundary);
        observe::with_context(Some(continuation.clone()), async move {
            observe::event(events::REQUESTED, attrs);
        })
        .await;
    }
    Envelope {
        v: 1,
        observability: Some(wire.clone()),
        boundary,
    }
}

/// The span a schedule records (`runtime.convex.schedule`), started under the current span.
pub fn schedule_span(label: &'static str, path: &'static str, delay_ms: u64) -> Span {
    observe::span(span_name(label, path), "runtime.convex.schedule")
        .attr("functionRef", path)
        .attr("boundary", "convex.schedule")
        .attr("delayMs", delay_ms)
        .attr("presentation", presentation())
        .start()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::MAX_SPAN_STACK;
    use crate::observe::RunOptions;

    #[test]
    fn a_hops_wire_context_is_the_pushed_scopes_at_every_depth() {
        let observer = Observer::builder().build();
        let run = observer.open_run(RunOptions::new("hops", "agent.run"));
        let mut parent = run.scope();
        let mut opened = parent.span_stack();
        // Past MAX_SPAN_STACK: the outermost ids are cut, the innermost kept in order.
        for _ in 0..MAX_SPAN_STACK + 3 {
            let id = SpanId::generate();
            opened.push(id);
            let pushed = parent.push(id);
            let wire = parent.wire_context_with(Some(id));
            assert_eq!(wire, pushed.wire_context());
            let kept = &opened[opened.len().saturating_sub(MAX_SPAN_STACK)..];
            assert_eq!(*wire.span_stack, *kept);
            assert_eq!(pushed.span_stack(), opened, "the live stack keeps every id");
            assert_eq!(wire.current_span_id, Some(id));
            parent = pushed;
        }
    }

    #[test]
    fn a_nested_hop_sends_its_spans_own_context() {
        let observer = Observer::builder().build();
        let run = observer.open_run(RunOptions::new("hops", "agent.run"));
        let _entered = run.scope().enter();
        let mut hop = Hop::nested("load", "runtime.convex.query", "messages:list");
        let scope = hop.span().scope().expect("a live span");
        let envelope = hop.envelope().expect("inside a run");
        assert_eq!(envelope.observability, Some(scope.wire_context()));
        assert_eq!(
            envelope.observability.unwrap().current_span_id,
            hop.span().id()
        );
        assert!(envelope.boundary.is_none());
    }

    #[test]
    fn an_action_boundarys_lease_runs_from_its_spans_start() {
        let observer = Observer::builder().build();
        let run = observer.open_run(RunOptions::new("hops", "agent.run"));
        let _entered = run.scope().enter();
        let mut hop = Hop::action("plan research", "research:plan");
        let started = hop.span().started().expect("a live span");
        let envelope = hop.envelope().expect("inside a run");
        let lease = envelope
            .boundary
            .expect("an action boundary")
            .lease_expires_at;
        let expected = started.plus_millis(super::super::BOUNDARY_LEASE.as_millis() as u64);
        assert_eq!(lease, Some(expected));
    }

    #[test]
    fn an_action_envelopes_lease_is_its_opening_time_plus_the_lease() {
        // A time far from now: the lease cannot come from a clock read instead.
        let observer = Observer::builder().build();
        let run = observer.open_run(RunOptions::new("hops", "agent.run"));
        let id = SpanId::generate();
        let envelope = action_envelope(
            &run.scope(),
            id,
            Timestamp::from_millis(0),
            "plan",
            "research:plan",
        );
        let boundary = envelope.boundary.expect("an action boundary");
        assert_eq!(
            boundary
                .lease_expires_at
                .map(|at| at.to_string())
                .as_deref(),
            Some("1970-01-01T00:11:00.000Z")
        );
        assert_eq!(boundary.span_id, id);
    }

    /// The callee of an action hop on the caller's thread gets the caller's `requested`
    /// set, which is what its boundary would build; any boundary differing in a field the
    /// set is built from builds its own; the set is taken by the first boundary asking,
    /// whether or not it matches.
    #[test]
    fn a_hops_requested_set_goes_to_its_own_boundary_only_and_once() {
        use super::super::attributes::requested_for;
        use std::borrow::Cow;
        // A thread of its own: nothing kept from another test.
        std::thread::spawn(|| {
            let observer = Observer::builder().build();
            let run = observer.open_run(RunOptions::new("hops", "agent.run"));
            let _entered = run.scope().enter();
            type Change = fn(&mut Boundary, SpanId);
            let changes: [(&str, Change); 8] = [
                ("label", |b, _| b.label = Cow::Borrowed("plan researcH")),
                ("function ref", |b, _| {
                    b.function_ref = Cow::Borrowed("research:plaN")
                }),
                ("id", |b, id| {
                    b.id = id;
                    b.span_id = id;
                }),
                ("span id", |b, id| b.span_id = id),
                ("kind", |b, _| b.kind = BoundaryKind::Schedule),
                ("stack", |b, id| b.parent_span_stack = SpanStack::from([id])),
                ("no lease", |b, _| b.lease_expires_at = None),
                ("lease", |b, _| {
                    b.lease_expires_at = b.lease_expires_at.map(|at| at.plus_millis(1))
                }),
            ];
            for (what, change) in changes {
                let mut hop = Hop::action("plan research", "research:plan");
                let boundary = hop.envelope().expect("inside a run").boundary.unwrap();
                let mut other = boundary.clone();
                change(&mut other, SpanId(boundary.id.0 ^ 1));
                assert!(requested_for(&other).is_none(), "{what}");
                assert!(
                    requested_for(&boundary).is_none(),
                    "{what}: taken by the miss"
                );
                hop.end(&Ok(()));
            }
            // Equal texts elsewhere (a decoded boundary's) are the same boundary.
            let mut hop = Hop::action("plan research", "research:plan");
            let boundary = hop.envelope().expect("inside a run").boundary.unwrap();
            let built = boundary_attributes(&boundary);
            let mut decoded = boundary.clone();
            decoded.label = Cow::Owned(boundary.label.to_string());
            decoded.function_ref = Cow::Owned(boundary.function_ref.to_string());
            let shared = requested_for(&decoded).expect("the kept set");
            assert_eq!(shared, built);
            assert_eq!(
                serde_json::to_string(&shared).unwrap(),
                serde_json::to_string(&built).unwrap()
            );
            assert!(requested_for(&boundary).is_none(), "handed out once");
            hop.end(&Ok(()));

            // An empty label: `requested` names it as written (""), the envelope the path,
            // so the callee builds its own.
            let mut hop = Hop::action("", "research:plan");
            let boundary = hop.envelope().expect("inside a run").boundary.unwrap();
            assert_eq!(boundary.label, "research:plan");
            assert!(requested_for(&boundary).is_none());
            hop.end(&Ok(()));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn span_attributes_kept_per_thread_are_each_paths_own() {
        // More paths than the thread keeps, some with equal text at other addresses: each
        // list names its own path, in any order and when asked again.
        let paths: Vec<&'static str> = (0..300)
            .map(|i| &*Box::leak(format!("module{}:fn", i % 150).into_boxed_str()))
            .collect();
        for round in 0..3 {
            for (i, path) in paths.iter().enumerate() {
                let path = if round == 1 {
                    paths[paths.len() - 1 - i]
                } else {
                    path
                };
                let boundary = (i % 2 == 0).then_some("convex.action");
                let attrs = span_attributes(path, boundary);
                assert_eq!(attrs, build_span_attributes(path, boundary));
                assert_eq!(
                    serde_json::to_string(&attrs).unwrap(),
                    serde_json::to_string(&build_span_attributes(path, boundary)).unwrap()
                );
            }
        }
    }

    #[test]
    fn span_attributes_are_the_builders_in_the_same_order() {
        let built = Attributes::new()
            .with("functionRef", "research:plan")
            .with("boundary", "convex.action")
            .with("presentation", presentation());
        assert_eq!(
            span_attributes("research:plan", Some("convex.action")),
            built
        );
        let nested = Attributes::new()
            .with("functionRef", "research:plan")
            .with("presentation", presentation());
        assert_eq!(span_attributes("research:plan", None), nested);
    }
}
