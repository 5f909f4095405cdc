//! HTTP actions (Convex's `httpRouter`) on a crux server: routing by method, exact path and
//! prefix; the request and response intact; the run continued from a trusted `traceparent`
//! or opened fresh; `ctx.crux` and `ctx.state` inside; a panic answers 500 and ends the run
//! `error`; routes the deployment lacks are refused when the server is built.

mod common;

use common::{Greeting, of_run, start, where_am_i};
use crux::prelude::*;
use crux_server::signing::{ContextSecret, Signed, sign_context};
use crux_server::{
    ContextPolicy, HttpMethod, HttpRequest, HttpResponse, HttpRouter, RouteError, Server,
};
use serde_json::{Value, json};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// Echoes the request and where it ran, after one observed hop and a state read.
#[crux::internal_action(path = "http:echo", name = "echo webhook")]
async fn echo(ctx: &ActionCtx, request: HttpRequest) -> crux::Result<HttpResponse> {
    let here = ctx.crux.capture().expect("an HTTP action runs in a run");
    let hop: Value = ctx
        .crux
        .run_action("ask where", where_am_i, common::Work::default())
        .await?;
    let greeting = ctx.state::<Greeting>()?;
    Ok(HttpResponse::json(&json!({
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "xTest": request.header("X-Test"),
        "body": request.body.0,
        "runId": here.run_id.to_string(),
        "traceId": here.trace_id.to_string(),
        "hopRunId": hop["runId"],
        "greeting": greeting.0,
    }))
    .header("x-reply", "one")
    .header("x-reply", "two")
    .status(201))
}

/// Names itself, for the routing tests.
#[crux::internal_action(path = "http:files")]
async fn files(_ctx: &ActionCtx, request: HttpRequest) -> crux::Result<HttpResponse> {
    Ok(HttpResponse::text(format!("files {}", request.path)))
}

#[crux::internal_action(path = "http:deep_files")]
async fn deep_files(_ctx: &ActionCtx, request: HttpRequest) -> crux::Result<HttpResponse> {
    Ok(HttpResponse::text(format!("deep {}", request.path)))
}

#[crux::internal_action(path = "http:panic")]
async fn panics(_ctx: &ActionCtx, _request: HttpRequest) -> crux::Result<HttpResponse> {
    panic!("the webhook lost its way")
}

#[crux::internal_action(path = "http:bad_header")]
async fn bad_header(_ctx: &ActionCtx, _request: HttpRequest) -> crux::Result<HttpResponse> {
    Ok(HttpResponse::text("x").header("bad header", "v"))
}

/// Not registered on the deployment.
#[crux::internal_action(path = "http:missing")]
async fn missing(_ctx: &ActionCtx, _request: HttpRequest) -> crux::Result<HttpResponse> {
    Ok(HttpResponse::new(204))
}

fn router() -> HttpRouter {
    HttpRouter::new()
        .route(HttpMethod::Post, "/echo", echo)
        .and_then(|r| r.route(HttpMethod::Get, "/echo", echo))
        .and_then(|r| r.route_prefix(HttpMethod::Get, "/files/", files))
        .and_then(|r| r.route_prefix(HttpMethod::Get, "/files/deep/", deep_files))
        .and_then(|r| r.route(HttpMethod::Get, "/files/exact", echo))
        .and_then(|r| r.route(HttpMethod::Post, "/panic", panics))
        .and_then(|r| r.route(HttpMethod::Get, "/bad-header", bad_header))
        .expect("valid routes")
}

