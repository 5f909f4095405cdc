//! `DevtoolsSink` through a real `Observer`, to the real collector and to scripted ones
//! that fail in each way the contract allows. Loopback only; every wait is bounded.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crux_devtools::collector::{Collector, CollectorOptions, Store};
use crux_devtools::{DevtoolsSink, DevtoolsStats};
use crux_runtime::delivery::{FlushOptions, FlushStatus};
use crux_runtime::observe::{Observer, RunOptions, RunStatus, SpanStatus};
use crux_runtime::sink::Memory;
use serde_json::{Value, json};

fn temp_db() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "crux-devtools-delivery-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("devtools.db")
}

/// Emits one run of `spans` child spans: 2 + 2 × spans records.
fn emit_run(observer: &Observer, spans: usize) {
    let run = observer.open_run(RunOptions::new("devtools test", "agent.run"));
    for i in 0..spans {
        run.scope()
            .span(format!("step {i}"), "tool.call")
            .attr("i", i as i64)
            .start()
            .end(SpanStatus::Ok);
    }
    run.end(RunStatus::Ok);
}

const FINAL: FlushOptions = FlushOptions::FINAL;

/// Polls `cond` every 20 ms for at most 20 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scripted collector: `answer(request number from 0, batch)` gives (status, extra
/// headers, body). Remembers every batch.
struct Fake {
    url: String,
    batches: Arc<Mutex<Vec<Value>>>,
    _server: Arc<tiny_http::Server>,
}

