//! The current context: isolation between concurrent runs across awaits and thread hops,
//! synchronous code, spawned tasks, and `with_context`.

use std::time::Duration;

use crux_runtime::attributes::Attributes;
use crux_runtime::delivery::FlushOptions;
use crux_runtime::observe::{self, Observer, RunOptions};
use crux_runtime::record::{RunStatus, SpanStatus};
use crux_runtime::sink::Memory;

fn observer() -> (Observer, Memory) {
    let memory = Memory::new();
    (Observer::builder().sink(memory.clone()).build(), memory)
}

/// Sync code called from inside an async handler.
fn current_run() -> Option<String> {
    observe::current_scope().map(|s| s.run_id().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_never_see_each_other_across_awaits_and_threads() {
    let (o, memory) = observer();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let o = o.clone();
        tasks.push(tokio::spawn(async move {
            let run = o.open_run(RunOptions::new(format!("run {i}"), "agent.run"));
            let me = run.run_id().to_string();
            let scope = run.scope();
            let body = async {
                let mut seen = Vec::new();
                for step in 0..20 {
                    let span = observe::span("step", "task.operation").start();
                    // Yield and sleep so the task hops between worker threads.
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_micros(50 * (step % 3))).await;
                    seen.push(current_run());
                    span.end(SpanStatus::Ok);
                }
                seen
            };
            let seen = scope.in_scope(body).await;
            assert!(
                seen.iter().all(|s| s.as_deref() == Some(me.as_str())),
                "run {i} saw {seen:?}"
            );
            // Outside the scope, nothing leaks.
            assert_eq!(current_run(), None);
            let id = run.run_id();
            run.end(RunStatus::Ok);
            id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    assert_eq!(
        o.flush(FlushOptions::FINAL).await.status,
        observe::FlushStatus::Drained
    );
    for id in ids {
        let records = memory.records_of_run(id);
        // run:start + 20 × (span:start, span:end) + run:end, every span in its own run.
        assert_eq!(records.len(), 42);
        let seqs: Vec<u64> = records
            .iter()
            .map(|r| r["segmentSeq"].as_u64().unwrap())
            .collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=42).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_tasks_carry_the_context_when_asked() {
    let (o, _memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let expected = Some(run.run_id().to_string());
    let scope = run.scope();
    let (carried, captured, bare) = scope
        .in_scope(async {
            let carried = tokio::spawn(observe::current_scope().unwrap().in_scope(async {
                tokio::task::yield_now().await;
                current_run()
            }));
            let captured = tokio::spawn(observe::with_context(observe::capture_context(), async {
                tokio::task::yield_now().await;
                current_run()
            }));
            let bare = tokio::spawn(async { current_run() });
            (
                carried.await.unwrap(),
                captured.await.unwrap(),
                bare.await.unwrap(),
            )
        })
        .await;
    assert_eq!(carried, expected);
    assert_eq!(captured, expected);
    assert_eq!(bare, None, "a plain spawn does not inherit the context");
    run.end(RunStatus::Ok);
}

#[tokio::test]
async fn work_in_a_span_scope_nests_under_that_span() {
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let run_id = run.run_id().to_string();
    run.scope()
        .in_scope(async {
            let outer = observe::span("outer", "task.operation").start();
            let outer_id = outer.id().unwrap().to_string();
            let inner_parent = outer
                .in_scope(async {
                    tokio::task::yield_now().await;
                    let inner = observe::span("inner", "tool.call").start();
                    let parent = observe::current_scope().and_then(|s| s.current_span_id());
                    inner.end(SpanStatus::Ok);
                    parent
                })
                .await;
            assert_eq!(
                inner_parent.map(|id| id.to_string()),
                Some(outer_id.clone())
            );
            // A disabled span keeps the context that was current.
            let disabled = observe::Span::disabled();
            let kept = disabled.in_scope(async { current_run() }).await;
            assert_eq!(kept.as_deref(), Some(run_id.as_str()));
            outer.end(SpanStatus::Ok);
            let records = {
                o.flush(FlushOptions::FINAL).await;
                memory.records()
            };
            let inner = records
                .iter()
                .find(|r| r["type"] == "span:start" && r["name"] == "inner")
                .expect("the inner span was recorded");
            assert_eq!(inner["parentSpanId"], outer_id.as_str());
        })
        .await;
    run.end(RunStatus::Ok);
}

#[test]
fn sync_code_sees_the_entered_scope_and_guards_nest() {
    let (o, _memory) = observer();
    let a = o.open_run(RunOptions::new("a", "agent.run"));
    let b = o.open_run(RunOptions::new("b", "agent.run"));
    assert_eq!(current_run(), None);
    {
        let _ga = a.scope().enter();
        assert_eq!(current_run(), Some(a.run_id().to_string()));
        {
            let _gb = b.scope().enter();
            assert_eq!(current_run(), Some(b.run_id().to_string()));
        }
        assert_eq!(current_run(), Some(a.run_id().to_string()));
    }
    assert_eq!(current_run(), None);
    a.end(RunStatus::Ok);
    b.end(RunStatus::Ok);
}

#[test]
fn a_panicking_poll_restores_the_previous_context() {
    let (o, _memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let fut = run.scope().in_scope(async { panic!("handler bug") });
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures_lite_block_on(fut);
    }));
    assert!(caught.is_err());
    assert_eq!(current_run(), None);
    run.end(RunStatus::Ok);
}

#[tokio::test]
async fn with_context_keeps_a_live_segment_and_opens_one_for_a_received_context() {
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let span = run.scope().span("outer", "flow.run").start();
    let live = span.scope().unwrap().capture();
    let received: crux_runtime::envelope::Envelope = serde_json::from_value(
        crux_runtime::envelope::Envelope::new(Some(live.wire().clone())).to_value(),
    )
    .unwrap();
    let received: observe::CapturedContext = received.observability.unwrap().into();

    let live_segment = observe::with_context(Some(live), async {
        observe::span("same segment", "flow.step")
            .start()
            .end(SpanStatus::Ok);
        observe::current_scope().unwrap().segment_id()
    })
    .await;
    assert_eq!(live_segment, run.segment_id());

    // A received context continues on the observer of the current scope.
    let new_segment = run
        .scope()
        .in_scope(observe::with_context(Some(received), async {
            observe::span("new segment", "flow.step")
                .start()
                .end(SpanStatus::Ok);
            observe::current_scope().unwrap().segment_id()
        }))
        .await;
    assert_ne!(new_segment, run.segment_id());
    span.end(SpanStatus::Ok);
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    o.flush(FlushOptions::FINAL).await;
    let records = memory.records_of_run(run_id);
    let seg_of = |name: &str| {
        records
            .iter()
            .find(|r| r["type"] == "span:start" && r["name"] == name)
            .map(|r| {
                (
                    r["segmentId"].as_str().unwrap().to_owned(),
                    r["segmentSeq"].as_u64().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(seg_of("same segment").0, run_id_segment(&records));
    assert_eq!(seg_of("new segment"), (new_segment.to_string(), 1));
}

fn run_id_segment(records: &[serde_json::Value]) -> String {
    records.iter().find(|r| r["type"] == "run:start").unwrap()["segmentId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls a future to completion on this thread (the futures here never wait).
fn futures_lite_block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn one_segment_shared_by_threads_numbers_and_delivers_records_in_order() {
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let scope = run.scope();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let scope = scope.clone();
            s.spawn(move || {
                let _g = scope.enter();
                for _ in 0..250 {
                    observe::span("s", "tool.call").start().end(SpanStatus::Ok);
                }
            });
        }
    });
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    o.flush_blocking(FlushOptions::FINAL);
    let seqs: Vec<u64> = memory
        .records_of_run(run_id)
        .iter()
        .map(|r| r["segmentSeq"].as_u64().unwrap())
        .collect();
    // Numbered once each, and delivered in sequence order even though four threads raced.
    assert_eq!(seqs, (1..=2002).collect::<Vec<_>>());
}

#[test]
fn correlators_beyond_the_wire_limits_still_travel_and_resume() {
    // A user id of 300 characters, a session id with a newline, 20 metadata entries: the
    // envelope and carrier decoders refuse such values, so the run must carry them within
    // the limits, or every callee would be cut off the run and `resume_run` would fail.
    use crux_runtime::envelope::{Correlators, Envelope, MAX_LABEL, MAX_METADATA};
    let (obs, _sink) = observer();
    let long = "u".repeat(300);
    let correlators = Correlators {
        session_id: Some("session\n42".to_owned()),
        user_id: Some(long.clone()),
        metadata: (0..20)
            .map(|i| (format!("key{i:02}"), format!("value {i}")))
            .collect(),
    };
    let run = obs.open_run(RunOptions::new("flow", "flow.run").correlators(correlators));
    let captured = {
        let _entered = run.scope().enter();
        observe::capture_context().expect("inside the run")
    };
    let sent = Envelope::new(Some(captured.into_wire())).to_value();
    let received = Envelope::decode(&sent).expect("the receiver accepts the envelope");
    let c = received.observability.unwrap().correlators.unwrap();
    // A prefix, `~` and 32 hex digits of the whole's SHA-256 (`sha256sum` of 300 `u`s,
    // and of `session\n42`).
    let user = format!(
        "{}~8b5089b44d9fefeafc563a34f6cb19fb",
        &long[..MAX_LABEL - 33]
    );
    assert_eq!(user.len(), MAX_LABEL);
    assert_eq!(c.user_id.as_deref(), Some(user.as_str()));
    assert_eq!(
        c.session_id.as_deref(),
        Some("session 42~bf3e84d01745940d8ba6faa570eaad32")
    );
    assert_eq!(c.metadata.len(), MAX_METADATA);
    assert_eq!(c.metadata["key00"], "value 0");

    let carrier = run.suspend("waiting for approval");
    let parked = serde_json::to_value(&carrier).unwrap();
    let carrier: observe::Carrier = serde_json::from_value(parked).expect("the carrier reads back");
    assert_eq!(carrier.crux.user_id.as_deref(), Some(user.as_str()));
    let resumed = obs.resume_run(&carrier, "approved").expect("resumes");
    resumed.end(RunStatus::Ok);
}

/// Issue 14: two `issuer|subject` identities sharing their first 200 characters were cut
/// to one `userId`, so two users became one. They stay two, within the limit, and the same
/// identity gives the same `userId` in every run (and process).
#[test]
fn long_user_ids_sharing_a_prefix_stay_distinct_within_the_limit() {
    use crux_runtime::envelope::{Correlators, Envelope, MAX_LABEL};
    let (obs, _sink) = observer();
    let issuer = format!("https://{}.example.com", "a".repeat(220));
    let user_id = |subject: &str| {
        let correlators = Correlators {
            user_id: Some(format!("{issuer}|{subject}")),
            ..Correlators::default()
        };
        let run = obs.open_run(RunOptions::new("flow", "flow.run").correlators(correlators));
        let captured = {
            let _entered = run.scope().enter();
            observe::capture_context().expect("inside the run")
        };
        run.end(RunStatus::Ok);
        let sent = Envelope::new(Some(captured.into_wire())).to_value();
        let received = Envelope::decode(&sent).expect("the receiver accepts the envelope");
        let c = received.observability.unwrap().correlators.unwrap();
        c.user_id.expect("a userId")
    };
    let (ada, bob) = (user_id("user-ada"), user_id("user-bob"));
    assert_ne!(ada, bob, "two users stay two");
    for id in [&ada, &bob] {
        assert_eq!(id.chars().count(), MAX_LABEL, "{id}");
        assert!(id.starts_with(&issuer[..MAX_LABEL - 33]), "{id}");
    }
    assert_eq!(user_id("user-ada"), ada, "the same user, the same id");
    // An id that fits is unchanged.
    let short = Correlators {
        user_id: Some("https://auth.example.com|ada".to_owned()),
        ..Correlators::default()
    };
    let run = obs.open_run(RunOptions::new("flow", "flow.run").correlators(short));
    let captured = {
        let _entered = run.scope().enter();
        observe::capture_context().expect("inside the run")
    };
    run.end(RunStatus::Ok);
    let wire = Envelope::new(Some(captured.into_wire())).to_value();
    assert_eq!(
        wire["observability"]["correlators"]["userId"],
        "https://auth.example.com|ada"
    );
}

#[test]
fn a_span_stack_deeper_than_the_envelope_cap_still_crosses_a_boundary() {
    // Each `run_action` level adds its boundary span to the stack the callee inherits, so
    // a deep recursion outgrows the 128 ids the receiver accepts; the capture keeps the
    // innermost ones, which is all the receiver nests under.
    use crux_runtime::envelope::{Envelope, MAX_SPAN_STACK};
    let (obs, _sink) = observer();
    let run = obs.open_run(RunOptions::new("deep", "agent.run"));
    let mut scope = run.scope();
    let mut spans = Vec::new();
    for _ in 0..MAX_SPAN_STACK + 5 {
        let span = scope.span("level", "tool.call").start();
        scope = span.scope().expect("an enabled span");
        spans.push(span);
    }
    let sent = Envelope::new(Some(scope.wire_context())).to_value();
    let received = Envelope::decode(&sent).expect("the receiver accepts the envelope");
    let ctx = received.observability.unwrap();
    assert_eq!(ctx.span_stack.len(), MAX_SPAN_STACK);
    assert_eq!(ctx.span_stack.first(), spans[5].id().as_ref());
    assert_eq!(ctx.current_span_id, spans.last().unwrap().id());
    for span in spans.into_iter().rev() {
        span.end(SpanStatus::Ok);
    }
    run.end(RunStatus::Ok);
}

/// The records of `memory` without what differs between two spans opened alike: their ids,
/// times, record ids and sequence numbers.
fn shapes(records: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let varying = [
        "spanId",
        "recordId",
        "segmentSeq",
        "startedAt",
        "endedAt",
        "durationMs",
        "timestamp",
    ];
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let object = r.as_object_mut().unwrap();
            for key in varying {
                object.remove(key);
            }
            r
        })
        .collect()
}

#[test]
fn start_span_records_what_a_builder_start_records() {
    let attributes = || Attributes::new().with("level", "INFO").with("rows", 3);
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let parent = run.scope().span("parent", "task.operation").start();
    let scope = parent.scope().unwrap();
    let built = {
        let _in = scope.enter();
        let span = observe::span("query", "custom.operation")
            .attrs(attributes())
            .start();
        let id = span.id();
        span.end(SpanStatus::Ok);
        id
    };
    let started = {
        let _in = scope.enter();
        let span = observe::start_span("query", "custom.operation", attributes());
        let id = span.id();
        assert!(span.is_recording());
        span.end(SpanStatus::Ok);
        id
    };
    // In an explicit scope, not the current one: the parent is that scope's span.
    let explicit = scope.start_span("query", "custom.operation", attributes());
    let explicit_id = explicit.id();
    explicit.end(SpanStatus::Ok);
    let parent_id = parent.id().unwrap();
    parent.end(SpanStatus::Ok);
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    o.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let of = |id: Option<crux_runtime::ids::SpanId>| {
        let id = id.unwrap().to_string();
        records
            .iter()
            .filter(|r| r["spanId"] == id.as_str())
            .cloned()
            .collect::<Vec<_>>()
    };
    let (built, started, explicit) = (of(built), of(started), of(explicit_id));
    assert_eq!(built.len(), 2, "span:start and span:end");
    assert_eq!(built[0]["parentSpanId"], parent_id.to_string());
    assert_eq!(
        built[0]["attributes"],
        serde_json::json!({"level": "INFO", "rows": 3})
    );
    assert_eq!(shapes(&started), shapes(&built));
    assert_eq!(shapes(&explicit), shapes(&built));
    // Outside any context nothing records; nor does a disabled observer.
    assert!(!observe::start_span("query", "custom.operation", attributes()).is_recording());
    let disabled = Observer::disabled().open_run(RunOptions::new("off", "agent.run"));
    assert!(
        !disabled
            .scope()
            .start_span("query", "custom.operation", attributes())
            .is_recording()
    );
}

/// A span from `start_span` gives its scope's node back at its end, for the thread's next
/// span: the stacks built from reused nodes are each span's own, and a node a scope still
/// holds is not reused.
#[test]
fn span_scopes_nest_alike_whether_or_not_their_nodes_are_reused() {
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let outer = run.scope().span("outer", "task.operation").start();
    let outer_scope = outer.scope().unwrap();
    let outer_id = outer.id().unwrap();
    let mut kept = Vec::new();
    for i in 0..40 {
        let span = outer_scope.start_span("step", "task.operation", Attributes::new());
        let scope = span.scope().unwrap();
        assert_eq!(scope.span_stack(), vec![outer_id, span.id().unwrap()]);
        let inner = scope.start_span("inner", "task.operation", Attributes::new());
        let inner_scope = inner.scope().unwrap();
        assert_eq!(
            inner_scope.span_stack(),
            vec![outer_id, span.id().unwrap(), inner.id().unwrap()]
        );
        if i % 5 == 0 {
            // Held past its span: it keeps its stack whatever later spans reuse.
            kept.push((inner_scope.clone(), inner_scope.span_stack()));
        }
        drop(inner_scope);
        inner.end(SpanStatus::Ok);
        drop(scope);
        span.end(SpanStatus::Ok);
    }
    // A builder's span started with its scope nests the same way.
    let built = outer_scope
        .span("built", "task.operation")
        .start_with_scope();
    let built_scope = built.scope().unwrap();
    assert_eq!(
        built_scope.span_stack(),
        vec![outer_id, built.id().unwrap()]
    );
    assert_eq!(
        built.scope().unwrap().span_stack(),
        built_scope.span_stack()
    );
    drop(built_scope);
    built.end(SpanStatus::Ok);
    for (scope, stack) in &kept {
        assert_eq!(&scope.span_stack(), stack);
        assert_eq!(scope.current_span_id(), stack.last().copied());
    }
    assert_eq!(outer_scope.span_stack(), vec![outer_id]);
    drop(kept);
    outer.end(SpanStatus::Ok);
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    o.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    // Every inner span's parent is the step opened just before it.
    let starts: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "span:start")
        .collect();
    assert_eq!(starts.len(), 82);
    for pair in starts[1..81].chunks(2) {
        assert_eq!(pair[0]["parentSpanId"], outer_id.to_string());
        assert_eq!(pair[1]["parentSpanId"], pair[0]["spanId"]);
    }
}

/// A `start_span` span dropped without `end` (its node never given back) still records
/// its end, cancelled and marked dropped, like a builder's span.
#[test]
fn a_start_span_span_dropped_without_end_records_cancelled() {
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let span = run
        .scope()
        .start_span("abandoned", "custom.operation", Attributes::new());
    let id = span.id().unwrap().to_string();
    let held = span.scope().unwrap();
    drop(span);
    assert_eq!(
        held.current_span_id().map(|s| s.to_string()),
        Some(id.clone())
    );
    drop(held);
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    o.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let end = records
        .iter()
        .find(|r| r["type"] == "span:end" && r["spanId"] == id.as_str())
        .expect("the dropped span's end is recorded");
    assert_eq!(end["status"], "cancelled");
    assert_eq!(end["attributes"]["crux.dropped"], true);
}
