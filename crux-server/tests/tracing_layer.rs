//! tower-http's `TraceLayer` on the server's router, its spans through `CruxLayer`: the
//! request span opens before the handler's run starts (outside any Crux context) and
//! still lands in that run, over a real HTTP request.

mod common;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crux::observe::FlushOptions;
use crux::sink::Memory;
use crux_server::Server;
use crux_tracing::CruxLayer;
use serde_json::{Value, json};
use tower_http::trace::TraceLayer;
use tracing_subscriber::layer::SubscriberExt;

/// Whether the request span of run `run_id` has ended.
fn request_span_ended(records: &[Value], run_id: &str) -> bool {
    records
        .iter()
        .filter(|r| r["type"] == "span:start" && r["name"] == "request" && r["runId"] == run_id)
        .any(|s| {
            records
                .iter()
                .any(|r| r["type"] == "span:end" && r["spanId"] == s["spanId"])
        })
}

/// Serves `server.router()` wrapped in tower-http's `TraceLayer` on 127.0.0.1:0, on the
/// current (single-threaded) runtime, so the test's default subscriber sees every span.
async fn serve_traced(server: &Server) -> SocketAddr {
    let app = server
        .router()
        .layer(TraceLayer::new_for_http())
        .into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, app).into_future());
    addr
}

async fn post(addr: SocketAddr, path: &'static str, body: Value) -> common::Reply {
    tokio::task::spawn_blocking(move || {
        common::request(
            addr,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    })
    .await
    .unwrap()
}

/// Flushes until the records satisfy `done`, for up to 30 s: tower-http closes its span
/// once the response body is sent, which the client may see first.
async fn wait_for(server: &Server, sink: &Memory, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        server
            .deployment()
            .observer()
            .flush(FlushOptions::BOUNDARY)
            .await;
        let records = sink.records();
        if done(&records) || Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_tower_http_request_span_lands_in_the_run_of_its_request() {
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(CruxLayer::new()));
    let sink = Memory::new();
    let server = Server::builder(common::deployment(&sink).build()).build();
    let addr = serve_traced(&server).await;

    let reply = post(
        addr,
        "/api/action",
        json!({"path": "work:where", "args": {}, "format": "json"}),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let run_id = reply.json()["value"]["runId"].as_str().unwrap().to_owned();

    let records = wait_for(&server, &sink, |r| request_span_ended(r, &run_id)).await;
    let run = common::of_run(&records, &run_id);
    let start = run
        .iter()
        .find(|r| r["type"] == "span:start" && r["name"] == "request")
        .unwrap_or_else(|| panic!("no request span in the run: {run:#?}"));
    // At the root of the run, with the fields tower-http opened it with.
    assert_eq!(start["parentSpanId"], Value::Null, "{start:#}");
    assert_eq!(start["primitive"], "custom.operation");
    assert_eq!(start["attributes"]["method"], "POST");
    assert_eq!(start["attributes"]["uri"], "/api/action");
    assert_eq!(
        start["attributes"]["target"],
        "tower_http::trace::make_span"
    );
    // In the run's own segment (its own start time, before `run:start`, is checked
    // without clock rounding in crux-tracing's tests/outer_spans.rs).
    let run_start = run.iter().find(|r| r["type"] == "run:start").unwrap();
    assert_eq!(start["segmentId"], run_start["segmentId"]);
    // Ended when the request's span closed: same span, same segment, status ok.
    let end = run
        .iter()
        .find(|r| r["type"] == "span:end" && r["spanId"] == start["spanId"])
        .unwrap_or_else(|| panic!("the request span never ended: {run:#?}"));
    assert_eq!(end["status"], "ok");
    assert_eq!(end["segmentId"], run_start["segmentId"]);
}

#[tokio::test]
async fn a_request_without_a_run_records_nothing_and_the_next_run_takes_only_its_own_span() {
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(CruxLayer::new()));
    let sink = Memory::new();
    let server = Server::builder(common::deployment(&sink).build()).build();
    let addr = serve_traced(&server).await;

    // A query opens no run: its request span has no run to join and records nothing.
    let query = post(
        addr,
        "/api/query",
        json!({"path": "values:echo", "args": {"n": 1, "b": {"$bytes": ""}, "f": 2.5}, "format": "json"}),
    )
    .await;
    assert_eq!(query.status, 200);
    let reply = post(
        addr,
        "/api/action",
        json!({"path": "work:where", "args": {}, "format": "json"}),
    )
    .await;
    let run_id = reply.json()["value"]["runId"].as_str().unwrap().to_owned();
    let records = wait_for(&server, &sink, |r| request_span_ended(r, &run_id)).await;
    let requests: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "span:start" && r["name"] == "request")
        .collect();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0]["runId"], run_id.as_str());
    assert_eq!(requests[0]["attributes"]["uri"], "/api/action");
}

#[tokio::test]
async fn without_outer_spans_the_request_span_stays_out_of_the_run() {
    let layer = CruxLayer::new().without_outer_spans();
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let sink = Memory::new();
    let server = Server::builder(common::deployment(&sink).build()).build();
    let addr = serve_traced(&server).await;
    let reply = post(
        addr,
        "/api/action",
        json!({"path": "work:where", "args": {}, "format": "json"}),
    )
    .await;
    let run_id = reply.json()["value"]["runId"].as_str().unwrap().to_owned();
    let records = wait_for(&server, &sink, |r| {
        r.iter()
            .any(|r| r["type"] == "run:end" && r["runId"] == run_id.as_str())
    })
    .await;
    assert!(records.iter().any(|r| r["type"] == "run:end"));
    assert!(
        !records.iter().any(|r| r["name"] == "request"),
        "{records:#?}"
    );
}
