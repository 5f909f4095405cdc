//! Encoding records as JSON text, per record: `serde_json::to_writer` (the `Serialize`
//! impl) against `Record::write_json`, on the records of one served request (see
//! `BENCHMARKS.md`, session 13, json13):
//!
//! ```text
//! cargo bench -p crux-runtime --bench record_json
//! ```
//!
//! The records are the twelve a server records for the throughput bench's action (two
//! `run_action` hops): the outer action's run opened by `receive`, two `Hop`s to the inner
//! action, each received by an inner `receive` continuing the caller's context (boundary spans, `requested`/`received`/
//! `completed` events with the boundary's attributes), built through the public API into
//! a `Memory` sink. `CRUX_RECORD_JSON_ROUNDS=N` skips divan and encodes the set N times
//! with the writer named by `CRUX_RECORD_JSON_WRITER` (`serde` or `direct`): for callgrind.
//! `CRUX_RECORD_JSON_KIND=span:end` (a record type) keeps only the records of that type in
//! those rounds, for a count per kind; `CRUX_RECORD_JSON_PRINT=1` prints the set as JSON
//! Lines and exits.

use std::hint::black_box;
use std::sync::OnceLock;

use crux_runtime::boundary::{Hop, Incoming, receive};
use crux_runtime::delivery::FlushOptions;
use crux_runtime::function::{FunctionKind, Metadata, Visibility};
use crux_runtime::observe::Observer;
use crux_runtime::record::Record;
use crux_runtime::sink::Memory;
use divan::Bencher;
use divan::counter::ItemsCount;

fn main() {
    if let Some(rounds) = std::env::var("CRUX_RECORD_JSON_ROUNDS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        let direct = std::env::var("CRUX_RECORD_JSON_WRITER").as_deref() != Ok("serde");
        let kind = std::env::var("CRUX_RECORD_JSON_KIND").ok();
        let records: Vec<&Record> = served_records()
            .iter()
            .filter(|r| kind.as_deref().is_none_or(|k| r.kind() == k))
            .collect();
        let mut out = Vec::with_capacity(4096);
        for _ in 0..rounds {
            for r in &records {
                out.clear();
                if direct {
                    r.write_json(&mut out);
                } else {
                    serde_json::to_writer(&mut out, r).unwrap();
                }
                black_box(&out);
            }
        }
        println!(
            "{} records x {rounds} rounds, {}",
            records.len(),
            if direct {
                "write_json"
            } else {
                "serde_json::to_writer"
            }
        );
        return;
    }
    let records = served_records();
    if std::env::var_os("CRUX_RECORD_JSON_PRINT").is_some() {
        for r in records {
            println!("{}", serde_json::to_string(r).unwrap());
        }
        return;
    }
    let bytes: usize = records
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap().len())
        .sum();
    let kinds: Vec<&str> = records.iter().map(Record::kind).collect();
    println!(
        "{} records, {bytes} bytes of JSON: {}",
        records.len(),
        kinds.join(" ")
    );
    divan::main();
}

const fn action(export: &'static str) -> Metadata {
    Metadata {
        kind: FunctionKind::Action,
        visibility: Visibility::Public,
        module_path: "bench::served",
        export,
        path: None,
        name: None,
        root: None,
        attributes: &[],
        flush: None,
    }
}

static OUTER: Metadata = action("outer");
static INNER: Metadata = action("inner");

/// The records of one served request (a client's call to an action making two hops),
/// as delivered (record ids assigned).
fn served_records() -> &'static [Record] {
    static RECORDS: OnceLock<Vec<Record>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let memory = Memory::new();
        let observer = Observer::builder().sink(memory.clone()).build();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let o = &observer;
        let result = runtime.block_on(receive(o, None, &OUTER, &Incoming::default(), async move {
            for label in ["first step", "second step"] {
                let mut hop = Hop::action(label, "served:inner");
                let envelope = hop.envelope().map(Box::new);
                let incoming = Incoming {
                    caller_flushes: true,
                    ..Incoming::default()
                };
                let reply = receive(o, envelope, &INNER, &incoming, async {
                    Ok::<_, crux_runtime::Error>(())
                })
                .await;
                hop.end(&reply);
                reply?;
            }
            Ok(())
        }));
        result.unwrap();
        observer.flush_blocking(FlushOptions::FINAL);
        memory.typed_records()
    })
}

#[divan::bench]
fn serde_to_writer(bencher: Bencher) {
    let records = served_records();
    let mut out = Vec::with_capacity(4096);
    bencher
        .counter(ItemsCount::new(records.len()))
        .bench_local(|| {
            for r in records {
                out.clear();
                serde_json::to_writer(&mut out, black_box(r)).unwrap();
                black_box(&out);
            }
        });
}

#[divan::bench]
fn write_json(bencher: Bencher) {
    let records = served_records();
    let mut out = Vec::with_capacity(4096);
    bencher
        .counter(ItemsCount::new(records.len()))
        .bench_local(|| {
            for r in records {
                out.clear();
                black_box(r).write_json(&mut out);
                black_box(&out);
            }
        });
}
