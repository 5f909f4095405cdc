//! Overhead of crux against the tracing ecosystem, in one run (see `BENCHMARKS.md`):
//!
//! ```text
//! cargo bench -p crux-runtime --bench overhead -- --sample-count 100 --sample-size 1000
//! ```
//!
//! Global state (tracing's dispatcher, fastrace's reporter, the crux observers) is set up
//! once in `main`, before divan runs.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use crux_runtime::delivery::{FlushOptions, FlushStatus};
use crux_runtime::envelope::{Envelope, WireContext};
use crux_runtime::observe::{Observer, RunOptions, Scope};
use crux_runtime::record::SpanStatus;
use crux_runtime::sink::JsonLines;
use divan::Bencher;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use serde::{Deserialize, Serialize};

mod shared;
use shared::{BATCH, DropReporter, fast};

fn main() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry())
        .expect("no other subscriber in this binary");
    fastrace::set_reporter(DropReporter, fastrace::collector::Config::default());
    divan::main();
    drain_crux();
    if std::env::var_os("CRUX_BENCH_SKIP_THROUGHPUT").is_none() {
        json_lines_throughput();
    }
}

#[derive(Debug)]
struct NoopExporter;
impl opentelemetry_sdk::trace::SpanExporter for NoopExporter {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

/// A run with a bounded Memory sink (so tens of millions of iterations stay in memory).
fn crux_scope() -> &'static Scope {
    &crux_bench().1
}

/// The crux benches' observer and the run they record into, made on first use.
static BENCH: OnceLock<(Observer, Scope)> = OnceLock::new();

fn crux_bench() -> &'static (Observer, Scope) {
    BENCH.get_or_init(|| {
        let observer = shared::span_observer();
        let run = observer.open_run(RunOptions::new("bench", "agent.run"));
        let scope = run.scope();
        std::mem::forget(run);
        (observer, scope)
    })
}

/// Waits (at most 5 s) until the crux benches' queue is empty, so the records a bench
/// left behind are delivered before the next bench samples (the worker would otherwise
/// compete with it for a core, and callgrind's "other threads" would miss them at exit).
fn drain_crux() {
    if let Some((observer, _)) = BENCH.get() {
        shared::wait_until_delivered(observer);
    }
}

mod span {
    use super::*;

    /// 100 crux spans (start + end: two records each) inside a run, Memory sink attached.
    #[divan::bench(counters = [divan::counter::ItemsCount::new(BATCH)])]
    fn crux(b: Bencher) {
        let scope = crux_scope();
        let _in_run = scope.enter();
        b.bench_local(|| {
            for _ in 0..BATCH {
                crux_runtime::observe::span("step", "tool.call")
                    .start()
                    .end(SpanStatus::Ok);
            }
        });
        drain_crux();
    }

    /// 100 generation spans with typed `model`/`provider` and three token metrics: the
    /// cost of the typed fields against `crux` above.
    #[divan::bench(counters = [divan::counter::ItemsCount::new(BATCH)])]
    fn crux_typed_generation(b: Bencher) {
        let scope = crux_scope();
        let _in_run = scope.enter();
        b.bench_local(|| {
            for _ in 0..BATCH {
                let mut span = crux_runtime::observe::span("draft", "generation.call")
                    .model("gpt-5-mini")
                    .provider("openai")
                    .start();
                span.set_metrics(crux_runtime::observe::Metrics::tokens(812, 96));
                span.end(SpanStatus::Ok);
            }
        });
        drain_crux();
    }

    /// The same generation span recorded the old way, with attributes only: the baseline
    /// for `crux_typed_generation`.
    #[divan::bench(counters = [divan::counter::ItemsCount::new(BATCH)])]
    fn crux_attribute_generation(b: Bencher) {
        let scope = crux_scope();
        let _in_run = scope.enter();
        b.bench_local(|| {
            for _ in 0..BATCH {
                let mut span = crux_runtime::observe::span("draft", "generation.call")
                    .attr("model", "gpt-5-mini")
                    .attr("provider", "openai")
                    .start();
                span.set_attr("inputTokens", 812);
                span.set_attr("outputTokens", 96);
                span.set_attr("totalTokens", 908);
                span.end(SpanStatus::Ok);
            }
        });
        drain_crux();
    }

    /// The same through an explicit scope (no thread-local lookup).
    #[divan::bench(counters = [divan::counter::ItemsCount::new(BATCH)])]
    fn crux_explicit_scope(b: Bencher) {
        let scope = crux_scope();
        b.bench_local(|| {
            for _ in 0..BATCH {
                scope.span("step", "tool.call").start().end(SpanStatus::Ok);
            }
        });
        drain_crux();
    }

    #[tracing::instrument(skip_all)]
    #[inline(never)]
    fn traced() {
        black_box(());
    }

