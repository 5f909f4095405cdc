//! The `crux` viewer on stores written by the real examples (not hand-built fixtures):
//! what a user sees after `cargo run --example support_chat` and friends.
// The binary is built with the `cli` feature (a default one).
#![cfg(feature = "cli")]

mod example_stores;

use std::path::Path;
use std::process::Command;

use example_stores::{EXAMPLES, TempDir, produce_store, read_store, run_example, store_path};
use serde_json::Value;

/// Runs `crux ARGS --store STORE`; returns (exit code, stdout, stderr).
fn crux(store: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_crux"))
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .expect("run the crux binary");
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

fn ok(store: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = crux(store, args);
    assert_eq!(code, 0, "crux {args:?} failed: {stderr}");
    assert!(
        stderr.is_empty(),
        "crux {args:?} warned on a store the runtime wrote: {stderr}"
    );
    stdout
}

/// The id of the run named `name` whose `run:end` has `status`.
fn run_id(store: &Path, name: &str, status: &str) -> String {
    let records = read_store(store);
    let ended: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "run:end" && r["status"] == status)
        .collect();
    records
        .iter()
        .filter(|r| r["type"] == "run:start" && r["name"] == name)
        .map(|r| r["runId"].as_str().unwrap().to_owned())
        .find(|id| ended.iter().any(|e| e["runId"] == id.as_str()))
        .unwrap_or_else(|| panic!("no run {name:?} ending {status} in the store"))
}

#[test]
fn runs_lists_every_run_the_examples_wrote() {
    let dir = TempDir::new("viewer-examples-runs");
    let store = produce_store(dir.path(), &EXAMPLES);
    let listing: Value = serde_json::from_str(&ok(&store, &["runs", "--json"])).unwrap();
    let runs = listing.as_array().expect("a JSON array of runs");
    let started = read_store(&store)
        .iter()
        .filter(|r| r["type"] == "run:start")
        .count();
    assert_eq!(
        runs.len(),
        started,
        "one listed run per run:start: {listing:#}"
    );
    let names: Vec<&str> = runs.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for expected in ["support chat", "stream chat response"] {
        assert!(
            names.contains(&expected),
            "{expected:?} missing from {names:?}"
        );
    }
    let text = ok(&store, &["runs"]);
    assert!(
        text.contains("support chat") && text.contains("agent.run"),
        "{text}"
    );
}

#[test]
fn show_folds_the_support_chat_hops_into_their_work() {
    let dir = TempDir::new("viewer-examples-show");
    let store = produce_store(dir.path(), &["support_chat"]);
    let run = run_id(&store, "support chat", "ok");
    let tree = ok(&store, &["show", &run]);
    assert!(tree.contains("\"support chat\" (agent.run)"), "{tree}");
    // `write answer` only hops to one generation: folded into it, marked as such.
    assert!(tree.contains("write reply  generation.call  ok"), "{tree}");
    assert!(
        tree.contains("↳ via runtime.convex.action \"write answer\" → writer:answer"),
        "{tree}"
    );
    // The detached stream shows where it went.
    assert!(tree.contains("↪ triggered run"), "{tree}");
    // Folding hides a folded hop's acknowledgements; --all shows every record.
    let all = ok(&store, &["show", &run, "--all"]);
    let received = |text: &str| text.matches("runtime.convex.boundary.received").count();
    assert!(received(&tree) < received(&all), "{tree}\n---\n{all}");
    assert!(
        all.contains("write answer  runtime.convex.action  ok"),
        "{all}"
    );
    assert!(all.contains("runtime.convex.boundary.requested"), "{all}");
    assert!(all.contains("runtime.convex.boundary.completed"), "{all}");
}

#[test]
fn the_detached_run_links_back_to_the_span_that_scheduled_it() {
    let dir = TempDir::new("viewer-examples-link");
    let store = produce_store(dir.path(), &["support_chat"]);
    let parent = run_id(&store, "support chat", "ok");
    let child = run_id(&store, "stream chat response", "ok");
    let tree = ok(&store, &["show", &child]);
    assert!(
        tree.contains(&format!(
            "↩ triggered by span \"stream chat response\" (runtime.convex.schedule) in run {parent}"
        )),
        "{tree}"
    );
}

