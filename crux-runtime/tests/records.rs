//! Runs, spans and the records they write: segments, sequence numbers, wire shapes,
//! error evidence, suspend/resume, and the run trees the viewer's library shows for them.

use crux_runtime::attributes::Attributes;
use crux_runtime::delivery::{FlushOptions, FlushStatus};
use crux_runtime::envelope::Envelope;
use crux_runtime::ids::RunId;
use crux_runtime::observe::{self, Observer, ParentRun, RunOptions};
use crux_runtime::record::{RunStatus, SpanStatus};
use crux_runtime::sink::Memory;
use serde_json::{Value, json};

fn observer() -> (Observer, Memory) {
    let memory = Memory::new();
    (Observer::builder().sink(memory.clone()).build(), memory)
}

fn drain(o: &Observer) {
    assert_eq!(
        o.flush_blocking(FlushOptions::FINAL).status,
        FlushStatus::Drained
    );
}

/// One run as the `crux` viewer shows it (`crux-view`), normalized: no ids, no times.
fn tree(memory: &Memory, run_id: RunId, all_spans: bool, attributes: bool) -> String {
    let mut trees = crux_view::Trees::from_values(&memory.records())
        .run(run_id)
        .normalized();
    if all_spans {
        trees = trees.all_spans();
    }
    if attributes {
        trees = trees.with_attributes();
    }
    trees.to_string()
}

fn of_type<'a>(records: &'a [Value], t: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == t).collect()
}

