//! `tracing` spans inside a Crux run become Crux spans, nested both ways.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use crux_runtime::delivery::FlushOptions;
use crux_runtime::ids::RunId;
use crux_runtime::observe::{self, Observer, RunOptions, RunStatus, SpanStatus};
use crux_runtime::sink::Memory;
use crux_tracing::{CruxLayer, WithCruxIds};
use serde_json::Value;
use tracing::{Instrument, instrument};
use tracing_subscriber::layer::SubscriberExt;

fn observer() -> (Observer, Memory) {
    let memory = Memory::new();
    (Observer::builder().sink(memory.clone()).build(), memory)
}

/// A multi-thread runtime whose worker threads use `dispatch` (a thread-local default, so
/// tests in this binary do not share a global subscriber).
fn runtime(dispatch: tracing::Dispatch) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&dispatch)))
        .build()
        .unwrap()
}

fn run_in<F: Future>(observer: &Observer, name: &'static str, body: F) -> (RunId, F::Output)
where
    F::Output: Send,
{
    let run = observer.open_run(RunOptions::new(name, "agent.run"));
    let run_id = run.run_id();
    let out = futures_lite_block_on(run.scope().in_scope(body));
    run.end(RunStatus::Ok);
    (run_id, out)
}

/// A current-thread block_on (the thread's default subscriber applies).
fn futures_lite_block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

fn by_type(records: &[Value], ty: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["type"] == ty)
        .cloned()
        .collect()
}

fn start_named<'a>(records: &'a [Value], name: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["type"] == "span:start" && r["name"] == name)
        .unwrap_or_else(|| panic!("no span:start named {name}: {records:#?}"))
}

// --- a handler with `#[instrument]`ed helpers -------------------------------------------

#[derive(Debug)]
struct Offline;
impl std::fmt::Display for Offline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("source offline")
    }
}
impl std::error::Error for Offline {}

#[instrument(fields(crux.primitive = "retrieval.query"))]
fn read_source(url: &str, attempt: u64) -> Result<usize, Offline> {
    tracing::info!(bytes = 10u64, "read");
    Ok(10)
}

#[instrument(err)]
fn read_offline(url: &str) -> Result<usize, Offline> {
    Err(Offline)
}

#[instrument]
async fn research(topic: &str, cached: bool) -> usize {
    tokio::task::yield_now().await; // polled more than once: still one span
    let ok = read_source("https://a.example", 1).unwrap_or(0);
    let failed = read_offline("https://b.example").unwrap_or(0);
    // A Crux span inside a `tracing` span, and a `tracing` span inside that one.
    let draft = observe::span("draft", "generation.call").start();
    draft
        .in_scope(async {
            tokio::task::yield_now().await;
            summarize().await
        })
        .await;
    draft.end(SpanStatus::Ok);
    ok + failed
}

#[instrument]
async fn summarize() {
    tokio::task::yield_now().await;
    tracing::info!("summarized");
}

#[instrument(skip_all)]
async fn handler() -> usize {
    research("tides", false).await
}

