//! The boundary semantics of `ctx.crux`, asserted on the records a `sink::Memory` receives
//! and, for the main shapes, on the run trees `crux::testing` prints for them.

use std::sync::OnceLock;
use std::time::Duration;

use crux::ErrorKind;
use crux::local::Deployment;
use crux::prelude::*;
use crux::sink::Memory;
use crux::testing::{assert_run_trees, run_trees};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Record helpers

fn of_type<'a>(records: &'a [Value], ty: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == ty).collect()
}

fn span_named<'a>(records: &'a [Value], name: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["type"] == "span:start" && r["name"] == name)
        .unwrap_or_else(|| panic!("no span:start named {name:?} in {records:#?}"))
}

fn end_of<'a>(records: &'a [Value], span_id: &Value) -> &'a Value {
    records
        .iter()
        .find(|r| r["type"] == "span:end" && &r["spanId"] == span_id)
        .unwrap_or_else(|| panic!("span {span_id} never ended"))
}

fn events_on<'a>(records: &'a [Value], span_id: &Value) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == "span:event" && &r["spanId"] == span_id)
        .collect()
}

fn event_names(records: &[Value], span_id: &Value) -> Vec<String> {
    events_on(records, span_id)
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

fn run_starts(records: &[Value]) -> Vec<&Value> {
    of_type(records, "run:start")
}

async fn settled(d: &Deployment, sink: &Memory) -> Vec<Value> {
    let flushed = d.flush(Duration::from_secs(5)).await;
    assert_eq!(
        flushed.status,
        crux::observe::FlushStatus::Drained,
        "{flushed:?}"
    );
    sink.records()
}

fn observed(sink: &Memory) -> crux::local::DeploymentBuilder {
    Deployment::builder()
        .sink(sink.clone())
        .function(respond)
        .function(child)
        .function(grandchild)
        .function(waterfall)
        .function(read_inputs)
        .function(save_input)
        .function(internal_direct)
        .function(calls_internal_raw)
        .function(schedules)
        .function(scheduled_work)
        .function(resumes_later)
        .function(continuation_target)
        .function(identity)
        .table("inputs", |t| t.index("by_thread", ["threadId"]))
}

// ---------------------------------------------------------------------------------------
// Functions under test

/// The deployment sink of the test that checks ordering from inside handlers.
static ORDER_SINK: OnceLock<Memory> = OnceLock::new();

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    pub thread_id: String,
    /// How deep the waterfall goes below `respond`; `fail_at` makes that level fail.
    pub depth: u32,
    pub fail_at: Option<u32>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// Whether the handler found its boundary `span:start` (or `run:start`) in the sink.
    pub start_was_delivered: bool,
    pub run_id: String,
    pub answer: String,
    /// The child's `start_was_delivered`, when there was a child.
    pub child_saw_its_boundary: Option<bool>,
}

fn delivered(run_id: &str, what: impl Fn(&Value) -> bool) -> bool {
    ORDER_SINK.get().is_some_and(|sink| {
        sink.records()
            .iter()
            .any(|r| r["runId"] == run_id && what(r))
    })
}

#[crux::action(
    name = "support chat",
    root = "agent.run",
    attributes(agentId = "support-chat")
)]
pub async fn respond(ctx: &ActionCtx, args: Turn) -> crux::Result<Seen> {
    let here = ctx.crux.capture().expect("a public action runs in a run");
    let run_id = here.run_id.to_string();
    let start_was_delivered = delivered(&run_id, |r| r["type"] == "run:start");
    let (answer, child_saw_its_boundary) = if args.depth == 0 {
        ("done".to_owned(), None)
    } else {
        let next = Turn {
            thread_id: args.thread_id,
            depth: args.depth - 1,
            fail_at: args.fail_at,
        };
        let seen = ctx.crux.run_action("plan research", child, next).await?;
        (seen.answer, Some(seen.start_was_delivered))
    };
    Ok(Seen {
        start_was_delivered,
        run_id,
        answer,
        child_saw_its_boundary,
    })
}

