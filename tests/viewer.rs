//! The `crux` viewer binary, run on record stores shaped like the runtime's output
//! (`tests/fixtures/stores/*.jsonl`).
//!
//! - `support_chat.jsonl`: the support-chat run (root `agent.run`, two
//!   `runtime.convex.action` boundaries each with a `generation.call`, a
//!   `runtime.convex.query` boundary, a `runtime.convex.schedule` span) and the detached run
//!   it scheduled, linked back by an `edge`; records arrive out of order and line 13 is
//!   half-written.
//! - `research.jsonl`: a waterfall with a failed boundary (error summary, `exception` event,
//!   `error.raw` artifact) handled by its parent, and a run with a `security.warning` span.
//! - `continuation.jsonl`: a run suspended and resumed over two segments, a suspended run,
//!   a running run, a run with no `run:start`, and a duplicated and a conflicting record.
//! - `runtime_core.jsonl`: written by `crux-runtime`'s own `JsonLines` sink (runtime-core
//!   branch at 0637d58) from a small program driving `Observer`, spans, `link_run`,
//!   `Span::fail` and `suspend`/`resume_run` directly: the real wire output.
// The binary is built with the `cli` feature (a default one).
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stores")
        .join(name)
}

/// Runs `crux` with `args` in `dir`, returning (exit code, stdout, stderr).
fn crux_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_crux"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the crux binary");
    (
        status.code().expect("exit code"),
        String::from_utf8(stdout).expect("utf-8 stdout"),
        String::from_utf8(stderr).expect("utf-8 stderr"),
    )
}

/// Runs `crux ARGS --store tests/fixtures/stores/STORE`.
fn crux(store: &str, args: &[&str]) -> (i32, String, String) {
    let store = fixture(store);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--store", store.to_str().unwrap()]);
    crux_in(Path::new(env!("CARGO_MANIFEST_DIR")), &all)
}

fn ok(store: &str, args: &[&str]) -> String {
    let (code, stdout, stderr) = crux(store, args);
    assert_eq!(code, 0, "crux {args:?} failed: {stderr}");
    stdout
}

fn json(store: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(store, &all)).expect("--json prints JSON")
}

/// A directory of its own under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("crux-viewer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SUPPORT_CHAT_RUNS: &str = "\
RUN                           NAME             ROOT                   STATUS  DURATION  STARTED                   RECORDS
run_7d3e9b1c2a4f5e6d7c8b9a01  stream response  runtime.convex.action  ok      405ms     2026-11-25T10:00:00.900Z  6
run_5c0a1f2e3d4b5a6978877665  support chat     agent.run              ok      880ms     2026-11-25T10:00:00.000Z  20
";

const SUPPORT_CHAT_TREE: &str = "\
run run_5c0a1f2e3d4b5a6978877665 \"support chat\" (agent.run)
status ok · duration 880ms · started 2026-11-25T10:00:00.000Z · 20 records · 3 segments

├─ draft plan  generation.call  ok  320ms  model=local-stand-in  provider=crux-examples
│    ↳ via runtime.convex.action \"plan research\" → research:plan  ok  335ms
├─ ↳ runtime.convex.query \"load research inputs\" → research:getInputs  ok  12ms  (folded)
├─ compose reply  generation.call  ok  500ms  model=local-stand-in  provider=crux-examples
│    ↳ via runtime.convex.action \"write answer\" → research:writeAnswer  ok  516ms
└─ ↳ runtime.convex.schedule \"stream chat response\" → chat:streamResponse  ok  3ms  (folded)
     ↪ triggered run run_7d3e9b1c2a4f5e6d7c8b9a01 \"stream response\"
";

