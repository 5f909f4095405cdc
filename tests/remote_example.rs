//! `cargo run --example remote --features client`: one run across two OS processes in one
//! store, printed as `crux show` prints it.
#![cfg(feature = "client")]

mod example_stores;

use std::collections::BTreeSet;

use example_stores::{TempDir, read_store, run_example, store_path};
use serde_json::Value;

#[test]
fn the_remote_example_writes_one_run_from_two_processes() {
    let dir = TempDir::new("remote-example");
    let out = run_example("remote", dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records = read_store(&store_path(dir.path()));

    let starts: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "run:start")
        .collect();
    assert_eq!(starts.len(), 1, "one run: {starts:#?}");
    assert_eq!(starts[0]["name"], "support chat");
    let run_id = &starts[0]["runId"];
    assert!(records.iter().all(|r| &r["runId"] == run_id));
    let segments: BTreeSet<String> = records.iter().map(|r| r["segmentId"].to_string()).collect();
    assert_eq!(segments.len(), 2, "one segment per process");

    let span = |name: &str| {
        records
            .iter()
            .find(|r| r["type"] == "span:start" && r["name"] == name)
            .unwrap_or_else(|| panic!("no span {name:?}"))
    };
    let boundary = span("plan research");
    assert_eq!(boundary["attributes"]["functionRef"], "research:plan");
    // The research process's work hangs under this process's boundary span.
    let search = span("search the archive");
    assert_eq!(search["parentSpanId"], boundary["spanId"]);
    assert_ne!(search["segmentId"], boundary["segmentId"]);
    let acks: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "span:event" && r["spanId"] == boundary["spanId"])
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        acks,
        [
            "runtime.convex.boundary.requested",
            "runtime.convex.boundary.received",
            "runtime.convex.boundary.completed"
        ]
    );

    // The printout is the viewer's text for that run.
    let shown = crux::view::Trees::from_values(&records).to_string();
    assert!(
        stdout.contains(shown.trim_end()),
        "stdout:\n{stdout}\nviewer:\n{shown}"
    );
    assert!(
        stdout.contains("reply: I will check billing ledger"),
        "{stdout}"
    );
}
