//! A burst of concurrent actions against a healthy sink, with the default observer
//! settings: nothing is dropped, every run ends, every final flush drains.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crux::local::Deployment;
use crux::observe::{FlushStatus, Observer};
use crux::prelude::*;
use crux::sink::Memory;

#[derive(Serialize, Deserialize)]
pub struct Turn {
    pub n: u64,
}

#[crux::action(name = "burst turn", root = "agent.run")]
pub async fn turn(ctx: &ActionCtx, args: Turn) -> crux::Result<u64> {
    ctx.crux.run_action("plan", plan, args).await
}

#[crux::internal_action]
pub async fn plan(ctx: &ActionCtx, args: Turn) -> crux::Result<u64> {
    let span = ctx.crux.span("think", "plan.operation").start();
    span.end(crux::observe::SpanStatus::Ok);
    Ok(args.n * 2)
}

const ACTIONS: u64 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_concurrent_actions_lose_nothing_with_the_default_capacity() {
    let memory = Memory::new();
    let warnings = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&warnings);
    let observer = Observer::builder()
        .sink(memory.clone())
        .on_warning(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        })
        .build();
    let deployment = Deployment::builder()
        .function(turn)
        .function(plan)
        .observer(observer.clone())
        .build();

    let calls: Vec<_> = (0..ACTIONS)
        .map(|n| {
            let d = deployment.clone();
            tokio::spawn(async move { d.action(turn, Turn { n }).await })
        })
        .collect();
    for (n, call) in (0..ACTIONS).zip(calls) {
        assert_eq!(call.await.unwrap().unwrap(), 2 * n, "results never change");
    }
    let flushed = deployment.flush(Duration::from_secs(60)).await;
    assert_eq!(flushed.status, FlushStatus::Drained, "{flushed:?}");

    let stats = observer.stats();
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert_eq!(stats.failed + stats.rejected + stats.queued, 0, "{stats:?}");
    assert_eq!(stats.delivered, stats.accepted, "{stats:?}");
    assert_eq!(warnings.load(Ordering::Relaxed), 0, "no final flush warned");

    let records = memory.records();
    assert_eq!(records.len() as u64, stats.accepted);
    let runs = |ty: &str| -> HashSet<String> {
        records
            .iter()
            .filter(|r| r["type"] == ty)
            .map(|r| r["runId"].as_str().unwrap().to_owned())
            .collect()
    };
    let (started, ended) = (runs("run:start"), runs("run:end"));
    assert_eq!(started.len() as u64, ACTIONS);
    assert_eq!(started, ended, "every run has its run:end");
}