#[test]
fn runs_lists_newest_first_and_reports_the_corrupt_line() {
    let (code, stdout, stderr) = crux("support_chat.jsonl", &["runs"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, SUPPORT_CHAT_RUNS);
    assert!(
        stderr.contains("support_chat.jsonl:13: not valid JSON"),
        "warning names the line: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one warning: {stderr}");
}

#[test]
fn runs_shows_suspended_running_and_incomplete_runs() {
    let stdout = ok("continuation.jsonl", &["runs"]);
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(1)
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    let summary: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[3])).collect();
    assert_eq!(
        summary,
        [
            ("run_f0000000000000000000000f", "running"),
            ("run_da00000000000000000000e2", "suspended"),
            ("run_da00000000000000000000d1", "ok"),
            ("run_0b0b0b0b0b0b0b0b0b0b0b0b", "running"),
        ]
    );
    // The resumed run spans its suspension: start 10:03:00, end 10:05:00.020.
    assert_eq!(rows[2][4], "2m00s");
    // The exact duplicate is dropped, so the suspended run has its three records.
    assert_eq!(rows[1][6], "3");
    assert_eq!(rows[3][1], "(no run:start)");
}

#[test]
fn show_folds_boundaries_into_their_work() {
    assert_eq!(
        ok(
            "support_chat.jsonl",
            &["show", "run_5c0a1f2e3d4b5a6978877665"]
        ),
        SUPPORT_CHAT_TREE
    );
}

#[test]
fn records_in_any_arrival_order_give_the_same_output() {
    let original = std::fs::read_to_string(fixture("support_chat.jsonl")).unwrap();
    let dir = TempDir::new("order");
    let store = dir.0.join("reversed.jsonl");
    let mut lines: Vec<&str> = original.lines().collect();
    lines.reverse();
    std::fs::write(&store, lines.join("\n")).unwrap();
    let (code, stdout, stderr) = crux_in(
        &dir.0,
        &["show", "run_5c0a", "--store", store.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, SUPPORT_CHAT_TREE);
    // Reversed, the half-written line is line 15 of 27.
    assert!(
        stderr.contains("reversed.jsonl:15: not valid JSON"),
        "{stderr}"
    );
}

#[test]
fn show_all_keeps_every_boundary_and_its_events() {
    let stdout = ok("support_chat.jsonl", &["show", "run_5c0a", "--all"]);
    assert!(
        !stdout.contains("(folded)") && !stdout.contains("↳ via"),
        "{stdout}"
    );
    let expected = "\
├─ plan research  runtime.convex.action  ok  335ms
│  │ • runtime.convex.boundary.requested +1ms
│  │ • runtime.convex.boundary.received +5ms
│  │ • runtime.convex.boundary.completed +328ms
│  └─ draft plan  generation.call  ok  320ms  model=local-stand-in  provider=crux-examples
├─ load research inputs  runtime.convex.query  ok  12ms
";
    assert!(stdout.contains(expected), "{stdout}");
    assert!(stdout.contains("└─ stream chat response  runtime.convex.schedule  ok  3ms\n"));
}

#[test]
fn a_detached_run_shows_its_link_on_both_sides() {
    let parent = ok("support_chat.jsonl", &["show", "run_5c0a"]);
    assert!(parent.contains("↪ triggered run run_7d3e9b1c2a4f5e6d7c8b9a01 \"stream response\""));
    let child = ok("support_chat.jsonl", &["show", "latest"]);
    assert_eq!(
        child,
        "\
run run_7d3e9b1c2a4f5e6d7c8b9a01 \"stream response\" (runtime.convex.action)
status ok · duration 405ms · started 2026-11-25T10:00:00.900Z · 6 records · 1 segment
↩ triggered by span \"stream chat response\" (runtime.convex.schedule) in run run_5c0a1f2e3d4b5a6978877665 \"support chat\"

└─ stream reply  generation.stream  ok  400ms  model=local-stand-in
     • first token +49ms
"
    );
}

#[test]
fn a_failed_boundary_shows_its_error_where_the_work_was() {
    let stdout = ok("research.jsonl", &["show", "run_c4e8"]);
    assert_eq!(
        stdout,
        "\
run run_c4e8a2b6d0f1e3c5a7b9d1f3 \"daily briefing\" (plan.operation)
status ok · duration 90ms · started 2026-11-25T10:01:00.000Z · 23 records · 4 segments

└─ gather sources  runtime.convex.action  ok  83ms
   │ • runtime.convex.boundary.requested +1ms
   │ • runtime.convex.boundary.received +3ms
   │ • runtime.convex.boundary.completed +79ms
   ├─ search paper index  retrieval.query  ok  40ms  retrieverId=papers
   │    ↳ via runtime.convex.action \"fetch papers\" → sources:fetch  ok  49ms
   ├─ ↳ runtime.convex.action \"fetch news\" → sources:fetch  error  17ms  (folded)
   │    ✗ SourceUnavailable: news index unavailable (503)
   │    • exception +16ms: news index unavailable (503)
   └─ ↳ runtime.convex.mutation \"save digest\" → digests:save  ok  6ms  (folded)
"
    );
    let all = ok("research.jsonl", &["show", "run_c4e8", "--all"]);
    assert!(
        all.contains("• runtime.convex.boundary.failed +14ms: news index unavailable (503)"),
        "{all}"
    );
}

#[test]
fn attributes_metrics_and_artifacts_on_request() {
    let plain = ok("research.jsonl", &["show", "run_c4e8"]);
    assert!(!plain.contains("functionRef"));
    let stdout = ok("research.jsonl", &["show", "run_c4e8", "--attributes"]);
    for expected in [
        "· topic = rust observability",
        "· functionRef = sources:fetch",
        "· presentation = {\"display\":\"detail\"}",
        "▪ artifact error.raw (application/json)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in {stdout}"
        );
    }
    let chat = ok("support_chat.jsonl", &["show", "run_5c0a", "--attributes"]);
    assert!(chat.contains("· metric totalTokens = 406"), "{chat}");
    let warning = ok("research.jsonl", &["show", "latest", "--attributes"]);
    assert!(warning.contains(
        "├─ ignored invalid __crux envelope  security.warning  ok  0ms\n│    · envelope.field = v\n│    · reason = unknown envelope version 7\n"
    ), "{warning}");
}

