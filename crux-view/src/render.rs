//! Plain-text output of the commands: stable, no colour, no terminal probing, so the same
//! store always prints the same text.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::model::{Direction, Link, Target};
use crate::record::Attributes;
use crate::time::format_duration;
use crate::view::{Hit, NodeView, RunSummary, RunView, value_text};

/// `crux runs`: one aligned row per run, newest first.
pub fn runs_text(runs: &[RunSummary], store: &str) -> String {
    if runs.is_empty() {
        return format!("no runs in {store}\n");
    }
    let header = [
        "RUN", "NAME", "ROOT", "STATUS", "DURATION", "STARTED", "RECORDS",
    ];
    // Each cell with its width in characters (counted once: a list can hold 10 000 runs).
    let rows: Vec<[(Cow<'_, str>, usize); 7]> = runs
        .iter()
        .map(|r| {
            [
                cell(cleaned(&r.run_id)),
                cell(cleaned(&r.name)),
                cell(cleaned(&r.root_primitive)),
                cell(cleaned(&r.status)),
                cell(
                    r.duration_ms
                        .map_or(Cow::Borrowed("-"), |ms| Cow::Owned(format_duration(ms))),
                ),
                cell(r.started_at.as_deref().map_or(Cow::Borrowed("-"), cleaned)),
                cell(Cow::Owned(r.records.to_string())),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, (_, w)) in widths.iter_mut().zip(row) {
            *width = (*width).max(*w);
        }
    }
    let mut out = String::with_capacity((widths.iter().sum::<usize>() + 14) * (rows.len() + 1));
    let mut line = |cells: [(&str, usize); 7]| {
        let start = out.len();
        for (i, (text, width)) in cells.iter().enumerate() {
            out.push_str(text);
            if i + 1 < cells.len() {
                out.extend(std::iter::repeat_n(' ', widths[i] - width + 2));
            }
        }
        let end = start + out[start..].trim_end().len();
        out.truncate(end);
        out.push('\n');
    };
    line(header.map(|h| (h, h.chars().count())));
    for row in &rows {
        line(row.each_ref().map(|(text, width)| (text.as_ref(), *width)));
    }
    out
}

/// A cell with its width in characters.
fn cell(text: Cow<'_, str>) -> (Cow<'_, str>, usize) {
    let width = text.chars().count();
    (text, width)
}

/// `crux show`: the run header, then its span tree.
pub fn run_text(run: &RunView, show_attributes: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} {:?} ({})",
        run.run_id, run.name, run.root_primitive
    );
    let mut facts = vec![format!("status {}", clean(&run.status))];
    if let Some(ms) = run.duration_ms {
        facts.push(format!("duration {}", format_duration(ms)));
    }
    if let Some(started) = &run.started_at {
        facts.push(format!("started {}", clean(started)));
    }
    if let Some(operation) = run.operation_id.as_ref().filter(|o| **o != run.run_id) {
        facts.push(format!("operation {}", clean(operation)));
    }
    facts.push(plural(run.records, "record"));
    facts.push(plural(run.segments.len(), "segment"));
    let _ = writeln!(out, "{}", facts.join(" · "));
    if run.incomplete {
        let _ = writeln!(out, "incomplete: the store has no run:start for this run");
    }
    if run
        .lifecycle
        .iter()
        .any(|l| matches!(l.kind, "run:suspend" | "run:resume"))
    {
        let steps: Vec<String> = run
            .lifecycle
            .iter()
            .map(|l| match (&l.reason, &l.status) {
                (Some(reason), _) => format!("{} {reason:?}", l.kind),
                (None, Some(status)) => format!("{} {}", l.kind, clean(status)),
                (None, None) => l.kind.to_owned(),
            })
            .collect();
        let _ = writeln!(out, "lifecycle: {}", steps.join(" → "));
    }
    if let Some(error) = &run.error {
        let _ = writeln!(out, "✗ {}", clean(&error.describe()));
    }
    for link in &run.links {
        let _ = writeln!(out, "{}", link_text(link));
    }
    if show_attributes {
        for line in attribute_lines(&run.attributes, "") {
            let _ = writeln!(out, "{line}");
        }
    }
    out.push('\n');
    if run.spans.is_empty() {
        out.push_str("(no spans)\n");
    }
    let last = run.spans.len().saturating_sub(1);
    for (i, node) in run.spans.iter().enumerate() {
        node_text(&mut out, node, "", i == last, show_attributes);
    }
    out
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn node_text(out: &mut String, node: &NodeView, prefix: &str, last: bool, attrs: bool) {
    let branch = if last { "└─ " } else { "├─ " };
    let _ = writeln!(out, "{prefix}{branch}{}", headline(node));
    let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    let detail_prefix = format!(
        "{child_prefix}{}",
        if node.children.is_empty() {
            "  "
        } else {
            "│ "
        }
    );
    for line in detail_lines(node, attrs) {
        let _ = writeln!(out, "{detail_prefix}{line}");
    }
    let last_child = node.children.len().saturating_sub(1);
    for (i, child) in node.children.iter().enumerate() {
        node_text(out, child, &child_prefix, i == last_child, attrs);
    }
}

fn status_text(node: &NodeView) -> String {
    let duration = node.duration_ms.map(format_duration);
    let mut text = clean(&node.status);
    if let Some(source) = node.status_source {
        let _ = write!(text, " ({source})");
    }
    if let Some(duration) = duration {
        let _ = write!(text, "  {duration}");
    }
    text
}

fn hop_text(node: &NodeView) -> String {
    let mut text = format!("{} {:?}", clean(&node.primitive), node.name);
    if let Some(function_ref) = node.attributes.get("functionRef") {
        let _ = write!(text, " → {}", clean(&value_text(function_ref)));
    }
    let _ = write!(text, "  {}", status_text(node));
    text
}

fn headline(node: &NodeView) -> String {
    if node.folded {
        return format!("↳ {}  (folded)", hop_text(node));
    }
    let name = if node.primitive == "?" {
        format!("(span {}, no span:start)", clean(&node.span_id))
    } else {
        clean(&node.name)
    };
    let mut text = format!("{name}  {}  {}", clean(&node.primitive), status_text(node));
    for (key, value) in &node.details {
        let _ = write!(text, "  {}={}", clean(key), clean(value));
    }
    if let Some(parent) = &node.missing_parent {
        let _ = write!(
            text,
            "  (parent span {} is not in the store)",
            clean(parent)
        );
    }
    if let Some(parent) = &node.too_deep_under {
        let _ = write!(
            text,
            "  (child of span {}, nested too deeply to show under it)",
            clean(parent)
        );
    }
    text
}

fn detail_lines(node: &NodeView, attrs: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let own_error = node.error.as_ref().map(|e| clean(&e.describe()));
    for hop in &node.via {
        lines.push(format!("↳ via {}", hop_text(hop)));
        if let Some(error) = hop.error.as_ref().map(|e| clean(&e.describe()))
            && Some(&error) != own_error.as_ref()
        {
            lines.push(format!("  ✗ {error}"));
        }
        lines.extend(event_lines(hop).into_iter().map(|l| format!("  {l}")));
        lines.extend(hop.links.iter().map(|l| format!("  {}", link_text(l))));
        if attrs {
            let hop_attributes = attribute_lines(&hop.attributes, "");
            lines.extend(hop_attributes.into_iter().map(|l| format!("  {l}")));
        }
    }
    if let Some(error) = own_error {
        lines.push(format!("✗ {error}"));
    }
    lines.extend(event_lines(node));
    lines.extend(node.links.iter().map(link_text));
    if attrs {
        lines.extend(attribute_lines(&node.attributes, ""));
        lines.extend(attribute_lines(&node.metrics, "metric "));
        for artifact in &node.artifacts {
            let mut line = format!("▪ artifact {}", clean(&artifact.kind));
            if let Some(content_type) = &artifact.content_type {
                let _ = write!(line, " ({})", clean(content_type));
            }
            lines.push(line);
        }
    }
    lines
}

fn event_lines(node: &NodeView) -> Vec<String> {
    node.events
        .iter()
        .map(|event| {
            let mut line = format!("• {}", clean(&event.name));
            if let Some(offset) = event.offset_ms {
                let _ = write!(line, " +{}", format_duration(offset));
            }
            let message = event
                .attributes
                .get("exception.message")
                .or_else(|| event.attributes.get("error").and_then(|e| e.get("message")));
            if let Some(message) = message {
                let _ = write!(line, ": {}", clean(&value_text(message)));
            }
            line
        })
        .collect()
}

fn attribute_lines(attributes: &Attributes, label: &str) -> Vec<String> {
    let mut pairs: Vec<(&String, String)> =
        attributes.iter().map(|(k, v)| (k, value_text(v))).collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(key, value)| format!("· {label}{} = {}", clean(key), clean(&value)))
        .collect()
}

fn target_text(target: &Target) -> String {
    let run = match (&target.run_id, &target.run_name) {
        (Some(id), Some(name)) => format!("run {} {name:?}", clean(id)),
        (Some(id), None) => format!("run {} (not in the store)", clean(id)),
        (None, _) => String::new(),
    };
    match target.kind.as_str() {
        "run" => run,
        kind => {
            let mut text = match (&target.span_name, &target.primitive) {
                (Some(name), Some(primitive)) => {
                    format!("{} {name:?} ({})", clean(kind), clean(primitive))
                }
                _ => format!("{} {} (not in the store)", clean(kind), clean(&target.id)),
            };
            if !run.is_empty() {
                let _ = write!(text, " in {run}");
            }
            text
        }
    }
}

/// `↪ triggered run ...` for links going out, `↩ triggered by ...` for links coming in.
fn link_text(link: &Link) -> String {
    match link.direction {
        Direction::Out => format!("↪ {} {}", clean(&link.edge_type), target_text(&link.other)),
        Direction::In => {
            // `child` links come from run:start.parentRunId: the run is a child *of* it.
            let preposition = if link.edge_type == "child" {
                "of"
            } else {
                "by"
            };
            format!(
                "↩ {} {preposition} {}",
                clean(&link.edge_type),
                target_text(&link.other)
            )
        }
    }
}

/// `crux search`: two lines per match, where it is and what matched.
pub fn search_text(hits: &[Hit], text: &str) -> String {
    if hits.is_empty() {
        return format!("no records match {text:?}\n");
    }
    let mut out = String::new();
    for hit in hits {
        let mut place = format!("{} {:?}", clean(&hit.run_id), hit.run_name);
        for name in &hit.span_path {
            let _ = write!(place, " › {}", clean(name));
        }
        if hit.folded {
            place.push_str("  (folded by default)");
        }
        let what = match &hit.key {
            Some(key) => format!("{} {key}", hit.field),
            None => hit.field.clone(),
        };
        let _ = writeln!(
            out,
            "{place}\n    {}: {}",
            clean(&what),
            shorten(&clean(&hit.value), 120)
        );
    }
    let _ = writeln!(
        out,
        "{}",
        plural(hits.len(), "match").replace("matchs", "matches")
    );
    out
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{cut}…")
}

/// Record text made safe for one line of a terminal: control characters (newlines, escape
/// sequences) are shown escaped instead of acting on the layout or the terminal.
fn clean(text: &str) -> String {
    cleaned(text).into_owned()
}

/// [`clean`], borrowing the text when it needs no escaping (the common case).
fn cleaned(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().collect()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}
