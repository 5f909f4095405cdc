//! The current Crux context: which segment and which span stack code runs under.
//!
//! A [`Scope`] is one immutable frame (live segment + span stack, a persistent list, so
//! cloning is two reference-count bumps). The current scope lives in a thread-local that
//! [`WithContext`] installs around every poll of the future it wraps (as tracing's
//! `Instrumented` does) and [`EnterGuard`] installs for synchronous code. The context thus
//! moves with the future across thread hops, and two concurrent futures never see each
//! other's.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::task::{Context, Poll};

use crate::attributes::Attributes;
use crate::clock::Timestamp;
use crate::delivery::Slot;
use crate::envelope::WireContext;
use crate::ids::{EventId, RunId, SegmentId, SpanId, SpanStack, TraceId};
use crate::observe::Observer;
use crate::record::{Base, Body, Record, SegmentExtra};

/// One physical invocation's slice of a run: the ids every record carries and the
/// sequence counter.
pub(crate) struct Segment {
    pub(crate) observer: Observer,
    pub(crate) run_id: RunId,
    pub(crate) operation_id: RunId,
    pub(crate) segment_id: SegmentId,
    pub(crate) trace_id: TraceId,
    pub(crate) extra: Option<Arc<SegmentExtra>>,
    pub(crate) started_at_ms: Option<u64>,
    pub(crate) parent_run_id: Option<RunId>,
    pub(crate) triggered_by_span_id: Option<SpanId>,
    seq: AtomicU32,
}

pub(crate) struct SegmentInit {
    pub(crate) run_id: RunId,
    pub(crate) operation_id: RunId,
    pub(crate) trace_id: TraceId,
    pub(crate) extra: Option<Arc<SegmentExtra>>,
    pub(crate) started_at_ms: Option<u64>,
    pub(crate) parent_run_id: Option<RunId>,
    pub(crate) triggered_by_span_id: Option<SpanId>,
}

impl Segment {
    pub(crate) fn open(observer: Observer, init: SegmentInit) -> Arc<Segment> {
        Arc::new(Segment {
            observer,
            run_id: init.run_id,
            operation_id: init.operation_id,
            segment_id: SegmentId::generate(),
            trace_id: init.trace_id,
            extra: init.extra,
            started_at_ms: init.started_at_ms,
            parent_run_id: init.parent_run_id,
            triggered_by_span_id: init.triggered_by_span_id,
            seq: AtomicU32::new(0),
        })
    }

    /// Whether records of this segment go anywhere.
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        self.observer.pipeline().is_some()
    }

    /// Numbers and enqueues a record of this segment.
    #[inline]
    pub(crate) fn emit(&self, body: Body) {
        if let Some(slot) = self.reserve() {
            slot.fill(body);
        }
    }

    /// Records a `span:event` of this segment's span `span_id`, now: the body built once
    /// the slot is taken ([`reserve`](Segment::reserve)), so it is written straight into
    /// the queued record (a boundary's acknowledgements are two of a hop's records).
    // Always inlined: out of line, the parts would be passed through memory.
    #[inline(always)]
    pub(crate) fn span_event(
        &self,
        span_id: SpanId,
        name: Cow<'static, str>,
        attributes: Attributes,
    ) {
        let event_id = EventId::generate();
        let timestamp = Timestamp::now();
        if let Some(slot) = self.reserve() {
            slot.fill(Body::SpanEvent {
                span_id,
                event_id,
                name,
                timestamp,
                attributes,
            });
        }
    }

    /// Room for one record of this segment in the queue, its number taken (`None` when
    /// nothing records): the caller builds the body after this, in its own frame, and
    /// [`fill`](RecordSlot::fill) writes it straight into the record. A body built before
    /// (or inside a closure, whose captures are a copy of their own) is copied in again:
    /// a span's records skip that copy.
    // Always inlined: out of line, the slot it returns is passed through memory.
    #[inline(always)]
    pub(crate) fn reserve(&self) -> Option<RecordSlot<'_>> {
        let pipeline = self.observer.pipeline()?;
        let extra = self.extra.clone();
        Some(RecordSlot {
            segment: self,
            extra,
            slot: pipeline.reserve(&self.seq),
        })
    }
}

