//! Exports one support-chat-shaped Crux run to an OpenTelemetry backend.
//!
//! ```sh
//! phoenix serve &                                   # or any OTLP/HTTP collector
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:6006 \
//! OTEL_RESOURCE_ATTRIBUTES=openinference.project.name=crux \
//!     cargo run --example otel_export --features otel
//! ```
//!
//! Then open http://127.0.0.1:6006 and the `crux` project.

use crux::otel::OtlpSink;
use crux_runtime::attributes::Attributes;
use crux_runtime::delivery::FlushOptions;
use crux_runtime::observe::{self, Metrics, Observer, RunOptions, RunStatus, SpanStatus};

fn main() {
    let Some(otlp) = OtlpSink::from_env() else {
        eprintln!("set OTEL_EXPORTER_OTLP_ENDPOINT (for Phoenix: http://127.0.0.1:6006) to export");
        return;
    };
    let observer = Observer::builder().sink(otlp.clone()).build();

    let run = observer.open_run(
        RunOptions::new("support chat", "agent.run")
            .attributes(Attributes::new().with("agentId", "support-chat")),
    );
    {
        let _in_run = run.scope().enter();
        let plan = observe::span("plan research", "plan.operation").start();
        {
            let _in_plan = plan.scope().expect("recording").enter();
            let mut llm = observe::span("draft plan", "generation.call")
                .model("gpt-5-mini")
                .provider("openai")
                .start();
            llm.set_metrics(Metrics::tokens(812, 64));
            llm.end(SpanStatus::Ok);
        }
        plan.end(SpanStatus::Ok);
        let tool = observe::span("lookup order", "tool.call").start();
        tool.fail(&crux::Error::msg("order service timed out"));
    }
    let trace = run.trace_id();
    run.end(RunStatus::Ok);

    let flushed = observer.flush_blocking(FlushOptions::FINAL);
    let stats = otlp.stats();
    println!(
        "trace {trace}: flush {}, {} spans exported, {} not exported",
        flushed.status.as_str(),
        stats.exported,
        stats.not_exported()
    );
}
