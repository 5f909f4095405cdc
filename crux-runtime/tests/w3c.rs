//! W3C trace context interop, checked against OpenTelemetry's own `TraceContextPropagator`.

use std::collections::HashMap;

use crux_runtime::carrier::TraceParent;
use crux_runtime::delivery::FlushOptions;
use crux_runtime::observe::{self, Observer, RunOptions, RunStatus, SpanStatus};
use crux_runtime::sink::Memory;
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    SpanContext, SpanId as OtelSpanId, TraceContextExt, TraceFlags, TraceId as OtelTraceId,
    TraceState,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;

fn otel_headers(trace: u128, span: u64) -> HashMap<String, String> {
    let cx = Context::new().with_remote_span_context(SpanContext::new(
        OtelTraceId::from(trace),
        OtelSpanId::from(span),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    ));
    let mut headers = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut headers);
    headers
}

fn otel_extract(headers: &HashMap<String, String>) -> SpanContext {
    TraceContextPropagator::new()
        .extract(headers)
        .span()
        .span_context()
        .clone()
}

#[test]
fn a_run_started_under_an_otel_traceparent_keeps_its_trace_and_records_the_remote_parent() {
    let headers = otel_headers(
        0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
        0x00f0_67aa_0ba9_02b7,
    );
    let tp = TraceParent::extract(&headers)
        .unwrap()
        .expect("header present");
    assert!(tp.sampled());

    let memory = Memory::new();
    let observer = Observer::builder().sink(memory.clone()).build();
    let run = observer.open_run(RunOptions::new("support chat", "agent.run").remote_parent(tp));
    assert_eq!(run.trace_id().0, 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    observer.flush_blocking(FlushOptions::FINAL);

    let start = memory.records_of_run(run_id)[0].clone();
    assert_eq!(start["type"], "run:start");
    assert_eq!(start["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(start["remoteParentSpanId"], "00f067aa0ba902b7");
}

#[test]
fn a_child_run_stays_in_its_parent_trace_even_with_a_remote_parent() {
    let observer = Observer::builder().build();
    let parent = observer.open_run(RunOptions::new("parent", "agent.run"));
    let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        .parse()
        .unwrap();
    let child = observer.open_run(
        RunOptions::new("child", "agent.run")
            .parent(observe::ParentRun::from_scope(&parent.scope()))
            .remote_parent(tp),
    );
    assert_eq!(child.trace_id(), parent.trace_id());
}

#[test]
fn an_injected_crux_traceparent_is_read_by_otel_as_the_current_crux_span() {
    let observer = Observer::builder().build();
    let run = observer.open_run(RunOptions::new("support chat", "agent.run"));

    // No span open: the traceparent names the run's own span.
    let mut headers = HashMap::new();
    run.scope().traceparent().inject(&mut headers);
    let sc = otel_extract(&headers);
    assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
    assert_eq!(sc.trace_id(), OtelTraceId::from(run.trace_id().0));
    assert_eq!(
        sc.span_id(),
        OtelSpanId::from(run.run_id().root_span_id().0)
    );

    // Inside a span: it names that span.
    let _in_run = run.scope().enter();
    let span = observe::span("call model", "generation.call").start();
    let _in_span = span.scope().unwrap().enter();
    let mut headers = HashMap::new();
    observe::current_traceparent()
        .expect("inside a run")
        .inject(&mut headers);
    let sc = otel_extract(&headers);
    assert_eq!(sc.span_id(), OtelSpanId::from(span.id().unwrap().0));
    drop(_in_span);
    span.end(SpanStatus::Ok);
}

#[test]
fn a_suspended_runs_carrier_headers_point_otel_at_the_runs_span() {
    let observer = Observer::builder().build();
    let run = observer.open_run(RunOptions::new("approval", "flow.run"));
    let (trace, root) = (run.trace_id(), run.run_id().root_span_id());
    let carrier = run.suspend("waiting for approval");
    let mut headers = HashMap::new();
    carrier.inject(&mut headers);
    let sc = otel_extract(&headers);
    assert_eq!(sc.trace_id(), OtelTraceId::from(trace.0));
    assert_eq!(sc.span_id(), OtelSpanId::from(root.0));
}

#[test]
fn malformed_traceparents_are_refused_by_both_sides_and_absent_ones_are_none() {
    for bad in [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", // uppercase
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
    ] {
        let headers = HashMap::from([("traceparent".to_owned(), bad.to_owned())]);
        assert!(
            TraceParent::extract(&headers).is_err(),
            "crux accepted {bad}"
        );
        assert!(!otel_extract(&headers).is_valid(), "otel accepted {bad}");
    }
    // W3C requires exactly 32 hex digits; OpenTelemetry 0.33 is laxer here, crux is not.
    let short = "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01";
    let headers = HashMap::from([("traceparent".to_owned(), short.to_owned())]);
    assert!(TraceParent::extract(&headers).is_err());
    let err = TraceParent::extract(&HashMap::from([(
        "traceparent".to_owned(),
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01".to_owned(),
    )]))
    .unwrap_err();
    assert!(err.to_string().contains("traceparent"), "{err}");
    assert_eq!(TraceParent::extract(&HashMap::new()), Ok(None));
}