/// One record of a segment on its way into the queue ([`Segment::reserve`]); the queue
/// lock is held until [`fill`](RecordSlot::fill). Nothing fallible belongs between the two:
/// a slot dropped unfilled leaves a hole in `segmentSeq`.
#[must_use = "a slot dropped unfilled leaves a hole in segmentSeq"]
pub(crate) struct RecordSlot<'a> {
    segment: &'a Segment,
    extra: Option<Arc<SegmentExtra>>,
    slot: Slot<'a>,
}

impl RecordSlot<'_> {
    /// Queues the record of `body`.
    #[inline(always)]
    pub(crate) fn fill(self, body: Body) {
        let segment = self.segment;
        let segment_seq = self.slot.seq();
        self.slot.fill(Record {
            base: Base {
                record_id: None,
                run_id: segment.run_id,
                operation_id: segment.operation_id,
                segment_id: segment.segment_id,
                segment_seq,
                trace_id: segment.trace_id,
                extra: self.extra,
            },
            body,
        });
    }
}

pub(crate) struct SpanNode {
    pub(crate) id: SpanId,
    pub(crate) parent: Option<Arc<SpanNode>>,
}

/// How many span nodes a thread keeps for reuse ([`keep_spare`]).
///
/// A span started for an integration ([`Scope::start_span`]) is built with its own scope's
/// node, the one [`ScopedSpan::scope`](crate::span::ScopedSpan::scope) then hands out (a `tracing`
/// span's scope, made current while it is entered), and gives it back when it ends, if
/// nothing holds it any more: the thread's next span reuses it. No malloc and no free per
/// span (the free took glibc's slow path, ≈ 110 instructions). A few per thread, as many
/// spans as a thread usually ends before it starts more; beyond that a node is freed.
const SPARE_NODES: usize = 16;

thread_local! {
    /// The nodes this thread keeps (each the only reference to itself, its parent let go).
    static SPARE: RefCell<Vec<Arc<SpanNode>>> = const { RefCell::new(Vec::new()) };
}

/// A node for `id` on `parent`: one this thread kept, else a new one.
#[inline]
pub(crate) fn span_node(id: SpanId, parent: Option<Arc<SpanNode>>) -> Arc<SpanNode> {
    let node = SpanNode { id, parent };
    match SPARE.try_with(|s| s.try_borrow_mut().ok()?.pop()) {
        Ok(Some(mut spare)) => match Arc::get_mut(&mut spare) {
            Some(kept) => {
                *kept = node;
                spare
            }
            None => Arc::new(node),
        },
        _ => Arc::new(node),
    }
}

/// Keeps `node`, whose span ended, for this thread's next [`span_node`] if nothing else
/// holds it (no scope made from it lives on) and the thread keeps fewer than
/// [`SPARE_NODES`]; else it is dropped. Its parent is let go of now either way.
// Never inlined: `ScopedSpan::end` stays two calls, this and `Span::end`.
#[inline(never)]
pub(crate) fn keep_spare(mut node: Arc<SpanNode>) {
    let Some(kept) = Arc::get_mut(&mut node) else {
        return;
    };
    let parent = kept.parent.take();
    let _ = SPARE.try_with(move |s| {
        if let Ok(mut spare) = s.try_borrow_mut()
            && spare.len() < SPARE_NODES
        {
            spare.push(node);
        }
    });
    drop(parent);
}

/// One context frame: a live segment and a span stack.
///
/// Get one from [`Run::scope`](crate::run::Run::scope), [`Span::scope`](crate::span::Span::scope)
/// or [`current_scope`](crate::observe::current_scope); run code under it with
/// [`in_scope`](Scope::in_scope) (async) or [`enter`](Scope::enter) (sync).
#[derive(Clone)]
pub struct Scope {
    pub(crate) segment: Arc<Segment>,
    pub(crate) top: Option<Arc<SpanNode>>,
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("run_id", &self.segment.run_id)
            .field("segment_id", &self.segment.segment_id)
            .field("current_span_id", &self.current_span_id())
            .finish()
    }
}

impl Scope {
    /// Runs `fut` with this scope current on every poll.
    pub fn in_scope<F: Future>(&self, fut: F) -> WithContext<F> {
        WithContext::new(Some(self.clone()), fut)
    }