#[test]
fn a_refused_request_and_a_handled_failure_show_their_errors() {
    let dir = TempDir::new("viewer-examples-errors");
    let store = produce_store(dir.path(), &["support_chat", "research"]);
    let refused = run_id(&store, "support chat", "error");
    let tree = ok(&store, &["show", &refused]);
    assert!(tree.contains("status error"), "{tree}");
    assert!(
        tree.contains("does not exist or does not belong to"),
        "{tree}"
    );

    // research: a failure three levels down is handled, the run still ends ok, and the
    // failed boundary keeps its error.
    let records = read_store(&store);
    let failed = records
        .iter()
        .find(|r| r["type"] == "span:end" && r["status"] == "error")
        .expect("the research example records a failed span");
    let run = failed["runId"].as_str().unwrap();
    let tree = ok(&store, &["show", run, "--all"]);
    assert!(tree.contains("status ok"), "{tree}");
    assert!(tree.contains("error"), "{tree}");
}

#[test]
fn search_finds_a_label_in_every_run_and_says_where() {
    let dir = TempDir::new("viewer-examples-search");
    let store = produce_store(dir.path(), &EXAMPLES);
    let hits: Value = serde_json::from_str(&ok(&store, &["search", "plan research", "--json"]))
        .expect("search --json prints JSON");
    let hits = hits.as_array().expect("an array of hits");
    assert!(
        !hits.is_empty(),
        "no hit for a label the support chat records"
    );
    let run = run_id(&store, "support chat", "ok");
    assert!(
        hits.iter().any(|h| h.to_string().contains(&run)),
        "no hit names the support chat run {run}: {hits:#?}"
    );
}

/// One renderer: what an example prints for each run (its `Memory`, through
/// `crux::view::Trees`) is exactly what `crux show RUN` prints from the store, the library
/// gives the same text from the store's records, and `crux::testing` gives that text
/// normalized (same lines, same spans; ids numbered, times left out).
#[test]
fn examples_the_library_and_the_viewer_print_the_same_trees() {
    for name in EXAMPLES {
        let dir = TempDir::new("viewer-examples-same");
        let printed = String::from_utf8(run_example(name, dir.path()).stdout).unwrap();
        let store = store_path(dir.path());
        let records = read_store(&store);
        let mut runs: Vec<&str> = Vec::new();
        for record in &records {
            let run = record["runId"].as_str().unwrap();
            if !runs.contains(&run) {
                runs.push(run);
            }
        }
        assert!(!runs.is_empty(), "{name} recorded no run");
        let all_runs = runs.clone();
        for run in runs {
            let shown = ok(&store, &["show", run]);
            assert!(
                printed.contains(&shown),
                "{name} did not print run {run} as `crux show` does:\n{shown}\n--- printed:\n{printed}"
            );
            let library = crux::view::Trees::from_values(&records)
                .run(run)
                .to_string();
            assert_eq!(library, shown, "{name}: the library and `crux show` differ");

            let pinned = crux::testing::run_trees(&records)
                .run(run.parse().unwrap())
                .to_string();
            assert!(pinned.starts_with("run run#1 "), "{pinned}");
            assert!(!pinned.contains(run), "{pinned}");
            let (pinned_lines, shown_lines): (Vec<&str>, Vec<&str>) =
                (pinned.lines().collect(), shown.lines().collect());
            assert_eq!(
                pinned_lines.len(),
                shown_lines.len(),
                "{name}:\n{pinned}\n---\n{shown}"
            );
            // Below the header, each line names the same span (or event, hop or link) in
            // the same place: the text before its first two-space gap is the same once ids
            // and event offsets are set aside.
            let head = |line: &str, ids: &[String]| {
                let mut head = line.split("  ").next().unwrap_or("").to_owned();
                if let Some(at) = head.find(" +") {
                    let end = head[at..].find(':').map_or(head.len(), |e| at + e);
                    head.replace_range(at..end, "");
                }
                for id in ids {
                    head = head.replace(id.as_str(), "RUN");
                }
                head
            };
            let real_ids: Vec<String> = all_runs.iter().map(|r| r.to_string()).collect();
            let placeholders: Vec<String> = (1..=all_runs.len())
                .rev()
                .map(|n| format!("run#{n}"))
                .collect();
            for (p, s) in pinned_lines.iter().zip(&shown_lines).skip(2) {
                assert_eq!(
                    head(p, &placeholders),
                    head(s, &real_ids),
                    "{name}:\n{pinned}\n---\n{shown}"
                );
            }
        }
    }
}