type Answer = dyn Fn(usize, &Value) -> (u16, Vec<(&'static str, String)>, Value) + Send + Sync;

fn fake(
    answer: impl Fn(usize, &Value) -> (u16, Vec<(&'static str, String)>, Value) + Send + Sync + 'static,
) -> Fake {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let batches = Arc::new(Mutex::new(Vec::new()));
    let answer: Arc<Answer> = Arc::new(answer);
    for _ in 0..8 {
        let (server, batches, answer) = (
            Arc::clone(&server),
            Arc::clone(&batches),
            Arc::clone(&answer),
        );
        std::thread::spawn(move || {
            while let Ok(mut req) = server.recv() {
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(req.as_reader(), &mut body);
                let batch: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let n = {
                    let mut b = batches.lock().unwrap();
                    b.push(batch.clone());
                    b.len() - 1
                };
                let (status, headers, reply) = answer(n, &batch);
                let mut resp =
                    tiny_http::Response::from_string(reply.to_string()).with_status_code(status);
                for (k, v) in headers {
                    resp.add_header(tiny_http::Header::from_bytes(k, v.as_bytes()).unwrap());
                }
                let _ = req.respond(resp);
            }
        });
    }
    Fake {
        url,
        batches,
        _server: server,
    }
}

fn records_of(batch: &Value) -> &Vec<Value> {
    batch["records"].as_array().unwrap()
}

/// Every record accepted, by index and id.
fn all_accepted(batch: &Value) -> Value {
    let d: Vec<Value> = records_of(batch)
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"index": i, "recordId": r["recordId"], "outcome": "accepted", "code": "accepted", "retryable": false}))
        .collect();
    json!({ "dispositions": d })
}

impl Fake {
    /// How many times each recordId was acknowledged as accepted is not known here; this
    /// counts how many times each was sent.
    fn sends(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for b in self.batches.lock().unwrap().iter() {
            for r in records_of(b) {
                *m.entry(r["recordId"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        m
    }
    fn requests(&self) -> usize {
        self.batches.lock().unwrap().len()
    }
}

fn sink(url: &str) -> crux_devtools::DevtoolsSinkBuilder {
    DevtoolsSink::builder()
        .url(url)
        .batch_window(Duration::from_millis(20))
}

fn quiet(stats: &DevtoolsStats) -> bool {
    stats.queued == 0 && stats.in_flight == 0
}

#[test]
fn records_land_in_sqlite_and_read_back_as_the_same_run_trees() {
    let db = temp_db();
    let collector = Collector::start(CollectorOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: db.clone(),
        token: None,
    })
    .unwrap();
    let devtools = sink(&collector.url()).build().unwrap();
    let memory = Memory::new();
    let observer = Observer::builder()
        .sink(devtools.clone())
        .sink(memory.clone())
        .build();
    emit_run(&observer, 3);
    emit_run(&observer, 1);
    assert_eq!(observer.flush_blocking(FINAL).status, FlushStatus::Drained);
    let stats = devtools.stats();
    let n = memory.records().len() as u64;
    assert_eq!(n, 12);
    assert_eq!((stats.accepted, stats.retried, stats.lost()), (n, 0, 0));

    let store = Store::open_read_only(&db).unwrap();
    assert_eq!(store.record_count().unwrap(), n);
    let stored: Vec<Value> = store
        .all_records()
        .unwrap()
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    let from_db = crux_view::Trees::from_values(&stored).to_string();
    let from_memory = crux_view::Trees::from_values(&memory.records()).to_string();
    assert_eq!(from_db, from_memory);
    assert_eq!(store.runs(10).unwrap().len(), 2);
    assert!(store.runs(10).unwrap().iter().all(|r| r.status == "ok"));
}

#[test]
fn a_collector_down_at_start_gets_the_records_once_it_is_up() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let devtools = sink(&format!("http://{addr}")).build().unwrap();
    let observer = Observer::builder().sink(devtools.clone()).build();
    emit_run(&observer, 2);
    let started = Instant::now();
    let result = observer.flush_blocking(FlushOptions {
        timeout: Duration::from_millis(500),
        terminal: false,
    });
    assert_ne!(result.status, FlushStatus::Drained);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "flush bound held"
    );
    eventually("a failed attempt", || devtools.stats().retried > 0);
    assert!(
        devtools
            .stats()
            .last_error
            .unwrap()
            .contains("cannot reach")
    );

    let db = temp_db();
    let _collector = Collector::start(CollectorOptions {
        listen: addr,
        db: db.clone(),
        token: None,
    })
    .unwrap();
    eventually("delivery after the collector came up", || {
        devtools.stats().accepted == 6
    });
    let stats = devtools.stats();
    assert_eq!(stats.lost(), 0);
    assert!(quiet(&stats));
    assert_eq!(
        Store::open_read_only(&db).unwrap().record_count().unwrap(),
        6
    );
}

#[test]
fn server_errors_are_retried_after_backoff_and_retry_after() {
    let fake = fake(|n, batch| {
        if n < 2 {
            (503, vec![("Retry-After", "1".to_owned())], json!({}))
        } else {
            (202, vec![], all_accepted(batch))
        }
    });
    let devtools = sink(&fake.url).in_flight(1).build().unwrap();
    let observer = Observer::builder().sink(devtools.clone()).build();
    emit_run(&observer, 1);
    let first = Instant::now();
    eventually("delivery after two 503s", || devtools.stats().accepted == 4);
    // Two Retry-After: 1 waits.
    assert!(
        first.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        first.elapsed()
    );
    let stats = devtools.stats();
    assert_eq!(stats.retried, 8, "4 records retried twice");
    assert_eq!(stats.lost(), 0);
    assert!(fake.sends().values().all(|n| *n == 3));
    assert_eq!(fake.requests(), 3);
    // The counters travel as sourceHealth.
    let last = fake.batches.lock().unwrap().last().unwrap().clone();
    assert_eq!(last["sourceHealth"]["retried"], 8);
    assert_eq!(last["sourceHealth"]["sourceId"], devtools.source_id());
    assert_eq!(last["schemaVersion"], 5);
}

#[test]
fn records_left_unaccounted_by_partial_or_mismatched_dispositions_are_resent_alone() {
    let fake = fake(|n, batch| {
        let records = records_of(batch);
        if n == 0 {
            // Index 0 answered; index 1 with another record's id; index 2 twice; the rest
            // missing; one permanent rejection at index 3.
            let d = json!([
                {"index": 0, "recordId": records[0]["recordId"], "outcome": "accepted", "code": "accepted", "retryable": false},
                {"index": 1, "recordId": "rec_wrong", "outcome": "accepted", "code": "accepted", "retryable": false},
                {"index": 2, "recordId": records[2]["recordId"], "outcome": "accepted", "code": "accepted", "retryable": false},
                {"index": 2, "recordId": records[2]["recordId"], "outcome": "accepted", "code": "accepted", "retryable": false},
                {"index": 3, "recordId": records[3]["recordId"], "outcome": "rejected", "code": "invalid_record", "retryable": false},
            ]);
            (202, vec![], json!({ "dispositions": d }))
        } else {
            (202, vec![], all_accepted(batch))
        }
    });
    let devtools = sink(&fake.url).in_flight(1).build().unwrap();
    let observer = Observer::builder().sink(devtools.clone()).build();
    emit_run(&observer, 2); // 6 records, one request first
    assert_eq!(observer.flush_blocking(FINAL).status, FlushStatus::Drained);
    let stats = devtools.stats();
    assert_eq!(stats.accepted, 5);
    assert_eq!(stats.permanently_rejected, 1);
    assert_eq!(stats.retried, 4, "indexes 1, 2, 4, 5");
    let sends = fake.sends();
    let first = records_of(&fake.batches.lock().unwrap()[0]).clone();
    let id = |i: usize| first[i]["recordId"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 6);
    assert_eq!(sends[&id(0)], 1);
    assert_eq!(sends[&id(3)], 1);
    for i in [1, 2, 4, 5] {
        assert_eq!(sends[&id(i)], 2, "record {i}");
    }
}

#[test]
fn a_413_splits_the_request_and_a_single_record_refused_so_is_counted() {
    let fake = fake(|_, batch| {
        if records_of(batch).len() > 1 {
            (413, vec![], json!({"error": {"code": "payload_too_large"}}))
        } else {
            (202, vec![], all_accepted(batch))
        }
    });
    let devtools = sink(&fake.url).in_flight(1).build().unwrap();
    let observer = Observer::builder().sink(devtools.clone()).build();
    emit_run(&observer, 3); // 8 records
    assert_eq!(observer.flush_blocking(FINAL).status, FlushStatus::Drained);
    let stats = devtools.stats();
    assert_eq!((stats.accepted, stats.permanently_rejected), (8, 0));
    assert!(fake.sends().values().all(|n| *n >= 1));

    let refusing = self::fake(|_, _| (413, vec![], json!({})));
    let devtools = sink(&refusing.url).in_flight(1).build().unwrap();
    let observer = Observer::builder().sink(devtools.clone()).build();
    emit_run(&observer, 1); // 4 records
    assert_eq!(observer.flush_blocking(FINAL).status, FlushStatus::Drained);
    let stats = devtools.stats();
    assert_eq!((stats.accepted, stats.permanently_rejected), (0, 4));
    assert!(stats.last_error.unwrap().contains("http_413"));
}

#[test]
fn a_slow_collector_cannot_stretch_a_flush() {
    let fake = fake(|_, batch| {
        std::thread::sleep(Duration::from_secs(3));
        (202, vec![], all_accepted(batch))
    });
    let devtools = sink(&fake.url).build().unwrap();
    let observer = Observer::builder().sink(devtools.clone()).build();
    emit_run(&observer, 1);
    let started = Instant::now();
    let result = observer.flush_blocking(FlushOptions {
        timeout: Duration::from_millis(300),
        terminal: false,
    });
    assert_ne!(result.status, FlushStatus::Drained);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    // The records still arrive once the collector answers.
    eventually("the slow reply", || devtools.stats().accepted == 4);
}

#[test]
fn past_its_bounds_the_queue_drops_oldest_and_counts_exactly() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let devtools = sink(&format!("http://{addr}"))
        .queue_records(5)
        .batch_window(Duration::from_secs(3600))
        .batch_records(1000)
        .build()
        .unwrap();
    let observer = Observer::builder().sink(devtools.clone()).build();
    emit_run(&observer, 3); // 8 records
    let _ = observer.flush_blocking(FlushOptions {
        timeout: Duration::from_millis(200),
        terminal: false,
    });
    let stats = devtools.stats();
    assert_eq!(stats.overflow_dropped, 3);
    assert_eq!(stats.queued + stats.in_flight, 5);
}

#[test]
fn a_token_is_sent_as_a_bearer() {
    let collector = Collector::start(CollectorOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: temp_db(),
        token: Some("tok".into()),
    })
    .unwrap();
    let good = sink(&collector.url()).token("tok").build().unwrap();
    let bad = sink(&collector.url()).token("nope").build().unwrap();
    let observer = Observer::builder()
        .sink(good.clone())
        .sink(bad.clone())
        .build();
    emit_run(&observer, 0);
    let _ = observer.flush_blocking(FINAL);
    assert_eq!(good.stats().accepted, 2);
    assert_eq!(bad.stats().permanently_rejected, 2);
    assert!(
        bad.stats()
            .last_error
            .unwrap()
            .contains("CRUX_DEVTOOLS_TOKEN")
    );
}
