//! [`Envelope::round_trips`]: whether an envelope's JSON text, strictly decoded, gives back
//! the very same envelope. Checked on the typed fields, without writing or reading text.
//!
//! The rules are the decoder's (`decode_envelope` in `mod.rs`, the text reader in
//! `text.rs`), applied to what [`Envelope::to_json_string`] would write for each field:
//! `crux-runtime/tests/differential.rs` holds the two to the same answer on generated
//! envelopes, valid and not.

use super::{
    Boundary, Correlators, DeploymentIdentity, ENVELOPE_VERSION, Envelope, MAX_LABEL, MAX_METADATA,
    MAX_METADATA_KEY, MAX_SPAN_STACK, WireContext,
};
use crate::clock::Timestamp;
use crate::ids::{RunId, SegmentId, SpanId};
use crate::wire::{MAX_SAFE_INTEGER, fits_text};

/// See [`Envelope::round_trips`].
pub(super) fn round_trips(e: &Envelope) -> bool {
    u64::from(e.v) == ENVELOPE_VERSION
        && e.observability.as_ref().is_none_or(context)
        && e.boundary.as_ref().is_none_or(boundary)
}

/// A run or segment id: its text has a prefix and 24 hex digits, refused when all zero.
fn prefixed(bytes: &[u8; 12]) -> bool {
    // As two words, not a byte loop: four of these a hop.
    let (head, tail) = bytes.split_at(8);
    u64::from_ne_bytes(head.try_into().expect("8 bytes")) != 0
        || u32::from_ne_bytes(tail.try_into().expect("4 bytes")) != 0
}

fn run(id: &RunId) -> bool {
    prefixed(&id.0)
}

fn span(id: &SpanId) -> bool {
    id.0 != 0
}

/// A span stack: at most [`MAX_SPAN_STACK`] ids, none zero.
fn stack(ids: &[SpanId]) -> bool {
    ids.len() <= MAX_SPAN_STACK && ids.iter().all(span)
}

/// The label rule: non-empty, within [`MAX_LABEL`] characters, no control characters.
fn label(s: &str) -> bool {
    !s.is_empty() && fits_text(s, MAX_LABEL)
}

fn context(c: &WireContext) -> bool {
    run(&c.run_id)
        && run(&c.operation_id)
        && c.trace_id.0 != 0
        && segment(&c.segment_id)
        && c.started_at_ms.is_none_or(|ms| ms <= MAX_SAFE_INTEGER)
        && c.correlators.as_ref().is_none_or(correlators)
        && c.deployment.as_ref().is_none_or(deployment)
        && stack(&c.span_stack)
        && c.current_span_id
            .is_none_or(|id| c.span_stack.last() == Some(&id))
        && c.parent_run_id.as_ref().is_none_or(run)
        && c.triggered_by_span_id.as_ref().is_none_or(span)
}

fn segment(id: &SegmentId) -> bool {
    prefixed(&id.0)
}

fn correlators(c: &Correlators) -> bool {
    c.session_id.as_deref().is_none_or(label)
        && c.user_id.as_deref().is_none_or(label)
        && c.metadata.len() <= MAX_METADATA
        && c.metadata
            .iter()
            .all(|(k, v)| fits_text(k, MAX_METADATA_KEY) && fits_text(v, MAX_LABEL))
}

fn deployment(d: &DeploymentIdentity) -> bool {
    label(&d.project_id) && label(&d.manifest_id) && label(&d.deployment_id)
}

fn boundary(b: &Boundary) -> bool {
    span(&b.id)
        && b.span_id == b.id
        && label(&b.label)
        && label(&b.function_ref)
        && stack(&b.parent_span_stack)
        && b.lease_expires_at.is_none_or(Timestamp::fits_iso)
}
