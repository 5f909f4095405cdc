//! Crux records → OpenTelemetry spans, checked on what an OTel exporter receives.

use std::time::{Duration, Instant};

use crux_otel::OtelSink;
use crux_runtime::attributes::Attributes;
use crux_runtime::carrier::TraceParent;
use crux_runtime::delivery::{FlushOptions, FlushStatus};
use crux_runtime::observe::{self, Observer, ParentRun, RunOptions, RunStatus, SpanStatus};
use crux_runtime::record::EdgeEnd;
use opentelemetry::Value;
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData, SpanExporter};

fn setup() -> (Observer, OtelSink, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let sink = OtelSink::new(exporter.clone());
    let observer = Observer::builder().sink(sink.clone()).build();
    (observer, sink, exporter)
}

fn spans(observer: &Observer, exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    let r = observer.flush_blocking(FlushOptions::FINAL);
    assert_eq!(r.status, FlushStatus::Drained, "{r:?}");
    exporter.get_finished_spans().unwrap()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no span {name:?} in {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    })
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .rev()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn sid(id: crux_runtime::ids::SpanId) -> SpanId {
    SpanId::from(id.0)
}

#[test]
fn a_support_chat_waterfall_becomes_one_trace_with_crux_ids_parentage_and_semantics() {
    let (observer, sink, exporter) = setup();
    let run = observer.open_run(
        RunOptions::new("support chat", "agent.run")
            .attributes(Attributes::new().with("agentId", "support-chat")),
    );
    let (run_id, trace) = (run.run_id(), run.trace_id());
    let scope = run.scope();
    let (boundary_id, plan_id, gen_id, tool_id);
    {
        let _in_run = scope.enter();
        let boundary = observe::span("plan research", "runtime.convex.action")
            .attr("functionRef", "research:plan")
            .start();
        boundary_id = boundary.id().unwrap();
        boundary.event("requested", Attributes::new().with("boundaryId", "b1"));
        {
            let _in_boundary = boundary.scope().unwrap().enter();
            let plan = observe::span("plan", "plan.operation").start();
            plan_id = plan.id().unwrap();
            {
                let _in_plan = plan.scope().unwrap().enter();
                let generation = observe::span("draft plan", "generation.call")
                    .attr("model", "gpt-5-mini")
                    .attr("provider", "openai")
                    .start();
                gen_id = generation.id().unwrap();
                let mut generation = generation;
                generation.set_attr("inputTokens", 812);
                generation.set_attr("outputTokens", 64);
                generation.end(SpanStatus::Ok);
            }
            plan.end(SpanStatus::Ok);
        }
        boundary.end(SpanStatus::Ok);
        let tool = observe::span("lookup order", "tool.call").start();
        tool_id = tool.id().unwrap();
        tool.fail(&crux_runtime::Error::msg("order service timed out"));
    }
    run.end(RunStatus::Ok);
    let spans = spans(&observer, &exporter);
    assert_eq!(spans.len(), 5);
    assert!(
        spans
            .iter()
            .all(|s| s.span_context.trace_id() == TraceId::from(trace.0))
    );

    let root = named(&spans, "support chat");
    assert_eq!(root.span_context.span_id(), sid(run_id.root_span_id()));
    assert_eq!(root.parent_span_id, SpanId::INVALID);
    assert_eq!(root.status, Status::Ok);
    assert_eq!(attr(root, "openinference.span.kind"), Some("AGENT".into()));
    assert_eq!(attr(root, "crux.primitive"), Some("agent.run".into()));
    assert_eq!(attr(root, "crux.run.id"), Some(run_id.to_string().into()));
    assert_eq!(attr(root, "agentId"), Some("support-chat".into()));

    let boundary = named(&spans, "plan research");
    assert_eq!(boundary.span_context.span_id(), sid(boundary_id));
    assert_eq!(boundary.parent_span_id, root.span_context.span_id());
    assert_eq!(
        attr(boundary, "openinference.span.kind"),
        Some("CHAIN".into())
    );
    assert_eq!(boundary.events.len(), 1);
    assert_eq!(boundary.events[0].name, "requested");
    assert!(boundary.start_time <= boundary.end_time);

    let plan = named(&spans, "plan");
    assert_eq!(plan.span_context.span_id(), sid(plan_id));
    assert_eq!(plan.parent_span_id, sid(boundary_id));

    let generation = named(&spans, "draft plan");
    assert_eq!(generation.span_context.span_id(), sid(gen_id));
    assert_eq!(generation.parent_span_id, sid(plan_id));
    assert_eq!(
        attr(generation, "openinference.span.kind"),
        Some("LLM".into())
    );
    assert_eq!(
        attr(generation, "gen_ai.operation.name"),
        Some("chat".into())
    );
    assert_eq!(
        attr(generation, "gen_ai.request.model"),
        Some("gpt-5-mini".into())
    );
    assert_eq!(
        attr(generation, "gen_ai.provider.name"),
        Some("openai".into())
    );
    // Token counts set at the end of the span are mapped too.
    assert_eq!(
        attr(generation, "gen_ai.usage.input_tokens"),
        Some(Value::I64(812))
    );
    assert_eq!(
        attr(generation, "llm.token_count.completion"),
        Some(Value::I64(64))
    );

    let tool = named(&spans, "lookup order");
    assert_eq!(tool.span_context.span_id(), sid(tool_id));
    assert_eq!(tool.parent_span_id, root.span_context.span_id());
    assert_eq!(tool.status, Status::error("order service timed out"));
    let exception = tool
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("exception event");
    let ex_attr = |k: &str| {
        exception
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(
        ex_attr("exception.message"),
        Some("order service timed out".into())
    );
    assert_eq!(ex_attr("exception.type"), Some("Error".into()));
    assert_eq!(attr(tool, "openinference.span.kind"), Some("TOOL".into()));

    let stats = sink.stats();
    assert_eq!(
        (stats.exported, stats.not_exported(), stats.open),
        (5, 0, 0)
    );
}

#[test]
fn a_combined_span_record_is_one_finished_span_under_its_parent() {
    use crux_runtime::clock::Timestamp;
    let (observer, _sink, exporter) = setup();
    let run = observer.open_run(RunOptions::new("chat", "agent.run"));
    let started = Timestamp::now();
    let id = run
        .scope()
        .span("cache lookup", "cache.lookup")
        .attr("hit", true)
        .record_finished(started, started.plus_millis(7), SpanStatus::Ok)
        .unwrap();
    let root = run.run_id().root_span_id();
    run.end(RunStatus::Ok);
    let spans = spans(&observer, &exporter);
    let cache = named(&spans, "cache lookup");
    assert_eq!(cache.span_context.span_id(), sid(id));
    assert_eq!(cache.parent_span_id, sid(root));
    assert_eq!(cache.status, Status::Ok);
    assert_eq!(attr(cache, "hit"), Some(Value::Bool(true)));
    assert_eq!(
        cache.end_time.duration_since(cache.start_time).unwrap(),
        Duration::from_millis(7)
    );
}

#[test]
fn a_failed_run_is_an_error_span_with_an_exception_event() {
    let (observer, _sink, exporter) = setup();
    let run = observer.open_run(RunOptions::new("daily briefing", "flow.run"));
    run.fail(&crux_runtime::Error::msg("feed unavailable"));
    let spans = spans(&observer, &exporter);
    let root = named(&spans, "daily briefing");
    assert_eq!(root.status, Status::error("feed unavailable"));
    assert_eq!(attr(root, "crux.status"), Some("error".into()));
    assert!(root.events.iter().any(|e| e.name == "exception"));
}

#[test]
fn a_detached_scheduled_run_links_back_to_the_span_that_enqueued_it() {
    let (observer, _sink, exporter) = setup();
    let run = observer.open_run(RunOptions::new("support chat", "agent.run"));
    let schedule = run
        .scope()
        .span("stream chat response", "runtime.convex.schedule")
        .start();
    let schedule_id = schedule.id().unwrap();
    schedule.end(SpanStatus::Ok);
    let run_trace = run.trace_id();
    run.end(RunStatus::Ok);

    // The scheduled job runs later as its own run, in its own trace.
    let detached = observer.open_run(RunOptions::new("stream response", "agent.run"));
    detached.link_from(EdgeEnd::Span(schedule_id), "triggered", Attributes::new());
    let detached_trace = detached.trace_id();
    assert_ne!(detached_trace, run_trace);
    detached.end(RunStatus::Ok);

    let spans = spans(&observer, &exporter);
    let root = named(&spans, "stream response");
    assert_eq!(
        root.span_context.trace_id(),
        TraceId::from(detached_trace.0)
    );
    assert_eq!(root.links.len(), 1);
    let link = &root.links[0];
    assert_eq!(link.span_context.span_id(), sid(schedule_id));
    assert_eq!(link.span_context.trace_id(), TraceId::from(run_trace.0));
    assert!(
        link.attributes
            .iter()
            .any(|kv| kv.key.as_str() == "crux.edge.type" && kv.value == Value::from("triggered"))
    );
}

#[test]
fn child_runs_hang_under_their_trigger_and_remote_parents_are_kept() {
    let (observer, _sink, exporter) = setup();
    let parent = observer.open_run(RunOptions::new("parent", "agent.run"));
    let trigger = parent.scope().span("delegate", "delegate.invoke").start();
    let child = observer.open_run(
        RunOptions::new("child", "agent.run")
            .parent(ParentRun::from_scope(&trigger.scope().unwrap())),
    );
    let trigger_id = trigger.id().unwrap();
    child.end(RunStatus::Ok);
    trigger.end(SpanStatus::Ok);
    parent.end(RunStatus::Ok);

    let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        .parse()
        .unwrap();
    let remote = observer.open_run(RunOptions::new("from http", "agent.run").remote_parent(tp));
    remote.end(RunStatus::Ok);

    let spans = spans(&observer, &exporter);
    let child = named(&spans, "child");
    assert_eq!(child.parent_span_id, sid(trigger_id));
    assert!(!child.parent_span_is_remote);
    let remote = named(&spans, "from http");
    assert_eq!(remote.parent_span_id, SpanId::from(0x00f0_67aa_0ba9_02b7));
    assert!(remote.parent_span_is_remote);
    assert_eq!(
        remote.span_context.trace_id(),
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736)
    );
}