#[test]
fn a_run_writes_the_v5_wire_shapes() {
    let (o, memory) = observer();
    let run = o.open_run(
        RunOptions::new("support chat", "agent.run")
            .attributes(Attributes::new().with("agentId", "support")),
    );
    let span = run
        .scope()
        .span("plan research", "runtime.convex.action")
        .attr("functionRef", "research:plan")
        .start();
    span.event(
        "runtime.convex.boundary.requested",
        Attributes::new().with("boundaryId", "b"),
    );
    span.end(SpanStatus::Ok);
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    drain(&o);

    let records = memory.records_of_run(run_id);
    let start = &records[0];
    assert_eq!(start["schemaVersion"], 5);
    assert_eq!(start["type"], "run:start");
    assert_eq!(start["segmentSeq"], 1);
    assert_eq!(start["status"], "running");
    assert_eq!(start["rootPrimitive"], "agent.run");
    assert_eq!(start["operationId"], start["runId"]);
    assert_eq!(start["attributes"], json!({"agentId": "support"}));
    let record_id = start["recordId"].as_str().unwrap();
    assert!(
        record_id.starts_with("rec_") && record_id.parse::<crux_runtime::ids::RecordId>().is_ok()
    );
    assert!(
        start["startedAt"]
            .as_str()
            .unwrap()
            .parse::<crux_runtime::clock::Timestamp>()
            .is_ok()
    );

    let span_start = of_type(&records, "span:start")[0];
    assert_eq!(span_start["family"], "runtime");
    assert_eq!(span_start["primitive"], "runtime.convex.action");
    assert_eq!(span_start["parentSpanId"], Value::Null);
    assert_eq!(span_start["attributes"]["functionRef"], "research:plan");
    let event = of_type(&records, "span:event")[0];
    assert_eq!(event["spanId"], span_start["spanId"]);
    assert!(event["eventId"].as_str().unwrap().starts_with("event_"));
    let end = of_type(&records, "run:end")[0];
    assert_eq!(end["status"], "ok");
    assert!(end["durationMs"].as_u64().is_some());
    // Every record of one segment numbered 1..=n in order, with unique record ids.
    let seqs: Vec<u64> = records
        .iter()
        .map(|r| r["segmentSeq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=records.len() as u64).collect::<Vec<_>>());
    let mut ids: Vec<&str> = records
        .iter()
        .map(|r| r["recordId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), records.len());
}

#[test]
fn nested_spans_record_their_parents_through_scopes() {
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let outer = run.scope().span("outer", "flow.run").start();
    let inner_scope = outer.scope().unwrap();
    let inner = {
        let _g = inner_scope.enter();
        observe::span("inner", "flow.step").start()
    };
    assert_eq!(
        inner.scope().unwrap().span_stack(),
        vec![outer.id().unwrap(), inner.id().unwrap()]
    );
    inner.end(SpanStatus::Ok);
    outer.end(SpanStatus::Suspended);
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    drain(&o);
    let records = memory.records_of_run(run_id);
    let starts = of_type(&records, "span:start");
    assert_eq!(starts[1]["parentSpanId"], starts[0]["spanId"]);
    assert_eq!(
        tree(&memory, run_id, false, false),
        "run run#1 \"r\" (agent.run)\nstatus ok · 6 records · 1 segment\n\n\
         └─ outer  flow.run  suspended\n   \
         └─ inner  flow.step  ok\n"
    );
}

#[test]
fn failures_record_evidence_and_the_summary() {
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let span = run.scope().span("call tool", "tool.call").start();
    let err = crux_runtime::Error::application("thread is closed", json!({"code": "closed"}));
    span.fail(&err);
    let run_id = run.run_id();
    run.fail(&crux_runtime::Error::msg("boom"));
    drain(&o);
    let records = memory.records_of_run(run_id);
    let event = of_type(&records, "span:event")[0];
    assert_eq!(event["name"], "exception");
    assert_eq!(event["attributes"]["exception.type"], "ConvexError");
    assert_eq!(event["attributes"]["exception.message"], "thread is closed");
    let artifact = of_type(&records, "artifact")[0];
    assert_eq!(artifact["kind"], "error.raw");
    assert_eq!(artifact["encoding"], "json");
    let raw: Value = serde_json::from_str(artifact["preview"].as_str().unwrap()).unwrap();
    assert_eq!(raw["data"]["code"], "closed");
    let span_end = of_type(&records, "span:end")[0];
    assert_eq!(span_end["status"], "error");
    assert_eq!(
        span_end["error"],
        json!({"message": "thread is closed", "name": "ConvexError"})
    );
    let run_end = of_type(&records, "run:end")[0];
    assert_eq!(run_end["status"], "error");
    assert_eq!(run_end["error"]["message"], "boom");
    assert_eq!(
        tree(&memory, run_id, false, true),
        "run run#1 \"r\" (agent.run)\nstatus error · 6 records · 1 segment\n✗ Error: boom\n\n\
         └─ call tool  tool.call  error\n     \
         ✗ ConvexError: thread is closed\n     \
         • exception: thread is closed\n     \
         ▪ artifact error.raw (application/json)\n"
    );
}

#[test]
fn dropped_handles_close_as_cancelled() {
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let run_id = run.run_id();
    drop(run.scope().span("abandoned", "tool.call").start());
    drop(run);
    drain(&o);
    let records = memory.records_of_run(run_id);
    let span_end = of_type(&records, "span:end")[0];
    assert_eq!(span_end["status"], "cancelled");
    assert_eq!(span_end["attributes"]["crux.dropped"], true);
    let run_end = of_type(&records, "run:end");
    assert_eq!(run_end.len(), 1);
    assert_eq!(run_end[0]["status"], "cancelled");
    assert_eq!(run_end[0]["attributes"]["crux.dropped"], true);
    // An ended run's handle, dropped after, records nothing more.
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    drain(&o);
    let records = memory.records_of_run(run_id);
    let run_end = of_type(&records, "run:end");
    assert_eq!(run_end.len(), 1);
    assert_eq!(run_end[0]["status"], "ok");
    assert_eq!(run_end[0]["attributes"].get("crux.dropped"), None);
}

#[test]
fn suspend_and_resume_use_a_new_segment_on_the_same_run() {
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("flow", "flow.run"));
    let (run_id, first_segment) = (run.run_id(), run.segment_id());
    let carrier = run.suspend("flow.suspend");
    // Through a durable table: JSON out, JSON in.
    let stored = carrier.to_value();
    let carrier = crux_runtime::carrier::Carrier::decode(&stored).unwrap();
    assert!(o.resume_run(&carrier, "").is_err());
    let resumed = o.resume_run(&carrier, "signal").unwrap();
    assert_eq!(resumed.run_id(), run_id);
    assert_ne!(resumed.segment_id(), first_segment);
    resumed
        .scope()
        .span("step", "flow.step")
        .start()
        .end(SpanStatus::Ok);
    resumed.end(RunStatus::Ok);
    // A run this process saw end cannot be resumed again.
    assert!(matches!(
        o.resume_run(&carrier, "again"),
        Err(crux_runtime::carrier::CarrierError::TerminalRun(id)) if id == run_id
    ));
    drain(&o);
    let records = memory.records_of_run(run_id);
    let suspend = of_type(&records, "run:suspend")[0];
    assert_eq!(suspend["reason"], "flow.suspend");
    assert_eq!(suspend["segmentId"], first_segment.to_string());
    let resume = of_type(&records, "run:resume")[0];
    assert_eq!(resume["segmentSeq"], 1);
    assert_eq!(resume["previousSegmentId"], first_segment.to_string());
    assert_ne!(resume["segmentId"], suspend["segmentId"]);
    let after: Vec<u64> = records
        .iter()
        .filter(|r| r["segmentId"] == resume["segmentId"])
        .map(|r| r["segmentSeq"].as_u64().unwrap())
        .collect();
    assert_eq!(after, vec![1, 2, 3, 4]);
    assert_eq!(of_type(&records, "run:end")[0]["status"], "ok");
}

#[test]
fn a_received_context_continues_the_run_in_its_own_segment() {
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("caller", "agent.run"));
    let boundary = run.scope().span("plan", "runtime.convex.action").start();
    let captured = boundary.scope().unwrap().capture();
    assert!(captured.is_live());
    // Across the wire: the live handle does not survive.
    let wire = Envelope::new(Some(captured.wire().clone())).to_value();
    let received = Envelope::decode(&wire).unwrap().observability.unwrap();
    assert_eq!(&received, captured.wire());
    let received = observe::CapturedContext::from(received);
    assert!(!received.is_live());
    assert_eq!(received, captured);

    let callee = o.continue_context(&received);
    assert_eq!(callee.run_id(), run.run_id());
    assert_ne!(callee.segment_id(), run.segment_id());
    let child = callee.span("plan body", "plan.operation").start();
    child.end(SpanStatus::Ok);
    boundary.end(SpanStatus::Ok);
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    drain(&o);
    let records = memory.records_of_run(run_id);
    let child_start = records
        .iter()
        .find(|r| r["type"] == "span:start" && r["name"] == "plan body")
        .unwrap();
    assert_eq!(child_start["segmentId"], callee.segment_id().to_string());
    assert_eq!(child_start["segmentSeq"], 1);
    assert_eq!(
        child_start["parentSpanId"],
        captured.current_span_id.unwrap().to_string()
    );
    // (segmentId, segmentSeq) pairs never collide.
    let mut keys: Vec<(String, u64)> = records
        .iter()
        .map(|r| {
            (
                r["segmentId"].as_str().unwrap().to_owned(),
                r["segmentSeq"].as_u64().unwrap(),
            )
        })
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
    // The callee's span nests under the boundary (shown unfolded: `all_spans`).
    assert_eq!(
        tree(&memory, run_id, true, false),
        "run run#1 \"caller\" (agent.run)\nstatus ok · 6 records · 2 segments\n\n\
         └─ plan  runtime.convex.action  ok\n   \
         └─ plan body  plan.operation  ok\n"
    );
}

#[test]
fn child_runs_join_the_parent_operation_and_link_back() {
    let (o, memory) = observer();
    let parent = o.open_run(RunOptions::new("parent", "agent.run"));
    let trigger = parent
        .scope()
        .span("schedule", "runtime.convex.schedule")
        .start();
    let child = o.open_run(
        RunOptions::new("child", "flow.run")
            .parent(ParentRun::from_scope(&trigger.scope().unwrap())),
    );
    trigger.link_run(&child);
    assert_eq!(child.operation_id(), parent.run_id());
    assert_eq!(child.trace_id(), parent.trace_id());
    let (pid, cid, tid) = (parent.run_id(), child.run_id(), trigger.id().unwrap());
    trigger.end(SpanStatus::Ok);
    child.end(RunStatus::Ok);
    parent.end(RunStatus::Ok);
    drain(&o);
    let child_start = of_type(&memory.records_of_run(cid), "run:start")[0].clone();
    assert_eq!(child_start["parentRunId"], pid.to_string());
    assert_eq!(child_start["triggeredBySpanId"], tid.to_string());
    assert_eq!(child_start["operationId"], pid.to_string());
    let parent_records = memory.records_of_run(pid);
    let edge = of_type(&parent_records, "edge")[0];
    assert_eq!(edge["edgeType"], "triggered");
    assert_eq!(edge["from"], json!({"kind": "span", "id": tid.to_string()}));
    assert_eq!(edge["to"], json!({"kind": "run", "id": cid.to_string()}));
}

#[test]
fn correlators_are_stamped_on_every_record() {
    let (o, memory) = observer();
    let mut correlators = crux_runtime::envelope::Correlators {
        session_id: Some("sess".into()),
        user_id: Some("user".into()),
        ..Default::default()
    };
    correlators.metadata.insert("tier".into(), "pro".into());
    let run = o.open_run(RunOptions::new("r", "agent.run").correlators(correlators));
    run.scope()
        .span("s", "tool.call")
        .start()
        .end(SpanStatus::Ok);
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    drain(&o);
    for r in memory.records_of_run(run_id) {
        assert_eq!(r["sessionId"], "sess", "{r}");
        assert_eq!(r["userId"], "user");
        assert_eq!(r["attributes"]["meta.tier"], "pro");
    }
}

#[test]
fn invalid_records_are_rejected_not_thrown() {
    let (o, memory) = observer();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    run.scope()
        .span("bad", "agent.ran")
        .start()
        .end(SpanStatus::Ok);
    let run_id = run.run_id();
    run.end(RunStatus::Ok);
    let result = o.flush_blocking(FlushOptions::FINAL);
    assert_eq!(result.status, FlushStatus::Drained);
    // A flush counts what it saw delivered; the worker may have judged the record before
    // the flush began, so the observer's totals are the ones to check.
    assert_eq!(
        o.stats().rejected,
        1,
        "the span:start with an unknown primitive"
    );
    let kept = memory.records_of_run(run_id);
    // The records around the rejected one keep their order, and record ids are given to
    // the valid ones only, without a gap.
    let types: Vec<&str> = kept.iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["run:start", "span:end", "run:end"]);
    let counters: Vec<u64> = kept
        .iter()
        .map(|r| {
            let id: crux_runtime::ids::RecordId = r["recordId"].as_str().unwrap().parse().unwrap();
            id.counter
        })
        .collect();
    assert_eq!(counters, [1, 2, 3], "{kept:?}");
}

#[test]
fn outside_any_context_spans_record_nothing() {
    let (o, memory) = observer();
    let span = observe::span("orphan", "tool.call").attr("k", 1).start();
    assert!(!span.is_recording());
    assert_eq!(span.id(), None);
    span.end(SpanStatus::Ok);
    observe::event("nothing", Attributes::new());
    assert!(observe::capture_context().is_none());
    drain(&o);
    assert!(memory.is_empty());
    let disabled = Observer::disabled();
    let run = disabled.open_run(RunOptions::new("r", "agent.run"));
    run.scope()
        .span("s", "tool.call")
        .start()
        .end(SpanStatus::Ok);
    run.end(RunStatus::Ok);
    assert_eq!(disabled.stats().accepted, 0);
}