#[test]
fn instrumented_helpers_three_deep_make_the_crux_tree() {
    let (observer, memory) = observer();
    let subscriber = tracing_subscriber::registry().with(CruxLayer::new());
    let (run_id, out) =
        tracing::subscriber::with_default(subscriber, || run_in(&observer, "briefing", handler()));
    assert_eq!(out, 10, "observability never changes the result");
    observer.flush_blocking(FlushOptions::FINAL);

    // `#[instrument(err)]`'s event has no message: it is named after its callsite.
    let callsite = format!("event {}:", file!());
    let tree: String = tree(&memory, run_id)
        .lines()
        .map(|l| match l.find(&callsite) {
            Some(at) => format!("{}event <callsite>\n", &l[..at]),
            None => format!("{l}\n"),
        })
        .collect();
    assert_eq!(
        tree,
        r#"run run#1 "briefing" (agent.run)
status ok · 19 records · 1 segment

└─ handler  custom.operation  ok
   └─ research  custom.operation  ok
      ├─ read_source  retrieval.query  ok
      │    • read
      ├─ read_offline  custom.operation  error
      │    ✗ Error: source offline
      │    • event <callsite>
      │    • exception: source offline
      └─ draft  generation.call  ok
         └─ summarize  custom.operation  ok
              • summarized
"#
    );
    let records = memory.records_of_run(run_id);
    let research = start_named(&records, "research");
    assert_eq!(research["attributes"]["topic"], "tides");
    assert_eq!(research["attributes"]["cached"], false);
    assert_eq!(research["attributes"]["level"], "INFO");
    assert_eq!(research["attributes"]["target"], "spans");
    let read = start_named(&records, "read_source");
    assert_eq!(read["attributes"]["attempt"], 1, "typed, not text");
    assert!(read["attributes"].get("crux.primitive").is_none());
    // Each span is one start and one end, however often its future was polled.
    assert_eq!(by_type(&records, "span:start").len(), 6);
    assert_eq!(by_type(&records, "span:end").len(), 6);
}

#[test]
fn primitives_come_from_the_field_then_the_rules_then_the_default() {
    let (observer, memory) = observer();
    let layer = CruxLayer::new()
        .primitive_for_name("db.", "retrieval.query")
        .primitive_for_target("spans::http", "tool.call")
        .default_primitive("task.operation");
    let subscriber = tracing_subscriber::registry().with(layer);
    let (run_id, ()) = tracing::subscriber::with_default(subscriber, || {
        run_in(&observer, "rules", async {
            drop(tracing::info_span!("db.select"));
            drop(tracing::info_span!(target: "spans::http::client", "GET"));
            drop(tracing::info_span!(
                "db.other",
                crux.primitive = "cache.lookup"
            ));
            drop(tracing::info_span!(
                "plain",
                crux.primitive = "not.a.primitive"
            ));
        })
    });
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    assert_eq!(
        start_named(&records, "db.select")["primitive"],
        "retrieval.query"
    );
    assert_eq!(start_named(&records, "GET")["primitive"], "tool.call");
    assert_eq!(
        start_named(&records, "db.other")["primitive"],
        "cache.lookup"
    );
    let plain = start_named(&records, "plain");
    assert_eq!(plain["primitive"], "task.operation");
    assert_eq!(plain["attributes"]["crux.primitive"], "not.a.primitive");
}

#[test]
fn events_go_to_the_innermost_span_and_fields_recorded_later_to_the_end() {
    let (observer, memory) = observer();
    let subscriber = tracing_subscriber::registry().with(CruxLayer::new());
    let (run_id, ()) = tracing::subscriber::with_default(subscriber, || {
        run_in(&observer, "events", async {
            let outer = tracing::info_span!("outer", rows = tracing::field::Empty);
            let _in_outer = outer.enter();
            tracing::info!("in outer");
            let crux_span = observe::span("inner crux", "tool.call").start();
            {
                let _in_crux = crux_span.scope().unwrap().enter();
                tracing::info!("in inner crux");
                tracing::info!(parent: &outer, "explicitly in outer");
            }
            crux_span.end(SpanStatus::Ok);
            outer.record("rows", 3u64);
            outer.record("error", true); // not declared: ignored by tracing
        })
    });
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let outer = start_named(&records, "outer")["spanId"].clone();
    let inner = start_named(&records, "inner crux").clone();
    assert_eq!(inner["parentSpanId"], outer);
    let events = by_type(&records, "span:event");
    let on = |name: &str| events.iter().find(|e| e["name"] == name).unwrap()["spanId"].clone();
    assert_eq!(on("in outer"), outer);
    assert_eq!(on("in inner crux"), inner["spanId"]);
    assert_eq!(on("explicitly in outer"), outer);
    let end = by_type(&records, "span:end")
        .into_iter()
        .find(|r| r["spanId"] == outer)
        .unwrap();
    assert_eq!(end["attributes"]["rows"], 3);
    assert_eq!(end["status"], "ok");
}