#[test]
fn a_resumed_run_shows_its_lifecycle_across_segments() {
    let stdout = ok(
        "continuation.jsonl",
        &["show", "run_da00000000000000000000d"],
    );
    assert_eq!(
        stdout,
        "\
run run_da00000000000000000000d1 \"approval flow\" (flow.run)
status ok · duration 2m00s · started 2026-11-25T10:03:00.000Z · 7 records · 2 segments
lifecycle: run:start → run:suspend \"flow.suspend\" → run:resume \"flow.resume\" → run:end ok

├─ draft request  flow.step  ok  20ms  stepId=draft
└─ apply approval  flow.step  ok  10ms  stepId=apply
"
    );
    let value = json("continuation.jsonl", &["show", "da00000000000000000000d1"]);
    assert_eq!(value["segments"].as_array().unwrap().len(), 2);
    assert_eq!(
        value["lifecycle"][2]["previousSegmentId"],
        "seg_d1aa00000000000000000001"
    );
}

#[test]
fn an_incomplete_run_and_an_orphan_span_are_shown_not_dropped() {
    let stdout = ok("continuation.jsonl", &["show", "0b0b"]);
    assert!(stdout.contains("incomplete: the store has no run:start for this run"));
    assert!(stdout.contains(
        "lookup order  tool.call  running  toolName=orders.lookup  (parent span 0c0c0000000000ff is not in the store)"
    ));
    assert!(stdout.contains("(span 0c0c000000000001, no span:start)  ?  ok  25ms"));
}