#[test]
fn a_suspended_run_resumes_under_its_own_span() {
    let (observer, _sink, exporter) = setup();
    let run = observer.open_run(RunOptions::new("refund approval", "flow.run"));
    let root_id = run.run_id().root_span_id();
    let carrier = run.suspend("waiting for a human");
    let resumed = observer.resume_run(&carrier, "approved").unwrap();
    resumed
        .scope()
        .span("issue refund", "tool.call")
        .start()
        .end(SpanStatus::Ok);
    resumed.end(RunStatus::Ok);

    let spans = spans(&observer, &exporter);
    let root = named(&spans, "refund approval");
    assert_eq!(attr(root, "crux.status"), Some("suspended".into()));
    let resume = named(&spans, "resume: approved");
    assert_eq!(resume.parent_span_id, sid(root_id));
    assert_eq!(resume.status, Status::Ok);
    let refund = named(&spans, "issue refund");
    assert_eq!(refund.parent_span_id, resume.span_context.span_id());
}

#[derive(Debug, Clone)]
struct Failing;
impl SpanExporter for Failing {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Err(OTelSdkError::InternalFailure("collector said no".into()))
    }
}

#[derive(Debug, Clone)]
struct Hanging;
impl SpanExporter for Hanging {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        std::thread::sleep(Duration::from_secs(5));
        Ok(())
    }
}

