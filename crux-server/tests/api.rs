//! Convex's HTTP API as the server speaks it: routes, formats, replies, errors, admin key,
//! context continuation and its policy, limits, state and shutdown. Loopback only.

mod common;

use std::time::{Duration, Instant};

use common::{Greeting, of_run, start, ts_envelope};
use crux_local::base64_encode;
use crux_server::ContextPolicy;
use serde_json::{Value, json};

fn int(i: i64) -> Value {
    json!({"$integer": base64_encode(&i.to_le_bytes())})
}

fn echo_args_encoded() -> Value {
    json!({"n": int(i64::MIN + 1), "b": {"$bytes": "AP8HCQ=="}, "f": 0.5})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_round_trips_int64_and_bytes_in_convex_encoded_json() {
    let server = start(|d| d, |s| s).await;
    let reply = server
        .post(
            "/api/query",
            json!({"path": "values:echo", "format": "convex_encoded_json", "args": [echo_args_encoded()]}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({"status": "success", "value": echo_args_encoded()}),
        "no logLines key when there are none"
    );
    // `json`: plain numbers, bytes as base64 text.
    let reply = server
        .post(
            "/api/query",
            json!({"path": "values:echo", "format": "json",
                   "args": {"n": 7, "b": {"$bytes": "AA=="}, "f": 1.5}}),
        )
        .await;
    assert_eq!(
        reply.json(),
        json!({"status": "success", "value": {"n": 7, "b": "AA==", "f": 1.5}})
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_runs_its_kind_and_run_urls_name_functions() {
    let server = start(|d| d, |s| s).await;
    let note = json!({"path": "notes:add", "args": {"text": "hi"}, "format": "json"});
    assert_eq!(
        server.post("/api/mutation", note.clone()).await.json(),
        json!({"status": "success", "value": 1})
    );
    // A mutation by the query route is refused with Convex's message.
    let wrong = server.post("/api/query", note.clone()).await;
    assert_eq!(wrong.status, 200);
    assert_eq!(
        wrong.json(),
        json!({"status": "error",
               "errorMessage": "Trying to execute notes:add as Query, but it is defined as Mutation."})
    );
    // /api/run/{path}: format defaults to json.
    let run = server
        .post("/api/run/notes/add", json!({"args": {"text": "again"}}))
        .await;
    assert_eq!(run.json(), json!({"status": "success", "value": 2}));
    // /api/function: any kind.
    let any = server
        .post("/api/function", json!({"path": "work:where", "args": {}}))
        .await;
    assert_eq!(any.json()["status"], "success");
    // GET /api/query with the query string.
    let args = "%7B%22n%22%3A1%2C%22b%22%3A%7B%22%24bytes%22%3A%22%22%7D%2C%22f%22%3A2.5%7D";
    let get = server
        .request(
            "GET",
            &format!("/api/query?path=values%3Aecho&format=json&args={args}"),
            &[],
            b"",
        )
        .await;
    assert_eq!(
        get.json(),
        json!({"status": "success", "value": {"n": 1, "b": "", "f": 2.5}})
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_convex_errors_with_data_and_validation_names_the_field() {
    let server = start(|d| d, |s| s).await;
    let reply = server
        .post(
            "/api/action",
            json!({"path": "work:fail", "args": [{}], "format": "convex_encoded_json"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorMessage"], "the order was already refunded");
    assert_eq!(
        body["errorData"],
        json!({"code": "ALREADY_REFUNDED", "amount": int(42)})
    );
    let bad = server
        .post(
            "/api/query",
            json!({"path": "values:echo", "args": {"n": "seven", "b": {"$bytes": ""}, "f": 1.0}}),
        )
        .await
        .json();
    assert_eq!(bad["status"], "error");
    let message = bad["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with("ArgumentValidationError:") && message.contains('n'),
        "{message}"
    );
    assert!(bad.get("errorData").is_none());
    let unknown = server
        .post("/api/query", json!({"path": "nope:nothing", "args": {}}))
        .await
        .json();
    assert_eq!(
        unknown["errorMessage"],
        "Could not find public function for 'nope:nothing'"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_functions_need_the_admin_key() {
    let server = start(|d| d, |s| s.admin_key("sekrit-admin-key")).await;
    let call = json!({"path": "secret:get", "args": {}, "format": "json"});
    let public = server.post("/api/query", call.clone()).await.json();
    assert_eq!(
        public["errorMessage"],
        "Could not find public function for 'secret:get'"
    );
    let admin = server
        .post_with(
            "/api/query",
            &[("Authorization", "Convex sekrit-admin-key")],
            call.clone(),
        )
        .await;
    assert_eq!(
        admin.json(),
        json!({"status": "success", "value": "internal value"})
    );
    let wrong = server
        .post_with(
            "/api/query",
            &[("Authorization", "Convex guess")],
            call.clone(),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["code"], "BadAdminKey");
    let bearer = server
        .post_with("/api/query", &[("Authorization", "Bearer a.b.c")], call)
        .await;
    assert_eq!(bearer.status, 401);
    assert_eq!(bearer.json()["code"], "NoAuthProvider");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_errors_are_clear_4xx() {
    let server = start(|d| d, |s| s.max_body_bytes(1024)).await;
    let json_header = [("Content-Type", "application/json")];
    let malformed = server
        .request("POST", "/api/query", &json_header, b"{\"path\": ")
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["code"], "BadJsonBody");
    let text = server
        .request(
            "POST",
            "/api/query",
            &[("Content-Type", "text/plain")],
            br#"{"path":"values:echo"}"#,
        )
        .await;
    assert_eq!(text.status, 415);
    let format = server
        .post(
            "/api/query",
            json!({"path": "values:echo", "args": {}, "format": "yaml"}),
        )
        .await;
    assert_eq!(format.status, 400);
    assert_eq!(format.json()["code"], "BadFormat");
    let big = server
        .post(
            "/api/query",
            json!({"path": "values:echo", "args": {"pad": "x".repeat(4096)}}),
        )
        .await;
    assert_eq!(big.status, 413);
    assert_eq!(big.json()["code"], "BodyTooLarge");
    // An unknown client must name its format; a known one need not.
    let unknown_client = server
        .post_with(
            "/api/query",
            &[("Convex-Client", "my-tool-0.1.0")],
            json!({"path": "secret:get", "args": {}}),
        )
        .await;
    assert_eq!(unknown_client.status, 400);
    assert_eq!(unknown_client.json()["code"], "MissingFormat");
    let npm = server
        .post_with(
            "/api/action",
            &[("Convex-Client", "npm-1.49.0")],
            json!({"path": "work:where", "args": {}}),
        )
        .await;
    assert_eq!(npm.json()["status"], "success");
    let garbled = server
        .post_with(
            "/api/action",
            &[("Convex-Client", "npm")],
            json!({"path": "work:where", "args": {}}),
        )
        .await;
    assert_eq!(garbled.status, 400);
    assert_eq!(garbled.json()["code"], "InvalidClientVersion");
    let two_args = server
        .post(
            "/api/action",
            json!({"path": "work:where", "args": [{}, {}]}),
        )
        .await
        .json();
    assert_eq!(two_args["status"], "error");
    let nowhere = server.post("/api/elsewhere", json!({})).await;
    assert_eq!(nowhere.status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_and_timeouts_answer_errors_and_end_their_runs_as_error() {
    let server = start(|d| d.action_timeout(Duration::from_millis(200)), |s| s).await;
    let panicked = server
        .post("/api/action", json!({"path": "work:panic", "args": {}}))
        .await;
    assert_eq!(panicked.status, 200);
    let body = panicked.json();
    assert_eq!(body["status"], "error");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("the handler lost its way"),
        "{body}"
    );
    let slow = server
        .post(
            "/api/action",
            json!({"path": "work:where", "args": {"sleep_ms": 5000}}),
        )
        .await
        .json();
    assert!(
        slow["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("TimeoutError:"),
        "{slow}"
    );
    // Still serving.
    let ok = server
        .post("/api/action", json!({"path": "work:where", "args": {}}))
        .await
        .json();
    assert_eq!(ok["status"], "success");
    let sink = server.sink.clone();
    server.stop().await;
    let records = sink.records();
    let failed_runs: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "run:end" && r["status"] == "error")
        .collect();
    assert_eq!(
        failed_runs.len(),
        2,
        "the panic's run and the timeout's run: {records:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_limit_requests_are_refused_at_once() {
    let server = start(|d| d, |s| s.max_concurrent_requests(1)).await;
    let addr = server.addr;
    let slow = tokio::task::spawn_blocking(move || {
        common::request(
            addr,
            "POST",
            "/api/action",
            &[("Content-Type", "application/json")],
            json!({"path": "work:where", "args": {"sleep_ms": 1500}})
                .to_string()
                .as_bytes(),
        )
    });
    // Wait until the slow call holds the only permit (it records its run:start).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server
        .sink
        .records()
        .iter()
        .any(|r| r["type"] == "run:start")
    {
        assert!(Instant::now() < deadline, "the slow call never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = server
        .post("/api/action", json!({"path": "work:where", "args": {}}))
        .await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["code"], "TooManyConcurrentRequests");
    assert_eq!(slow.await.unwrap().json()["status"], "success");
    // The permit is back.
    let again = server
        .post("/api/action", json!({"path": "work:where", "args": {}}))
        .await;
    assert_eq!(again.json()["status"], "success");
    server.stop().await;
}

const RUN: &str = "run_0123456789abcdef01234567";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_callers_envelope_continues_its_run() {
    let server = start(|d| d, |s| s).await;
    let reply = server
        .post(
            "/api/action",
            json!({"path": "work:where", "args": {"__crux": ts_envelope(RUN, TRACE, SPAN)}}),
        )
        .await
        .json();
    assert_eq!(reply["value"], json!({"runId": RUN, "traceId": TRACE}));
    let sink = server.sink.clone();
    server.stop().await;
    let records = of_run(&sink.records(), RUN);
    let events: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "span:event" && r["spanId"] == SPAN)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "runtime.convex.boundary.received",
            "runtime.convex.boundary.completed"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_header_puts_the_run_in_the_callers_trace() {
    let server = start(|d| d, |s| s).await;
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let reply = server
        .post_with(
            "/api/action",
            &[("traceparent", &traceparent)],
            json!({"path": "work:where", "args": {}}),
        )
        .await
        .json();
    assert_eq!(reply["value"]["traceId"], TRACE);
    assert_ne!(reply["value"]["runId"], RUN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_the_policy_refuses_runs_fresh_with_a_security_warning() {
    let server = start(
        |d| d,
        |s| s.context_policy(ContextPolicy::AdminOnly).admin_key("k3y"),
    )
    .await;
    let call = json!({"path": "work:where", "args": {"__crux": ts_envelope(RUN, TRACE, SPAN)}});
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let forged = server
        .post_with(
            "/api/action",
            &[("traceparent", &traceparent)],
            call.clone(),
        )
        .await
        .json();
    assert_eq!(forged["status"], "success", "never a failed call");
    let fresh = forged["value"]["runId"].as_str().unwrap().to_owned();
    assert_ne!(fresh, RUN);
    assert_ne!(
        forged["value"]["traceId"], TRACE,
        "the header is dropped too"
    );
    // The admin key makes the same envelope trusted.
    let admin = server
        .post_with("/api/action", &[("Authorization", "Convex k3y")], call)
        .await
        .json();
    assert_eq!(admin["value"]["runId"], RUN);
    let sink = server.sink.clone();
    server.stop().await;
    let records = sink.records();
    let warning = of_run(&records, &fresh)
        .into_iter()
        .find(|r| r["primitive"] == "security.warning")
        .unwrap_or_else(|| panic!("no security.warning in the fresh run: {records:#?}"));
    assert!(
        warning["attributes"]["reason"]
            .as_str()
            .unwrap()
            .contains("ContextPolicy::AdminOnly"),
        "{warning}"
    );
    // Only the admin's call wrote into the named run.
    let named = of_run(&records, RUN);
    assert!(!named.is_empty());
    assert!(
        named
            .iter()
            .all(|r| r["segmentId"] == named[0]["segmentId"]),
        "one segment: the admin's call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_reach_application_state() {
    let server = start(|d| d.state(Greeting("Hello,".into())), |s| s).await;
    let reply = server
        .post(
            "/api/action",
            json!({"path": "work:greet", "args": {"text": "Ada"}}),
        )
        .await
        .json();
    assert_eq!(reply, json!({"status": "success", "value": "Hello, Ada"}));
    server.stop().await;
    let without = start(|d| d, |s| s).await;
    let reply = without
        .post(
            "/api/action",
            json!({"path": "work:greet", "args": {"text": "Ada"}}),
        )
        .await
        .json();
    assert!(
        reply["errorMessage"]
            .as_str()
            .unwrap()
            .contains("no application state of type `api::common::Greeting`"),
        "{reply}"
    );
    without.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_under_load_loses_no_accepted_record() {
    let server = start(|d| d, |s| s.shutdown_grace(Duration::from_secs(30))).await;
    let addr = server.addr;
    let mut calls = Vec::new();
    for i in 0..16u64 {
        calls.push(tokio::task::spawn_blocking(move || {
            let body = json!({"path": "work:where", "args": {"sleep_ms": 100 + 20 * i}});
            common::send_raw(addr, &raw_post("/api/action", &body))
        }));
    }
    // Stop while they are in flight (some may not have connected yet: refused, not lost).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server
        .sink
        .records()
        .iter()
        .any(|r| r["type"] == "run:start")
    {
        assert!(Instant::now() < deadline, "no call started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sink = server.sink.clone();
    let shutdown = server.stop().await;
    assert!(!shutdown.grace_ran_out);
    let records = sink.records();
    let mut answered = 0;
    for call in calls {
        let Ok(reply) = call.await.unwrap() else {
            continue;
        };
        let body = reply.json();
        assert_eq!(body["status"], "success", "{body}");
        answered += 1;
        let run = body["value"]["runId"].as_str().unwrap();
        let run_records = of_run(&records, run);
        assert!(
            run_records.iter().any(|r| r["type"] == "run:start")
                && run_records.iter().any(|r| r["type"] == "run:end"),
            "run {run} of an answered call is complete in the sink"
        );
    }
    assert!(answered >= 1, "at least the started call was answered");
}

fn raw_post(path: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