#[test]
fn an_error_field_fails_the_span_and_scopes_are_restored_after_out_of_order_exits() {
    let (observer, memory) = observer();
    let subscriber = tracing_subscriber::registry().with(CruxLayer::new());
    let run = observer.open_run(RunOptions::new("exits", "agent.run"));
    let run_id = run.run_id();
    let b_current = tracing::subscriber::with_default(subscriber, || {
        let _in_run = run.scope().enter();
        let a = tracing::info_span!("a", error = tracing::field::Empty);
        let b = tracing::info_span!("b");
        let in_a = a.enter();
        let in_b = b.enter();
        drop(in_a); // out of order: b stays current
        let b_current = observe::current_scope().unwrap().current_span_id();
        drop(in_b);
        assert_eq!(observe::current_scope().unwrap().current_span_id(), None);
        a.record("error", "quota exceeded");
        b_current
    });
    run.end(RunStatus::Ok);
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let b = start_named(&records, "b");
    let ends = by_type(&records, "span:end");
    let end_of = |id: &Value| ends.iter().find(|e| &e["spanId"] == id).unwrap().clone();
    let a_end = end_of(&start_named(&records, "a")["spanId"]);
    assert_eq!(a_end["status"], "error");
    assert_eq!(a_end["error"]["message"], "quota exceeded");
    assert_eq!(end_of(&b["spanId"])["status"], "ok");
    assert_eq!(b["spanId"], b_current.unwrap().to_string());
}

/// Two subscribers on one thread (a test's `set_default` inside another's) hand out equal
/// span ids; the exit of the inner subscriber's span, one its layer did not record, leaves
/// the outer subscriber's entered span current.
#[test]
fn an_inner_subscribers_span_with_an_equal_id_does_not_exit_the_outer_ones() {
    let (observer, _memory) = observer();
    let run = observer.open_run(RunOptions::new("nested subscribers", "agent.run"));
    let current = || observe::current_scope().unwrap().current_span_id();
    let outer = tracing::Dispatch::new(tracing_subscriber::registry().with(CruxLayer::new()));
    let inner = tracing::Dispatch::new(
        tracing_subscriber::registry().with(CruxLayer::new().with_max_level(tracing::Level::INFO)),
    );
    let _outer = tracing::dispatcher::set_default(&outer);
    let _in_run = run.scope().enter();
    let a = tracing::info_span!("a");
    let _in_a = a.enter();
    let a_crux = current();
    assert!(a_crux.is_some());
    // The inner layer records and enters a span first, on another thread (its span ids
    // differ from this thread's, which has its registry shard since `a`), so it is not a
    // layer that never entered anything.
    let (dispatch, scope) = (inner.clone(), run.scope());
    std::thread::spawn(move || {
        let _inner = tracing::dispatcher::set_default(&dispatch);
        let _in_run = scope.enter();
        tracing::info_span!("recorded").in_scope(|| {});
    })
    .join()
    .unwrap();
    {
        let _inner = tracing::dispatcher::set_default(&inner);
        // Past the inner layer's level: not recorded, and `a`'s id in the inner registry.
        let not_recorded = tracing::trace_span!("not recorded");
        assert_eq!(not_recorded.id(), a.id());
        not_recorded.in_scope(|| {});
        assert_eq!(current(), a_crux);
    }
    assert_eq!(current(), a_crux);
}