#[test]
fn run_selection_by_prefix_latest_and_errors() {
    assert!(ok("continuation.jsonl", &["show", "latest"]).starts_with("run run_f000"));
    assert!(ok("continuation.jsonl", &["show", "f0"]).starts_with("run run_f000"));
    let (code, stdout, stderr) = crux("continuation.jsonl", &["show", "run_da"]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(stderr.contains("\"run_da\" matches 2 runs:"), "{stderr}");
    assert!(stderr.contains("run_da00000000000000000000e2  \"nightly sync\""));
    assert!(stderr.contains("run_da00000000000000000000d1  \"approval flow\""));
    let (code, _, stderr) = crux("continuation.jsonl", &["show", "run_ffff"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no run matches \"run_ffff\""), "{stderr}");
}

#[test]
fn conflicting_records_keep_the_first_and_warn() {
    let (_, stdout, stderr) = crux(
        "continuation.jsonl",
        &["show", "run_da00000000000000000000e2"],
    );
    assert!(
        stderr.contains(
            "continuation.jsonl:11: record rec_000000005eed003f_1r conflicts with line 9"
        ),
        "{stderr}"
    );
    assert!(stdout.contains("sync corpus  corpus.sync  ok  100ms"));
    assert!(!stdout.contains("sync corpus again"));
}

#[test]
fn search_finds_folded_records_and_says_where_they_are() {
    let stdout = ok("research.jsonl", &["search", "NEWS INDEX"]);
    assert_eq!(
        stdout,
        "\
run_c4e8a2b6d0f1e3c5a7b9d1f3 \"daily briefing\" › gather sources › fetch news  (folded by default)
    error: SourceUnavailable: news index unavailable (503)
1 match
"
    );
    let hits = json("support_chat.jsonl", &["search", "chat:streamResponse"]);
    assert_eq!(hits.as_array().unwrap().len(), 1);
    assert_eq!(hits[0]["runId"], "run_5c0a1f2e3d4b5a6978877665");
    assert_eq!(hits[0]["spanId"], "5a0c11d2e3f40006");
    assert_eq!(
        hits[0]["spanPath"],
        serde_json::json!(["stream chat response"])
    );
    assert_eq!(hits[0]["folded"], true);
    assert_eq!(hits[0]["field"], "attribute");
    assert_eq!(hits[0]["key"], "functionRef");
    let events = json("research.jsonl", &["search", "exception"]);
    assert_eq!(events[0]["field"], "event");
    let nothing = ok("research.jsonl", &["search", "no such thing"]);
    assert_eq!(nothing, "no records match \"no such thing\"\n");
    let model = json("support_chat.jsonl", &["search", "local-stand-in"]);
    let runs: Vec<&str> = model
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["runName"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ["stream response", "support chat", "support chat"]);
}

#[test]
fn json_output_for_machines() {
    let runs = json("support_chat.jsonl", &["runs"]);
    assert_eq!(runs[0]["runId"], "run_7d3e9b1c2a4f5e6d7c8b9a01");
    assert_eq!(runs[1]["name"], "support chat");
    assert_eq!(runs[1]["rootPrimitive"], "agent.run");
    assert_eq!(runs[1]["status"], "ok");
    assert_eq!(runs[1]["durationMs"], 880.0);
    assert_eq!(runs[1]["records"], 20);

    let folded = json("support_chat.jsonl", &["show", "run_5c0a"]);
    let spans = folded["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 4);
    assert_eq!(spans[0]["name"], "draft plan");
    assert_eq!(spans[0]["via"][0]["name"], "plan research");
    assert_eq!(
        spans[0]["via"][0]["attributes"]["functionRef"],
        "research:plan"
    );
    assert_eq!(spans[1]["folded"], true);
    assert_eq!(spans[3]["links"][0]["edgeType"], "triggered");
    assert_eq!(
        spans[3]["links"][0]["other"]["id"],
        "run_7d3e9b1c2a4f5e6d7c8b9a01"
    );

    let all = json("support_chat.jsonl", &["show", "run_5c0a", "--all"]);
    let spans = all["spans"].as_array().unwrap();
    assert_eq!(spans[0]["name"], "plan research");
    assert!(spans[0].get("via").is_none());
    assert_eq!(spans[0]["children"][0]["name"], "draft plan");
    assert_eq!(spans[0]["events"].as_array().unwrap().len(), 3);
}

#[test]
fn missing_store_says_where_records_come_from() {
    let dir = TempDir::new("missing");
    let (code, stdout, stderr) = crux_in(&dir.0, &["runs"]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(
        stderr.contains("no record store at .crux/records.jsonl"),
        "{stderr}"
    );
    assert!(
        stderr.contains("write their records to .crux/records.jsonl"),
        "{stderr}"
    );
}

#[test]
fn reads_the_default_store_in_the_working_directory() {
    let dir = TempDir::new("default");
    std::fs::create_dir(dir.0.join(".crux")).unwrap();
    std::fs::copy(fixture("research.jsonl"), dir.0.join(".crux/records.jsonl")).unwrap();
    let (code, stdout, stderr) = crux_in(&dir.0, &["runs"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("run_c4e8a2b6d0f1e3c5a7b9d1f3  daily briefing"));
    let (code, stdout, _) = crux_in(&dir.0, &["show", "latest"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("run run_e1f2a3b4c5d6e7f8a9b0c1d2"));
}

#[test]
fn an_empty_store_has_no_runs() {
    let dir = TempDir::new("empty");
    let store = dir.0.join("empty.jsonl");
    std::fs::write(&store, "\n").unwrap();
    let store = store.to_str().unwrap();
    let (code, stdout, _) = crux_in(&dir.0, &["runs", "--store", store]);
    assert_eq!((code, stdout), (0, format!("no runs in {store}\n")));
    let (code, _, stderr) = crux_in(&dir.0, &["show", "latest", "--store", store]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no run matches \"latest\""));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for args in [
        &[][..],
        &["list"],
        &["show"],
        &["runs", "--all"],
        &["search"],
        &["runs", "--store"],
    ] {
        let (code, stdout, stderr) = crux_in(here, args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains("crux: error:") && stderr.contains("for usage"),
            "{stderr}"
        );
    }
    let (code, stdout, _) = crux_in(here, &["--help"]);
    assert_eq!(code, 0);
    for command in ["runs", "show RUN", "search TEXT", "--store PATH", "--json"] {
        assert!(stdout.contains(command), "--help lists {command}");
    }
    let (code, stdout, _) = crux_in(here, &["help", "show"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Usage: crux show RUN [--all] [--attributes]"));
    let (_, same, _) = crux_in(here, &["show", "--help"]);
    assert_eq!(same, stdout);
}

#[test]
fn record_text_cannot_break_the_layout_or_drive_the_terminal() {
    let dir = TempDir::new("control");
    let store = dir.0.join("hostile.jsonl");
    let base = r#""schemaVersion":5,"recordId":"rec_X","runId":"run_aaaaaaaaaaaaaaaaaaaaaaaa","operationId":"run_aaaaaaaaaaaaaaaaaaaaaaaa","segmentId":"seg_aaaaaaaaaaaaaaaaaaaaaaaa","traceId":"0123456789abcdef0123456789abcdef""#;
    let lines = [
        format!(
            r#"{{{},"segmentSeq":1,"type":"run:start","name":"r","rootPrimitive":"agent.run","startedAt":"2026-11-25T10:00:00.000Z","status":"running"}}"#,
            base.replace("rec_X", "rec_1")
        ),
        format!(
            r#"{{{},"segmentSeq":2,"type":"span","spanId":"00000000000000a1","parentSpanId":null,"family":"tool","primitive":"tool.call","name":"clear\u001b[2Jscreen","startedAt":"2026-11-25T10:00:00.001Z","endedAt":"2026-11-25T10:00:00.002Z","status":"ok","attributes":{{"note":"two\nlines"}}}}"#,
            base.replace("rec_X", "rec_2")
        ),
    ];
    std::fs::write(&store, lines.join("\n")).unwrap();
    let (code, stdout, stderr) = crux_in(
        &dir.0,
        &[
            "show",
            "latest",
            "--attributes",
            "--store",
            store.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(
        stdout.contains("└─ clear\\u{1b}[2Jscreen  tool.call  ok  1ms\n"),
        "{stdout}"
    );
    assert!(stdout.contains("· note = two\\nlines\n"), "{stdout}");
}

#[test]
fn a_child_run_names_its_operation_and_parent() {
    let dir = TempDir::new("child");
    let store = dir.0.join("child.jsonl");
    let record = |run: &str, seq: u32, fields: &str| {
        format!(
            r#"{{"schemaVersion":5,"recordId":"rec_{run}_{seq}","runId":"{run}","operationId":"run_111111111111111111111111","segmentId":"seg_{run}","segmentSeq":{seq},"traceId":"0123456789abcdef0123456789abcdef",{fields}}}"#
        )
    };
    let lines = [
        record(
            "run_111111111111111111111111",
            1,
            r#""type":"run:start","name":"parent","rootPrimitive":"agent.run","startedAt":"2026-11-25T10:00:00.000Z","status":"running""#,
        ),
        record(
            "run_111111111111111111111111",
            2,
            r#""type":"span:start","spanId":"00000000000000f1","parentSpanId":null,"family":"flow","primitive":"flow.run","name":"research flow","startedAt":"2026-11-25T10:00:00.001Z","status":"running""#,
        ),
        record(
            "run_222222222222222222222222",
            1,
            r#""type":"run:start","name":"child","rootPrimitive":"flow.run","startedAt":"2026-11-25T10:00:00.002Z","status":"running","parentRunId":"run_111111111111111111111111","triggeredBySpanId":"00000000000000f1""#,
        ),
    ];
    std::fs::write(&store, lines.join("\n")).unwrap();
    let store = store.to_str().unwrap();
    let (code, child, stderr) = crux_in(&dir.0, &["show", "run_2", "--store", store]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        child.lines().take(3).collect::<Vec<_>>(),
        [
            "run run_222222222222222222222222 \"child\" (flow.run)",
            "status running · started 2026-11-25T10:00:00.002Z · operation run_111111111111111111111111 · 1 record · 1 segment",
            "↩ child of span \"research flow\" (flow.run) in run run_111111111111111111111111 \"parent\"",
        ]
    );
    let (_, parent, _) = crux_in(&dir.0, &["show", "run_1", "--store", store]);
    assert!(parent.contains("└─ research flow  flow.run  running\n     ↪ child run run_222222222222222222222222 \"child\"\n"), "{parent}");
    assert!(
        !parent.contains("operation"),
        "a root run is its own operation: {parent}"
    );
}

#[test]
fn reads_what_the_runtime_writes() {
    let (code, stdout, stderr) = crux("runtime_core.jsonl", &["show", "run_c4ac"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "every runtime record decodes: {stderr}");
    assert_eq!(
        stdout,
        "\
run run_c4ac15cf0050a9dd03178d4b \"support chat\" (agent.run)
status ok · duration 0ms · started 2026-11-25T13:13:11.545Z · 16 records · 2 segments
lifecycle: run:start → run:suspend \"flow.suspend\" → run:resume \"flow.resume\" → run:end ok

├─ draft plan  generation.call  ok  0ms
│    ↳ via runtime.convex.action \"plan research\" → research:plan  ok  0ms
├─ ↳ runtime.convex.schedule \"stream chat response\" → chat:stream  ok  0ms  (folded)
│    ↪ triggered run run_d82ad3288d5c8acbc3972455 \"stream response\"
└─ ↳ runtime.convex.action \"fetch news\"  error  0ms  (folded)
     ✗ Error: news index unavailable
     • exception +0ms: news index unavailable
"
    );
    // Both runs start in the same millisecond: the one written later is the newer.
    let runs = json("runtime_core.jsonl", &["runs"]);
    assert_eq!(runs[0]["name"], "stream response");
    let child = ok("runtime_core.jsonl", &["show", "latest"]);
    assert!(
        child.contains("↩ triggered by span \"stream chat response\""),
        "{child}"
    );
}

#[test]
fn a_store_full_of_garbage_warns_briefly_and_keeps_the_good_lines() {
    let dir = TempDir::new("garbage");
    let store = dir.0.join("garbage.jsonl");
    let good = std::fs::read_to_string(fixture("research.jsonl")).unwrap();
    let mut text = "not a record\n".repeat(30);
    text.push_str(&good);
    std::fs::write(&store, text).unwrap();
    let (code, stdout, stderr) = crux_in(&dir.0, &["runs", "--store", store.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 3, "both good runs listed: {stdout}");
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(warnings.len(), 21, "{stderr}");
    assert!(
        warnings[0].ends_with(
            "garbage.jsonl:1: not valid JSON (expected ident at line 1 column 2); line skipped"
        ),
        "{}",
        warnings[0]
    );
    assert!(warnings[19].contains("garbage.jsonl:20: "));
    assert!(
        warnings[20].contains(": 10 more lines of ")
            && warnings[20].ends_with("garbage.jsonl were skipped or conflicting"),
        "{}",
        warnings[20]
    );
}

#[test]
fn a_store_nested_thousands_deep_is_shown_not_a_stack_overflow() {
    // A corrupt or hostile store can chain spans arbitrarily deep; the viewer's tree is
    // cut at 256 levels and the rest is shown as trees of their own, saying where they
    // belong.
    let run = "run_da00000000000000000000d1";
    let mut lines = String::new();
    for i in 1..=3000u64 {
        let parent = if i == 1 {
            "null".to_owned()
        } else {
            format!("\"{:016x}\"", i - 1)
        };
        lines.push_str(&format!(
            r#"{{"schemaVersion":5,"recordId":"rec_{i:016x}_1k","runId":"{run}","operationId":"{run}","segmentId":"seg_d1aa00000000000000000001","segmentSeq":{i},"traceId":"3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d","type":"span:start","spanId":"{i:016x}","parentSpanId":{parent},"family":"flow","primitive":"flow.step","name":"s{i}","startedAt":"2026-11-25T10:03:00.001Z","status":"running"}}"#
        ));
        lines.push('\n');
    }
    let dir = std::env::temp_dir().join(format!("crux-viewer-deep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("deep.jsonl"), lines).unwrap();
    let (code, text, stderr) = crux_in(&dir, &["show", "latest", "--store", "deep.jsonl"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("s3000  flow.step"), "{text}");
    assert!(
        text.contains(&format!(
            "s257  flow.step  running  (child of span {:016x}, nested too deeply to show under it)",
            256
        )),
        "{text}"
    );
    let (code, out, stderr) = crux_in(&dir, &["show", "latest", "--json", "--store", "deep.jsonl"]);
    assert_eq!(code, 0, "{stderr}");
    // Deeper than serde_json's default recursion limit, so read as text.
    assert_eq!(
        out.matches(r#""tooDeepUnder": ""#).count(),
        3000 / 256,
        "{out}"
    );
    assert!(out.contains(&format!(r#""tooDeepUnder": "{:016x}""#, 256 * 3)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn runs_since_and_until_keep_the_runs_started_between() {
    let started = |args: &[&str]| -> Vec<String> {
        let runs = json("research.jsonl", args);
        runs.as_array()
            .expect("an array")
            .iter()
            .map(|run| run["startedAt"].as_str().expect("startedAt").to_owned())
            .collect()
    };
    let every = started(&["runs"]);
    assert_eq!(every.len(), 2, "{every:?}");
    assert_eq!(
        started(&["runs", "--since", "2026-11-25T10:01:30Z"]),
        ["2026-11-25T10:02:00.000Z"]
    );
    // The same instant with an offset; `--until` is exclusive.
    assert_eq!(
        started(&["runs", "--until=2026-11-25T11:02:00+01:00"]),
        ["2026-11-25T10:01:00.000Z"]
    );
    assert_eq!(started(&["runs", "--since", "2026-11-25"]), every);
    assert!(started(&["runs", "--until", "2026-11-25"]).is_empty());
}

#[test]
fn a_bad_time_is_refused_naming_the_value() {
    for bad in ["yesterday", "2026-11-25T10:00:00", "2026-02-30"] {
        let (code, stdout, stderr) = crux("research.jsonl", &["runs", "--since", bad]);
        assert_eq!(code, 2, "{bad}: {stderr}");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains(&format!("invalid value '{bad}' for '--since <TIME>'")),
            "{stderr}"
        );
        assert!(
            stderr.contains("run `crux help runs` for usage"),
            "{stderr}"
        );
    }
}

#[test]
fn completions_name_every_command() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, bash, stderr) = crux_in(here, &["completions", "bash"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        bash.contains("complete ") && bash.contains("_crux"),
        "{bash}"
    );
    for word in [
        "runs",
        "show",
        "search",
        "serve",
        "completions",
        "--since",
        "--store",
    ] {
        assert!(bash.contains(word), "the bash script completes {word}");
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let (code, script, stderr) = crux_in(here, &["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(script.contains("search"), "{shell}");
    }
    let (code, _, stderr) = crux_in(here, &["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid value 'tcsh'"), "{stderr}");
}
