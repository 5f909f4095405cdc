//! Spans opened outside any Crux context (tower-http's request span) join the run that
//! starts while they are entered.

use std::time::Duration;

use crux_runtime::clock::Timestamp;
use crux_runtime::delivery::FlushOptions;
use crux_runtime::observe::{Observer, RunOptions, RunStatus};
use crux_runtime::sink::Memory;
use crux_tracing::CruxLayer;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

fn millis(v: &Value) -> u64 {
    v.as_str()
        .unwrap()
        .parse::<Timestamp>()
        .unwrap()
        .as_millis()
}

fn find<'a>(records: &'a [Value], ty: &str, name: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["type"] == ty && r["name"] == name)
        .unwrap_or_else(|| panic!("no {ty} {name}: {records:#?}"))
}

#[test]
fn an_outer_span_joins_the_run_started_under_it_keeping_its_start_and_later_fields() {
    let memory = Memory::new();
    let observer = Observer::builder().sink(memory.clone()).build();
    let subscriber =
        tracing_subscriber::registry().with(CruxLayer::new().outer_spans_for_target("edge"));
    let run_id = tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!(target: "edge::http", "request", method = "GET", status = tracing::field::Empty);
        let _request = request.enter();
        // A span of another target in between: not recorded, walked past.
        let unlisted = tracing::info_span!(target: "other", "unlisted");
        let _unlisted = unlisted.enter();
        // The run starts well after the span opened: a sleep never returns early.
        std::thread::sleep(Duration::from_millis(50));
        let run = observer.open_run(RunOptions::new("handler", "agent.run"));
        let run_id = run.run_id();
        request.record("status", 200u64);
        run.end(RunStatus::Ok);
        run_id
    });
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records_of_run(run_id);
    let run_start = records.iter().find(|r| r["type"] == "run:start").unwrap();
    let start = find(&records, "span:start", "request");
    assert_eq!(start["parentSpanId"], Value::Null);
    assert_eq!(start["attributes"]["method"], "GET");
    assert_eq!(start["attributes"]["target"], "edge::http");
    // Its own start time, not the run's: at least the 50 ms sleep earlier (the clock is
    // read in milliseconds; 40 leaves room for rounding).
    assert!(
        millis(&run_start["startedAt"]) >= millis(&start["startedAt"]) + 40,
        "{start:#} {run_start:#}"
    );
    // A field recorded later lands on span:end, once the span closes (after `run:end`).
    let end = records
        .iter()
        .find(|r| r["type"] == "span:end" && r["spanId"] == start["spanId"])
        .unwrap_or_else(|| panic!("no span:end: {records:#?}"));
    assert_eq!(end["attributes"]["status"], 200);
    assert!(millis(&end["endedAt"]) >= millis(&start["startedAt"]) + 40);
    // Spans of other targets stay out; the span joins one run only.
    assert!(!records.iter().any(|r| r["name"] == "unlisted"));
    assert_eq!(
        records.iter().filter(|r| r["type"] == "span:start").count(),
        1,
        "{records:#?}"
    );
}

#[test]
fn an_outer_span_closed_before_any_run_records_nothing() {
    let memory = Memory::new();
    let observer = Observer::builder().sink(memory.clone()).build();
    let subscriber = tracing_subscriber::registry().with(CruxLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!(target: "tower_http::trace::make_span", "request").in_scope(|| {});
        let run = observer.open_run(RunOptions::new("later", "agent.run"));
        run.end(RunStatus::Ok);
    });
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.records();
    assert!(records.iter().any(|r| r["type"] == "run:end"));
    assert!(
        !records.iter().any(|r| r["name"] == "request"),
        "{records:#?}"
    );
}
