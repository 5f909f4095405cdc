//! How the examples print what they recorded: every run as a tree.
//!
//! Each example records to two sinks: `.crux/records.jsonl` (appended; what the `crux`
//! viewer reads) and a `sink::Memory`, whose runs this prints at the end.

use std::time::Duration;

use crux::ids::RunId;
use crux::local::Deployment;
use crux::sink::{JsonLines, Memory};

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