    /// Makes this scope current for synchronous code until the guard drops.
    pub fn enter(&self) -> EnterGuard {
        EnterGuard {
            previous: swap_current(Some(self.clone())),
            _not_send: std::marker::PhantomData,
        }
    }

    /// The run this scope belongs to.
    pub fn run_id(&self) -> RunId {
        self.segment.run_id
    }

    /// The operation (root run of the family).
    pub fn operation_id(&self) -> RunId {
        self.segment.operation_id
    }

    /// The W3C trace.
    pub fn trace_id(&self) -> TraceId {
        self.segment.trace_id
    }

    /// The live segment.
    pub fn segment_id(&self) -> SegmentId {
        self.segment.segment_id
    }

    /// The innermost open span, if any.
    pub fn current_span_id(&self) -> Option<SpanId> {
        self.top.as_ref().map(|n| n.id)
    }

    /// The open spans, outermost first.
    pub fn span_stack(&self) -> Vec<SpanId> {
        let mut out = Vec::new();
        let mut node = self.top.as_deref();
        while let Some(n) = node {
            out.push(n.id);
            node = n.parent.as_deref();
        }
        out.reverse();
        out
    }

    /// A snapshot of this scope that also keeps the live segment (in-process).
    pub fn capture(&self) -> CapturedContext {
        CapturedContext {
            wire: self.wire_context(),
            live: Some(self.clone()),
        }
    }

    /// This scope as it crosses the wire. The span stack it carries is the innermost
    /// [`MAX_SPAN_STACK`](crate::envelope::MAX_SPAN_STACK) ids, the most a receiver accepts.
    pub fn wire_context(&self) -> WireContext {
        self.wire_context_with(None)
    }

    /// [`wire_context`](Self::wire_context) of this scope with `pushed` on top of its
    /// stack (a span started under it: a hop's own context), without building that scope.
    // Always inlined (the stack's walk stays out of line): a hop writes the context
    // straight into the envelope's box; returned from a call, its 288 bytes were copied in.
    #[inline(always)]
    pub(crate) fn wire_context_with(&self, pushed: Option<SpanId>) -> WireContext {
        let span_stack = self.wire_span_stack(pushed);
        let extra = self.segment.extra.as_deref();
        WireContext {
            run_id: self.segment.run_id,
            operation_id: self.segment.operation_id,
            trace_id: self.segment.trace_id,
            segment_id: self.segment.segment_id,
            started_at_ms: self.segment.started_at_ms,
            correlators: extra.and_then(|e| e.correlators.clone()),
            deployment: extra.and_then(|e| e.deployment.clone()),
            current_span_id: span_stack.last().copied(),
            span_stack,
            parent_run_id: self.segment.parent_run_id,
            triggered_by_span_id: self.segment.triggered_by_span_id,
        }
    }

    /// The innermost [`MAX_SPAN_STACK`](crate::envelope::MAX_SPAN_STACK) ids of the stack
    /// (with `pushed` on top, when given), outermost first: the one rule cutting a span
    /// stack for the wire. Walked from the top into a
    /// buffer of the kept number, filled from its end (on the thread's stack for a usual
    /// depth), so the ids kept are read once into one shared allocation of their number.
    #[inline(never)]
    fn wire_span_stack(&self, pushed: Option<SpanId>) -> SpanStack {
        /// Deepest stack built without a heap buffer first (a zeroed array this size).
        const INLINE: usize = 16;
        let mut depth = usize::from(pushed.is_some());
        let mut node = self.top.as_deref();
        while let Some(n) = node {
            depth += 1;
            node = n.parent.as_deref();
        }
        let keep = depth.min(crate::envelope::MAX_SPAN_STACK);
        let fill = |out: &mut [SpanId]| {
            let mut at = out.len();
            let mut node = self.top.as_deref();
            if let Some(id) = pushed {
                at -= 1;
                out[at] = id;
            }
            while let Some(n) = node.filter(|_| at > 0) {
                at -= 1;
                out[at] = n.id;
                node = n.parent.as_deref();
            }
        };
        if keep <= INLINE {
            let mut buf = [SpanId(0); INLINE];
            fill(&mut buf[..keep]);
            SpanStack::from(&buf[..keep])
        } else {
            let mut buf = vec![SpanId(0); keep];
            fill(&mut buf);
            SpanStack::from(buf)
        }
    }

