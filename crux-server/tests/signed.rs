//! `ContextPolicy::Signed`: a context (`__crux`, `traceparent`) is continued only with a
//! valid `Crux-Signature`; a missing, wrong or expired one makes the call a fresh root with a
//! `security.warning` naming why, and the call still succeeds.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Running, of_run, start, ts_envelope};
use crux::function::FunctionKind;
use crux_server::ContextPolicy;
use crux_server::signing::{ContextSecret, Signed, sign_context, sign_context_at};
use serde_json::Value;

const RUN: &str = "run_0123456789abcdef01234567";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const SECRET: &str = "the signed-context tests' shared secret";

/// What a signature covers for a call of the action at `path`.
fn on<'a>(path: &'a str, traceparent: &'a str, crux: &'a str) -> Signed<'a> {
    Signed::call(FunctionKind::Action, path, traceparent, crux)
}

fn secret() -> ContextSecret {
    ContextSecret::new(SECRET).unwrap()
}

async fn server() -> Running {
    start(
        |d| d,
        |s| {
            s.context_policy(ContextPolicy::Signed {
                secret: secret(),
                max_age: Duration::from_secs(300),
            })
        },
    )
    .await
}

/// The body of a `work:where` call carrying `crux` as written.
fn body(crux: &str) -> String {
    format!(r#"{{"path": "work:where", "args": {{"__crux": {crux}}}, "format": "json"}}"#)
}

async fn call(server: &Running, body: &str, headers: &[(&str, &str)]) -> Value {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let reply = server
        .request("POST", "/api/action", &all, body.as_bytes())
        .await;
    assert_eq!(reply.status, 200);
    let reply = reply.json();
    assert_eq!(reply["status"], "success", "never a failed call: {reply}");
    reply["value"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_context_continues_and_a_bad_one_is_a_fresh_root_with_a_warning() {
    let server = server().await;
    // Written with spaces and a key order of the caller's choosing: the text as sent is
    // what is signed.
    let crux = serde_json::to_string_pretty(&ts_envelope(RUN, TRACE, SPAN)).unwrap();
    let good = sign_context(&secret(), &on("work:where", "", &crux));
    let value = call(&server, &body(&crux), &[("Crux-Signature", &good)]).await;
    assert_eq!(value["runId"], RUN, "a signed context is continued");

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let other = ContextSecret::new("not the server's secret, but 32+ bytes").unwrap();
    let cases = [
        ("missing", None, "without a Crux-Signature"),
        (
            "wrong secret",
            Some(sign_context(&other, &on("work:where", "", &crux))),
            "does not match",
        ),
        (
            "signed another text",
            Some(sign_context(
                &secret(),
                &on("work:where", "", &crux.replace(' ', "")),
            )),
            "does not match",
        ),
        (
            "expired",
            Some(sign_context_at(
                &secret(),
                now - 3600,
                &on("work:where", "", &crux),
            )),
            "at most 300 s",
        ),
        ("malformed", Some("v2=abc".to_owned()), "is not `t="),
        (
            "another function's signature (a replay)",
            Some(sign_context(&secret(), &on("work:other", "", &crux))),
            "does not match",
        ),
        (
            "another kind's signature",
            Some(sign_context(
                &secret(),
                &Signed::call(FunctionKind::Query, "work:where", "", &crux),
            )),
            "does not match",
        ),
        (
            "v1, which binds no function",
            Some(format!("t={now},v1={}", "0".repeat(64))),
            "is v1",
        ),
        (
            "v2, which binds no HTTP method",
            Some(format!("t={now},v2={}", "0".repeat(64))),
            "is v2",
        ),
    ];
    let mut fresh = Vec::new();
    for (case, header, _) in &cases {
        let headers: Vec<(&str, &str)> = header
            .iter()
            .map(|h| ("Crux-Signature", h.as_str()))
            .collect();
        let value = call(&server, &body(&crux), &headers).await;
        assert_ne!(value["runId"], RUN, "{case}: a fresh root");
        fresh.push(value["runId"].as_str().unwrap().to_owned());
    }
    let sink = server.sink.clone();
    server.stop().await;
    let records = sink.records();
    for ((case, _, says), run) in cases.iter().zip(&fresh) {
        let warning = of_run(&records, run)
            .into_iter()
            .find(|r| r["primitive"] == "security.warning")
            .unwrap_or_else(|| panic!("{case}: no security.warning in the fresh run"));
        let reason = warning["attributes"]["reason"].as_str().unwrap();
        assert!(reason.contains("ContextPolicy::Signed"), "{case}: {reason}");
        assert!(reason.contains(says), "{case}: {reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_traceparent_keeps_the_callers_trace() {
    let server = server().await;
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let body = r#"{"path": "work:where", "args": {}}"#;
    let signed = sign_context(&secret(), &on("work:where", &traceparent, ""));
    let value = call(
        &server,
        body,
        &[("traceparent", &traceparent), ("Crux-Signature", &signed)],
    )
    .await;
    assert_eq!(value["traceId"], TRACE);
    // The same signature does not cover another traceparent.
    let forged = format!("00-{}-{SPAN}-01", "1".repeat(32));
    let value = call(
        &server,
        body,
        &[("traceparent", &forged), ("Crux-Signature", &signed)],
    )
    .await;
    assert_ne!(value["traceId"], "1".repeat(32));
    server.stop().await;
}

/// A signature vouches for the `__crux` the call continues, not for another copy of it: a
/// repeated `args` key or `__crux` key (`serde_json` would keep the last one) or a repeated
/// `args` parameter is refused outright (400), so no unsigned context can hide behind a
/// signed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_args_or_crux_key_is_refused() {
    let server = server().await;
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    // Legitimately signed: this traceparent, and no `__crux`.
    let signed = sign_context(&secret(), &on("work:where", &traceparent, ""));
    let forged = serde_json::to_string(&ts_envelope(RUN, TRACE, SPAN)).unwrap();
    let headers = [
        ("Content-Type", "application/json"),
        ("traceparent", traceparent.as_str()),
        ("Crux-Signature", &signed),
    ];
    // The signed `__crux` first, an unsigned one behind it.
    let crux = serde_json::to_string(&ts_envelope(RUN, TRACE, SPAN)).unwrap();
    let signed_crux = sign_context(&secret(), &on("work:where", "", &crux));
    let bodies = [
        (
            format!(
                r#"{{"path": "work:where", "args": {{}}, "args": {{"__crux": {forged}}}, "format": "json"}}"#
            ),
            signed.as_str(),
            "repeats the field",
        ),
        (
            format!(
                r#"{{"path": "work:where", "args": {{"__crux": {crux}, "__crux": {forged}}}, "format": "json"}}"#
            ),
            signed_crux.as_str(),
            "repeats the key `__crux`",
        ),
    ];
    for (body, signature, says) in &bodies {
        let headers = [headers[0], headers[1], ("Crux-Signature", signature)];
        let reply = server
            .request("POST", "/api/action", &headers, body.as_bytes())
            .await;
        assert_eq!(reply.status, 400, "{body}");
        let reply = reply.json();
        assert_eq!(reply["code"], "BadJsonBody");
        assert!(reply["message"].as_str().unwrap().contains(says), "{reply}");
    }

    let query = format!(
        "/api/query?path=auth:whoami&format=json&args=%7B%7D&args={}",
        percent(&format!(r#"{{"__crux": {forged}}}"#))
    );
    let reply = server.request("GET", &query, &headers[1..], b"").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["code"], "BadQuery");

    let sink = server.sink.clone();
    server.stop().await;
    assert!(
        !sink.records().iter().any(|r| r["runId"] == RUN),
        "nothing recorded into the forged run"
    );
}

/// Every byte percent-encoded: a query-string value that survives any decoder.
fn percent(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// A signature binds the function called: a signed request captured on `work:where`
/// replayed, headers and `__crux` unchanged, on `log:chatty` within its expiry runs there
/// as a fresh root with a `security.warning`, and the call still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_context_replayed_on_another_function_is_a_fresh_root() {
    let server = server().await;
    let crux = serde_json::to_string(&ts_envelope(RUN, TRACE, SPAN)).unwrap();
    let signature = sign_context(&secret(), &on("work:where", "", &crux));
    let headers = [("Crux-Signature", signature.as_str())];
    let value = call(&server, &body(&crux), &headers).await;
    assert_eq!(value["runId"], RUN, "continued where it was signed for");

    let replay = format!(
        r#"{{"path": "log:chatty", "args": {{"lines": 0, "__crux": {crux}}}, "format": "json"}}"#
    );
    let value = call(&server, &replay, &headers).await;
    assert_eq!(value, 0, "the replayed call still runs");

    let sink = server.sink.clone();
    server.stop().await;
    let records = sink.records();
    let into_run = |name: &str| {
        records
            .iter()
            .any(|r| r["runId"] == RUN && r["name"].as_str().is_some_and(|n| n.contains(name)))
    };
    assert!(
        !into_run("chatty"),
        "nothing of log:chatty in the signed run"
    );
    let warning = records
        .iter()
        .find(|r| r["primitive"] == "security.warning")
        .expect("the replay records a security.warning");
    assert_ne!(warning["runId"], RUN);
    let reason = warning["attributes"]["reason"].as_str().unwrap();
    assert!(reason.contains("does not match"), "{reason}");
}