#[test]
fn a_failing_exporter_is_counted_and_reported_by_the_flush_never_thrown() {
    let sink = OtelSink::new(Failing);
    let observer = Observer::builder().sink(sink.clone()).build();
    let run = observer.open_run(RunOptions::new("chat", "agent.run"));
    run.scope()
        .span("step", "plan.operation")
        .start()
        .end(SpanStatus::Ok);
    run.end(RunStatus::Ok);
    let r = observer.flush_blocking(FlushOptions::FINAL);
    assert_eq!(r.status, FlushStatus::Failed);
    let stats = sink.stats();
    assert_eq!(
        (stats.exported, stats.failed, stats.not_exported()),
        (0, 2, 2)
    );
}

#[test]
fn a_hung_exporter_cannot_stretch_a_flush_and_overflow_is_counted() {
    let sink = OtelSink::builder()
        .queue_capacity(2)
        .batch_size(1)
        .build(Hanging);
    let observer = Observer::builder().sink(sink.clone()).build();
    let run = observer.open_run(RunOptions::new("chat", "agent.run"));
    for _ in 0..5 {
        run.scope()
            .span("step", "plan.operation")
            .start()
            .end(SpanStatus::Ok);
    }
    run.end(RunStatus::Ok);
    let t = Instant::now();
    let r = observer.flush_blocking(FlushOptions::BOUNDARY);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert_ne!(r.status, FlushStatus::Drained);
    // Six spans: one is in the hung export, at most two wait in the queue, the rest were
    // dropped and counted.
    let stats = sink.stats();
    assert!(stats.dropped >= 3, "{stats:?}");
    assert_eq!(stats.dropped + stats.queued, 5, "{stats:?}");
    assert_eq!(stats.exported, 0);
}

