//! Folding infrastructure-only boundaries into the work they carry.
//!
//! A `runtime.convex.*` span whose only job is the hop (it has one child subtree of real
//! work, or none) says little on its own: the interesting line is the work. By default the
//! view puts the work in the boundary's place and records the boundary as a hop on it
//! (`↳ via runtime.convex.action "plan research"`); a boundary without children stays as one
//! compact line marked as folded. `--all` keeps every span as recorded.

use crate::model::{BOUNDARY_EVENT_PREFIX, Run, Span};
use crate::time::{millis_between, parse_iso8601};
use crate::view::{EventView, NodeView, RunView};

/// How much of the run to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Folding {
    /// Fold infrastructure-only boundaries (the default).
    Fold,
    /// Show every span as recorded (`--all`).
    All,
}

/// Whether a span is an infrastructure-only hop: a `runtime.convex.*` span with at most one
/// child.
pub fn is_hop(span: &Span) -> bool {
    span.is_boundary() && span.children.len() <= 1
}

/// Builds the view of `run`.
pub fn view(run: &Run, folding: Folding) -> RunView {
    RunView {
        run_id: run.run_id.clone(),
        name: run.name().to_owned(),
        root_primitive: run.root_primitive().to_owned(),
        status: run.status.clone(),
        started_at: run.started_at().map(str::to_owned),
        ended_at: run.end.as_ref().map(|e| e.ended_at.clone()),
        duration_ms: run.duration_ms(),
        records: run.records,
        segments: run.segments.clone(),
        operation_id: run.operation_id.clone(),
        trace_id: run.trace_id.clone(),
        incomplete: run.start.is_none(),
        attributes: run
            .start
            .as_ref()
            .map(|s| s.attributes.clone())
            .unwrap_or_default(),
        error: run.end.as_ref().and_then(|e| e.error.clone()),
        lifecycle: run.lifecycle.clone(),
        links: run.links.clone(),
        spans: run
            .roots
            .iter()
            .map(|&i| node(run, i, folding, Vec::new()))
            .collect(),
    }
}

fn node(run: &Run, index: usize, folding: Folding, mut via: Vec<NodeView>) -> NodeView {
    let span = &run.spans[index];
    if folding == Folding::Fold && is_hop(span) {
        if let [child] = span.children[..] {
            via.push(plain(run, index, Folding::Fold, true));
            return node(run, child, folding, via);
        }
        let mut compact = plain(run, index, folding, true);
        compact.folded = true;
        compact.via = via;
        return compact;
    }
    let mut view = plain(run, index, folding, false);
    view.via = via;
    view
}

/// The span itself; `hop` drops the boundary's own acknowledgement events, which folding
/// summarizes.
fn plain(run: &Run, index: usize, folding: Folding, hop: bool) -> NodeView {
    let span = &run.spans[index];
    let started = span.started_at();
    NodeView {
        span_id: span.span_id.clone(),
        name: span.name().to_owned(),
        primitive: span.primitive().to_owned(),
        status: span.status.clone(),
        status_source: span.status_source,
        started_at: span.open.as_ref().map(|o| o.started_at.clone()),
        ended_at: span.close.as_ref().map(|c| c.ended_at.clone()),
        duration_ms: span.duration_ms(),
        details: span
            .open
            .as_ref()
            .map(|o| o.details.iter().cloned().collect())
            .unwrap_or_default(),
        error: span.close.as_ref().and_then(|c| c.error.clone()),
        events: span
            .events
            .iter()
            .filter(|e| !(hop && e.name.starts_with(BOUNDARY_EVENT_PREFIX)))
            .map(|e| EventView {
                event_id: e.event_id.clone(),
                name: e.name.clone(),
                timestamp: e.timestamp.clone(),
                offset_ms: started
                    .and_then(|s| parse_iso8601(&e.timestamp).map(|at| millis_between(s, at))),
                attributes: e.attributes.clone(),
            })
            .collect(),
        attributes: span.attributes(),
        metrics: span
            .close
            .as_ref()
            .map(|c| c.metrics.clone())
            .unwrap_or_default(),
        artifacts: span.artifacts.clone(),
        links: span.links.clone(),
        missing_parent: span.missing_parent.clone(),
        via: Vec::new(),
        folded: false,
        children: if hop {
            Vec::new()
        } else {
            span.children
                .iter()
                .map(|&c| node(run, c, folding, Vec::new()))
                .collect()
        },
    }
}