#[test]
fn a_span_entered_twice_is_one_crux_span_and_each_exit_restores_its_own_scope() {
    let (observer, memory) = observer();
    let subscriber = tracing_subscriber::registry().with(CruxLayer::new());
    let run = observer.open_run(RunOptions::new("reentered", "agent.run"));
    let run_id = run.run_id();
    let (a_id, b_id) = tracing::subscriber::with_default(subscriber, || {
        let _in_run = run.scope().enter();
        let current = || observe::current_scope().unwrap().current_span_id();
        let a = tracing::info_span!("a");
        let outer = a.enter();
        let a_id = current();
        let b = tracing::info_span!("b");
        let in_b = b.enter();
        let b_id = current();
        let inner = a.enter(); // re-entered inside b: a is current again
        assert_eq!(current(), a_id);
        drop(inner); // back to b, not to the run
        assert_eq!(current(), b_id);
        drop(in_b);
        assert_eq!(current(), a_id);
        drop(outer);
        assert_eq!(current(), None);
        (a_id.unwrap(), b_id.unwrap())
    });
    run.end(RunStatus::Ok);
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let starts = by_type(&records, "span:start");
    assert_eq!(starts.len(), 2, "{starts:#?}");
    assert_eq!(start_named(&records, "a")["spanId"], a_id.to_string());
    assert_eq!(start_named(&records, "b")["spanId"], b_id.to_string());
    assert_eq!(start_named(&records, "b")["parentSpanId"], a_id.to_string());
    assert_eq!(by_type(&records, "span:end").len(), 2);
}

#[test]
fn outside_any_crux_context_nothing_is_recorded_and_no_scope_is_left_behind() {
    let (observer, memory) = observer();
    let subscriber = tracing_subscriber::registry().with(CruxLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("no run");
        let _in = span.enter();
        tracing::info!("no run either");
        assert!(observe::current_scope().is_none());
    });
    observer.flush_blocking(FlushOptions::FINAL);
    assert!(memory.records().is_empty());
}

#[test]
fn span_ids_reused_by_the_registry_give_new_crux_spans() {
    let (observer, memory) = observer();
    let subscriber = tracing_subscriber::registry().with(CruxLayer::new());
    let (run_id, ()) = tracing::subscriber::with_default(subscriber, || {
        run_in(&observer, "reuse", async {
            for i in 0..20u64 {
                let s = tracing::info_span!("step", i);
                s.in_scope(|| tracing::info!("tick"));
            }
        })
    });
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let starts = by_type(&records, "span:start");
    let ids: HashSet<_> = starts.iter().map(|s| s["spanId"].clone()).collect();
    assert_eq!(ids.len(), 20);
    let ends = by_type(&records, "span:end");
    assert_eq!(ends.len(), 20);
    assert!(ends.iter().all(|e| e["status"] == "ok"), "{ends:#?}");
    let events = by_type(&records, "span:event");
    assert!(events.iter().all(|e| ids.contains(&e["spanId"])));
    assert_eq!(
        events
            .iter()
            .map(|e| e["spanId"].clone())
            .collect::<HashSet<_>>(),
        ids
    );
}

// --- across tasks and threads -----------------------------------------------------------

#[test]
fn spawned_instrumented_tasks_nest_under_their_span_on_other_threads() {
    let (observer, memory) = observer();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(CruxLayer::new()));
    let rt = runtime(dispatch.clone());
    let run = observer.open_run(RunOptions::new("spawn", "agent.run"));
    let run_id = run.run_id();
    let scope = run.scope();
    let _default = tracing::dispatcher::set_default(&dispatch);
    rt.block_on(async move {
        // Created in the run, spawned without any Crux context: the span carries it.
        let span = scope
            .in_scope(async { tracing::info_span!("background") })
            .await;
        let task = tokio::spawn(
            async {
                tokio::task::yield_now().await;
                let crux = observe::span("crux in background", "tool.call").start();
                crux.in_scope(async {
                    tokio::task::yield_now().await;
                    tracing::info!("deep");
                })
                .await;
                crux.end(SpanStatus::Ok);
            }
            .instrument(span),
        );
        task.await.unwrap();
    });
    drop(rt);
    run.end(RunStatus::Ok);
    observer.flush_blocking(FlushOptions::FINAL);
    assert_eq!(
        tree(&memory, run_id),
        r#"run run#1 "spawn" (agent.run)
status ok · 7 records · 1 segment

└─ background  custom.operation  ok
   └─ crux in background  tool.call  ok
        • deep
"#
    );
}

