use std::collections::HashMap;
use std::fmt::Write;

use serde_json::Value;

/// Renders the records of one run (wire JSON, any order of arrival) as an indented tree:
/// run lifecycle lines, then spans nested under their parents in start order, each with
/// its primitive, final status, events, artifacts and edges.
///
/// ```text
/// run "support chat" agent.run: ok
///   span "plan research" runtime.convex.action: ok
///     event runtime.convex.boundary.requested
/// ```
pub fn render_tree(records: &[Value]) -> String {
    let str_of = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut out = String::new();
    let mut span_status: HashMap<String, String> = HashMap::new();
    let mut children: HashMap<String, Vec<&Value>> = HashMap::new();
    let mut attached: HashMap<String, Vec<String>> = HashMap::new();
    let mut roots: Vec<&Value> = Vec::new();
    let mut run_lines: Vec<String> = Vec::new();
    let mut run_status: Option<String> = None;
    for r in records {
        match r.get("type").and_then(Value::as_str).unwrap_or("") {
            "run:start" => run_lines.insert(
                0,
                format!("run {:?} {}", str_of(r, "name"), str_of(r, "rootPrimitive")),
            ),
            "run:suspend" => run_lines.push(format!("  suspend: {}", str_of(r, "reason"))),
            "run:resume" => run_lines.push(format!("  resume: {}", str_of(r, "reason"))),
            "run:end" => run_status = Some(str_of(r, "status")),
            "span:start" => match r.get("parentSpanId").and_then(Value::as_str) {
                Some(p) => children.entry(p.to_owned()).or_default().push(r),
                None => roots.push(r),
            },
            "span:end" => {
                span_status.insert(str_of(r, "spanId"), str_of(r, "status"));
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
                let line = format!("edge {} -> {to_kind} {to_id}", str_of(r, "edgeType"));
                if from_kind == "span" {
                    attached.entry(from_id).or_default().push(line);
                } else {
                    run_lines.push(format!("  {line}"));
                }
            }
            // A combined record is its own start and end.
            "span" => {
                span_status.insert(str_of(r, "spanId"), str_of(r, "status"));
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
    fn walk(
        out: &mut String,
        span: &Value,
        depth: usize,
        children: &HashMap<String, Vec<&Value>>,
        attached: &HashMap<String, Vec<String>>,
        status: &HashMap<String, String>,
    ) {
        let id = span.get("spanId").and_then(Value::as_str).unwrap_or("");
        let name = span.get("name").and_then(Value::as_str).unwrap_or("");
        let primitive = span.get("primitive").and_then(Value::as_str).unwrap_or("");
        let st = status.get(id).map_or("running", String::as_str);
        let pad = "  ".repeat(depth);
        let _ = writeln!(out, "{pad}span {name:?} {primitive}: {st}");
        for line in attached.get(id).into_iter().flatten() {
            let _ = writeln!(out, "{pad}  {line}");
        }
        for child in children.get(id).into_iter().flatten() {
            walk(out, child, depth + 1, children, attached, status);
        }
    }
    // Spans whose parent was opened in another run's records hang at the top level.
    let known: std::collections::HashSet<String> = records
        .iter()
        .filter(|r| r.get("type").and_then(Value::as_str) == Some("span:start"))
        .map(|r| str_of(r, "spanId"))
        .collect();
    for (parent, kids) in &children {
        if !known.contains(parent) {
            roots.extend(kids.iter().copied());
        }
    }
    roots.sort_by_key(|r| {
        (
            str_of(r, "startedAt"),
            str_of(r, "segmentId"),
            r.get("segmentSeq").and_then(Value::as_u64),
        )
    });
    for root in roots {
        walk(&mut out, root, 1, &children, &attached, &span_status);
    }
    out
}