#[test]
fn a_hung_collector_holds_up_other_sinks_for_one_export_timeout_at_most() {
    let memory = crux_runtime::sink::Memory::new();
    let otel = OtelSink::builder()
        .export_timeout(Duration::from_millis(200))
        .build(Hanging);
    let observer = Observer::builder()
        .sink(otel.clone())
        .sink(memory.clone())
        .build();
    let run = observer.open_run(RunOptions::new("chat", "agent.run"));
    let run_id = run.run_id();
    let t = Instant::now();
    for _ in 0..10 {
        run.scope()
            .span("hop", "runtime.convex.action")
            .start()
            .end(SpanStatus::Ok);
        // A boundary flush per hop, as run_action does.
        let r = observer.flush_blocking(FlushOptions::BOUNDARY);
        assert_ne!(r.status, FlushStatus::Drained);
    }
    run.end(RunStatus::Ok);
    observer.flush_blocking(FlushOptions::FINAL);
    // One export timeout (200 ms), not ten: the other sink got every record promptly.
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(memory.records_of_run(run_id).len(), 22);
}

#[test]
fn spans_left_open_past_the_cap_are_dropped_and_counted() {
    let exporter = InMemorySpanExporter::default();
    let sink = OtelSink::builder()
        .max_open_spans(2)
        .build(exporter.clone());
    let observer = Observer::builder().sink(sink.clone()).build();
    let run = observer.open_run(RunOptions::new("chat", "agent.run"));
    let open: Vec<_> = (0..3)
        .map(|_| run.scope().span("s", "plan.operation").start())
        .collect();
    observer.flush_blocking(FlushOptions::FINAL);
    let stats = sink.stats();
    assert_eq!((stats.open, stats.dropped), (2, 2), "{stats:?}");
    std::mem::forget(open);
    std::mem::forget(run);
}

#[test]
fn typed_model_fields_and_metrics_map_to_genai_and_openinference_attributes() {
    use crux_runtime::observe::{Metrics, SpanField};
    let (observer, _sink, exporter) = setup();
    let run = observer.open_run(RunOptions::new("typed", "agent.run"));
    let mut call = run
        .scope()
        .span("draft", "generation.call")
        .model("gpt-5-mini")
        .provider("openai")
        .start();
    call.set_metrics(Metrics::tokens(812, 96));
    call.set_metric("costUsd", 0.5).unwrap();
    call.end(SpanStatus::Ok);
    run.scope()
        .span("lookup", "tool.call")
        .field(SpanField::ToolName, "orders.lookup")
        .record_finished(
            crux_runtime::clock::Timestamp::from_millis(1_000),
            crux_runtime::clock::Timestamp::from_millis(1_010),
            SpanStatus::Ok,
        );
    run.end(RunStatus::Ok);
    let spans = spans(&observer, &exporter);
    let draft = named(&spans, "draft");
    assert_eq!(
        attr(draft, "gen_ai.request.model"),
        Some(Value::from("gpt-5-mini"))
    );
    assert_eq!(
        attr(draft, "llm.model_name"),
        Some(Value::from("gpt-5-mini"))
    );
    assert_eq!(
        attr(draft, "gen_ai.provider.name"),
        Some(Value::from("openai"))
    );
    assert_eq!(
        attr(draft, "gen_ai.usage.input_tokens"),
        Some(Value::I64(812))
    );
    assert_eq!(
        attr(draft, "gen_ai.usage.output_tokens"),
        Some(Value::I64(96))
    );
    assert_eq!(attr(draft, "llm.token_count.total"), Some(Value::I64(908)));
    assert_eq!(attr(draft, "llm.cost.total"), Some(Value::F64(0.5)));
    assert_eq!(attr(draft, "model"), Some(Value::from("gpt-5-mini")));
    assert_eq!(attr(draft, "totalTokens"), Some(Value::I64(908)));
    let lookup = named(&spans, "lookup");
    assert_eq!(attr(lookup, "toolName"), Some(Value::from("orders.lookup")));
    assert_eq!(attr(lookup, "gen_ai.request.model"), None);
}