    /// 100 `#[tracing::instrument]` calls with a `registry()` subscriber, as children of an
    /// entered span.
    #[divan::bench(counters = [divan::counter::ItemsCount::new(BATCH)])]
    fn tracing_instrument(b: Bencher) {
        let root = tracing::info_span!("root");
        let _entered = root.enter();
        b.bench_local(|| {
            for _ in 0..BATCH {
                traced();
            }
        });
    }

    /// 100 fastrace `#[trace]` calls under a local parent (opened per batch, as fastrace
    /// drops spans beyond 10 240 per parent), reporter set.
    #[divan::bench(counters = [divan::counter::ItemsCount::new(BATCH)])]
    fn fastrace_trace(b: Bencher) {
        b.bench_local(|| {
            let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
            let _guard = root.set_local_parent();
            for _ in 0..BATCH {
                fast();
            }
        });
    }

    /// 100 OpenTelemetry SDK `tracer.start()` + `end()`, simple processor, no-op exporter.
    #[divan::bench(counters = [divan::counter::ItemsCount::new(BATCH)])]
    fn otel_sdk(b: Bencher) {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(NoopExporter)
            .build();
        let tracer = provider.tracer("bench");
        b.bench_local(|| {
            for _ in 0..BATCH {
                let mut span = tracer.start("step");
                span.end();
            }
        });
    }
}

mod parts {
    /// One wall-clock read (two per span).
    #[divan::bench]
    fn timestamp_now() -> crux_runtime::clock::Timestamp {
        crux_runtime::clock::Timestamp::now()
    }

    /// One span id.
    #[divan::bench]
    fn span_id() -> crux_runtime::ids::SpanId {
        crux_runtime::ids::SpanId::generate()
    }

    /// The delivery worker's schema check of one span's two records (`span:start`,
    /// `span:end`), as `observe::span(..).start().end(Ok)` records them.
    #[divan::bench]
    fn validate_span_records(b: divan::Bencher) {
        use crux_runtime::observe::{Observer, RunOptions};
        use crux_runtime::record::{Record, SpanStatus};
        let memory = crux_runtime::sink::Memory::new();
        let observer = Observer::builder().sink(memory.clone()).build();
        let run = observer.open_run(RunOptions::new("bench", "agent.run"));
        run.scope()
            .span("step", "tool.call")
            .start()
            .end(SpanStatus::Ok);
        observer.flush_blocking(crux_runtime::delivery::FlushOptions::FINAL);
        let records: Vec<Record> = memory
            .typed_records()
            .into_iter()
            .filter(|r| r.kind().starts_with("span:"))
            .collect();
        assert_eq!(records.len(), 2);
        b.bench_local(|| {
            for r in std::hint::black_box(&records) {
                std::hint::black_box(r.validate()).ok();
            }
        });
    }

    /// The bounded Memory sink (as the span benches') keeping a delivered batch of 60 001
    /// records (`run:start` and 30 000 spans), six times its bound, handed over as the worker hands it: under a
    /// tight loop of spans on a busy machine the worker's batches are this large.
    #[divan::bench(sample_count = 20, sample_size = 1)]
    fn memory_keep_batch_past_the_bound(b: divan::Bencher) {
        use crux_runtime::observe::{Observer, RunOptions};
        use crux_runtime::record::{Record, SpanStatus};
        use crux_runtime::sink::Sink;
        let all = crux_runtime::sink::Memory::new();
        let observer = Observer::builder().sink(all.clone()).build();
        let run = observer.open_run(RunOptions::new("bench", "agent.run"));
        for _ in 0..30_000 {
            run.scope()
                .span("step", "tool.call")
                .start()
                .end(SpanStatus::Ok);
        }
        observer.flush_blocking(crux_runtime::delivery::FlushOptions::FINAL);
        let records: Vec<Record> = all.typed_records();
        assert_eq!(
            records.len(),
            60_001,
            "the setup's flush delivered everything"
        );
        let memory = crux_runtime::sink::Memory::bounded(10_000);
        b.with_inputs(|| records.clone())
            .bench_local_refs(|batch| memory.write_owned(batch));
    }
}

