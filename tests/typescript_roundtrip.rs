//! Rust → TypeScript → Rust: a crux action calls a Convex action run by the npm
//! `convex-test` package (`crux-server/tests/convex/convex/relay.js`, served over Convex's
//! HTTP API by `serve.mjs`) through a remote reference, with `__crux`. The Convex action
//! checks that the envelope is well formed for the Rust run, continues that run as the
//! TypeScript Crux wrappers do and calls back into this crux service with the envelope
//! their `ctx.crux.runAction` derives. The Rust records show one run across the three
//! hops.
//!
//! `.ci/run` installs the packages (`npm ci`); without `node_modules` the test is skipped
//! with a note, unless `CI` is set.
#![cfg(all(feature = "client", feature = "server"))]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crux::client::{Client, RemoteAction};
use crux::local::Deployment;
use crux::prelude::*;
use crux::sink::Memory;
use serde_json::{Value, json};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RelayArgs {
    crux_url: String,
    action_path: String,
}

/// The Convex action in the middle.
const RELAY: RemoteAction<RelayArgs, Value> = RemoteAction::new("relay:relay");

/// Where the TypeScript service and this one live, for the handlers.
struct Peers {
    typescript: Client,
    crux_url: String,
}

/// The first hop: a Rust action calling the TypeScript one.
#[crux::action(path = "chain:start", name = "round trip", root = "agent.run")]
async fn start(ctx: &ActionCtx) -> crux::Result<Value> {
    let peers = ctx.state::<Peers>()?;
    let args = RelayArgs {
        crux_url: peers.crux_url.clone(),
        action_path: "chain:finish".into(),
    };
    ctx.crux
        .run_action("ask typescript", RELAY.on(&peers.typescript), args)
        .await
}

/// The last hop: called back by the TypeScript action.
#[crux::action(path = "chain:finish")]
async fn finish(ctx: &ActionCtx) -> crux::Result<Value> {
    let here = ctx.crux.capture().expect("an action runs in a run");
    let span = ctx.crux.span("answer", "tool.call").start();
    span.end(crux::observe::SpanStatus::Ok);
    Ok(json!({"runId": here.run_id.to_string(), "traceId": here.trace_id.to_string()}))
}

/// `node serve.mjs 0`, killed when dropped.
struct Harness(Child);

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the harness; waits up to a minute for the line naming its URL.
fn start_harness(dir: &Path) -> (Harness, String) {
    let mut child = Command::new("node")
        .args(["serve.mjs", "0"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs (is it installed?)");
    let stdout = child.stdout.take().unwrap();
    let harness = Harness(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the convex-test harness starts within a minute");
    let url = line
        .trim()
        .strip_prefix("convex-test serving ")
        .unwrap_or_else(|| panic!("unexpected first line from serve.mjs: {line:?}"))
        .to_owned();
    (harness, url)
}

fn harness_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crux-server/tests/convex");
    if dir.join("node_modules/convex-test").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {} has no node_modules: run `npm ci` there",
        dir.display()
    );
    eprintln!(
        "note: skipped, `npm ci` in {} installs convex-test (.ci/run does)",
        dir.display()
    );
    None
}

fn of_run<'a>(records: &'a [Value], run_id: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["runId"] == run_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_run_crosses_a_typescript_convex_action_and_comes_back() {
    let Some(dir) = harness_dir() else { return };
    let (harness, ts_url) = tokio::task::spawn_blocking(move || start_harness(&dir))
        .await
        .unwrap();

    // This service: served over Convex's HTTP API, and called in-process for the first hop.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let crux_url = format!("http://{}", listener.local_addr().unwrap());
    let sink = Memory::new();
    let typescript = Client::builder(ts_url)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let deployment = Deployment::builder()
        .sink(sink.clone())
        .function(start)
        .function(finish)
        .state(Peers {
            typescript,
            crux_url,
        })
        .build();
    let server = crux::server::Server::builder(deployment.clone()).build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        server
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await
    });

    let reply = tokio::time::timeout(
        Duration::from_secs(180),
        deployment.action(start, NoArgs {}),
    )
    .await
    .expect("the three hops finish within 3 minutes")
    .expect("the chain succeeds");
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    drop(harness);
    deployment.flush(Duration::from_secs(10)).await;
    let records = sink.records();

    // The TypeScript action received the Rust run's envelope, and the last hop ran in it.
    let run_id = reply["received"]["runId"].as_str().unwrap().to_owned();
    let run = of_run(&records, &run_id);
    let run_start = run
        .iter()
        .find(|r| r["type"] == "run:start")
        .unwrap_or_else(|| panic!("the Rust run opened here: {records:#?}"));
    assert_eq!(run_start["name"], "round trip");
    assert_eq!(reply["received"]["traceId"], run_start["traceId"]);
    assert_eq!(reply["value"]["runId"], run_id.as_str(), "{reply:#}");
    assert_eq!(reply["value"]["traceId"], run_start["traceId"]);

    // Hop 1: the boundary span to TypeScript, the one whose id the envelope carried.
    let to_ts = run
        .iter()
        .find(|r| r["type"] == "span:start" && r["name"] == "ask typescript")
        .expect("the boundary span to the TypeScript action");
    assert_eq!(to_ts["primitive"], "runtime.convex.action");
    assert_eq!(to_ts["attributes"]["functionRef"], "relay:relay");
    assert_eq!(to_ts["spanId"], reply["received"]["boundarySpanId"]);

    // Hop 2: TypeScript's own boundary span (not recorded here: the TypeScript side has
    // its own sink) is acknowledged by the last hop, in a segment of its own, under the
    // Rust boundary span.
    let ts_boundary = &reply["sent"]["boundarySpanId"];
    let acknowledged: Vec<&str> = run
        .iter()
        .filter(|r| r["type"] == "span:event" && r["spanId"] == *ts_boundary)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        acknowledged,
        [
            "runtime.convex.boundary.received",
            "runtime.convex.boundary.completed"
        ],
        "{run:#?}"
    );
    let answer = run
        .iter()
        .find(|r| r["type"] == "span:start" && r["name"] == "answer")
        .expect("the last hop's span, in the same run");
    assert_eq!(answer["parentSpanId"], *ts_boundary);
    assert_ne!(answer["segmentId"], run_start["segmentId"]);
    assert_ne!(answer["segmentId"], reply["sent"]["segmentId"]);

    // The boundary span to TypeScript ended ok, and so did the run.
    assert!(
        run.iter().any(|r| r["type"] == "span:end"
            && r["spanId"] == to_ts["spanId"]
            && r["status"] == "ok")
    );
    assert!(
        run.iter()
            .any(|r| r["type"] == "run:end" && r["status"] == "ok")
    );
}
