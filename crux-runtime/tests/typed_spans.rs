//! Typed `span:start` fields and `metrics` on span ends: the wire shape users and the
//! Crux backend read.

use crux_runtime::clock::Timestamp;
use crux_runtime::delivery::{FlushOptions, FlushStatus};
use crux_runtime::observe::{
    self, MetricError, Metrics, Observer, RunOptions, RunStatus, SpanField, SpanStatus,
};
use crux_runtime::sink::Memory;
use serde_json::{Value, json};

fn recorded(f: impl FnOnce(&crux_runtime::observe::Scope)) -> Vec<Value> {
    let memory = Memory::new();
    let o = Observer::builder().sink(memory.clone()).build();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    f(&run.scope());
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    assert_eq!(
        o.flush_blocking(FlushOptions::FINAL).status,
        FlushStatus::Drained
    );
    let records = memory.records_of_run(run_id);
    assert_eq!(o.stats().rejected, 0);
    records
}

fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

#[test]
fn typed_fields_are_written_on_span_start_and_metrics_on_span_end() {
    let records = recorded(|scope| {
        let mut span = scope
            .span("draft reply", "generation.call")
            .model("gpt-5-mini")
            .provider("openai")
            .field(SpanField::PromptId, "support/v3")
            .attr("temperature", 0.2)
            .metrics(Metrics::tokens(812, 96))
            .start();
        span.set_metric("costUsd", 0.0031).unwrap();
        span.set_metric("gen.firstChunkMs", 41.5).unwrap();
        span.set_metric("ttftMs", f64::NAN).unwrap();
        span.end(SpanStatus::Ok);
    });
    let start = of_type(&records, "span:start")[0];
    let keys: Vec<&str> = start
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(start["model"], "gpt-5-mini");
    assert_eq!(start["provider"], "openai");
    assert_eq!(start["promptId"], "support/v3");
    assert_eq!(start["attributes"], json!({"temperature": 0.2}));
    for absent in ["toolName", "agentId", "metrics"] {
        assert!(!keys.contains(&absent), "{absent} in {start}");
    }
    let end = of_type(&records, "span:end")[0];
    assert_eq!(
        end["metrics"],
        json!({
            "inputTokens": 812, "outputTokens": 96, "totalTokens": 908,
            "costUsd": 0.0031, "gen.firstChunkMs": 41.5
        }),
        "the NaN ttftMs is stripped"
    );
    assert!(end.get("attributes").is_none(), "{end}");
}

#[test]
fn spans_without_typed_values_keep_the_record_shape_they_had() {
    let records = recorded(|scope| {
        let mut span = scope.span("plain", "tool.call").attr("k", 1).start();
        span.set_attr("done", true);
        span.end(SpanStatus::Ok);
    });
    let start = of_type(&records, "span:start")[0];
    let mut keys: Vec<&str> = start
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "attributes",
            "family",
            "name",
            "operationId",
            "parentSpanId",
            "primitive",
            "recordId",
            "runId",
            "schemaVersion",
            "segmentId",
            "segmentSeq",
            "spanId",
            "startedAt",
            "status",
            "traceId",
            "type"
        ]
    );
    let end = of_type(&records, "span:end")[0];
    assert!(end.get("metrics").is_none(), "{end}");
    assert_eq!(end["attributes"], json!({"done": true}));
}

#[test]
fn a_finished_span_carries_fields_and_metrics_in_one_record() {
    let records = recorded(|scope| {
        scope
            .span("look up order", "tool.call")
            .field(SpanField::ToolName, "orders.lookup")
            .field(SpanField::AgentId, "support")
            .metrics(Metrics::new().with("custom.rows", 3.0).unwrap())
            .record_finished(
                Timestamp::from_millis(1_000),
                Timestamp::from_millis(1_040),
                SpanStatus::Ok,
            );
    });
    let span = of_type(&records, "span")[0];
    assert_eq!(span["toolName"], "orders.lookup");
    assert_eq!(span["agentId"], "support");
    assert_eq!(span["metrics"], json!({"custom.rows": 3}));
    assert_eq!(span["durationMs"], 40);
}

#[test]
fn an_unknown_metric_key_is_refused_by_name_and_recorded_nowhere() {
    let records = recorded(|scope| {
        let mut span = scope.span("draft", "generation.call").start();
        let err = span.set_metric("tokens", 3.0).unwrap_err();
        assert_eq!(err, MetricError::UnknownKey("tokens".to_owned()));
        assert!(
            err.to_string()
                .starts_with("unknown metric key `tokens`: use one of inputTokens"),
            "{err}"
        );
        span.set_metric("outputTokens", 3.0).unwrap();
        span.end(SpanStatus::Ok);
    });
    let end = of_type(&records, "span:end")[0];
    assert_eq!(end["metrics"], json!({"outputTokens": 3}));
}

#[test]
fn a_disabled_span_still_checks_metric_keys() {
    let mut span = observe::span("outside", "generation.call")
        .model("m")
        .start();
    assert!(!span.is_recording());
    assert!(span.set_metric("custom.ok", 1.0).is_ok());
    assert!(span.set_metric("custom.", 1.0).is_err());
}