/// The same fields as a captured context with a two-span stack plus a boundary, as
/// plain strings: what a bare serde round trip costs.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlainEnvelope {
    v: u32,
    observability: PlainContext,
    boundary: PlainBoundary,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlainContext {
    run_id: String,
    operation_id: String,
    trace_id: String,
    segment_id: String,
    span_stack: Vec<String>,
    current_span_id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlainBoundary {
    id: String,
    span_id: String,
    kind: String,
    label: String,
    #[serde(rename = "ref")]
    function_ref: String,
    parent_span_stack: Vec<String>,
    lease_expires_at: String,
}

fn sample_envelope() -> Envelope {
    let scope = crux_scope();
    let outer = scope.span("outer", "agent.run").start();
    let boundary = outer
        .scope()
        .unwrap()
        .span("plan", "runtime.convex.action")
        .start();
    let ctx: WireContext = boundary.scope().unwrap().wire_context();
    let json = serde_json::json!({
        "v": 1,
        "observability": ctx,
        "boundary": {
            "id": boundary.id().unwrap(), "spanId": boundary.id().unwrap(), "kind": "action",
            "label": "plan research", "ref": "research:plan",
            "parentSpanStack": ctx.span_stack, "leaseExpiresAt": "2026-01-02T03:15:05.678Z"
        }
    });
    Envelope::decode(&json).unwrap()
}

mod envelope {
    use super::*;

    /// `__crux` encode to JSON text (`to_json_string`, what a `ctx.crux` hop sends), then
    /// strict decode of that text.
    #[divan::bench]
    fn crux_encode_decode(b: Bencher) {
        let env = sample_envelope();
        b.bench_local(|| {
            let text = black_box(&env).to_json_string();
            Envelope::decode_str(&text).unwrap()
        });
    }

    /// The same through a `serde_json::Value` tree (parse, then `Envelope::decode`).
    #[divan::bench]
    fn crux_encode_decode_via_value(b: Bencher) {
        let env = sample_envelope();
        b.bench_local(|| {
            let text = serde_json::to_string(black_box(&env)).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            Envelope::decode(&value).unwrap()
        });
    }

    /// Encode only: `Envelope` to JSON text.
    #[divan::bench]
    fn crux_encode(b: Bencher) {
        let env = sample_envelope();
        b.bench_local(|| black_box(&env).to_json_string());
    }

    /// Encode only, through the serde derive (the same text).
    #[divan::bench]
    fn crux_encode_serde(b: Bencher) {
        let env = sample_envelope();
        b.bench_local(|| serde_json::to_string(black_box(&env)).unwrap());
    }

    /// Strict decode only, from an already parsed `serde_json::Value` (what a host that
    /// took `__crux` out of the argument object holds).
    #[divan::bench]
    fn crux_decode_value(b: Bencher) {
        let value = sample_envelope().to_value();
        b.bench_local(|| Envelope::decode(black_box(&value)).unwrap());
    }

    /// Parsing the text into a `serde_json::Value` only.
    #[divan::bench]
    fn parse_value(b: Bencher) {
        let text = serde_json::to_string(&sample_envelope()).unwrap();
        b.bench_local(|| serde_json::from_str::<serde_json::Value>(black_box(&text)).unwrap());
    }

    /// The same fields through a bare serde_json derive round trip (no validation).
    #[divan::bench]
    fn serde_json_round_trip(b: Bencher) {
        let text = serde_json::to_string(&sample_envelope()).unwrap();
        let plain: PlainEnvelope = serde_json::from_str(&text).unwrap();
        b.bench_local(|| {
            let text = serde_json::to_string(black_box(&plain)).unwrap();
            serde_json::from_str::<PlainEnvelope>(&text).unwrap()
        });
    }
}

/// Sustained throughput into the JSON Lines sink, measured outside divan so that its
/// size never depends on divan's sample flags: 5 rounds of 200 000 records (100 000
/// spans) each, every record delivered, the file removed afterwards.
fn json_lines_throughput() {
    const SPANS: usize = 100_000;
    const ROUNDS: usize = 5;
    let dir = std::env::temp_dir().join(format!("crux-bench-{}", std::process::id()));
    let sink = JsonLines::open(dir.join("records.jsonl")).unwrap();
    let observer = Observer::builder().sink(sink).capacity(4 * SPANS).build();
    let run = observer.open_run(RunOptions::new("bench", "agent.run"));
    let scope = run.scope();
    observer.flush_blocking(FlushOptions::FINAL);
    let mut rates = Vec::new();
    for _ in 0..ROUNDS {
        let before = observer.stats();
        let started = std::time::Instant::now();
        for _ in 0..SPANS {
            scope.span("step", "tool.call").start().end(SpanStatus::Ok);
        }
        let result = observer.flush_blocking(FlushOptions {
            timeout: Duration::from_secs(60),
            terminal: false,
        });
        let took = started.elapsed();
        let after = observer.stats();
        assert_eq!(result.status, FlushStatus::Drained);
        assert_eq!(
            after.delivered - before.delivered,
            2 * SPANS as u64,
            "nothing lost"
        );
        assert_eq!(after.dropped, 0);
        rates.push(2.0 * SPANS as f64 / took.as_secs_f64());
    }
    drop(run);
    let _ = std::fs::remove_dir_all(&dir);
    rates.sort_by(f64::total_cmp);
    println!(
        "json_lines_throughput: {} records x {ROUNDS} rounds, all delivered; records/s min {:.0} median {:.0} max {:.0}",
        2 * SPANS,
        rates[0],
        rates[ROUNDS / 2],
        rates[ROUNDS - 1]
    );
}