    /// A child scope with `id` pushed on the stack.
    // A plain allocation, not [`span_node`]: only spans built with their own node give
    // nodes back, so for spans from `SpanBuilder::start` (the only ones reaching here) the
    // thread's spare list is empty and looking in it would be pure cost.
    pub(crate) fn push(&self, id: SpanId) -> Scope {
        self.with_top(Arc::new(SpanNode {
            id,
            parent: self.top.clone(),
        }))
    }

    /// This scope's segment with `top` as its stack (a node pushed on this scope's).
    pub(crate) fn with_top(&self, top: Arc<SpanNode>) -> Scope {
        Scope {
            segment: Arc::clone(&self.segment),
            top: Some(top),
        }
    }

    /// Rebuilds a stack from ids, outermost first.
    pub(crate) fn with_stack(segment: Arc<Segment>, stack: &[SpanId]) -> Scope {
        let mut top = None;
        for id in stack {
            top = Some(Arc::new(SpanNode {
                id: *id,
                parent: top,
            }));
        }
        Scope { segment, top }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

// Inlined: every poll of a `WithContext` swaps twice, and every flush delivering on its
// own thread (`outside_any`).
#[inline]
pub(crate) fn swap_current(scope: Option<Scope>) -> Option<Scope> {
    CURRENT.try_with(|c| c.replace(scope)).ok().flatten()
}

/// Runs `f` with no current scope on this thread, then puts the current one back (also
/// if `f` panics): a flush delivering on its caller's thread calls the sinks this way.
pub(crate) fn outside_any(f: &mut dyn FnMut()) {
    struct Restore(Option<Scope>);
    impl Drop for Restore {
        fn drop(&mut self) {
            swap_current(self.0.take());
        }
    }
    let _restore = Restore(swap_current(None));
    f();
}

/// The current scope, if code runs inside one.
pub(crate) fn current() -> Option<Scope> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Runs `f` with a reference to the current scope, without cloning it.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Scope>) -> R) -> R {
    let mut f = Some(f);
    CURRENT
        .try_with(|c| match c.try_borrow() {
            Ok(s) => (f.take().expect("called once"))(s.as_ref()),
            Err(_) => (f.take().expect("called once"))(None),
        })
        .unwrap_or_else(|_| (f.take().expect("called once"))(None))
}

/// Makes a scope current for synchronous code; restores the previous one when dropped.
#[must_use = "the scope is current only while the guard lives"]
pub struct EnterGuard {
    previous: Option<Scope>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        swap_current(self.previous.take());
    }
}

/// A snapshot of the current Crux context, to carry work across a task, a queue or a
/// process ([`capture_context`](crate::observe::capture_context),
/// [`with_context`](crate::observe::with_context)).
///
/// It is the wire form ([`WireContext`], which it derefs to and serializes as) plus, when
/// taken in-process, a handle to its live segment, so that `with_context` continues that
/// very segment; one built from a decoded [`WireContext`] continues in a new segment.
/// Equality compares the wire form only.
#[derive(Clone)]
pub struct CapturedContext {
    wire: WireContext,
    live: Option<Scope>,
}

impl CapturedContext {
    /// Whether this capture still holds its live in-process segment.
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// The wire form.
    pub fn wire(&self) -> &WireContext {
        &self.wire
    }

    /// The wire form, dropping the live handle.
    pub fn into_wire(self) -> WireContext {
        self.wire
    }

    pub(crate) fn into_parts(self) -> (WireContext, Option<Scope>) {
        (self.wire, self.live)
    }
}

impl From<WireContext> for CapturedContext {
    /// A context received over the wire: it continues in a new segment.
    fn from(wire: WireContext) -> Self {
        Self { wire, live: None }
    }
}

impl std::ops::Deref for CapturedContext {
    type Target = WireContext;

    fn deref(&self) -> &WireContext {
        &self.wire
    }
}

