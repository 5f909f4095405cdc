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
        too_deep_under: span.too_deep_under.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::build;
    use crate::model::tests::{span_end, span_start};
    use crate::record::records_from_lines;
    use crate::view::NodeView;

    const R: &str = "run_aaaaaaaaaaaaaaaaaaaaaaaa";

    fn outline(nodes: &[NodeView], depth: usize, out: &mut Vec<String>) {
        for node in nodes {
            let via: Vec<&str> = node.via.iter().map(|v| v.name.as_str()).collect();
            out.push(format!(
                "{}{}{}{}",
                "  ".repeat(depth),
                node.name,
                if via.is_empty() {
                    String::new()
                } else {
                    format!(" via {via:?}")
                },
                if node.folded { " (folded)" } else { "" }
            ));
            outline(&node.children, depth + 1, out);
        }
    }

    fn shown(lines: &[String], folding: Folding) -> Vec<String> {
        let model = build(records_from_lines(lines));
        let mut out = Vec::new();
        outline(&view(&model.runs[0], folding).spans, 0, &mut out);
        out
    }

    #[test]
    fn folds_hops_into_their_only_child_and_keeps_busy_boundaries() {
        let lines = vec![
            // outer → inner → work: a waterfall folds into the work, both hops recorded.
            span_start(
                R,
                ("s", 1, 0),
                "00000000000000a1",
                None,
                "runtime.convex.action",
                "outer",
            ),
            span_start(
                R,
                ("s", 2, 1),
                "00000000000000a2",
                Some("00000000000000a1"),
                "runtime.convex.action",
                "inner",
            ),
            span_start(
                R,
                ("s", 3, 2),
                "00000000000000a3",
                Some("00000000000000a2"),
                "generation.call",
                "work",
            ),
            // A boundary with two children is real structure: kept.
            span_start(
                R,
                ("s", 4, 3),
                "00000000000000b1",
                None,
                "runtime.convex.action",
                "fan out",
            ),
            span_start(
                R,
                ("s", 5, 4),
                "00000000000000b2",
                Some("00000000000000b1"),
                "tool.call",
                "one",
            ),
            span_start(
                R,
                ("s", 6, 5),
                "00000000000000b3",
                Some("00000000000000b1"),
                "tool.call",
                "two",
            ),
            // A childless hop stays as one compact line.
            span_start(
                R,
                ("s", 7, 6),
                "00000000000000c1",
                None,
                "runtime.convex.query",
                "read",
            ),
            span_end(R, ("s", 8, 7), "00000000000000c1", "ok"),
            // Not a runtime.convex span: never folded.
            span_start(
                R,
                ("s", 9, 8),
                "00000000000000d1",
                None,
                "agent.run",
                "agent",
            ),
            span_start(
                R,
                ("s", 10, 9),
                "00000000000000d2",
                Some("00000000000000d1"),
                "tool.call",
                "only",
            ),
        ];
        assert_eq!(
            shown(&lines, Folding::Fold),
            [
                "work via [\"outer\", \"inner\"]",
                "fan out",
                "  one",
                "  two",
                "read (folded)",
                "agent",
                "  only",
            ]
        );
        assert_eq!(
            shown(&lines, Folding::All),
            [
                "outer", "  inner", "    work", "fan out", "  one", "  two", "read", "agent",
                "  only"
            ]
        );
    }

    #[test]
    fn a_folded_hop_drops_only_its_boundary_events() {
        let lines = vec![
            span_start(
                R,
                ("s", 1, 0),
                "00000000000000a1",
                None,
                "runtime.convex.action",
                "hop",
            ),
            crate::model::tests::line(
                R,
                "s",
                2,
                1,
                r#""type":"span:event","spanId":"00000000000000a1","name":"runtime.convex.boundary.requested","timestamp":"$AT""#,
            ),
            crate::model::tests::line(
                R,
                "s",
                3,
                2,
                r#""type":"span:event","spanId":"00000000000000a1","name":"exception","timestamp":"$AT""#,
            ),
        ];
        let model = build(records_from_lines(&lines));
        let folded = view(&model.runs[0], Folding::Fold);
        let names: Vec<&str> = folded.spans[0]
            .events
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["exception"]);
        let all = view(&model.runs[0], Folding::All);
        assert_eq!(all.spans[0].events.len(), 2);
    }
}