async fn serve(policy: ContextPolicy) -> common::Running {
    start(
        |d| {
            d.function(echo)
                .function(files)
                .function(deep_files)
                .function(panics)
                .function(bad_header)
                .state(Greeting("hello".into()))
        },
        |s| {
            s.context_policy(policy)
                .admin_key("k3y")
                .http_actions(router())
                .expect("every routed action is registered")
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_action_gets_the_request_and_answers_with_its_response() {
    let server = serve(ContextPolicy::default()).await;
    let body = [0u8, 255, 7, b'{'];
    let reply = server
        .request("POST", "/echo?a=1&b=%20", &[("X-Test", "yes")], &body)
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let repeated: Vec<&str> = reply
        .headers
        .iter()
        .filter(|(k, _)| k == "x-reply")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(repeated, ["one", "two"], "repeated headers kept in order");
    let echoed = reply.json();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/echo");
    assert_eq!(echoed["query"], "a=1&b=%20");
    assert_eq!(echoed["xTest"], "yes", "headers reach the action");
    assert_eq!(echoed["body"], json!([0, 255, 7, 123]), "bytes intact");
    assert_eq!(echoed["greeting"], "hello", "ctx.state works");
    assert_eq!(
        echoed["hopRunId"], echoed["runId"],
        "ctx.crux.run_action keeps the callee in the HTTP action's run"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_match_by_method_exact_path_then_longest_prefix() {
    let server = serve(ContextPolicy::default()).await;
    let text = |reply: common::Reply| (reply.status, String::from_utf8(reply.body).unwrap());
    assert_eq!(
        text(server.request("GET", "/files/a/b", &[], b"").await),
        (200, "files /files/a/b".into())
    );
    assert_eq!(
        text(server.request("GET", "/files/", &[], b"").await),
        (200, "files /files/".into()),
        "a prefix matches itself"
    );
    assert_eq!(
        text(server.request("GET", "/files/deep/x", &[], b"").await),
        (200, "deep /files/deep/x".into()),
        "the longer prefix wins"
    );
    let exact = server.request("GET", "/files/exact", &[], b"").await;
    assert_eq!(exact.json()["path"], "/files/exact", "an exact path wins");
    // Convex's local backend serves HTTP actions under /http/ too.
    assert_eq!(
        text(server.request("GET", "/http/files/a", &[], b"").await),
        (200, "files /files/a".into())
    );
    // HEAD runs the GET route and sends no body.
    let head = server.request("HEAD", "/files/a", &[], b"").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "{head:?}");
    // Unrouted: a path, a method, a prefix without its slash.
    for (method, path) in [
        ("GET", "/nowhere"),
        ("PUT", "/echo"),
        ("GET", "/files"),
        ("TRACE", "/echo"),
    ] {
        let reply = server.request(method, path, &[], b"").await;
        assert_eq!(reply.status, 404, "{method} {path}");
        if method != "TRACE" {
            assert_eq!(
                String::from_utf8(reply.body).unwrap(),
                format!("No HttpAction routed for {path}")
            );
        }
    }
    // /api/ stays Convex's API.
    let api = server.request("GET", "/api/nothing", &[], b"").await;
    assert_eq!(api.status, 404);
    assert_eq!(api.json()["code"], "NotFound");
    let call = server
        .post("/api/action", json!({"path": "work:where", "args": {}}))
        .await;
    assert_eq!(call.json()["status"], "success");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_traceparent_continues_the_trace_and_the_run_is_an_actions() {
    let server = serve(ContextPolicy::default()).await;
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let continued = server
        .request("GET", "/echo", &[("traceparent", &traceparent)], b"")
        .await
        .json();
    assert_eq!(continued["traceId"], TRACE);
    let fresh = server.request("GET", "/echo", &[], b"").await.json();
    assert_ne!(fresh["traceId"], TRACE);
    let sink = server.sink.clone();
    server.stop().await;
    let records = of_run(&sink.records(), continued["runId"].as_str().unwrap());
    let start = records
        .iter()
        .find(|r| r["type"] == "run:start")
        .unwrap_or_else(|| panic!("no run:start: {records:#?}"));
    assert_eq!(start["name"], "echo webhook");
    assert_eq!(start["rootPrimitive"], "runtime.convex.action");
    assert_eq!(start["traceId"], TRACE);
    assert_eq!(start["remoteParentSpanId"], PARENT);
    let end = records.iter().find(|r| r["type"] == "run:end").unwrap();
    assert_eq!(end["status"], "ok");
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "span:start" && r["name"] == "ask where"),
        "the hop's boundary span is in the run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_the_policy_refuses_runs_fresh_with_a_security_warning() {
    let server = serve(ContextPolicy::AdminOnly).await;
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let refused = server
        .request("GET", "/echo", &[("traceparent", &traceparent)], b"")
        .await
        .json();
    assert_ne!(refused["traceId"], TRACE);
    let admin = server
        .request(
            "GET",
            "/echo",
            &[
                ("traceparent", &traceparent),
                ("Authorization", "Convex k3y"),
            ],
            b"",
        )
        .await
        .json();
    assert_eq!(admin["traceId"], TRACE, "the admin key makes it trusted");
    // Any other Authorization is the action's business, never a refusal.
    let bearer = server
        .request("GET", "/echo", &[("Authorization", "Bearer abc")], b"")
        .await;
    assert_eq!(bearer.status, 201);
    let sink = server.sink.clone();
    server.stop().await;
    let records = of_run(&sink.records(), refused["runId"].as_str().unwrap());
    let warning = records
        .iter()
        .find(|r| r["primitive"] == "security.warning")
        .unwrap_or_else(|| panic!("no security.warning: {records:#?}"));
    assert!(
        warning["attributes"]["reason"]
            .as_str()
            .unwrap()
            .contains("ContextPolicy::AdminOnly"),
        "{warning}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_http_action_answers_500_and_its_run_ends_error() {
    let server = serve(ContextPolicy::default()).await;
    let reply = server.request("POST", "/panic", &[], b"").await;
    assert_eq!(reply.status, 500);
    let body = reply.json();
    assert_eq!(body["code"], "HttpActionFailed");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("the webhook lost its way"),
        "{body}"
    );
    let bad = server.request("GET", "/bad-header", &[], b"").await;
    assert_eq!(bad.status, 500);
    assert!(
        bad.json()["message"]
            .as_str()
            .unwrap()
            .contains("invalid header name \"bad header\""),
        "{:?}",
        bad
    );
    // The server keeps serving.
    assert_eq!(
        server.request("GET", "/files/a", &[], b"").await.status,
        200
    );
    let sink = server.sink.clone();
    server.stop().await;
    let failed: Vec<Value> = sink
        .records()
        .into_iter()
        .filter(|r| r["type"] == "run:end" && r["status"] == "error")
        .collect();
    assert_eq!(failed.len(), 1, "the panic's run ends error: {failed:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_action_gets_the_servers_limits() {
    let server = start(
        |d| d.function(echo).state(Greeting("hello".into())),
        |s| {
            s.max_body_bytes(1024)
                .http_actions(
                    HttpRouter::new()
                        .route(HttpMethod::Post, "/echo", echo)
                        .unwrap(),
                )
                .unwrap()
        },
    )
    .await;
    let big = server.request("POST", "/echo", &[], &[b'x'; 2048]).await;
    assert_eq!(big.status, 413);
    assert_eq!(big.json()["code"], "BodyTooLarge");
    let fits = server.request("POST", "/echo", &[], &[b'x'; 1024]).await;
    assert_eq!(fits.status, 201);
    server.stop().await;
}

#[test]
fn bad_routes_are_typed_errors() {
    assert_eq!(
        HttpRouter::new()
            .route(HttpMethod::Get, "echo", echo)
            .unwrap_err(),
        RouteError::NotAbsolute("echo".into())
    );
    assert_eq!(
        HttpRouter::new()
            .route_prefix(HttpMethod::Get, "/files", files)
            .unwrap_err(),
        RouteError::PrefixWithoutTrailingSlash("/files".into())
    );
    for reserved in ["/api/query", "/.files/x"] {
        assert_eq!(
            HttpRouter::new()
                .route(HttpMethod::Get, reserved, echo)
                .unwrap_err(),
            RouteError::Reserved(reserved.into())
        );
    }
    let twice = HttpRouter::new()
        .route(HttpMethod::Get, "/a", echo)
        .unwrap()
        .route(HttpMethod::Get, "/a", files)
        .unwrap_err();
    assert_eq!(twice.to_string(), "HTTP route GET `/a` is already in use");
    // The same path for another method is fine.
    HttpRouter::new()
        .route(HttpMethod::Get, "/a", echo)
        .and_then(|r| r.route(HttpMethod::Post, "/a", echo))
        .unwrap();
}

#[test]
fn a_routed_action_the_deployment_lacks_is_refused_when_building() {
    let deployment = crux::local::Deployment::builder().function(echo).build();
    let router = HttpRouter::new()
        .route(HttpMethod::Get, "/echo", echo)
        .and_then(|r| r.route(HttpMethod::Post, "/hook", missing))
        .unwrap();
    let err = Server::builder(deployment)
        .http_actions(router)
        .unwrap_err();
    assert_eq!(
        err,
        RouteError::NotRegistered {
            function: "http:missing",
            method: "POST",
            path: "/hook".into()
        }
    );
    assert!(err.to_string().contains("DeploymentBuilder::function"));
}

/// Under `ContextPolicy::Signed` an HTTP action's `traceparent` is signed with kind `http`,
/// the method and the URL path: signed for `GET /echo` it is continued there; replayed on
/// another route (`/files/exact`, the same action) or with another method (`POST /echo`,
/// the same action too) it is a fresh trace, and the request still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_traceparent_binds_the_http_actions_method_and_path() {
    let secret = || ContextSecret::new("the HTTP action tests' shared secret!").unwrap();
    let server = serve(ContextPolicy::Signed {
        secret: secret(),
        max_age: std::time::Duration::from_secs(300),
    })
    .await;
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let signature = sign_context(&secret(), &Signed::http("GET", "/echo", &traceparent));
    let headers = [
        ("traceparent", traceparent.as_str()),
        ("Crux-Signature", signature.as_str()),
    ];
    let signed = server.request("GET", "/echo", &headers, b"").await.json();
    assert_eq!(signed["traceId"], TRACE, "signed for this method and path");
    for (method, path) in [("GET", "/files/exact"), ("POST", "/echo")] {
        let replayed = server.request(method, path, &headers, b"").await;
        assert!(
            (200..300).contains(&replayed.status),
            "{method} {path}: never a failed call ({})",
            replayed.status
        );
        assert_ne!(
            replayed.json()["traceId"],
            TRACE,
            "{method} {path}: a fresh trace"
        );
    }
    // Signed for POST, it is continued on POST.
    let signature = sign_context(&secret(), &Signed::http("POST", "/echo", &traceparent));
    let headers = [headers[0], ("Crux-Signature", signature.as_str())];
    let posted = server.request("POST", "/echo", &headers, b"").await.json();
    assert_eq!(posted["traceId"], TRACE, "signed for POST");
    server.stop().await;
}
