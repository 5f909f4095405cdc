//! The devtools at scale: a store of 1 000 000 records (100 000 runs of 10) as a collector
//! database and as a JSON Lines file with the same records, and the time to list and to
//! search them, each command timed as a user runs it (a fresh `crux` process, or one
//! `GET` to a running collector), the JSON Lines scan being the baseline of the same run.
//!
//! `cargo bench --bench devtools_scale --features devtools-collector`
//! (`CRUX_SCALE_RUNS`, default 100 000; `CRUX_BENCH_REPEAT` rounds, default 5). The two
//! stores are built once under the temp dir and reused.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crux::devtools::collector::{Collector, CollectorOptions, Store};
use serde_json::Value;

/// A 16-hex-digit id from a counter (splitmix64), so ids look random but repeat per run.
fn hex(n: u64) -> String {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{:016x}", z ^ (z >> 31))
}

/// The 10 records of run `r`: start, 4 spans (start + end), end.
fn run_records(r: u64) -> Vec<String> {
    let run = format!("run_{}{}", hex(r), &hex(r + 1)[..8]);
    let seg = format!("seg_{}{}", hex(r + 2), &hex(r + 3)[..8]);
    let trace = format!("{}{}", hex(r + 4), hex(r + 5));
    let secs = r % 86_400;
    let at = |ms: u64| {
        format!(
            "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            1 + (r / 86_400) % 28,
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            ms
        )
    };
    let base = |seq: u64, kind: &str| {
        format!(
            r#""schemaVersion":5,"recordId":"rec_{}_{seq}","runId":"{run}","operationId":"{run}","segmentId":"{seg}","segmentSeq":{seq},"traceId":"{trace}","type":"{kind}""#,
            hex(r)
        )
    };
    let mut out = vec![format!(
        r#"{{{},"name":"support chat {}","rootPrimitive":"agent.run","startedAt":"{}","status":"running","sessionId":"session-{}","userId":"user-{}","attributes":{{"threadId":"thread-{r}"}}}}"#,
        base(1, "run:start"),
        r % 50,
        at(0),
        r % 1000,
        r % 97
    )];
    let mut seq = 2;
    for i in 0..4u64 {
        let span = hex(r * 8 + i + 100);
        out.push(format!(
            r#"{{{},"spanId":"{span}","parentSpanId":null,"family":"generation","primitive":"generation.call","name":"step {i} of run {r}","model":"stand-in","startedAt":"{}","status":"running","attributes":{{"topic":"topic-{}"}}}}"#,
            base(seq, "span:start"),
            at(10 * i + 1),
            (r + i) % 1000
        ));
        out.push(format!(
            r#"{{{},"spanId":"{span}","endedAt":"{}","durationMs":8,"status":"ok","metrics":{{"inputTokens":10,"outputTokens":20,"totalTokens":30}}}}"#,
            base(seq + 1, "span:end"),
            at(10 * i + 9)
        ));
        seq += 2;
    }
    out.push(format!(
        r#"{{{},"endedAt":"{}","durationMs":50,"status":"{}"}}"#,
        base(seq, "run:end"),
        at(50),
        if r.is_multiple_of(10) { "error" } else { "ok" }
    ));
    out
}

/// Builds (or reuses) the JSON Lines store and the database holding the same records.
fn stores(runs: u64) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("crux-scale-{runs}"));
    let (jsonl, db) = (dir.join("records.jsonl"), dir.join("devtools.db"));
    let done = dir.join("complete");
    if done.exists() {
        return (jsonl, db);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let mut file = BufWriter::new(std::fs::File::create(&jsonl).unwrap());
    let mut store = Store::open(&db).unwrap();
    let mut batch: Vec<Value> = Vec::new();
    for r in 0..runs {
        for line in run_records(r) {
            writeln!(file, "{line}").unwrap();
            batch.push(serde_json::from_str(&line).unwrap());
        }
        if batch.len() >= 5_000 || r + 1 == runs {
            let results = store.ingest(5, &batch).unwrap();
            assert!(results.iter().all(Result::is_ok));
            batch.clear();
        }
    }
    file.flush().unwrap();
    drop(store);
    std::fs::write(&done, "").unwrap();
    eprintln!("built {} records in {:.1?}", runs * 10, started.elapsed());
    (jsonl, db)
}

fn crux(args: &[&str]) -> f64 {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_crux"))
        .args(args)
        .output()
        .expect("run crux");
    let ms = started.elapsed().as_secs_f64() * 1e3;
    assert!(
        out.status.success(),
        "crux {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ms
}

fn get(url: &str) -> f64 {
    let started = Instant::now();
    let body = ureq::get(url)
        .call()
        .unwrap()
        .into_body()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    assert!(body.starts_with('{'));
    ms
}

fn summary(name: &str, mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    println!(
        "{name:<44} median {median:>9.1} ms (min {:.1}, max {:.1})",
        ms[0],
        ms[ms.len() - 1]
    );
    median
}

fn main() {
    let runs: u64 = std::env::var("CRUX_SCALE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rounds: usize = std::env::var("CRUX_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (jsonl, db) = stores(runs);
    let (jsonl, db_s) = (jsonl.to_str().unwrap(), db.to_str().unwrap());
    let collector = Collector::start(CollectorOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: Path::new(db_s).to_path_buf(),
        token: None,
    })
    .unwrap();
    let base = collector.url();
    // The needle of one run, and one every run holds.
    let one = format!("step 2 of run {}", runs / 2);
    type Case<'a> = (&'a str, Box<dyn Fn() -> f64 + 'a>);
    let cases: Vec<Case> = vec![
        ("crux runs --db", Box::new(|| crux(&["runs", "--db", db_s]))),
        (
            "GET /api/runs",
            Box::new(|| get(&format!("{base}/api/runs"))),
        ),
        (
            "GET /api/runs?status=error&user=user-7",
            Box::new(|| get(&format!("{base}/api/runs?status=error&user=user-7"))),
        ),
        (
            "crux runs --store (JSON Lines)",
            Box::new(|| crux(&["runs", "--store", jsonl])),
        ),
        (
            "crux search ONE-SPAN --db",
            Box::new(|| crux(&["search", &one, "--db", db_s])),
        ),
        (
            "GET /api/runs?q=ONE-SPAN",
            Box::new(|| get(&format!("{base}/api/runs?q={}", one.replace(' ', "%20")))),
        ),
        (
            "crux search ONE-SPAN --store (JSON Lines)",
            Box::new(|| crux(&["search", &one, "--store", jsonl])),
        ),
        (
            "GET /api/search?q=topic-7 (200 runs of many)",
            Box::new(|| get(&format!("{base}/api/search?q=topic-7"))),
        ),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (_, case)) in cases.iter().enumerate() {
            times[i].push(case());
        }
    }
    println!("{} records ({runs} runs), {rounds} rounds:", runs * 10);
    let medians: Vec<f64> = cases
        .iter()
        .zip(times)
        .map(|((name, _), ms)| summary(name, ms))
        .collect();
    println!(
        "ratios: runs --db / runs --store {:.3}; GET /api/runs / runs --store {:.3}; \
         search --db / search --store {:.3}",
        medians[0] / medians[3],
        medians[1] / medians[3],
        medians[4] / medians[6]
    );
}
