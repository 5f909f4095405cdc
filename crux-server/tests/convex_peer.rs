//! A real TypeScript-side peer: a Convex action run by the npm `convex-test` package
//! (`tests/convex/convex/peer.js`, served by `tests/convex/serve.mjs`, pinned by its
//! `package-lock.json`) calls this crux server twice, and crux continues both:
//! (a) it `fetch`es a crux HTTP action with a W3C `traceparent`: the action's run opens in
//! the caller's trace under the caller's span; (b) it calls a crux action over Convex's HTTP
//! API (the npm `ConvexHttpClient`) with `__crux` as the TypeScript Crux `ctx.crux.runAction`
//! sends it: the action runs in the caller's run, in a segment of its own, acknowledging the
//! boundary with `received` and `completed`.
//!
//! The harness itself serves Convex's HTTP API: the npm `ConvexHttpClient`
//! (`tests/convex/check-client.mjs`) runs a query, mutations and a failing action on it.
//!
//! `.ci/run` installs the packages (`npm ci`); without `node_modules` the test is skipped
//! with a note, unless `CI` is set.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{of_run, start};
use crux::prelude::*;
use crux_server::{HttpMethod, HttpRequest, HttpResponse, HttpRouter};
use serde_json::{Value, json};

/// Where the HTTP action ran, and what it was sent.
#[crux::internal_action(path = "http:whoami", name = "whoami over http")]
async fn whoami(ctx: &ActionCtx, request: HttpRequest) -> crux::Result<HttpResponse> {
    let here = ctx.crux.capture().expect("an HTTP action runs in a run");
    let sent: Value = request.json()?;
    Ok(HttpResponse::json(&json!({
        "runId": here.run_id.to_string(),
        "traceId": here.trace_id.to_string(),
        "sent": sent,
    })))
}

/// `node serve.mjs 0`, killed when dropped.
struct Harness {
    child: Child,
    url: String,
}

impl Harness {
    /// Starts the harness and waits (up to a minute) for the line naming its URL.
    fn start(dir: &Path) -> Harness {
        let mut child = Command::new("node")
            .arg("serve.mjs")
            .arg("0")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (is it installed?)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60));
        let mut harness = Harness {
            child,
            url: String::new(),
        };
        let line = line.expect("the convex-test harness starts within a minute");
        harness.url = line
            .trim()
            .strip_prefix("convex-test serving ")
            .unwrap_or_else(|| panic!("unexpected first line from serve.mjs: {line:?}"))
            .to_owned();
        harness
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn harness_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/convex");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_convex_test_action_continues_its_run_in_crux_over_http() {
    let Some(dir) = harness_dir() else { return };
    let server = start(
        |d| d.function(whoami),
        |s| {
            s.http_actions(
                HttpRouter::new()
                    .route(HttpMethod::Post, "/whoami", whoami)
                    .unwrap(),
            )
            .unwrap()
        },
    )
    .await;
    let harness = tokio::task::spawn_blocking(move || Harness::start(&dir))
        .await
        .unwrap();
    let addr: std::net::SocketAddr = harness
        .url
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap();
    let call = json!({
        "path": "peer:callCrux",
        "format": "json",
        "args": {
            "cruxUrl": format!("http://{}", server.addr),
            "httpPath": "/whoami",
            "actionPath": "work:where",
        },
    });
    let reply = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || {
            common::request(
                addr,
                "POST",
                "/api/action",
                &[("Content-Type", "application/json")],
                call.to_string().as_bytes(),
            )
        }),
    )
    .await
    .expect("the Convex action finishes within 2 minutes")
    .unwrap();
    drop(harness);
    let reply = reply.json();
    assert_eq!(reply["status"], "success", "{reply:#}");
    let value = &reply["value"];
    let sent = &value["sent"];

    // (a) The HTTP action: the request intact, its run in the caller's trace.
    assert_eq!(value["httpAction"]["status"], 200, "{value:#}");
    let http = &value["httpAction"]["body"];
    assert_eq!(http["sent"], json!({"from": "convex-test"}));
    assert_eq!(http["traceId"], sent["traceId"], "{value:#}");

    // (b) The action called with `__crux`: in the caller's run and trace.
    assert_eq!(value["action"]["runId"], sent["runId"], "{value:#}");
    assert_eq!(value["action"]["traceId"], sent["traceId"]);

    let sink = server.sink.clone();
    server.stop().await;
    let records = sink.records();

    let http_run = of_run(&records, http["runId"].as_str().unwrap());
    let http_start = http_run
        .iter()
        .find(|r| r["type"] == "run:start")
        .unwrap_or_else(|| panic!("no run:start for the HTTP action: {http_run:#?}"));
    assert_eq!(http_start["name"], "whoami over http");
    assert_eq!(http_start["traceId"], sent["traceId"]);
    assert_eq!(http_start["remoteParentSpanId"], sent["traceparentSpanId"]);
    assert!(
        http_run
            .iter()
            .any(|r| r["type"] == "run:end" && r["status"] == "ok")
    );

    let continued = of_run(&records, sent["runId"].as_str().unwrap());
    assert!(
        !continued.iter().any(|r| r["type"] == "run:start"),
        "the caller's run is continued, not opened again: {continued:#?}"
    );
    let boundary_events: Vec<&str> = continued
        .iter()
        .filter(|r| r["type"] == "span:event" && r["spanId"] == sent["boundarySpanId"])
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        boundary_events,
        [
            "runtime.convex.boundary.received",
            "runtime.convex.boundary.completed"
        ],
        "{continued:#?}"
    );
    let segments: Vec<&Value> = continued.iter().map(|r| &r["segmentId"]).collect();
    assert!(
        segments.iter().all(|s| **s == *segments[0]) && *segments[0] != sent["segmentId"],
        "crux writes one segment of its own in the caller's run: {segments:?}"
    );
    assert!(continued.iter().all(|r| r["traceId"] == sent["traceId"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_npm_client_calls_the_convex_test_harness() {
    let Some(dir) = harness_dir() else { return };
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || {
            let harness = Harness::start(&dir);
            let output = Command::new("node")
                .arg("check-client.mjs")
                .arg(&harness.url)
                .current_dir(&dir)
                .output();
            drop(harness);
            output
        }),
    )
    .await
    .expect("the client finishes within 2 minutes")
    .unwrap()
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "check-client.mjs failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("ok 4 checks"), "{stdout}");
}