#[crux::internal_action]
pub async fn child(ctx: &ActionCtx, args: Turn) -> crux::Result<Seen> {
    let here = ctx.crux.capture().expect("continues the caller's run");
    let run_id = here.run_id.to_string();
    let boundary = here
        .current_span_id
        .expect("nested under the boundary span")
        .to_string();
    let start_was_delivered = delivered(&run_id, |r| {
        r["type"] == "span:start" && r["spanId"] == boundary.as_str()
    });
    if args.fail_at == Some(args.depth) {
        return Err(Error::application(
            "research failed",
            json!({"depth": args.depth}),
        ));
    }
    let answer = if args.depth == 0 {
        "planned".to_owned()
    } else {
        let next = Turn {
            thread_id: args.thread_id,
            depth: args.depth - 1,
            fail_at: args.fail_at,
        };
        let inner = ctx.crux.run_action("dig deeper", grandchild, next).await?;
        format!("planned+{}", inner.answer)
    };
    Ok(Seen {
        start_was_delivered,
        run_id,
        answer,
        child_saw_its_boundary: None,
    })
}

#[crux::internal_action]
pub async fn grandchild(ctx: &ActionCtx, args: Turn) -> crux::Result<Seen> {
    let here = ctx.crux.capture().expect("continues the caller's run");
    if args.fail_at == Some(args.depth) {
        return Err(Error::application(
            "research failed",
            json!({"depth": args.depth}),
        ));
    }
    let run_id = here.run_id.to_string();
    Ok(Seen {
        start_was_delivered: true,
        run_id,
        answer: "dug".into(),
        child_saw_its_boundary: None,
    })
}

#[crux::action(name = "waterfall")]
pub async fn waterfall(ctx: &ActionCtx, args: Turn) -> crux::Result<String> {
    Ok(ctx
        .crux
        .run_action("plan research", child, args)
        .await?
        .answer)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub thread_id: String,
}

#[crux::query]
pub async fn read_inputs(ctx: &QueryCtx, args: Thread) -> crux::Result<Vec<Document>> {
    let span = ctx.crux.span("scan inputs", "retrieval.query").start();
    let docs = ctx
        .db
        .query("inputs")
        .with_index("by_thread", |q| q.eq("threadId", &args.thread_id))
        .collect()
        .await;
    span.end(crux::observe::SpanStatus::Ok);
    docs
}

#[crux::mutation]
pub async fn save_input(ctx: &MutationCtx, args: Thread) -> crux::Result<Id> {
    ctx.db
        .insert("inputs", json!({"threadId": args.thread_id}))
        .await
}

#[crux::internal_action]
pub async fn internal_direct(_ctx: &ActionCtx) -> crux::Result<String> {
    Ok("direct".into())
}

#[crux::action(name = "gathers")]
pub async fn calls_internal_raw(ctx: &ActionCtx, args: Thread) -> crux::Result<Vec<Document>> {
    ctx.crux
        .run_mutation(
            "save input",
            save_input,
            Thread {
                thread_id: args.thread_id.clone(),
            },
        )
        .await?;
    ctx.run_action(internal_direct, NoArgs {}).await?;
    ctx.crux
        .run_query("load research inputs", read_inputs, args)
        .await
}

#[crux::action(name = "schedules")]
pub async fn schedules(ctx: &ActionCtx) -> crux::Result<Id> {
    ctx.crux
        .scheduler
        .run_after(
            "stream chat response",
            Duration::from_millis(10),
            scheduled_work,
            NoArgs {},
        )
        .await
}

#[crux::internal_action(name = "scheduled work")]
pub async fn scheduled_work(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::action(name = "resumes later")]
pub async fn resumes_later(ctx: &ActionCtx) -> crux::Result<String> {
    let span = ctx.crux.span("await approval", "flow.suspension").start();
    let here = span.scope().map(|s| s.capture());
    let options = crux::local::ScheduleOptions { continuation: here };
    ctx.crux
        .scheduler
        .with_options(options)
        .run_after(
            "resume after approval",
            Duration::ZERO,
            continuation_target,
            NoArgs {},
        )
        .await?;
    let id = span.id().unwrap().to_string();
    span.end(crux::observe::SpanStatus::Ok);
    Ok(id)
}

