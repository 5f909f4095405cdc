//! What the `tracing` layer and the OpenTelemetry sink cost, against in-run baselines:
//!
//! ```text
//! cargo bench -p crux-otel --bench otel -- --sample-count 100 --sample-size 1000
//! ```

use std::hint::black_box;
use std::sync::OnceLock;

use crux_otel::OtelSink;
use crux_runtime::attributes::Attributes;
use crux_runtime::clock::Timestamp;
use crux_runtime::ids::{RunId, SegmentId, SpanId, TraceId};
use crux_runtime::observe::{self, Observer, RunOptions, Scope};
use crux_runtime::record::{Base, Body, Metrics, Record, SpanField, SpanFields, SpanStatus};
use crux_runtime::sink::{Memory, Sink};
use crux_tracing::CruxLayer;
use divan::Bencher;
use tracing_subscriber::layer::SubscriberExt;

fn main() {
    divan::main();
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

/// A scope with an open span, on an observer with a bounded Memory sink.
fn span_scope() -> &'static Scope {
    static SCOPE: OnceLock<Scope> = OnceLock::new();
    SCOPE.get_or_init(|| {
        let observer = Observer::builder()
            .sink(Memory::bounded(10_000))
            .capacity(1 << 20)
            .build();
        let run = observer.open_run(RunOptions::new("bench", "agent.run"));
        let span = run.scope().span("work", "tool.call").start();
        let scope = span.scope().unwrap();
        std::mem::forget(span);
        std::mem::forget(run);
        scope
    })
}

mod tracing_event {
    use super::*;

    /// Baseline: the same event recorded with crux's own `observe::event`.
    #[divan::bench]
    fn crux_event_direct(b: Bencher) {
        let _in_span = span_scope().enter();
        b.bench_local(|| {
            observe::event(
                "looked up order",
                Attributes::new()
                    .with("level", "INFO")
                    .with("target", "bench")
                    .with("order_id", 42),
            )
        });
    }

    /// Baseline: `tracing::info!` with a registry and no layer, inside a crux span.
    #[divan::bench]
    fn registry_only(b: Bencher) {
        let _sub = tracing::subscriber::set_default(tracing_subscriber::registry());
        let _in_span = span_scope().enter();
        b.bench_local(|| tracing::info!(order_id = 42u64, "looked up order"));
    }

    /// `tracing::info!` through `CruxLayer`, outside any crux context (the cheap exit).
    #[divan::bench]
    fn crux_layer_outside_crux(b: Bencher) {
        let _sub =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(CruxLayer::new()));
        b.bench_local(|| tracing::info!(order_id = 42u64, "looked up order"));
    }

    /// `tracing::info!` through `CruxLayer` inside a crux span: a `span:event` record.
    #[divan::bench]
    fn crux_layer_inside_span(b: Bencher) {
        let _sub =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(CruxLayer::new()));
        let _in_span = span_scope().enter();
        b.bench_local(|| tracing::info!(order_id = 42u64, "looked up order"));
    }
}

mod tracing_span {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;

    /// One `tracing` span: created, entered, exited, closed.
    fn one_span() {
        tracing::info_span!("lookup order", order_id = 42u64).in_scope(|| black_box(1));
    }

    /// The same span without fields (`#[instrument(skip_all)]`'s kind).
    fn one_bare_span() {
        tracing::info_span!("lookup order").in_scope(|| black_box(1));
    }

    /// Baseline: the span with a registry and no layer, inside a crux span.
    #[divan::bench]
    fn registry_only(b: Bencher) {
        let _sub = tracing::subscriber::set_default(tracing_subscriber::registry());
        let _in_span = span_scope().enter();
        b.bench_local(one_span);
    }

    /// Baseline: the span without fields, registry alone.
    #[divan::bench]
    fn registry_only_no_fields(b: Bencher) {
        let _sub = tracing::subscriber::set_default(tracing_subscriber::registry());
        let _in_span = span_scope().enter();
        b.bench_local(one_bare_span);
    }

