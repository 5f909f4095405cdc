//! Runs every example binary in a temporary directory and checks the shape of the store it
//! wrote: the runs, their primitives and nesting, the error boundary, the links.

mod example_stores;

use example_stores::{EXAMPLES, TempDir, read_store, run_example, store_path};
use serde_json::{Value, json};

/// The records of a store (or of one run of it), with the look-ups these tests need.
struct Records(Vec<Value>);

impl Records {
    fn of_type(&self, ty: &str) -> Vec<&Value> {
        self.0.iter().filter(|r| r["type"] == ty).collect()
    }

    /// The `run:start` records of runs named `name`, in store order.
    fn runs_named(&self, name: &str) -> Vec<&Value> {
        self.of_type("run:start")
            .into_iter()
            .filter(|r| r["name"] == name)
            .collect()
    }

    /// The one run named `name`.
    fn the_run(&self, name: &str) -> Records {
        let starts = self.runs_named(name);
        assert_eq!(
            starts.len(),
            1,
            "expected one run named {name:?}, found {}",
            starts.len()
        );
        self.run(&starts[0]["runId"])
    }

    fn run(&self, run_id: &Value) -> Records {
        Records(
            self.0
                .iter()
                .filter(|r| &r["runId"] == run_id)
                .cloned()
                .collect(),
        )
    }

    fn spans(&self, name: &str) -> Vec<&Value> {
        self.of_type("span:start")
            .into_iter()
            .filter(|r| r["name"] == name)
            .collect()
    }

    fn span(&self, name: &str) -> &Value {
        let spans = self.spans(name);
        assert_eq!(
            spans.len(),
            1,
            "expected one span {name:?}, found {}",
            spans.len()
        );
        spans[0]
    }

    fn end_of(&self, span: &Value) -> &Value {
        self.0
            .iter()
            .find(|r| r["type"] == "span:end" && r["spanId"] == span["spanId"])
            .unwrap_or_else(|| panic!("span {} never ended", span["name"]))
    }

    fn events_on(&self, span: &Value) -> Vec<&str> {
        self.0
            .iter()
            .filter(|r| r["type"] == "span:event" && r["spanId"] == span["spanId"])
            .map(|r| r["name"].as_str().unwrap())
            .collect()
    }

    fn run_end(&self) -> &Value {
        let ends = self.of_type("run:end");
        assert_eq!(ends.len(), 1, "expected one run:end, found {}", ends.len());
        ends[0]
    }

    fn ids(&self, key: &str) -> std::collections::HashSet<&Value> {
        self.0.iter().map(|r| &r[key]).collect()
    }
}

/// Runs one example in a fresh directory; its stdout and store.
fn run(name: &str) -> (String, Records) {
    let dir = TempDir::new(name);
    let out = run_example(name, dir.path());
    let records = Records(read_store(&store_path(dir.path())));
    (
        String::from_utf8(out.stdout).expect("UTF-8 output"),
        records,
    )
}

const BOUNDARY_ACKS: [&str; 3] = [
    "runtime.convex.boundary.requested",
    "runtime.convex.boundary.received",
    "runtime.convex.boundary.completed",
];

#[test]
fn every_example_writes_valid_v5_records_and_prints_its_trees() {
    for name in EXAMPLES {
        let (stdout, records) = run(name);
        assert!(!records.0.is_empty(), "{name} wrote no records");
        for r in &records.0 {
            assert_eq!(r["schemaVersion"], 5, "{name}: {r}");
            assert!(
                r["runId"].as_str().is_some_and(|id| id.starts_with("run_")),
                "{name}: {r}"
            );
        }
        for start in records.of_type("run:start") {
            let tree_head = format!(
                "run {} {} ({})",
                start["runId"].as_str().unwrap(),
                start["name"],
                start["rootPrimitive"].as_str().unwrap()
            );
            assert!(
                stdout.contains(&tree_head),
                "{name} did not print {tree_head:?}:\n{stdout}"
            );
        }
        assert!(
            stdout.contains("appended to .crux/records.jsonl"),
            "{name}:\n{stdout}"
        );
    }
}

