//! The devtools end to end: the examples deliver to a collector (`CRUX_DEVTOOLS_URL`), and
//! `crux runs|show|search --db` on its database print what the same commands print on
//! the JSON Lines store of the same runs. A dead collector changes no function's result.
#![cfg(all(feature = "devtools-collector", feature = "cli"))]

mod example_stores;

use std::path::Path;
use std::process::Command;

use crux::devtools::collector::{Collector, CollectorOptions};
use example_stores::{EXAMPLES, TempDir, example_binary, store_path};

fn crux(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_crux"))
        .args(args)
        .output()
        .expect("run the crux binary");
    assert!(
        out.status.success(),
        "crux {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn run_with_devtools(name: &str, dir: &Path, url: &str) -> String {
    let out = Command::new(example_binary(name))
        .current_dir(dir)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env("CRUX_DEVTOOLS_URL", url)
        .output()
        .expect("run the example");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run_ids(runs_json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(runs_json).unwrap();
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_viewer_prints_the_same_runs_from_the_collector_as_from_the_json_lines_store() {
    let dir = TempDir::new("devtools");
    let db = dir.path().join("devtools.db");
    let collector = Collector::start(CollectorOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: db.clone(),
        token: None,
    })
    .unwrap();
    for name in EXAMPLES {
        run_with_devtools(name, dir.path(), &collector.url());
    }
    let store = store_path(dir.path());
    let (store, db) = (store.to_str().unwrap(), db.to_str().unwrap());

    let from_store = crux(&["runs", "--json", "--store", store]);
    let from_db = crux(&["runs", "--json", "--db", db]);
    let ids = run_ids(&from_store);
    assert!(ids.len() >= 6, "{ids:?}");
    assert_eq!(ids, run_ids(&from_db));
    let summaries = |text: &str| {
        let mut v: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
        v.sort_by(|a, b| a["runId"].as_str().cmp(&b["runId"].as_str()));
        v
    };
    assert_eq!(summaries(&from_store), summaries(&from_db));

    for id in &ids {
        for extra in [&[][..], &["--all", "--attributes"][..]] {
            let mut args = vec!["show", id.as_str()];
            args.extend_from_slice(extra);
            let a = crux(&[&args[..], &["--store", store]].concat());
            let b = crux(&[&args[..], &["--db", db]].concat());
            assert_eq!(a, b, "crux show {id} {extra:?}");
        }
    }
    let prefix = &ids[0][..ids[0].len() - 4];
    assert_eq!(
        crux(&["show", prefix, "--store", store]),
        crux(&["show", prefix, "--db", db])
    );
    for text in ["research", "offline"] {
        assert_eq!(
            crux(&["search", text, "--store", store]).replace(store, "S"),
            crux(&["search", text, "--db", db]).replace(db, "S"),
            "search {text}"
        );
    }
}

#[test]
fn a_dead_collector_changes_no_output_of_an_example() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (a, b) = (TempDir::new("devtools-dead"), TempDir::new("devtools-none"));
    let with_dead = run_with_devtools("research", a.path(), &format!("http://{port}"));
    let without = example_stores::run_example("research", b.path());
    // The printed results and run trees, normalised (ids and times differ by run).
    let shape = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.contains("run_") && !l.contains("records ("))
            .map(|l| {
                l.split_whitespace()
                    .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    assert_eq!(
        shape(&with_dead),
        shape(&String::from_utf8(without.stdout).unwrap())
    );
}

/// A `crux serve` child process on `port` with `db`, answering before this returns.
fn serve_child(port: u16, db: &Path) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_crux"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(db)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start crux serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ureq::get(&format!("http://127.0.0.1:{port}/api/revision"))
        .call()
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "crux serve never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}

fn records_of(port: u16, run_id: &str) -> Option<u64> {
    let body = ureq::get(&format!("http://127.0.0.1:{port}/api/runs/{run_id}"))
        .call()
        .ok()?
        .into_body()
        .read_to_string()
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["records"].as_array().map(|r| r.len() as u64)
}

#[test]
fn records_queued_while_the_collector_is_killed_are_delivered_once_it_is_back() {
    use crux::observe::{FlushOptions, Observer, RunOptions, RunStatus, SpanStatus};
    let dir = TempDir::new("devtools-kill");
    let db = dir.path().join("devtools.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut collector = serve_child(port, &db);
    let sink = crux::devtools::DevtoolsSink::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let observer = Observer::builder().sink(sink.clone()).build();
    let emit = |name: &'static str| {
        let run = observer.open_run(RunOptions::new(name, "agent.run"));
        for i in 0..4 {
            run.scope()
                .span(format!("step {i}"), "tool.call")
                .start()
                .end(SpanStatus::Ok);
        }
        let id = run.run_id().to_string();
        run.end(RunStatus::Ok);
        id
    };
    let before = emit("before the kill");
    let _ = observer.flush_blocking(FlushOptions::FINAL);
    assert_eq!(records_of(port, &before), Some(10));

    // Killed mid-run: the run's records (10, well within the 2048-record queue) wait.
    collector.kill().unwrap();
    collector.wait().unwrap();
    let during = emit("while the collector is down");
    let _ = observer.flush_blocking(FlushOptions::FINAL);
    assert!(sink.stats().accepted < 20, "{:?}", sink.stats());

    // Back on the same port and database: the queued records arrive, the earlier ones
    // are still there, nothing was lost.
    let mut collector = serve_child(port, &db);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while records_of(port, &during) != Some(10) {
        assert!(
            std::time::Instant::now() < deadline,
            "the queued run never arrived: {:?}",
            sink.stats()
        );
        let _ = observer.flush_blocking(FlushOptions::FINAL);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(records_of(port, &before), Some(10));
    let stats = sink.stats();
    assert_eq!((stats.accepted, stats.lost()), (20, 0), "{stats:?}");
    drop(observer);
    collector.kill().unwrap();
    collector.wait().unwrap();
}

/// `crux runs --db --since/--until` filters in the database's query: a run older than the
/// newest 10 000 (the most listed) is listed when the bounds keep it.
#[test]
fn runs_db_time_bounds_reach_past_the_newest_listed_runs() {
    use crux::devtools::collector::Store;
    let dir = TempDir::new("devtools-bounds");
    let db = dir.path().join("devtools.db");
    let mut store = Store::open(&db).unwrap();
    let record = |r: u32, started: String| {
        serde_json::json!({
            "schemaVersion": 5, "recordId": format!("rec_{r}"), "runId": format!("run_{r:05}"),
            "operationId": format!("run_{r:05}"), "segmentId": format!("seg_{r:05}"),
            "segmentSeq": 1, "traceId": "0af7651916cd43dd8448eb211c80319c",
            "type": "run:start", "name": format!("run {r}"), "rootPrimitive": "agent.run",
            "startedAt": started, "status": "running"
        })
    };
    // Run 0 started in 2020; 10 000 newer ones in 2026.
    let mut records = vec![record(0, "2020-01-01T00:00:00.000Z".to_owned())];
    for r in 1..=10_000u32 {
        records.push(record(
            r,
            format!(
                "2026-01-01T{:02}:{:02}:{:02}.000Z",
                r / 3600,
                (r / 60) % 60,
                r % 60
            ),
        ));
    }
    assert!(store.ingest(5, &records).unwrap().iter().all(Result::is_ok));
    drop(store);
    let db = db.to_str().unwrap();
    let listed = crux(&["runs", "--db", db, "--until", "2021-01-01"]);
    assert!(listed.contains("run_00000"), "{listed}");
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let listed = crux(&["runs", "--db", db, "--since", "2026-01-01T02:46:40Z"]);
    assert!(listed.contains("run_10000"), "{listed}");
    assert_eq!(listed.lines().count(), 2, "{listed}");
}
