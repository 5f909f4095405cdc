//! Where the examples record, and how they print it.
//!
//! Each example records to `.crux/records.jsonl` (appended; what the `crux` viewer reads)
//! and to a `sink::Memory`, whose runs it prints at the end as the `crux` viewer shows
//! them (`crux::view::Trees`: the same text as `crux show RUN`). Built with
//! `--features otel` and run with `OTEL_EXPORTER_OTLP_ENDPOINT` set, it also exports to
//! that OpenTelemetry collector (Arize Phoenix, for one: see the README). Built with
//! `--features devtools` and run with `CRUX_DEVTOOLS_URL` set, it also delivers to that
//! devtools collector (`crux serve`).

use std::time::Duration;

use crux::local::{Deployment, DeploymentBuilder};
use crux::sink::{JsonLines, Memory};

/// Adds the examples' sinks to `builder`; the `Memory` is what [`print_runs`] prints.
pub fn sinks(builder: DeploymentBuilder) -> crux::Result<(DeploymentBuilder, Memory)> {
    let memory = Memory::new();
    // Last: the last sink is handed the delivered records to keep (no copy).
    let builder = outward_sinks(builder)?.sink(memory.clone());
    Ok((builder, memory))
}

/// The sinks whose records leave the process: the records file, and the OpenTelemetry and
/// devtools collectors when configured. Without the `Memory` of [`sinks`]: a server prints
/// no runs, and an unbounded `Memory` would keep every record it ever made.
pub fn outward_sinks(builder: DeploymentBuilder) -> crux::Result<DeploymentBuilder> {
    // A file in the working directory, on a local disk: flushes may write it
    // themselves instead of handing each one to the delivery thread.
    #[allow(unused_mut)]
    let mut builder = builder.sink(JsonLines::open(JsonLines::default_path())?.prompt());
    #[cfg(feature = "otel")]
    if let Some(otlp) = crux::otel::OtlpSink::from_env() {
        eprintln!("also exporting over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT is set)");
        builder = builder.sink(otlp);
    }
    #[cfg(feature = "devtools")]
    if let Some(devtools) = crux::devtools::DevtoolsSink::from_env() {
        eprintln!(
            "also delivering to the devtools collector at {}",
            devtools.endpoint()
        );
        builder = builder.sink(devtools);
    }
    Ok(builder)
}

/// Waits (at most 3 s) for every record to reach the sinks, then prints each run `memory`
/// received as a tree, in the order the runs first appeared, as `crux show RUN` prints it.
pub async fn print_runs(deployment: &Deployment, memory: &Memory) {
    let flushed = deployment.flush(Duration::from_secs(3)).await;
    let records = memory.records();
    let trees = crux::view::Trees::from_values(&records).to_string();
    println!("\n{}", trees.trim_end());
    println!(
        "\n{} records ({:?}) appended to {}",
        records.len(),
        flushed.status,
        JsonLines::default_path().display(),
    );
}
