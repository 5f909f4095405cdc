//! `ctx.console` lines come back as the reply's `logLines` (`[LEVEL] message`), from the
//! function and the functions it calls, on success and on failure; left out when there are
//! none; bounded.

mod common;

use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_carry_the_calls_log_lines() {
    let server = common::start(|d| d, |s| s).await;
    let call = |args: Value| json!({"path": "log:chatty", "args": args, "format": "json"});
    let reply = server
        .post("/api/action", call(json!({"lines": 2})))
        .await
        .json();
    assert_eq!(
        reply,
        json!({
            "status": "success", "value": 2,
            "logLines": ["[INFO] starting", "[WARN] from the child query", "[LOG] line 0", "[LOG] line 1"],
        })
    );
    let failed = server
        .post("/api/action", call(json!({"lines": 0, "fail": true})))
        .await
        .json();
    assert_eq!(failed["status"], "error");
    assert_eq!(
        failed["logLines"],
        json!([
            "[INFO] starting",
            "[WARN] from the child query",
            "[ERROR] giving up"
        ])
    );
    // No lines: no `logLines`, as on Convex.
    let quiet = server
        .post(
            "/api/query",
            json!({"path": "auth:whoami", "args": {}, "format": "json"}),
        )
        .await
        .json();
    assert_eq!(quiet, json!({"status": "success", "value": null}));
    // Bounded: 256 lines, then one line saying how many were left out.
    let flood = server
        .post("/api/action", call(json!({"lines": 1000})))
        .await
        .json();
    let lines = flood["logLines"].as_array().unwrap();
    assert_eq!(lines.len(), crux::local::MAX_LOG_LINES + 1);
    assert_eq!(
        lines.last().unwrap(),
        "[WARN] Log overflow (maximum 256). 746 remaining log lines omitted."
    );
    server.stop().await;
}
