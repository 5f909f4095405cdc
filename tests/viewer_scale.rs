//! The viewer on big stores: `crux runs`, `show` and `search` stream a JSON Lines store
//! instead of loading it, so a store far larger than the memory they may use still works.
//!
//! The stores are generated: the fixture stores' records repeated with fresh ids (every id
//! gets a `.N` suffix for copy N, so runs, segments, spans and links stay consistent).
//! `CRUX_BIG_STORE=/tmp/big.jsonl CRUX_BIG_STORE_MB=200 cargo test --test viewer_scale --
//! --ignored write_a_big_store` writes one for measuring (see README, "Big stores").
// The binary is built with the `cli` feature (a default one).
#![cfg(feature = "cli")]

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The record fields holding ids, and the edge-end field `id`.
const ID_FIELDS: [&str; 14] = [
    "recordId",
    "runId",
    "operationId",
    "segmentId",
    "spanId",
    "parentSpanId",
    "traceId",
    "parentRunId",
    "triggeredBySpanId",
    "previousSegmentId",
    "eventId",
    "artifactId",
    "edgeId",
    "id",
];

fn template() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stores");
    ["research.jsonl", "runtime_core.jsonl"]
        .iter()
        .flat_map(|name| {
            std::fs::read_to_string(dir.join(name))
                .expect("fixture store")
                .lines()
                .map(|line| serde_json::from_str::<Value>(line).expect("clean fixture line"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn rename_ids(value: &mut Value, copy: usize) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match field {
                    Value::String(id) if ID_FIELDS.contains(&key.as_str()) => {
                        assert!(!id.contains('.'), "template ids have no dots: {id}");
                        id.push_str(&format!(".{copy}"));
                    }
                    _ => rename_ids(field, copy),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rename_ids(item, copy)),
        _ => {}
    }
}

/// Writes a store of at least `bytes` bytes at `path`: copies of the template numbered
/// from `first`, each with its own ids. Returns how many copies it wrote.
fn write_store(path: &Path, bytes: u64, first: usize) -> usize {
    let template = template();
    let mut out = BufWriter::new(std::fs::File::create(path).expect("create the store"));
    let (mut written, mut copies) = (0u64, 0);
    while written < bytes || copies == 0 {
        for record in &template {
            let mut record = record.clone();
            rename_ids(&mut record, first + copies);
            let line = serde_json::to_string(&record).unwrap();
            writeln!(out, "{line}").unwrap();
            written += line.len() as u64 + 1;
        }
        copies += 1;
    }
    out.flush().unwrap();
    copies
}

/// Runs `crux ARGS --store STORE` with its address space capped at `limit_mb` MiB (`sh -c
/// 'ulimit -v ..; exec crux ..'`); returns (exit code, stdout, stderr).
fn crux_limited(store: &Path, limit_mb: u64, args: &[&str]) -> (i32, String, String) {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {}; exec \"$0\" \"$@\"", limit_mb * 1024))
        .arg(env!("CARGO_BIN_EXE_crux"))
        .args(args)
        .arg("--store")
        .arg(store)
        .env("CRUX_DEBUG_STATS", "1")
        .output()
        .expect("run sh");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// "records read R, records held at most H" from the binary's `CRUX_DEBUG_STATS` line.
fn stats(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("crux: stats: records read "))
        .unwrap_or_else(|| panic!("no stats line in {stderr:?}"));
    let (read, held) = line
        .split_once(", records held at most ")
        .expect("stats line");
    (read.parse().unwrap(), held.parse().unwrap())
}

struct TempStore(PathBuf);

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_store(label: &str) -> TempStore {
    TempStore(std::env::temp_dir().join(format!(
        "crux-viewer-scale-{label}-{}.jsonl",
        std::process::id()
    )))
}

/// A 40 MB store (about 83 000 records, 9 000 runs): loading it whole takes about five
/// times its size (190 MB resident before streaming), so a 64 MiB address space (the
/// binary itself needs a few) is too small for that and ample for streaming `runs`,
/// `show` and a narrow `search`; a search matching two runs of every five gets 128 MiB.
/// Each output is checked against the same command on a store of one copy. The stats line
/// (`CRUX_DEBUG_STATS`) says the same without depending on the allocator: how many
/// records each command held at once.
#[test]
fn a_store_larger_than_the_memory_allowed_is_listed_shown_and_searched() {
    let store = temp_store("big");
    let copies = write_store(&store.0, 40 << 20, 0);
    let records = copies * template().len();
    // The last copy alone: its runs are the newest of the big store (same times, later
    // lines), with the same ids.
    let one = temp_store("one");
    write_store(&one.0, 0, copies - 1);
    let unlimited = 1 << 20;

    let (code, out, err) = crux_limited(&store.0, 64, &["runs"]);
    assert_eq!(code, 0, "crux runs: {err}");
    let (_, one_out, _) = crux_limited(&one.0, unlimited, &["runs"]);
    let runs_per_copy = one_out.lines().count() - 1;
    assert_eq!(out.lines().count(), 1 + runs_per_copy * copies);
    let listed: HashSet<&str> = out.lines().collect();
    assert!(one_out.lines().all(|row| listed.contains(row)), "{one_out}");
    assert_eq!(stats(&err), (records, 0));

    let (code, out, err) = crux_limited(&store.0, 64, &["show", "latest"]);
    assert_eq!(code, 0, "crux show latest: {err}");
    assert_eq!(out, crux_limited(&one.0, unlimited, &["show", "latest"]).1);
    let (read, held) = stats(&err);
    assert_eq!(read, records);
    assert!(held <= template().len(), "show held {held} records");

    let (code, out, err) = crux_limited(&store.0, 64, &["search", "no such text"]);
    assert_eq!(code, 0, "crux search: {err}");
    assert_eq!(out, "no records match \"no such text\"\n");
    assert_eq!(stats(&err), (records, 0));

    let (code, out, err) = crux_limited(&store.0, 128, &["search", "support chat"]);
    assert_eq!(code, 0, "crux search: {err}");
    let one_out = crux_limited(&one.0, unlimited, &["search", "support chat"]).1;
    let count = |text: &str| -> usize {
        let last = text.lines().last().unwrap();
        last.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert_eq!(count(&out), count(&one_out) * copies);
    let found: HashSet<&str> = out.lines().collect();
    let mut hits = one_out.lines().rev().skip(1);
    assert!(hits.all(|line| found.contains(line)), "{one_out}");
    let (_, held) = stats(&err);
    assert!(held < records, "search held {held} of {records} records");
}

/// Writes `CRUX_BIG_STORE` (default `/tmp/crux-big.jsonl`) of `CRUX_BIG_STORE_MB` MiB
/// (default 200) for measuring the viewer by hand.
#[test]
#[ignore = "writes a big file for measurements; run by hand"]
fn write_a_big_store() {
    let path = std::env::var("CRUX_BIG_STORE").unwrap_or_else(|_| "/tmp/crux-big.jsonl".into());
    let mb: u64 = std::env::var("CRUX_BIG_STORE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let copies = write_store(Path::new(&path), mb << 20, 0);
    println!("{path}: {copies} copies of the template");
}
