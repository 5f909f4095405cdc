use std::collections::HashMap;
use std::fmt::Write;

use serde_json::Value;

/// Renders the records of one run (wire JSON, any order of arrival) as an indented tree:
/// run lifecycle lines, then spans nested under their parents in start order, each with
/// its primitive, final status (with the error message, if any), events, artifacts and
/// edges. An edge from a span recorded in another run (the schedule span that triggered a
/// detached run) or from another run to this one is shown as a run line,
/// `linked from span|run ID (EDGE TYPE)`.
///
/// ```text
/// run "support chat" agent.run: ok
///   span "plan research" runtime.convex.action: ok
///     event runtime.convex.boundary.requested
/// ```
pub fn render_tree(records: &[Value]) -> String {
    let str_of = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    // "error: <message>" when the end record carries an error summary.
    let status_of = |r: &Value| {
        let status = str_of(r, "status");
        match r.pointer("/error/message").and_then(Value::as_str) {
            Some(message) => format!("{status}: {message}"),
            None => status,
        }
    };
    let mut out = String::new();
    let mut span_status: HashMap<String, String> = HashMap::new();
    let mut children: HashMap<String, Vec<&Value>> = HashMap::new();
    let mut attached: HashMap<String, Vec<String>> = HashMap::new();
    let mut roots: Vec<&Value> = Vec::new();
    let mut run_lines: Vec<String> = Vec::new();
    let mut run_status: Option<String> = None;
    let known: std::collections::HashSet<String> = records
        .iter()
        .filter(|r| r.get("type").and_then(Value::as_str) == Some("span:start"))
        .map(|r| str_of(r, "spanId"))
        .collect();
    for r in records {
        match r.get("type").and_then(Value::as_str).unwrap_or("") {
            "run:start" => run_lines.insert(
                0,
                format!("run {:?} {}", str_of(r, "name"), str_of(r, "rootPrimitive")),
            ),
            "run:suspend" => run_lines.push(format!("  suspend: {}", str_of(r, "reason"))),
            "run:resume" => run_lines.push(format!("  resume: {}", str_of(r, "reason"))),
            "run:end" => run_status = Some(status_of(r)),
            "span:start" => match r.get("parentSpanId").and_then(Value::as_str) {
                Some(p) => children.entry(p.to_owned()).or_default().push(r),
                None => roots.push(r),
            },
            "span:end" => {
                span_status.insert(str_of(r, "spanId"), status_of(r));
            }
            "span:event" => attached
                .entry(str_of(r, "spanId"))
                .or_default()
                .push(format!("event {}", str_of(r, "name"))),
            "artifact" => attached
                .entry(str_of(r, "spanId"))
                .or_default()
                .push(format!("artifact {}", str_of(r, "kind"))),
            "edge" => {
                let end = |k: &str| {
                    let e = r.get(k);
                    let kind = e.and_then(|e| e.get("kind")).and_then(Value::as_str);
                    let id = e.and_then(|e| e.get("id")).and_then(Value::as_str);
                    (kind.unwrap_or("").to_owned(), id.unwrap_or("").to_owned())
                };
                let (from_kind, from_id) = end("from");
                let (to_kind, to_id) = end("to");
                let edge_type = str_of(r, "edgeType");
                let line = format!("edge {edge_type} -> {to_kind} {to_id}");
                if from_kind == "span" && !known.contains(&from_id) {
                    run_lines.push(format!("  linked from span {from_id} ({edge_type})"));
                } else if from_kind == "span" {
                    attached.entry(from_id).or_default().push(line);
                } else if from_kind == "run" && to_kind == "run" && to_id == str_of(r, "runId") {
                    run_lines.push(format!("  linked from run {from_id} ({edge_type})"));
                } else {
                    run_lines.push(format!("  {line}"));
                }
            }
            // A combined record is its own start and end.
            "span" => {
                span_status.insert(str_of(r, "spanId"), status_of(r));
                match r.get("parentSpanId").and_then(Value::as_str) {
                    Some(p) => children.entry(p.to_owned()).or_default().push(r),
                    None => roots.push(r),
                }
            }
            _ => {}
        }
    }
    let mut lines = run_lines.into_iter();
    match lines.next() {
        Some(first) if first.starts_with("run ") => {
            let status = run_status.as_deref().unwrap_or("running");
            let _ = writeln!(out, "{first}: {status}");
        }
        Some(other) => {
            let status = run_status.as_deref().unwrap_or("running");
            let _ = writeln!(out, "run (started elsewhere): {status}");
            let _ = writeln!(out, "{other}");
        }
        None => {}
    }
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    struct Maps<'a, 'r> {
        children: &'a HashMap<String, Vec<&'r Value>>,
        attached: &'a HashMap<String, Vec<String>>,
        status: &'a HashMap<String, String>,
    }
    /// `shown`: the spans already printed, so records that make a parent cycle (a span
    /// listed under itself) print each span once instead of recursing forever.
    fn walk<'r>(
        out: &mut String,
        span: &'r Value,
        depth: usize,
        maps: &Maps<'_, 'r>,
        shown: &mut std::collections::HashSet<&'r str>,
    ) {
        let id = span.get("spanId").and_then(Value::as_str).unwrap_or("");
        if !id.is_empty() && !shown.insert(id) {
            return;
        }
        let Maps {
            children,
            attached,
            status,
        } = maps;
        let name = span.get("name").and_then(Value::as_str).unwrap_or("");
        let primitive = span.get("primitive").and_then(Value::as_str).unwrap_or("");
        let st = status.get(id).map_or("running", String::as_str);
        let pad = "  ".repeat(depth);
        let _ = writeln!(out, "{pad}span {name:?} {primitive}: {st}");
        for line in attached.get(id).into_iter().flatten() {
            let _ = writeln!(out, "{pad}  {line}");
        }
        for child in children.get(id).into_iter().flatten() {
            walk(out, child, depth + 1, maps, shown);
        }
    }
    // Spans whose parent was opened in another run's records hang at the top level.
    for (parent, kids) in &children {
        if !known.contains(parent) {
            roots.extend(kids.iter().copied());
        }
    }
    // Stable: spans started in the same millisecond keep their delivery order.
    roots.sort_by_key(|r| str_of(r, "startedAt"));
    let maps = Maps {
        children: &children,
        attached: &attached,
        status: &span_status,
    };
    let mut shown = std::collections::HashSet::new();
    for root in roots {
        walk(&mut out, root, 1, &maps, &mut shown);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::render_tree;

    #[test]
    fn records_naming_a_span_its_own_parent_print_it_once() {
        // Hand-written or corrupt records can make a parent cycle reachable from a root.
        let run = "run_000000000000000000000001";
        let records = [
            json!({"type": "span:start", "runId": run, "spanId": "00000000000000a1", "name": "a",
                   "primitive": "tool.call"}),
            json!({"type": "span:start", "runId": run, "spanId": "00000000000000a1", "name": "a",
                   "primitive": "tool.call", "parentSpanId": "00000000000000a1"}),
        ];
        assert_eq!(render_tree(&records), "  span \"a\" tool.call: running\n");
    }

    #[test]
    fn links_into_the_run_are_shown_once_on_the_run() {
        let run = "run_000000000000000000000001";
        let records = [
            json!({"type": "run:start", "runId": run, "name": "stream", "rootPrimitive": "agent.run"}),
            json!({"type": "edge", "runId": run, "edgeType": "triggered",
                   "from": {"kind": "span", "id": "00000000000000aa"}, "to": {"kind": "run", "id": run}}),
            json!({"type": "edge", "runId": run, "edgeType": "caused",
                   "from": {"kind": "run", "id": "run_000000000000000000000002"}, "to": {"kind": "run", "id": run}}),
            json!({"type": "run:end", "runId": run, "status": "ok"}),
        ];
        assert_eq!(
            render_tree(&records),
            "run \"stream\" agent.run: ok\n  linked from span 00000000000000aa (triggered)\n  \
             linked from run run_000000000000000000000002 (caused)\n"
        );
    }

    #[test]
    fn failures_show_their_message_on_runs_and_spans_combined_or_not() {
        let run = "run_000000000000000000000001";
        let error = json!({"message": "source offline", "name": "ConvexError"});
        let records = [
            json!({"type": "run:start", "runId": run, "name": "r", "rootPrimitive": "agent.run"}),
            json!({"type": "span:start", "runId": run, "spanId": "00000000000000c1", "name": "read",
                   "primitive": "tool.call", "startedAt": "2026-01-01T00:00:00.000Z"}),
            json!({"type": "span:end", "runId": run, "spanId": "00000000000000c1", "status": "error",
                   "error": error}),
            json!({"type": "span", "runId": run, "spanId": "00000000000000c2", "name": "retry",
                   "primitive": "tool.call", "startedAt": "2026-01-01T00:00:00.001Z",
                   "status": "error", "error": error}),
            json!({"type": "run:end", "runId": run, "status": "error", "error": {"message": "gave up"}}),
        ];
        assert_eq!(
            render_tree(&records),
            "run \"r\" agent.run: error: gave up\n  span \"read\" tool.call: error: source offline\n  \
             span \"retry\" tool.call: error: source offline\n"
        );
    }

    #[test]
    fn spans_started_in_the_same_millisecond_keep_their_delivery_order() {
        let at = "2026-01-01T00:00:00.000Z";
        let span = |id: &str, name: &str| {
            json!({"type": "span:start", "spanId": id, "name": name, "primitive": "tool.call",
                   "startedAt": at, "segmentId": if name == "first" { "seg_f" } else { "seg_a" }})
        };
        let records = [
            span("00000000000000b2", "first"),
            span("00000000000000b1", "second"),
        ];
        assert_eq!(
            render_tree(&records),
            "  span \"first\" tool.call: running\n  span \"second\" tool.call: running\n"
        );
    }
}
