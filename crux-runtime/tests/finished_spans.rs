//! Spans recorded after the fact: one combined `span` record.

use crux_runtime::clock::Timestamp;
use crux_runtime::delivery::{FlushOptions, FlushStatus};
use crux_runtime::observe::{self, Observer, RunOptions};
use crux_runtime::record::{RunStatus, SpanStatus};
use crux_runtime::sink::Memory;

#[test]
fn a_finished_span_is_one_combined_record_under_its_parent() {
    let memory = Memory::new();
    let o = Observer::builder().sink(memory.clone()).build();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let parent = run.scope().span("answer", "agent.run").start();
    let started = Timestamp::from_millis(1_767_323_045_000);
    let ended = Timestamp::from_millis(1_767_323_045_250);
    let id = parent
        .scope()
        .unwrap()
        .span("model call", "generation.call")
        .attr("model", "small")
        .record_finished(started, ended, SpanStatus::Ok)
        .unwrap();
    // Reversed times never give a negative duration.
    run.scope().span("clock skew", "tool.call").record_finished(
        ended,
        started,
        SpanStatus::Skipped,
    );
    assert_eq!(
        observe::span("outside", "tool.call").record_finished(started, ended, SpanStatus::Ok),
        None
    );
    let parent_id = parent.id().unwrap();
    parent.end(SpanStatus::Ok);
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    assert_eq!(
        o.flush_blocking(FlushOptions::FINAL).status,
        FlushStatus::Drained
    );

    let records = memory.records_of_run(run_id);
    let combined: Vec<_> = records.iter().filter(|r| r["type"] == "span").collect();
    assert_eq!(combined.len(), 2);
    let call = combined[0];
    assert_eq!(call["spanId"], id.to_string());
    assert_eq!(call["parentSpanId"], parent_id.to_string());
    assert_eq!(call["family"], "generation");
    assert_eq!(call["startedAt"], "2026-01-02T03:04:05.000Z");
    assert_eq!(call["endedAt"], "2026-01-02T03:04:05.250Z");
    assert_eq!(call["durationMs"], 250);
    assert_eq!(call["status"], "ok");
    assert_eq!(call["attributes"]["model"], "small");
    assert_eq!(combined[1]["durationMs"], 0);
    assert_eq!(combined[1]["status"], "skipped");
    // The viewer's library (`crux-view`) nests the combined record under its parent; the
    // skewed span started (by its own clock) before everything else, so it comes first.
    let tree = crux_view::Trees::from_values(&records)
        .normalized()
        .to_string();
    assert_eq!(
        tree,
        "run run#1 \"r\" (agent.run)\nstatus ok · 6 records · 1 segment\n\n\
         ├─ clock skew  tool.call  skipped\n\
         └─ answer  agent.run  ok\n   \
         └─ model call  generation.call  ok\n"
    );
}