#[test]
fn support_chat_is_one_run_per_turn_with_its_boundaries_and_a_linked_stream() {
    let (stdout, records) = run("support_chat");
    assert!(
        stdout.contains("reply: The customer was charged twice"),
        "{stdout}"
    );
    assert!(
        stdout.contains("stored assistant message: The customer was charged twice"),
        "the detached stream ran and saved the reply:\n{stdout}"
    );
    for refusal in [
        "refused: thread `thread-404` does not exist or does not belong to `user-ada`",
        "refused: thread `thread-42` does not exist or does not belong to `user-mallory`",
    ] {
        assert!(stdout.contains(refusal), "{stdout}");
    }

    let turns = records.runs_named("support chat");
    assert_eq!(turns.len(), 3, "one answered turn, two refused");
    for turn in &turns {
        assert_eq!(turn["rootPrimitive"], "agent.run");
        assert_eq!(
            turn["attributes"],
            json!({"agentId": "support-chat", "boundary": "convex.action"})
        );
    }

    // The answered turn: everything in one run and one trace.
    let turn = records.run(&turns[0]["runId"]);
    assert_eq!(turn.run_end()["status"], "ok");
    assert_eq!(turn.ids("traceId").len(), 1);
    assert_eq!(
        turn.span("check thread access")["primitive"],
        "runtime.convex.query"
    );
    for (label, function_ref) in [
        ("plan research", "research:plan"),
        ("write answer", "writer:answer"),
    ] {
        let span = turn.span(label);
        assert_eq!(span["primitive"], "runtime.convex.action");
        assert_eq!(
            span["parentSpanId"],
            Value::Null,
            "{label} is a child of the run"
        );
        assert_eq!(span["attributes"]["functionRef"], function_ref);
        assert_eq!(turn.events_on(span), BOUNDARY_ACKS, "{label}");
        assert_eq!(turn.end_of(span)["status"], "ok");
    }
    let inputs = turn.span("load research inputs");
    assert_eq!(inputs["primitive"], "runtime.convex.query");
    assert_eq!(
        inputs["attributes"]["functionRef"],
        "research/data:get_research_inputs"
    );
    assert_eq!(inputs["parentSpanId"], turn.span("plan research")["spanId"]);
    assert_ne!(
        inputs["segmentId"], turns[0]["segmentId"],
        "the child action wrote its own segment"
    );

    let calls = turn
        .of_type("span:start")
        .into_iter()
        .filter(|s| s["primitive"] == "generation.call")
        .count();
    assert_eq!(calls, 2);
    let reply = turn.span("write reply");
    assert_eq!(reply["parentSpanId"], turn.span("write answer")["spanId"]);
    assert_eq!(
        (&reply["model"], &reply["provider"]),
        (&json!("stand-in-1"), &json!("local-stand-in"))
    );
    assert!(reply.get("attributes").is_none(), "{reply}");
    let usage = &turn.end_of(reply)["metrics"];
    let (input, output) = (
        usage["inputTokens"].as_u64().unwrap(),
        usage["outputTokens"].as_u64().unwrap(),
    );
    assert!(input > 0 && output > 0, "{usage}");
    assert_eq!(usage["totalTokens"], input + output);

    let schedule = turn.span("stream chat response");
    assert_eq!(schedule["primitive"], "runtime.convex.schedule");
    assert_eq!(
        schedule["attributes"]["functionRef"],
        "chat:stream_response"
    );

    // The refused turns: the access check ran, nothing after it, the run failed clearly.
    for (turn, who) in [(turns[1], "`user-ada`"), (turns[2], "`user-mallory`")] {
        let refused = records.run(&turn["runId"]);
        assert_eq!(refused.run_end()["status"], "error");
        let end = refused.run_end();
        let message = end["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("does not belong to {who}")),
            "{message}"
        );
        assert_eq!(end["error"]["name"], "ConvexError");
        assert_eq!(
            refused.span("check thread access")["primitive"],
            "runtime.convex.query"
        );
        assert!(
            refused.spans("plan research").is_empty(),
            "no work after a failed access check"
        );
    }

    // The detached stream: its own run and trace, linked back to the schedule span.
    let stream = records.the_run("stream chat response");
    let start = &stream.of_type("run:start")[0];
    assert_eq!(start["attributes"]["entrypoint"], "standalone-internal");
    assert_ne!(start["traceId"], turns[0]["traceId"]);
    let edge = stream.of_type("edge")[0];
    assert_eq!(edge["edgeType"], "triggered");
    assert_eq!(
        edge["from"],
        json!({"kind": "span", "id": schedule["spanId"]})
    );
    assert_eq!(edge["to"], json!({"kind": "run", "id": start["runId"]}));
    assert_eq!(
        stream.span("stream reply")["primitive"],
        "generation.stream"
    );
    assert_eq!(
        stream.span("save assistant message")["primitive"],
        "runtime.convex.mutation"
    );
    assert_eq!(stream.run_end()["status"], "ok");
}