    /// A layer that does nothing, so the registry pays what any layer costs it (the
    /// `Layered` dispatch, the close guard): the floor under `CruxLayer`'s figures.
    struct NoopLayer;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for NoopLayer {}

    /// Baseline: the span with a registry and a layer that does nothing.
    #[divan::bench]
    fn noop_layer(b: Bencher) {
        let _sub = tracing::subscriber::set_default(tracing_subscriber::registry().with(NoopLayer));
        let _in_span = span_scope().enter();
        b.bench_local(one_span);
    }

    /// Baseline: the span through `tracing-opentelemetry`'s layer into the OTel SDK (simple
    /// processor, no-op exporter).
    #[divan::bench]
    fn tracing_opentelemetry(b: Bencher) {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(NoopExporter)
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
        let _sub = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        let _in_span = span_scope().enter();
        b.bench_local(one_span);
    }

    /// The span through `CruxLayer` outside any crux context (nothing recorded).
    #[divan::bench]
    fn crux_layer_outside_crux(b: Bencher) {
        let _sub =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(CruxLayer::new()));
        b.bench_local(one_span);
    }

    /// The span through `CruxLayer` inside a crux span: a Crux span (start + end records).
    #[divan::bench]
    fn crux_layer_inside_span(b: Bencher) {
        let _sub =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(CruxLayer::new()));
        let _in_span = span_scope().enter();
        b.bench_local(one_span);
    }

    /// The span without fields through `CruxLayer` inside a crux span: its attributes are
    /// `level` and `target` only, shared per callsite.
    #[divan::bench]
    fn crux_layer_inside_span_no_fields(b: Bencher) {
        let _sub =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(CruxLayer::new()));
        let _in_span = span_scope().enter();
        b.bench_local(one_bare_span);
    }
}

/// 100 spans' records (start + end) of one segment, as the delivery worker hands them to
/// a sink.
fn records() -> Vec<Record> {
    let (run_id, segment_id, trace_id) = (
        RunId::generate(),
        SegmentId::generate(),
        TraceId::generate(),
    );
    let base = |seq| Base {
        record_id: None,
        run_id,
        operation_id: run_id,
        segment_id,
        segment_seq: seq,
        trace_id,
        extra: None,
    };
    let now = Timestamp::now();
    let mut out = Vec::new();
    for i in 0..100u32 {
        let id = SpanId::generate();
        out.push(Record {
            base: base(2 * i + 2),
            body: Body::SpanStart {
                span_id: id,
                parent_span_id: None,
                primitive: "generation.call",
                name: "draft".into(),
                started_at: now,
                fields: {
                    let mut f = SpanFields::new();
                    f.set(SpanField::Model, "m");
                    f.set(SpanField::Provider, "p");
                    f
                },
                attributes: Attributes::new(),
            },
        });
        out.push(Record {
            base: base(2 * i + 3),
            body: Body::SpanEnd {
                span_id: id,
                ended_at: now,
                duration_ms: 0,
                status: SpanStatus::Ok,
                error: None,
                metrics: Metrics::tokens(10, 0),
                attributes: Attributes::new(),
            },
        });
    }
    out
}

mod sink_write {
    use super::*;

    /// Baseline: a bounded Memory sink taking 100 spans' records.
    #[divan::bench(counters = [divan::counter::ItemsCount::new(100usize)])]
    fn memory(b: Bencher) {
        let sink = Memory::bounded(10_000);
        let records = records();
        b.bench_local(|| sink.write(black_box(&records)));
    }

    /// `OtelSink` turning 100 spans' records into `SpanData` (export on its own thread).
    #[divan::bench(counters = [divan::counter::ItemsCount::new(100usize)])]
    fn otel(b: Bencher) {
        let sink = OtelSink::builder()
            .queue_capacity(1 << 16)
            .build(NoopExporter);
        let records = records();
        b.bench_local(|| sink.write(black_box(&records)));
    }
}
