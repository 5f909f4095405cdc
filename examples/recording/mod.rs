//! Where the examples record, and how they print it.
//!
//! Each example records to `.crux/records.jsonl` (appended; what the `crux` viewer reads)
//! and to a `sink::Memory`, whose runs it prints as trees at the end. Built with
//! `--features otel` and run with `OTEL_EXPORTER_OTLP_ENDPOINT` set, it also exports to
//! that OpenTelemetry collector (Arize Phoenix, for one: see the README).

use std::time::Duration;

use crux::ids::RunId;
use crux::local::{Deployment, DeploymentBuilder};
use crux::sink::{JsonLines, Memory};

/// Adds the examples' sinks to `builder`; the `Memory` is what [`print_runs`] prints.
pub fn sinks(builder: DeploymentBuilder) -> crux::Result<(DeploymentBuilder, Memory)> {
    let memory = Memory::new();
    #[allow(unused_mut)]
    let mut builder = builder
        .sink(JsonLines::open(JsonLines::default_path())?)
        .sink(memory.clone());
    #[cfg(feature = "otel")]
    if let Some(otlp) = crux::otel::OtlpSink::from_env() {
        eprintln!("also exporting over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT is set)");
        builder = builder.sink(otlp);
    }
    Ok((builder, memory))
}

/// Waits (at most 3 s) for every record to reach the sinks, then prints each run `memory`
/// received as a tree, in the order the runs first appeared.
pub async fn print_runs(deployment: &Deployment, memory: &Memory) {
    let flushed = deployment.flush(Duration::from_secs(3)).await;
    let records = memory.records();
    let mut runs: Vec<RunId> = Vec::new();
    for record in &records {
        let run = record["runId"].as_str().and_then(|id| id.parse().ok());
        if let Some(run) = run.filter(|run| !runs.contains(run)) {
            runs.push(run);
        }
    }
    for run in runs {
        println!("\n{run}\n{}", memory.render_tree(run).trim_end());
    }
    println!(
        "\n{} records ({:?}) appended to {}",
        records.len(),
        flushed.status,
        JsonLines::default_path().display(),
    );
}