#[test]
fn research_shows_a_handled_failure_three_levels_down_in_an_ok_run() {
    let (stdout, records) = run("research");
    assert!(
        stdout.contains("skipped:  https://mirror.example/rust"),
        "{stdout}"
    );
    let run = records.the_run("daily briefing");
    assert_eq!(run.run_end()["status"], "ok", "the failure was handled");

    let topics = run.spans("research topic");
    assert_eq!(topics.len(), 2);
    let reads = run.spans("read source");
    assert_eq!(reads.len(), 3);
    let failed: Vec<&&Value> = reads
        .iter()
        .filter(|s| run.end_of(s)["status"] == "error")
        .collect();
    assert_eq!(failed.len(), 1, "exactly the offline source failed");
    let failed = failed[0];
    assert_eq!(failed["attributes"]["functionRef"], "sources:read");
    let end = run.end_of(failed);
    assert_eq!(
        end["error"]["message"],
        "source `https://mirror.example/rust` is offline"
    );
    assert!(
        run.events_on(failed)
            .contains(&"runtime.convex.boundary.failed")
    );

    // Three levels: run → research topic → read source → load source.
    let parent = topics
        .iter()
        .find(|t| t["spanId"] == failed["parentSpanId"])
        .expect("under a topic");
    assert_eq!(parent["parentSpanId"], Value::Null);
    assert_eq!(
        run.end_of(parent)["status"],
        "ok",
        "the topic handled its child's failure"
    );
    assert!(run.events_on(parent).contains(&"research.source_skipped"));
    let loads: Vec<&Value> = run.spans("load source");
    assert!(loads.iter().any(|l| l["parentSpanId"] == failed["spanId"]));

    for name in ["find sources", "load findings"] {
        assert!(
            run.spans(name)
                .iter()
                .all(|s| s["primitive"] == "runtime.convex.query"),
            "{name}"
        );
    }
    for name in ["save findings", "save briefing"] {
        assert!(
            run.spans(name)
                .iter()
                .all(|s| s["primitive"] == "runtime.convex.mutation"),
            "{name}"
        );
    }
    assert_eq!(run.ids("traceId").len(), 1);
}