#[crux::internal_mutation]
pub async fn continuation_target(ctx: &MutationCtx) -> crux::Result<String> {
    let here = ctx.crux.capture().expect("joins the continuation");
    Ok(here.run_id.to_string())
}

#[crux::action]
pub async fn identity(ctx: &ActionCtx, args: Thread) -> crux::Result<String> {
    let before = ctx.crux.capture().unwrap().run_id;
    tokio::time::sleep(Duration::from_millis(5)).await;
    tokio::task::yield_now().await;
    let after = ctx.crux.capture().unwrap().run_id;
    assert_eq!(before, after, "context kept across awaits");
    Ok(format!("{}:{after}", args.thread_id))
}

fn turn(depth: u32, fail_at: Option<u32>) -> Turn {
    Turn {
        thread_id: "t1".into(),
        depth,
        fail_at,
    }
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn a_public_action_opens_a_run_delivered_before_its_body() {
    let sink = ORDER_SINK.get_or_init(Memory::new).clone();
    let d = observed(&sink).build();
    let seen = d.action(respond, turn(0, None)).await.unwrap();
    assert!(
        seen.start_was_delivered,
        "run:start reached the sink before the body ran"
    );
    let records = sink.records();
    let mine: Vec<Value> = records
        .into_iter()
        .filter(|r| r["runId"] == seen.run_id)
        .collect();
    let starts = run_starts(&mine);
    assert_eq!(starts.len(), 1);
    let start = starts[0];
    assert_eq!(start["name"], "support chat");
    assert_eq!(start["rootPrimitive"], "agent.run");
    assert_eq!(
        start["attributes"],
        json!({"agentId": "support-chat", "boundary": "convex.action"})
    );
    assert_eq!(start["segmentSeq"], 1);
    assert_eq!(start["operationId"], start["runId"]);
    assert_eq!(of_type(&mine, "run:end")[0]["status"], "ok");
}

#[tokio::test]
async fn run_action_records_the_boundary_and_flushes_before_the_child_starts() {
    let sink = ORDER_SINK.get_or_init(Memory::new).clone();
    let d = observed(&sink).build();
    let seen = d.action(respond, turn(1, None)).await.unwrap();
    assert_eq!(seen.answer, "planned");
    let records: Vec<Value> = settled(&d, &sink)
        .await
        .into_iter()
        .filter(|r| r["runId"] == seen.run_id)
        .collect();
    assert_eq!(
        run_starts(&records).len(),
        1,
        "the child continues the run: no new run"
    );

    let span = span_named(&records, "plan research");
    assert_eq!(span["primitive"], "runtime.convex.action");
    assert_eq!(span["family"], "runtime");
    assert_eq!(
        span["attributes"],
        json!({"functionRef": "boundaries:child", "boundary": "convex.action", "presentation": {"display": "detail"}})
    );
    let id = &span["spanId"];
    assert_eq!(
        event_names(&records, id),
        [
            "runtime.convex.boundary.requested",
            "runtime.convex.boundary.received",
            "runtime.convex.boundary.completed"
        ]
    );
    let events = events_on(&records, id);
    let requested = &events[0]["attributes"];
    assert_eq!(requested["boundaryId"], *id);
    assert_eq!(requested["boundarySpanId"], *id);
    assert_eq!(requested["boundaryKind"], "action");
    assert_eq!(requested["boundaryLabel"], "plan research");
    assert_eq!(requested["functionRef"], "boundaries:child");
    assert_eq!(requested["parentSpanStack"], json!([id]));
    let lease_at = requested["leaseExpiresAt"].as_str().unwrap();
    let started = span["startedAt"].as_str().unwrap();
    assert!(lease_at > started, "lease {lease_at} after start {started}");
    assert_eq!(
        events[1]["attributes"]["leaseExpiresAt"], lease_at,
        "received carries the same lease"
    );
    assert_eq!(events[2]["attributes"]["status"], "ok");
    assert_eq!(end_of(&records, id)["status"], "ok");

    // The child wrote in its own segment of the same run.
    let child_seg = &events[1]["segmentId"];
    assert_ne!(child_seg, &span["segmentId"]);
    assert_eq!(events[1]["segmentSeq"], 1);

    // The hop as the viewer shows it: folded (no work under it), then every record.
    assert_run_trees(
        &records,
        r#"
        run run#1 "support chat" (agent.run)
        status ok · 7 records · 2 segments

        └─ ↳ runtime.convex.action "plan research" → boundaries:child  ok  (folded)
    "#,
    );
    run_trees(&records).all_spans().assert_eq(
        r#"
        run run#1 "support chat" (agent.run)
        status ok · 7 records · 2 segments

        └─ plan research  runtime.convex.action  ok
             • runtime.convex.boundary.requested
             • runtime.convex.boundary.received
             • runtime.convex.boundary.completed
    "#,
    );
}

#[tokio::test]
async fn the_child_sees_its_boundary_start_already_delivered() {
    let sink = ORDER_SINK.get_or_init(Memory::new).clone();
    let d = observed(&sink).build();
    let seen = d.action(respond, turn(1, None)).await.unwrap();
    assert_eq!(seen.answer, "planned");
    assert_eq!(
        seen.child_saw_its_boundary,
        Some(true),
        "flushed before the child started"
    );
}

#[tokio::test]
async fn a_three_level_waterfall_nests_strictly() {
    let sink = Memory::new();
    let d = observed(&sink).build();
    let out = d.action(waterfall, turn(1, None)).await.unwrap();
    assert_eq!(out, "planned+dug");
    let records = settled(&d, &sink).await;
    assert_eq!(run_starts(&records).len(), 1);
    let outer = span_named(&records, "plan research");
    let inner = span_named(&records, "dig deeper");
    assert_eq!(
        inner["parentSpanId"], outer["spanId"],
        "grandchild boundary under the child's"
    );
    assert_eq!(inner["runId"], outer["runId"]);
    for span in [outer, inner] {
        let id = &span["spanId"];
        assert_eq!(
            event_names(&records, id),
            [
                "runtime.convex.boundary.requested",
                "runtime.convex.boundary.received",
                "runtime.convex.boundary.completed"
            ]
        );
        assert_eq!(end_of(&records, id)["status"], "ok");
    }
    // Strict nesting in time: the inner span ends before the outer one.
    let pos = |r: &Value| records.iter().position(|x| x == r).unwrap();
    assert!(pos(end_of(&records, &inner["spanId"])) < pos(end_of(&records, &outer["spanId"])));
    assert!(pos(outer) < pos(inner));
}

#[tokio::test]
async fn a_failure_at_the_bottom_marks_every_boundary_and_the_run_as_error() {
    let sink = Memory::new();
    let d = observed(&sink).build();
    let err = d.action(waterfall, turn(1, Some(0))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Application);
    assert_eq!(err.message(), "research failed");
    assert_eq!(err.data(), Some(&json!({"depth": 0})));
    let records = settled(&d, &sink).await;
    for name in ["plan research", "dig deeper"] {
        let id = &span_named(&records, name)["spanId"];
        let names = event_names(&records, id);
        assert!(
            names.contains(&"runtime.convex.boundary.failed".to_owned()),
            "{name}: {names:?}"
        );
        let failed = events_on(&records, id)
            .into_iter()
            .find(|e| e["name"] == "runtime.convex.boundary.failed")
            .unwrap();
        assert_eq!(failed["attributes"]["status"], "error");
        assert_eq!(failed["attributes"]["error"]["message"], "research failed");
        let end = end_of(&records, id);
        assert_eq!(end["status"], "error");
        assert_eq!(end["error"]["message"], "research failed");
    }
    let run_end = &of_type(&records, "run:end")[0];
    assert_eq!(run_end["status"], "error");
    assert_eq!(run_end["error"]["message"], "research failed");

    // The failure where it happened, on both hops and on the run.
    run_trees(&records).all_spans().assert_eq(
        r#"
        run run#1 "waterfall" (runtime.convex.action)
        status error · 16 records · 3 segments
        ✗ ConvexError: research failed

        └─ plan research  runtime.convex.action  error
           │ ✗ ConvexError: research failed
           │ • runtime.convex.boundary.requested
           │ • runtime.convex.boundary.received
           │ • runtime.convex.boundary.failed: research failed
           │ • exception: research failed
           └─ dig deeper  runtime.convex.action  error
                ✗ ConvexError: research failed
                • runtime.convex.boundary.requested
                • runtime.convex.boundary.received
                • runtime.convex.boundary.failed: research failed
                • exception: research failed
    "#,
    );
}

#[tokio::test]
async fn queries_and_mutations_never_open_runs() {
    let sink = Memory::new();
    let d = observed(&sink).build();
    d.mutation(
        save_input,
        Thread {
            thread_id: "t".into(),
        },
    )
    .await
    .unwrap();
    let docs = d
        .query(
            read_inputs,
            Thread {
                thread_id: "t".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(docs.len(), 1);
    assert!(
        settled(&d, &sink).await.is_empty(),
        "no context, no records"
    );
}

#[tokio::test]
async fn run_query_and_run_mutation_record_labelled_spans_and_propagate_context() {
    let sink = Memory::new();
    let d = observed(&sink).build();
    let docs = d
        .action(
            calls_internal_raw,
            Thread {
                thread_id: "t9".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        docs.len(),
        1,
        "the mutation's write is visible to the later query"
    );
    let records = settled(&d, &sink).await;
    let gathers = run_starts(&records)
        .into_iter()
        .find(|r| r["name"] == "gathers")
        .unwrap();
    let run: Vec<Value> = records
        .iter()
        .filter(|r| r["runId"] == gathers["runId"])
        .cloned()
        .collect();

    let mutation = span_named(&run, "save input");
    assert_eq!(mutation["primitive"], "runtime.convex.mutation");
    assert_eq!(
        mutation["attributes"]["functionRef"],
        "boundaries:save_input"
    );
    let query = span_named(&run, "load research inputs");
    assert_eq!(query["primitive"], "runtime.convex.query");
    assert_eq!(query["attributes"]["functionRef"], "boundaries:read_inputs");
    // The query's own span continues the run, nested under the query span.
    let scan = span_named(&run, "scan inputs");
    assert_eq!(scan["parentSpanId"], query["spanId"]);
    assert_ne!(
        scan["segmentId"], query["segmentId"],
        "the callee writes its own segment"
    );
    // No boundary acknowledgements on query/mutation spans.
    assert!(events_on(&run, &query["spanId"]).is_empty());
    assert_eq!(end_of(&run, &query["spanId"])["status"], "ok");

    // The raw ctx.run_action call opened a separate, clearly marked internal run.
    let direct = run_starts(&records)
        .into_iter()
        .find(|r| r["name"] == "boundaries:internal_direct")
        .unwrap();
    assert_ne!(direct["runId"], gathers["runId"]);
    assert_ne!(direct["traceId"], gathers["traceId"]);
    assert_eq!(
        direct["attributes"],
        json!({"boundary": "convex.internalAction", "entrypoint": "standalone-internal"})
    );
    assert_eq!(direct["rootPrimitive"], "runtime.convex.action");
}

#[tokio::test]
async fn scheduled_work_is_detached_and_linked_back_to_its_schedule_span() {
    let sink = Memory::new();
    // No timer: the job due at once runs in the drain, which counts it.
    let d = observed(&sink).manual_scheduling().build();
    d.action(schedules, NoArgs {}).await.unwrap();
    assert_eq!(d.finish_scheduled().await, 1);
    let records = settled(&d, &sink).await;
    let parent = run_starts(&records)
        .into_iter()
        .find(|r| r["name"] == "schedules")
        .unwrap();
    let scheduled = run_starts(&records)
        .into_iter()
        .find(|r| r["name"] == "scheduled work")
        .unwrap();
    assert_ne!(scheduled["runId"], parent["runId"]);
    assert_ne!(scheduled["traceId"], parent["traceId"], "a new trace");
    assert_eq!(scheduled["attributes"]["entrypoint"], "standalone-internal");

    let span = span_named(&records, "stream chat response");
    assert_eq!(span["runId"], parent["runId"]);
    assert_eq!(span["primitive"], "runtime.convex.schedule");
    assert_eq!(
        span["attributes"]["functionRef"],
        "boundaries:scheduled_work"
    );
    assert_eq!(span["attributes"]["boundary"], "convex.schedule");
    assert_eq!(span["attributes"]["delayMs"], 10);
    assert_eq!(end_of(&records, &span["spanId"])["status"], "ok");

    let edges = of_type(&records, "edge");
    assert_eq!(edges.len(), 1, "{edges:#?}");
    let edge = edges[0];
    assert_eq!(edge["edgeType"], "triggered");
    assert_eq!(edge["from"], json!({"kind": "span", "id": span["spanId"]}));
    assert_eq!(edge["to"], json!({"kind": "run", "id": scheduled["runId"]}));

    // Two runs, linked both ways: the schedule span names the run it triggered.
    assert_run_trees(
        &records,
        r#"
        run run#1 "schedules" (runtime.convex.action)
        status ok · 4 records · 1 segment

        └─ ↳ runtime.convex.schedule "stream chat response" → boundaries:scheduled_work  ok  (folded)
             ↪ triggered run run#2 "scheduled work"

        run run#2 "scheduled work" (runtime.convex.action)
        status ok · 3 records · 1 segment
        ↩ triggered by span "stream chat response" (runtime.convex.schedule) in run run#1 "schedules"

        (no spans)
    "#,
    );
}

#[tokio::test]
async fn a_continuation_joins_the_given_run() {
    let sink = Memory::new();
    // No timer: the continuation, due at once, runs in the drain, once.
    let d = observed(&sink).manual_scheduling().build();
    let span_id = d.action(resumes_later, NoArgs {}).await.unwrap();
    assert_eq!(d.finish_scheduled().await, 1);
    let records = settled(&d, &sink).await;
    assert_eq!(
        run_starts(&records).len(),
        1,
        "the continuation opened no run"
    );
    let run_id = &run_starts(&records)[0]["runId"];
    let id = json!(span_id);
    assert_eq!(
        event_names(&records, &id),
        [
            "runtime.convex.boundary.requested",
            "runtime.convex.boundary.received",
            "runtime.convex.boundary.completed"
        ],
        "requested and the acknowledgements land on the continuation span"
    );
    let received = &events_on(&records, &id)[1];
    assert_eq!(received["runId"], *run_id);
    assert_eq!(received["attributes"]["boundaryKind"], "schedule");
    assert_eq!(
        received["attributes"]["boundaryLabel"],
        "resume after approval"
    );
    assert!(of_type(&records, "edge").is_empty(), "joined, not linked");
}

#[tokio::test]
async fn concurrent_invocations_keep_separate_runs() {
    let sink = Memory::new();
    let d = observed(&sink).build();
    let calls = (0..8).map(|i| {
        let d = d.clone();
        tokio::spawn(async move {
            d.action(
                identity,
                Thread {
                    thread_id: format!("t{i}"),
                },
            )
            .await
        })
    });
    let mut runs = std::collections::HashSet::new();
    for call in calls {
        let out = call.await.unwrap().unwrap();
        runs.insert(out.split_once(':').unwrap().1.to_owned());
    }
    assert_eq!(runs.len(), 8, "every invocation got its own run");
    let records = settled(&d, &sink).await;
    assert_eq!(run_starts(&records).len(), 8);
    assert_eq!(of_type(&records, "run:end").len(), 8);
}
