//! Ingest throughput: records/s from one process into the collector over loopback, through
//! the real sink (default settings: 50 records a request, 8 in flight) and the real SQLite
//! store. A plain bench binary run once: `cargo bench -p crux-devtools --bench ingest`.

use std::time::{Duration, Instant};

use crux_devtools::DevtoolsSink;
use crux_devtools::collector::{Collector, CollectorOptions, Store};
use crux_runtime::delivery::FlushOptions;
use crux_runtime::observe::{Observer, RunOptions, RunStatus, SpanStatus};

fn main() {
    let runs: usize = std::env::var("CRUX_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let dir = std::env::temp_dir().join(format!("crux-ingest-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("devtools.db");
    let collector = Collector::start(CollectorOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: db.clone(),
        token: None,
    })
    .unwrap();
    // A queue large enough that the bench measures throughput, not drops.
    let sink = DevtoolsSink::builder()
        .url(collector.url())
        .queue_records(1 << 20)
        .queue_bytes(1 << 30)
        .build()
        .unwrap();
    let observer = Observer::builder().sink(sink.clone()).build();
    let started = Instant::now();
    for r in 0..runs {
        let run = observer.open_run(RunOptions::new("bench run", "agent.run"));
        for i in 0..4 {
            run.scope()
                .span(format!("step {i}"), "tool.call")
                .attr("run", r as i64)
                .start()
                .end(SpanStatus::Ok);
        }
        run.end(RunStatus::Ok);
    }
    let emitted = (runs * 10) as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while sink.stats().accepted + sink.stats().lost() < emitted && Instant::now() < deadline {
        let _ = observer.flush_blocking(FlushOptions::FINAL);
    }
    let elapsed = started.elapsed();
    let stats = sink.stats();
    let stored = Store::open_read_only(&db).unwrap().record_count().unwrap();
    println!(
        "ingest: {} records in {:.2?} = {:.0} records/s (accepted {}, retried {}, lost {}, stored {})",
        emitted,
        elapsed,
        stats.accepted as f64 / elapsed.as_secs_f64(),
        stats.accepted,
        stats.retried,
        stats.lost(),
        stored
    );
    drop(collector);
    let _ = std::fs::remove_dir_all(&dir);
}