#[test]
fn scheduling_links_detached_work_joins_continuations_and_resumes_the_parked_flow() {
    let (stdout, records) = run("scheduling");
    assert!(stdout.contains("expense exp-7 is paid"), "{stdout}");

    // Detached: its own run, linked by an edge from the schedule span.
    let request = records.the_run("weekly report request");
    let schedule = request.span("compile weekly report");
    assert_eq!(schedule["primitive"], "runtime.convex.schedule");
    let compile = records.the_run("compile weekly report");
    let edge = compile.of_type("edge")[0];
    assert_eq!(
        edge["from"],
        json!({"kind": "span", "id": schedule["spanId"]})
    );

    // Continuation: joined the requesting run, under the span it was captured in.
    let wait = request.span("await delivery window");
    assert_eq!(request.events_on(wait), BOUNDARY_ACKS);
    assert_eq!(request.span("send email")["parentSpanId"], wait["spanId"]);
    assert!(
        records.runs_named("reports:deliver").is_empty(),
        "the continuation opened no run"
    );

    // The flow: suspended in one invocation, resumed from the stored carrier in another.
    let submit = records.the_run("submit expense");
    let flow = records.the_run("expense approval");
    let start = &flow.of_type("run:start")[0];
    assert_eq!(start["rootPrimitive"], "flow.run");
    assert_eq!(
        start["parentRunId"],
        submit.of_type("run:start")[0]["runId"]
    );
    let suspend = flow.of_type("run:suspend")[0];
    assert_eq!(suspend["reason"], "awaiting manager approval");
    let resume = flow.of_type("run:resume")[0];
    assert_eq!(resume["reason"], "manager approved");
    assert_eq!(resume["segmentSeq"], 1);
    assert_eq!(resume["previousSegmentId"], suspend["segmentId"]);
    assert_ne!(resume["segmentId"], suspend["segmentId"]);
    assert_eq!(flow.run_end()["status"], "ok");
    assert_eq!(flow.run_end()["segmentId"], resume["segmentId"]);
    let pay = flow.span("pay expense");
    assert_eq!(
        flow.span("mark expense paid")["parentSpanId"],
        pay["spanId"]
    );
    assert_eq!(
        submit.run_end()["status"],
        "ok",
        "the boundary run ends; the flow suspends"
    );
    assert!(submit.of_type("run:suspend").is_empty());

    let resumer = records.the_run("resume approval flow");
    let caused = flow.of_type("edge")[0];
    assert_eq!(
        caused["from"],
        json!({"kind": "run", "id": resumer.of_type("run:start")[0]["runId"]})
    );
}

#[test]
fn escape_hatch_records_the_workers_spans_in_the_senders_run() {
    let (stdout, records) = run("escape_hatch");
    assert!(stdout.contains("documents indexed: 3"), "{stdout}");
    assert_eq!(
        records.of_type("run:start").len(),
        1,
        "the warm-up outside any run recorded nothing"
    );
    let run = records.the_run("index documents");
    let batch = run.span("embed documents");
    let embeds = run.spans("embed text");
    assert_eq!(embeds.len(), 3);
    for embed in embeds {
        assert_eq!(embed["primitive"], "embedding.call");
        assert_eq!(
            embed["parentSpanId"], batch["spanId"],
            "nested under the sender's span"
        );
        assert_eq!(run.end_of(embed)["status"], "ok");
        assert!(
            run.end_of(embed)["metrics"]["inputTokens"].as_u64() > Some(0),
            "{embed}"
        );
    }
    assert_eq!(run.run_end()["status"], "ok");
}

#[test]
fn examples_append_to_the_store() {
    let dir = TempDir::new("append");
    run_example("escape_hatch", dir.path());
    let once = read_store(&store_path(dir.path())).len();
    run_example("escape_hatch", dir.path());
    let records = Records(read_store(&store_path(dir.path())));
    assert_eq!(records.0.len(), 2 * once);
    assert_eq!(records.runs_named("index documents").len(), 2);
}

/// `support_chat --serve ADDRESS` serves the example's functions over Convex's HTTP API
/// until SIGTERM, recording as the example does, then exits 0 after its final flush.
#[cfg(unix)]
#[test]
fn support_chat_serves_over_http_until_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let dir = TempDir::new("serve");
    let mut child = Command::new(example_stores::example_binary("support_chat"))
        .args(["--serve", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let address = first
        .trim()
        .strip_prefix("serving on http://")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    let body = json!({
        "path": "chat:respond",
        "format": "json",
        "args": {"threadId": "thread-42", "message": "Where is my refund?"}
    })
    .to_string();
    // The caller signs in with the example's development token.
    let token = Command::new(example_stores::example_binary("support_chat"))
        .args(["--print-test-token", "user-ada"])
        .output()
        .expect("the example prints a token");
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap();
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "POST /api/action HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        token.trim(),
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""status":"success""#), "{reply}");
    assert!(
        reply.contains(r#""logLines":["[INFO] answering user-ada in thread-42"]"#),
        "{reply}"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(exit.success(), "exit {exit:?}; stdout: {rest}");
    assert!(rest.contains("stopped; final flush"), "{rest}");
    let records = Records(read_store(&store_path(dir.path())));
    let run = records.the_run("support chat");
    assert_eq!(run.of_type("run:end")[0]["status"], "ok");
}