#[instrument]
async fn step(run: usize, depth: usize) {
    tokio::task::yield_now().await;
    tracing::info!(run, depth, "step");
    if depth < 2 {
        Box::pin(step(run, depth + 1)).await;
    }
}

#[test]
fn ten_concurrent_runs_with_interleaved_spans_stay_separate() {
    let (observer, memory) = observer();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(CruxLayer::new()));
    let rt = runtime(dispatch);
    let runs: Vec<_> = (0..10)
        .map(|i| observer.open_run(RunOptions::new(format!("run {i}"), "agent.run")))
        .collect();
    rt.block_on(async {
        let tasks: Vec<_> = runs
            .iter()
            .enumerate()
            .map(|(i, run)| {
                tokio::spawn(run.scope().in_scope(async move {
                    for _ in 0..3 {
                        step(i, 0).await;
                    }
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    drop(rt);
    let ids: Vec<_> = runs.iter().map(|r| r.run_id()).collect();
    for run in runs {
        run.end(RunStatus::Ok);
    }
    observer.flush_blocking(FlushOptions::FINAL);
    let step = "─ step  custom.operation  ok\n";
    let shape = format!(
        "├{step}│  │ • step\n│  └{step}│     │ • step\n│     └{step}│          • step\n\
         ├{step}│  │ • step\n│  └{step}│     │ • step\n│     └{step}│          • step\n\
         └{step}   │ • step\n   └{step}      │ • step\n      └{step}           • step\n"
    );
    for (i, run_id) in ids.iter().enumerate() {
        assert_eq!(
            tree(&memory, *run_id),
            format!(
                "run run#1 \"run {i}\" (agent.run)\nstatus ok · 29 records · 1 segment\n\n{shape}"
            )
        );
        // Every event of this run came from this run's task.
        let records = memory.records_of_run(*run_id);
        for e in by_type(&records, "span:event") {
            assert_eq!(e["attributes"]["run"], i, "{e:#}");
        }
    }
}

// --- a real library's spans -------------------------------------------------------------

#[test]
fn tower_http_trace_layer_spans_land_in_the_run() {
    use tower::{Service, ServiceBuilder, ServiceExt};
    use tower_http::trace::TraceLayer;

    let (observer, memory) = observer();
    let layer = CruxLayer::new().primitive_for_target("tower_http", "tool.call");
    let subscriber = tracing_subscriber::registry().with(layer);
    let (run_id, statuses) = tracing::subscriber::with_default(subscriber, || {
        run_in(&observer, "http", async {
            let mut svc = ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .service(tower::service_fn(|req: http::Request<String>| async move {
                    let crux = observe::span("handle", "task.operation").start();
                    crux.end(SpanStatus::Ok);
                    let status = if req.uri().path() == "/boom" {
                        500
                    } else {
                        200
                    };
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .status(status)
                            .body(String::new())
                            .unwrap(),
                    )
                }));
            let mut statuses = Vec::new();
            for path in ["/orders/42", "/boom"] {
                let req = http::Request::get(path).body(String::new()).unwrap();
                let res = svc.ready().await.unwrap().call(req).await.unwrap();
                statuses.push(res.status().as_u16());
            }
            statuses
        })
    });
    assert_eq!(statuses, [200, 500]);
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let requests: Vec<_> = by_type(&records, "span:start")
        .into_iter()
        .filter(|r| r["name"] == "request")
        .collect();
    assert_eq!(requests.len(), 2, "{records:#?}");
    assert_eq!(requests[0]["primitive"], "tool.call");
    assert_eq!(requests[0]["attributes"]["uri"], "/orders/42");
    assert_eq!(requests[0]["attributes"]["method"], "GET");
    assert!(
        requests[0]["parentSpanId"].is_null(),
        "a root span of the run"
    );
    // The service's own Crux span nests under the request span.
    let handles: Vec<_> = by_type(&records, "span:start")
        .into_iter()
        .filter(|r| r["name"] == "handle")
        .map(|r| r["parentSpanId"].clone())
        .collect();
    assert_eq!(
        handles,
        [requests[0]["spanId"].clone(), requests[1]["spanId"].clone()]
    );
    let ends: HashMap<_, _> = by_type(&records, "span:end")
        .into_iter()
        .map(|e| (e["spanId"].clone(), e["status"].clone()))
        .collect();
    assert_eq!(ends[&requests[0]["spanId"]], "ok");
    // TraceLayer reports a 5xx with an ERROR event: the request span is `error`.
    assert_eq!(ends[&requests[1]["spanId"]], "error");
}

// --- log lines ----------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn fmt_log_lines_inside_a_run_show_its_run_and_trace_ids() {
    let (observer, _memory) = observer();
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .event_format(WithCruxIds::new(tracing_subscriber::fmt::format()));
    let subscriber = tracing_subscriber::registry()
        .with(CruxLayer::new())
        .with(fmt);
    let run = observer.open_run(RunOptions::new("logs", "agent.run"));
    let (run_id, trace_id) = (run.run_id(), run.trace_id());
    let scope = run.scope();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("before the run");
        let _in = scope.enter();
        tracing::info_span!("helper").in_scope(|| tracing::info!("inside"));
    });
    run.end(RunStatus::Ok);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(!lines[0].contains("crux.run_id"), "{text}");
    assert!(
        lines[1].starts_with(&format!("crux.run_id={run_id} crux.trace_id={trace_id} ")),
        "{text}"
    );
    assert!(lines[1].contains("helper: spans: inside"), "{text}");
}

/// A run's tree as the viewer prints it (every span, ids and times normalised).
fn tree(memory: &Memory, run_id: crux_runtime::ids::RunId) -> String {
    crux_view::Trees::from_values(&memory.records())
        .run(run_id)
        .all_spans()
        .normalized()
        .to_string()
}

/// A span with an explicit `parent:` nests under that parent's Crux span, wherever it is
/// opened; an explicit parent that holds no Crux span (opened outside any context) leaves
/// it in the current scope.
#[test]
fn a_span_with_an_explicit_parent_nests_under_that_parent() {
    let (observer, memory) = observer();
    let subscriber = tracing_subscriber::registry().with(CruxLayer::new().without_outer_spans());
    let (run_id, ()) = tracing::subscriber::with_default(subscriber, || {
        let unrecorded = tracing::info_span!("outside any run");
        run_in(&observer, "explicit", async move {
            let outer = tracing::info_span!("outer");
            let crux_span = observe::span("inner crux", "tool.call").start();
            {
                let _in_crux = crux_span.scope().unwrap().enter();
                tracing::info_span!(parent: &outer, "child of outer").in_scope(|| {});
                tracing::info_span!(parent: &unrecorded, "child of unrecorded").in_scope(|| {});
                tracing::info_span!("contextual").in_scope(|| {});
            }
            crux_span.end(SpanStatus::Ok);
            drop(outer);
        })
    });
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let outer = start_named(&records, "outer")["spanId"].clone();
    let inner = start_named(&records, "inner crux")["spanId"].clone();
    assert_eq!(
        start_named(&records, "child of outer")["parentSpanId"],
        outer
    );
    assert_eq!(
        start_named(&records, "child of unrecorded")["parentSpanId"],
        inner
    );
    assert_eq!(start_named(&records, "contextual")["parentSpanId"], inner);
    assert!(
        !records.iter().any(|r| r["name"] == "outside any run"),
        "opened outside any context: not recorded"
    );
}

#[test]
fn spans_without_field_values_or_with_empty_placeholders_record_level_and_target_each_time() {
    let (observer, memory) = observer();
    let subscriber = tracing_subscriber::registry().with(CruxLayer::new());
    let (run_id, ()) = tracing::subscriber::with_default(subscriber, || {
        run_in(&observer, "bare", async {
            for _ in 0..3 {
                tracing::info_span!("bare").in_scope(|| {
                    tracing::warn_span!(target: "db", "query", rows = tracing::field::Empty)
                        .in_scope(|| {
                            tracing::Span::current().record("rows", 2u64);
                        });
                });
            }
            tracing::debug_span!("with field", n = 1u64).in_scope(|| ());
        })
    });
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let starts = by_type(&records, "span:start");
    let attrs_of = |name: &str| {
        starts
            .iter()
            .filter(|s| s["name"] == name)
            .map(|s| s["attributes"].clone())
            .collect::<Vec<_>>()
    };
    let target = module_path!();
    let bare = serde_json::json!({"level": "INFO", "target": target});
    assert_eq!(attrs_of("bare"), vec![bare; 3]);
    let query = serde_json::json!({"level": "WARN", "target": "db"});
    assert_eq!(attrs_of("query"), vec![query; 3]);
    let with_field = serde_json::json!({"level": "DEBUG", "target": target, "n": 1});
    assert_eq!(attrs_of("with field"), vec![with_field]);
    let query_ids: HashSet<_> = starts
        .iter()
        .filter(|s| s["name"] == "query")
        .map(|s| s["spanId"].clone())
        .collect();
    let ends = by_type(&records, "span:end");
    for end in ends.iter().filter(|e| query_ids.contains(&e["spanId"])) {
        assert_eq!(end["attributes"], serde_json::json!({"rows": 2}));
    }
    assert_eq!(ends.len(), 7);
}

#[test]
fn two_subscribers_with_equal_span_ids_keep_their_spans_apart() {
    // Two fresh registries hand out the same first id: each layer keeps its own spans.
    let (observer, memory) = observer();
    let first = tracing::Dispatch::new(tracing_subscriber::registry().with(CruxLayer::new()));
    let second = tracing::Dispatch::new(tracing_subscriber::registry().with(CruxLayer::new()));
    let (run_id, ()) = run_in(&observer, "two", async {
        let a = tracing::dispatcher::with_default(&first, || tracing::info_span!("a"));
        tracing::dispatcher::with_default(&second, || {
            let b = tracing::info_span!("b");
            assert_eq!(
                b.id(),
                a.id(),
                "the registries should reuse the same first id"
            );
            b.in_scope(|| tracing::info!("in b"));
        });
        tracing::dispatcher::with_default(&first, || a.in_scope(|| tracing::info!("in a")));
        drop(a);
    });
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let (a, b) = (start_named(&records, "a"), start_named(&records, "b"));
    assert_eq!(a["parentSpanId"], b["parentSpanId"]);
    let events = by_type(&records, "span:event");
    let on = |name: &str| events.iter().find(|e| e["name"] == name).unwrap()["spanId"].clone();
    assert_eq!(on("in a"), a["spanId"]);
    assert_eq!(on("in b"), b["spanId"]);
    let ends = by_type(&records, "span:end");
    assert_eq!(ends.len(), 2);
    assert!(ends.iter().all(|e| e["status"] == "ok"), "{ends:#?}");
}

#[test]
fn replacing_the_layer_ends_its_open_spans_as_dropped_and_records_later_ones() {
    let (observer, memory) = observer();
    let (layer, handle) = tracing_subscriber::reload::Layer::new(CruxLayer::new());
    let subscriber = tracing_subscriber::registry().with(layer);
    let (run_id, ()) = tracing::subscriber::with_default(subscriber, || {
        run_in(&observer, "reload", async {
            let open = tracing::info_span!("open across the swap");
            handle
                .modify(|l| *l = l.clone().with_max_level(tracing::Level::INFO))
                .unwrap();
            drop(open);
            tracing::info_span!("after the swap").in_scope(|| {
                tracing::info!("inside");
                tracing::debug_span!("below the level").in_scope(|| ());
            });
        })
    });
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let end_of = |name: &str| {
        let id = start_named(&records, name)["spanId"].clone();
        by_type(&records, "span:end")
            .into_iter()
            .find(|e| e["spanId"] == id)
            .unwrap_or_else(|| panic!("{name}: no span:end"))
    };
    let dropped = end_of("open across the swap");
    assert_eq!(dropped["status"], "cancelled");
    assert_eq!(dropped["attributes"]["crux.dropped"], true);
    assert_eq!(end_of("after the swap")["status"], "ok");
    let events = by_type(&records, "span:event");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["name"], "inside");
    assert_eq!(
        events[0]["spanId"],
        start_named(&records, "after the swap")["spanId"]
    );
    let names: Vec<_> = by_type(&records, "span:start")
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert!(
        !names.contains(&Value::from("below the level")),
        "{names:?}"
    );
}

/// A span entered while the layer is swapped for its clone (`reload`): its exit, which
/// reaches the new layer, still gives back the scope its enter replaced.
#[test]
fn exit_after_reload_restores_the_scope() {
    let (observer, _memory) = observer();
    let (layer, handle) = tracing_subscriber::reload::Layer::new(CruxLayer::new());
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let _d = tracing::dispatcher::set_default(&dispatch);
    let run = observer.open_run(RunOptions::new("reload", "agent.run"));
    let _in_run = run.scope().enter();
    let current = || observe::current_scope().unwrap().current_span_id();
    let before = current();
    {
        let span = tracing::info_span!("entered across the swap");
        let _g = span.enter();
        assert_ne!(current(), before);
        handle.modify(|l| *l = l.clone()).unwrap();
    }
    assert_eq!(
        current(),
        before,
        "the dropped span's scope is still current"
    );
    // And the new layer's spans enter and exit as usual.
    tracing::info_span!("after the swap").in_scope(|| assert_ne!(current(), before));
    assert_eq!(current(), before);
    drop(_in_run);
    run.end(RunStatus::Ok);
}

/// Hundreds of spans open at once overflow the layer's slots; half close on another
/// thread, then the ids are reused: every event stays on its own span, every span ends.
#[test]
fn many_open_spans_overflow_close_on_other_threads_and_reuse_their_ids() {
    let (observer, memory) = observer();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(CruxLayer::new()));
    let _g = tracing::dispatcher::set_default(&dispatch);
    let run = observer.open_run(RunOptions::new("many", "agent.run"));
    let run_id = run.run_id();
    let n = 700usize;
    let spans: Vec<tracing::Span> = {
        let _c = run.scope().enter();
        (0..n)
            .map(|i| tracing::info_span!("s", i = i as u64))
            .collect()
    };
    for (i, s) in spans.iter().enumerate() {
        let _e = s.enter();
        tracing::info!(message = %format!("e{i}"));
    }
    let (odd, even): (Vec<_>, Vec<_>) =
        spans.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
    let other = dispatch.clone();
    std::thread::spawn(move || {
        let _g = tracing::dispatcher::set_default(&other);
        drop(odd);
    })
    .join()
    .unwrap();
    for s in even.into_iter().rev() {
        drop(s);
    }
    {
        let _c = run.scope().enter();
        for i in 0..n {
            let s = tracing::info_span!("t", i = i as u64);
            let _e = s.enter();
            tracing::info!(message = %format!("f{i}"));
        }
    }
    run.end(RunStatus::Ok);
    observer.flush_blocking(FlushOptions::FINAL);
    let records: Vec<Value> = memory.records_of_run(run_id);
    let starts = by_type(&records, "span:start");
    let ends = by_type(&records, "span:end");
    let events = by_type(&records, "span:event");
    assert_eq!(starts.len(), 2 * n);
    assert_eq!(ends.len(), 2 * n);
    for e in &ends {
        assert_eq!(e["status"], "ok", "{e}");
    }
    for (k, prefix) in [(0usize, "e"), (1, "f")] {
        for i in 0..n {
            let st = &starts[k * n + i];
            let ev = events
                .iter()
                .find(|e| e["name"] == format!("{prefix}{i}"))
                .unwrap_or_else(|| panic!("no event {prefix}{i}"));
            assert_eq!(ev["spanId"], st["spanId"], "{prefix}{i}");
            assert_eq!(st["attributes"]["i"], i as u64, "{st}");
        }
    }
}
