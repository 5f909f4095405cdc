//! The process-wide observer: where received contexts and free-function resumes go when
//! no scope names an observer. Its own test binary, since the global is set once.

use crux_runtime::delivery::{FlushOptions, FlushStatus};
use crux_runtime::envelope::Envelope;
use crux_runtime::observe::{self, Observer, RunOptions};
use crux_runtime::record::{RunStatus, SpanStatus};
use crux_runtime::sink::Memory;

#[tokio::test]
async fn received_contexts_and_resumes_fall_back_to_the_global_observer() {
    assert!(!Observer::global().is_enabled(), "disabled until installed");
    let memory = Memory::new();
    let global = Observer::builder().sink(memory.clone()).build();
    assert!(global.install_global());
    assert!(
        !Observer::builder().build().install_global(),
        "only the first install wins"
    );

    // A caller elsewhere (another observer) sends its context over the wire.
    let caller = Observer::builder().build();
    let run = caller.open_run(RunOptions::new("caller", "agent.run"));
    let wire = Envelope::new(Some(run.scope().wire_context())).to_value();
    let received = Envelope::decode(&wire)
        .unwrap()
        .observability
        .map(Into::into);

    // Outside any scope, the received context continues on the global observer.
    let segment = observe::with_context(received, async {
        observe::span("callee work", "tool.call")
            .start()
            .end(SpanStatus::Ok);
        observe::current_scope().unwrap().segment_id()
    })
    .await;
    assert_ne!(segment, run.segment_id());

    let carrier = run.suspend("handoff");
    let resumed = observe::resume_run(&carrier, "picked up").unwrap();
    resumed.end(RunStatus::Ok);

    assert_eq!(
        global.flush(FlushOptions::FINAL).await.status,
        FlushStatus::Drained
    );
    let kinds: Vec<String> = memory
        .records_of_run(carrier.crux.run_id)
        .iter()
        .map(|r| r["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["span:start", "span:end", "run:resume", "run:end"]);
}