impl PartialEq for CapturedContext {
    fn eq(&self, other: &Self) -> bool {
        self.wire == other.wire
    }
}

impl fmt::Debug for CapturedContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapturedContext")
            .field("wire", &self.wire)
            .field("live", &self.live.is_some())
            .finish()
    }
}

impl serde::Serialize for CapturedContext {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.wire.serialize(s)
    }
}

/// A future that runs with a scope current on every poll (see [`Scope::in_scope`]).
pub struct WithContext<F> {
    scope: Option<Scope>,
    /// A context received over the wire, turned into a scope on the first poll (so it
    /// continues on the observer current where the future runs).
    received: Option<Box<WireContext>>,
    inner: F,
}

impl<F> WithContext<F> {
    pub(crate) fn new(scope: Option<Scope>, inner: F) -> Self {
        Self {
            scope,
            received: None,
            inner,
        }
    }

    pub(crate) fn received(ctx: WireContext, inner: F) -> Self {
        Self {
            scope: None,
            received: Some(Box::new(ctx)),
            inner,
        }
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of `self`, and
        // `WithContext` has no `Drop` impl or `Unpin` impl that would move it. `scope` is
        // not pinned and only cloned from.
        let this = unsafe { self.get_unchecked_mut() };
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        if let Some(ctx) = this.received.take() {
            this.scope = Some(crate::observe::current_observer().continue_context(&ctx));
        }
        let Some(scope) = &this.scope else {
            return inner.poll(cx);
        };
        struct Restore(Option<Scope>);
        impl Drop for Restore {
            fn drop(&mut self) {
                swap_current(self.0.take());
            }
        }
        let _restore = Restore(swap_current(Some(scope.clone())));
        inner.poll(cx)
    }
}

impl<F> fmt::Debug for WithContext<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithContext")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spare_len() -> usize {
        SPARE.with(|s| s.borrow().len())
    }

    /// An ended span's node comes back for the thread's next span, rebuilt (new id, no
    /// parent) and its parent let go; a node something still holds, or one beyond the
    /// [`SPARE_NODES`] bound, is not kept.
    #[test]
    fn an_ended_span_node_is_reused_by_the_next_and_only_when_free() {
        // A thread of its own: its spare list starts empty whatever else ran here.
        std::thread::spawn(|| {
            let parent = span_node(SpanId(1), None);
            let n = span_node(SpanId(2), Some(Arc::clone(&parent)));
            assert_eq!(Arc::strong_count(&parent), 2);
            let ptr = Arc::as_ptr(&n);
            keep_spare(n);
            assert_eq!(Arc::strong_count(&parent), 1, "the parent is let go of");
            assert_eq!(spare_len(), 1);

            let reused = span_node(SpanId(3), None);
            assert_eq!(Arc::as_ptr(&reused), ptr, "the kept node comes back");
            assert_eq!(reused.id, SpanId(3));
            assert!(reused.parent.is_none());
            assert_eq!(spare_len(), 0);

            // A scope still holds a clone: not kept, the next node is another.
            let held = Arc::clone(&reused);
            keep_spare(reused);
            assert_eq!(spare_len(), 0);
            let other = span_node(SpanId(4), None);
            assert_ne!(Arc::as_ptr(&other), Arc::as_ptr(&held));
            drop((held, other));

            // At most SPARE_NODES kept: the one after them is freed.
            let nodes: Vec<_> = (0..=SPARE_NODES as u64)
                .map(|i| span_node(SpanId(10 + i), None))
                .collect();
            let ptrs: Vec<_> = nodes.iter().map(Arc::as_ptr).collect();
            nodes.into_iter().for_each(keep_spare);
            assert_eq!(spare_len(), SPARE_NODES);
            // Last kept, first reused: the first SPARE_NODES come back, the last never.
            let back: Vec<_> = (0..SPARE_NODES as u64)
                .map(|i| span_node(SpanId(100 + i), None))
                .collect();
            let mut back_ptrs: Vec<_> = back.iter().map(Arc::as_ptr).collect();
            back_ptrs.reverse();
            assert_eq!(back_ptrs, ptrs[..SPARE_NODES]);
            assert_eq!(spare_len(), 0);
        })
        .join()
        .unwrap();
    }
}
