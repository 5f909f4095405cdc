//! Ingest throughput: records/s from one process into the collector over loopback, in three
//! stages measured in the same run, so each is a ratio against the one below it:
//!
//! 1. `store`: `Store::ingest` of 50-record batches, no HTTP (what SQLite and the checks cost);
//! 2. `http`: the same batches posted by 8 plain client threads (adds HTTP and JSON);
//! 3. `sink`: a real `Observer` with the real `DevtoolsSink` (default settings: 50 records
//!    a request, 8 in flight), records emitted as fast as the program can.
//!
//! A plain bench binary: `cargo bench -p crux-devtools --features collector --bench ingest`
//! (`CRUX_BENCH_RUNS` runs of 10 records each, default 5 000; `CRUX_BENCH_REPEAT` rounds,
//! default 5; the median and the spread are printed; `CRUX_BENCH_STAGES=store,http` runs
//! only those).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crux_devtools::DevtoolsSink;
use crux_devtools::collector::{Collector, CollectorOptions, Store};
use crux_runtime::delivery::FlushOptions;
use crux_runtime::observe::{Observer, RunOptions, RunStatus, SpanStatus};
use crux_runtime::sink::Memory;
use serde_json::{Value, json};

/// Emits `runs` runs of 10 records each.
fn emit(observer: &Observer, runs: usize) {
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
}

fn temp_db(stage: &str, round: usize) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "crux-ingest-bench-{}-{stage}-{round}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("devtools.db")
}

fn cleanup(db: &std::path::Path) {
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

fn collector(db: &std::path::Path) -> Collector {
    Collector::start(CollectorOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: db.to_path_buf(),
        token: None,
    })
    .unwrap()
}

fn records(runs: usize) -> Vec<Value> {
    let memory = Memory::new();
    let observer = Observer::builder().sink(memory.clone()).build();
    emit(&observer, runs);
    let _ = observer.flush_blocking(FlushOptions::FINAL);
    memory.records()
}

/// Stage 1: the store alone.
fn store_only(records: &[Value], round: usize) -> f64 {
    let db = temp_db("store", round);
    let mut store = Store::open(&db).unwrap();
    let started = Instant::now();
    for batch in records.chunks(50) {
        let results = store.ingest(5, batch).unwrap();
        assert!(results.iter().all(Result::is_ok));
    }
    let rate = records.len() as f64 / started.elapsed().as_secs_f64();
    assert_eq!(store.record_count().unwrap(), records.len() as u64);
    drop(store);
    cleanup(&db);
    rate
}

/// Stage 2: plain HTTP clients posting the batches (8 at a time); also the slowest
/// request's milliseconds.
fn http_only(records: &[Value], round: usize, slowest: &Mutex<Vec<f64>>) -> f64 {
    let db = temp_db("http", round);
    let c = collector(&db);
    let bodies: Vec<Vec<u8>> = records
        .chunks(50)
        .map(|b| {
            json!({"schemaVersion": 5, "records": b})
                .to_string()
                .into_bytes()
        })
        .collect();
    let next = AtomicUsize::new(0);
    let url = format!("{}/api/observability/records", c.url());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                let mut worst = 0f64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let sent = Instant::now();
                    let mut resp = agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .send(&body[..])
                        .unwrap();
                    assert_eq!(resp.status().as_u16(), 202);
                    resp.body_mut().read_to_vec().unwrap();
                    worst = worst.max(sent.elapsed().as_secs_f64() * 1e3);
                }
                slowest.lock().unwrap().push(worst);
            });
        }
    });
    let rate = records.len() as f64 / started.elapsed().as_secs_f64();
    let stored = Store::open_read_only(&db).unwrap().record_count().unwrap();
    assert_eq!(stored, records.len() as u64);
    drop(c);
    cleanup(&db);
    rate
}

/// Stage 3: the whole path, from spans to rows.
fn through_sink(runs: usize, round: usize, report: &Mutex<Vec<String>>) -> f64 {
    let db = temp_db("sink", round);
    let c = collector(&db);
    // A queue large enough that the bench measures throughput, not drops.
    let sink = DevtoolsSink::builder()
        .url(c.url())
        .queue_records(1 << 20)
        .queue_bytes(1 << 30)
        .build()
        .unwrap();
    let observer = Observer::builder().sink(sink.clone()).build();
    let emitted = (runs * 10) as u64;
    let started = Instant::now();
    emit(&observer, runs);
    let deadline = Instant::now() + Duration::from_secs(600);
    while sink.stats().accepted + sink.stats().lost() < emitted && Instant::now() < deadline {
        let _ = observer.flush_blocking(FlushOptions::FINAL);
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = started.elapsed();
    let stats = sink.stats();
    let stored = Store::open_read_only(&db).unwrap().record_count().unwrap();
    report.lock().unwrap().push(format!(
        "sink round {round}: accepted {}, retried {}, lost {}, stored {}, last error {:?}",
        stats.accepted,
        stats.retried,
        stats.lost(),
        stored,
        stats.last_error
    ));
    drop(observer);
    drop(c);
    cleanup(&db);
    stats.accepted as f64 / elapsed.as_secs_f64()
}

fn summary(name: &str, mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{name:>5}: median {median:>9.0} records/s (min {:.0}, max {:.0}, {} rounds)",
        rates[0],
        rates[rates.len() - 1],
        rates.len()
    );
    median
}

fn main() {
    let runs: usize = std::env::var("CRUX_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let rounds: usize = std::env::var("CRUX_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let records = Arc::new(records(runs));
    let report = Mutex::new(Vec::new());
    let slowest = Mutex::new(Vec::new());
    let (mut store, mut http, mut sink) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so that a change of machine load touches every stage alike.
    let stages = std::env::var("CRUX_BENCH_STAGES").unwrap_or_else(|_| "store,http,sink".into());
    for round in 0..rounds {
        if stages.contains("store") {
            store.push(store_only(&records, round));
        }
        if stages.contains("http") {
            http.push(http_only(&records, round, &slowest));
        }
        if stages.contains("sink") {
            sink.push(through_sink(runs, round, &report));
        }
    }
    if stages != "store,http,sink" {
        for (name, rates) in [("store", store), ("http", http), ("sink", sink)] {
            if !rates.is_empty() {
                summary(name, rates);
            }
        }
        return;
    }
    println!("ingest of {} records ({} runs):", records.len(), runs);
    let s = summary("store", store);
    let h = summary("http", http);
    let k = summary("sink", sink);
    println!(
        "ratios of medians: http/store {:.2}, sink/http {:.2}, sink/store {:.2}",
        h / s,
        k / h,
        k / s
    );
    let slowest = slowest.into_inner().unwrap();
    println!(
        "slowest HTTP request: {:.1} ms",
        slowest.iter().copied().fold(0f64, f64::max)
    );
    for line in report.into_inner().unwrap() {
        println!("  {line}");
    }
}
