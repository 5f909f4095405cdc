//! [`Envelope::to_json_string`]: the serde text of an envelope, written directly.
//!
//! Field order and omissions follow the `Serialize` derives in `mod.rs`; a test compares
//! the two for every field.

use super::{Boundary, BoundaryKind, Envelope, WireContext};
use crate::ids::SpanId;
use crate::json_text;

pub(super) fn envelope(out: &mut String, e: &Envelope) {
    out.push_str("{\"v\":");
    decimal(out, u64::from(e.v));
    if let Some(c) = &e.observability {
        out.push_str(",\"observability\":");
        context(out, c);
    }
    if let Some(b) = &e.boundary {
        out.push_str(",\"boundary\":");
        boundary(out, b);
    }
    out.push('}');
}

/// `n` in decimal, as serde writes an integer (without the formatter machinery).
fn decimal(out: &mut String, n: u64) {
    if n < 10 {
        // One digit (an envelope's `v`, for one), pushed as it is (no text check of a buffer).
        out.push(char::from(b'0' + n as u8));
        return;
    }
    // ASCII digits.
    out.push_str(std::str::from_utf8(json_text::digits(&mut [0; 20], n)).unwrap_or_default());
}

/// `,"key":"id"` for an id, whose text is ASCII hex with an ASCII prefix.
macro_rules! id_field {
    ($out:expr, $key:literal, $id:expr) => {{
        $out.push_str(concat!(",\"", $key, "\":\""));
        $out.push_str($id.encode().as_str());
        $out.push('"');
    }};
}

/// A string with JSON escaping, as serde writes it (it escapes only `"`, `\\` and
/// U+0000..=U+001F).
fn string(out: &mut String, s: &str) {
    if json_text::special_at(s.as_bytes()).is_none() {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // Serializing a `str` cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

fn stack(out: &mut String, ids: &[SpanId]) {
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(id.encode().as_str());
        out.push('"');
    }
    out.push(']');
}

fn context(out: &mut String, c: &WireContext) {
    out.push_str("{\"runId\":\"");
    out.push_str(c.run_id.encode().as_str());
    out.push('"');
    id_field!(out, "operationId", c.operation_id);
    id_field!(out, "traceId", c.trace_id);
    id_field!(out, "segmentId", c.segment_id);
    if let Some(ms) = c.started_at_ms {
        out.push_str(",\"startedAtMs\":");
        decimal(out, ms);
    }
    // Rare: plain serde (cannot fail for these types).
    if let Some(correlators) = &c.correlators {
        out.push_str(",\"correlators\":");
        out.push_str(&serde_json::to_string(correlators).unwrap_or_default());
    }
    if let Some(deployment) = &c.deployment {
        out.push_str(",\"deployment\":");
        out.push_str(&serde_json::to_string(deployment).unwrap_or_default());
    }
    out.push_str(",\"spanStack\":");
    stack(out, &c.span_stack);
    if let Some(id) = c.current_span_id {
        id_field!(out, "currentSpanId", id);
    }
    if let Some(id) = c.parent_run_id {
        id_field!(out, "parentRunId", id);
    }
    if let Some(id) = c.triggered_by_span_id {
        id_field!(out, "triggeredBySpanId", id);
    }
    out.push('}');
}

fn boundary(out: &mut String, b: &Boundary) {
    out.push_str("{\"id\":\"");
    out.push_str(b.id.encode().as_str());
    out.push('"');
    id_field!(out, "spanId", b.span_id);
    out.push_str(match b.kind {
        BoundaryKind::Action => ",\"kind\":\"action\"",
        BoundaryKind::Schedule => ",\"kind\":\"schedule\"",
    });
    out.push_str(",\"label\":");
    string(out, &b.label);
    out.push_str(",\"ref\":");
    string(out, &b.function_ref);
    out.push_str(",\"parentSpanStack\":");
    stack(out, &b.parent_span_stack);
    if let Some(lease) = b.lease_expires_at {
        out.push_str(",\"leaseExpiresAt\":\"");
        // ASCII digits and separators: nothing to escape.
        lease.with_iso(|text| out.push_str(text));
        out.push('"');
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_writes_what_display_writes() {
        let mut values = vec![0, 1, 9, 10, 11, 99, 100, 101, 999, 1_000, 1_767_323_045_678];
        values.extend((0..64).map(|shift| 1u64 << shift));
        values.extend((0..64).map(|shift| (1u64 << shift) - 1));
        values.push(u64::MAX);
        for n in values {
            let mut out = String::new();
            super::decimal(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }
}
