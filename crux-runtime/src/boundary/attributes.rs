//! The attributes every boundary event carries (reference §2.3), and the small text rules
//! of a boundary (labels on the wire, span names, the lease).

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::{Arc, LazyLock};

use serde_json::{Value, json};

use super::BOUNDARY_LEASE;
use crate::attributes::Attributes;
use crate::clock::Timestamp;
use crate::envelope::{Boundary, BoundaryKind, MAX_LABEL};
use crate::ids::{SpanId, SpanStack};
use crate::wire::{clamp_text, fits_text};

/// The attributes of a boundary event for `boundary`.
pub fn boundary_attributes(boundary: &Boundary) -> Attributes {
    attributes_of(
        boundary,
        boundary.label.clone(),
        boundary.function_ref.clone(),
        boundary.parent_span_stack.clone(),
        boundary.lease_expires_at,
    )
}

/// [`boundary_attributes`], taking the boundary's strings instead of copying them.
pub fn into_boundary_attributes(mut boundary: Boundary) -> Attributes {
    let label = std::mem::take(&mut boundary.label);
    let function_ref = std::mem::take(&mut boundary.function_ref);
    // Shared: the stack moves over as a reference count (taking it would allocate the
    // empty one left behind).
    let stack = boundary.parent_span_stack.clone();
    let lease = boundary.lease_expires_at.take();
    attributes_of(&boundary, label, function_ref, stack, lease)
}

/// The boundary attributes with the strings and stack given (borrowed when they are
/// `'static`, moved when the caller is done with them).
pub(super) fn attributes_of(
    boundary: &Boundary,
    label: Cow<'static, str>,
    function_ref: Cow<'static, str>,
    parent_span_stack: SpanStack,
    lease: Option<Timestamp>,
) -> Attributes {
    let kind = match boundary.kind {
        BoundaryKind::Action => "action",
        BoundaryKind::Schedule => "schedule",
    };
    // Fixed, distinct keys: pushed without a search, into a list of exactly their number
    // (an acknowledgement's `status` and `error` go to the frozen set's own list).
    let mut attrs = Attributes::with_capacity(6 + usize::from(lease.is_some()));
    // Ids as ids and the lease as a time: written as their text when the record is, not
    // on every hop.
    attrs.push_new("boundaryId", boundary.id);
    attrs.push_new("boundarySpanId", boundary.span_id);
    attrs.push_new("boundaryKind", kind);
    attrs.push_new("boundaryLabel", label);
    attrs.push_new("functionRef", function_ref);
    attrs.push_new("parentSpanStack", parent_span_stack);
    if let Some(lease) = lease {
        attrs.push_new("leaseExpiresAt", lease);
    }
    attrs
}

/// The `requested` attributes of the last action boundary this thread opened, with what
/// they were built from ([`keep_requested`], [`requested_for`]).
struct Requested {
    /// The boundary's id and span (one id on an action boundary).
    id: SpanId,
    label: &'static str,
    function_ref: &'static str,
    parent_span_stack: SpanStack,
    lease: Option<Timestamp>,
    attributes: Attributes,
}

thread_local! {
    static REQUESTED: RefCell<Option<Requested>> = const { RefCell::new(None) };
}

/// Keeps `attributes` (frozen: the `requested` event's set, built from the action
/// boundary `boundary` with the caller's `label` and `path`) for the callee of this
/// boundary, when it runs on this thread ([`requested_for`]): a call to a function of the
/// same deployment is received in the caller's task, so its acknowledgements share the
/// caller's set instead of building the same list again from the envelope (an allocation,
/// seven entries, and their drop). Kept only when the set is the one the callee would
/// build: the label on the wire is the caller's as it is (an empty or clamped one is not).
pub(super) fn keep_requested(
    boundary: &Boundary,
    label: &'static str,
    path: &'static str,
    attributes: &Attributes,
) {
    if boundary.kind != BoundaryKind::Action
        || boundary.span_id != boundary.id
        || !same_text(&boundary.label, label)
        || !same_text(&boundary.function_ref, path)
    {
        return;
    }
    let kept = Requested {
        id: boundary.id,
        label,
        function_ref: path,
        parent_span_stack: boundary.parent_span_stack.clone(),
        lease: boundary.lease_expires_at,
        attributes: attributes.clone(),
    };
    let _ = REQUESTED.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            *r = Some(kept);
        }
    });
}

/// The attributes [`attributes_of`] builds for `boundary` (what
/// [`into_boundary_attributes`] gives), shared, when they are the set this thread kept for
/// an equal boundary ([`keep_requested`]): every field they are built from is compared, so
/// they are the set the boundary's own fields give, whoever sent it. Taken whether or not
/// it matches: the first boundary received after a hop on its thread is its callee's, or
/// the callee runs elsewhere, so nothing is held past that.
pub(super) fn requested_for(boundary: &Boundary) -> Option<Attributes> {
    REQUESTED
        .try_with(|r| {
            let kept = r.try_borrow_mut().ok()?.take()?;
            let same = kept.id == boundary.id
                && boundary.span_id == boundary.id
                && boundary.kind == BoundaryKind::Action
                && same_text(&boundary.label, kept.label)
                && same_text(&boundary.function_ref, kept.function_ref)
                && kept.parent_span_stack == boundary.parent_span_stack
                && kept.lease == boundary.lease_expires_at;
            same.then_some(kept.attributes)
        })
        .ok()
        .flatten()
}

/// Whether `a` is `b`: by address first (a boundary received from this thread's own hop
/// holds the caller's `'static` texts), else by content.
fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.as_ptr() == b.as_ptr() || a == b)
}

/// The label as the envelope carries it: the receiving decoder refuses an empty label,
/// more than [`MAX_LABEL`] characters or control characters, and a refused envelope would
/// cut the callee off the caller's run. The span keeps the label as written; an empty one
/// travels as the function's path.
pub(super) fn wire_label(label: &'static str, path: &'static str) -> Cow<'static, str> {
    let label = if label.is_empty() { path } else { label };
    if fits_text(label, MAX_LABEL) {
        // The usual label: sent as it is, no copy.
        return Cow::Borrowed(label);
    }
    Cow::Owned(clamp_text(label.to_owned(), MAX_LABEL))
}

/// The boundary span's name: the label, or the function's path for an empty one (a span
/// without a name is refused by the pipeline, and its callee would hang off nothing).
pub(super) fn span_name(label: &'static str, path: &'static str) -> &'static str {
    if label.is_empty() { path } else { label }
}

/// When a boundary opened at `opened` goes stale.
pub(super) fn lease_expiry(opened: Timestamp) -> Timestamp {
    opened.plus_millis(BOUNDARY_LEASE.as_millis() as u64)
}

/// How viewers show a boundary span: one value for every hop's span.
pub(super) fn presentation() -> Arc<Value> {
    static PRESENTATION: LazyLock<Arc<Value>> =
        LazyLock::new(|| Arc::new(json!({"display": "detail"})));
    Arc::clone(&PRESENTATION)
}
