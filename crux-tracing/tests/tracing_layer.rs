//! `tracing` events inside a Crux span become `span:event` records on it.

use crux_runtime::delivery::FlushOptions;
use crux_runtime::observe::{self, Observer, RunOptions, RunStatus, SpanStatus};
use crux_runtime::sink::Memory;
use crux_tracing::CruxLayer;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn events_inside_a_crux_span_are_recorded_on_it_and_events_outside_are_not() {
    let memory = Memory::new();
    let observer = Observer::builder().sink(memory.clone()).build();
    let subscriber =
        tracing_subscriber::registry().with(CruxLayer::new().with_max_level(tracing::Level::INFO));
    let run = observer.open_run(RunOptions::new("support chat", "agent.run"));
    let run_id = run.run_id();
    let span_id = tracing::subscriber::with_default(subscriber, || {
        tracing::info!("before any run");
        let _in_run = run.scope().enter();
        tracing::info!("in the run, outside any span");
        let span = observe::span("lookup order", "tool.call").start();
        let id = span.id().unwrap();
        {
            let _in_span = span.scope().unwrap().enter();
            tracing::info!(order_id = 42u64, cached = false, "looked up order");
            tracing::warn!(reason = ?Some("slow"), "slow backend");
            tracing::debug!("below the layer's level");
        }
        span.end(SpanStatus::Ok);
        id
    });
    run.end(RunStatus::Ok);
    observer.flush_blocking(FlushOptions::FINAL);

    let events: Vec<_> = memory
        .records_of_run(run_id)
        .into_iter()
        .filter(|r| r["type"] == "span:event")
        .collect();
    assert_eq!(events.len(), 2, "{events:#?}");
    let e = &events[0];
    assert_eq!(e["spanId"], span_id.to_string());
    assert_eq!(e["name"], "looked up order");
    assert_eq!(e["attributes"]["level"], "INFO");
    assert_eq!(e["attributes"]["target"], "tracing_layer");
    assert_eq!(e["attributes"]["order_id"], 42);
    assert_eq!(e["attributes"]["cached"], false);
    assert_eq!(events[1]["name"], "slow backend");
    assert_eq!(events[1]["attributes"]["reason"], "Some(\"slow\")");
    assert_eq!(events[1]["attributes"]["level"], "WARN");
}
