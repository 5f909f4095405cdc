//! Shared by the server's tests: functions to serve, a server on 127.0.0.1:0, and a raw
//! HTTP/1.1 client (so hostile requests can be sent byte for byte).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crux::local::{Bytes, Deployment, DeploymentBuilder};
use crux::prelude::*;
use crux::sink::Memory;
use crux_server::{ServerBuilder, Shutdown};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Serialize, Deserialize)]
pub struct EchoArgs {
    pub n: i64,
    pub b: Bytes,
    pub f: f64,
}

/// A query that returns its arguments (and one more of each kind of value).
#[crux::query(path = "values:echo")]
pub async fn echo(_ctx: &QueryCtx, args: EchoArgs) -> crux::Result<EchoArgs> {
    Ok(args)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Note {
    pub text: String,
}

/// A mutation that stores a note and returns how many there are.
#[crux::mutation(path = "notes:add")]
pub async fn add_note(ctx: &MutationCtx, args: Note) -> crux::Result<usize> {
    ctx.db.insert("notes", json!({"text": args.text})).await?;
    Ok(ctx.db.query("notes").collect().await?.len())
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Work {
    #[serde(default)]
    pub sleep_ms: u64,
}

/// An action that returns the run it ran in and its trace, after `sleep_ms`.
#[crux::action(path = "work:where")]
pub async fn where_am_i(ctx: &ActionCtx, args: Work) -> crux::Result<Value> {
    tokio::time::sleep(Duration::from_millis(args.sleep_ms)).await;
    let here = ctx.crux.capture().expect("an action runs in a run");
    Ok(json!({"runId": here.run_id.to_string(), "traceId": here.trace_id.to_string()}))
}

/// An action failing with data (a `ConvexError` in the clients).
#[crux::action(path = "work:fail")]
pub async fn fail(_ctx: &ActionCtx) -> crux::Result<()> {
    Err(Error::application(
        "the order was already refunded",
        json!({"code": "ALREADY_REFUNDED", "amount": 42}),
    ))
}

/// An action that panics.
#[crux::action(path = "work:panic")]
pub async fn panics(_ctx: &ActionCtx) -> crux::Result<()> {
    panic!("the handler lost its way")
}

/// An internal query: only callers with the admin key reach it from outside.
#[crux::internal_query(path = "secret:get")]
pub async fn secret(_ctx: &QueryCtx) -> crux::Result<String> {
    Ok("internal value".into())
}

/// Application state handlers reach through `ctx.state`.
#[derive(Debug)]
pub struct Greeting(pub String);

#[crux::action(path = "work:greet")]
pub async fn greet(ctx: &ActionCtx, args: Note) -> crux::Result<String> {
    let greeting = ctx.state::<Greeting>()?;
    Ok(format!("{} {}", greeting.0, args.text))
}

/// The caller's identity as the handler sees it (`null` without one).
#[crux::query(path = "auth:whoami")]
pub async fn whoami(ctx: &QueryCtx) -> crux::Result<Value> {
    Ok(serde_json::to_value(ctx.auth.get_user_identity()).unwrap_or_default())
}

/// An action asking a child query (in its run) who the caller is.
#[crux::action(path = "auth:ask_child")]
pub async fn ask_child(ctx: &ActionCtx) -> crux::Result<Value> {
    let mine = ctx.auth.get_user_identity().map(|u| u.subject.clone());
    let child = ctx.crux.run_query("ask whoami", whoami, NoArgs {}).await?;
    Ok(json!({"action": mine, "child": child}))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Chatty {
    pub lines: usize,
    #[serde(default)]
    pub fail: bool,
}

/// An action logging `lines` lines (one through a child query), then failing if asked.
#[crux::action(path = "log:chatty")]
pub async fn chatty(ctx: &ActionCtx, args: Chatty) -> crux::Result<usize> {
    ctx.console.info("starting");
    ctx.crux
        .run_query("child logs", child_logs, NoArgs {})
        .await?;
    for i in 0..args.lines {
        ctx.console.log(format_args!("line {i}"));
    }
    if args.fail {
        ctx.console.error("giving up");
        return Err(Error::msg("chatty failed on purpose"));
    }
    Ok(args.lines)
}

#[crux::internal_query(path = "log:child")]
pub async fn child_logs(ctx: &QueryCtx) -> crux::Result<()> {
    ctx.console.warn("from the child query");
    Ok(())
}

/// Every test function registered, recording into `sink`.
pub fn deployment(sink: &Memory) -> DeploymentBuilder {
    Deployment::builder()
        .sink(sink.clone())
        .function(echo)
        .function(add_note)
        .function(where_am_i)
        .function(fail)
        .function(panics)
        .function(secret)
        .function(greet)
        .function(whoami)
        .function(ask_child)
        .function(chatty)
        .function(child_logs)
        .table("notes", |t| t)
}

/// A server running on 127.0.0.1:0 until [`Running::stop`].
pub struct Running {
    pub addr: SocketAddr,
    pub sink: Memory,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<Shutdown, crux_server::ServeError>>,
}

impl Running {
    /// Stops accepting, waits for the server to finish.
    pub async fn stop(mut self) -> Shutdown {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the server stops within its grace")
            .expect("the server task does not panic")
            .expect("the server served")
    }

    /// Sends a request; see [`request`].
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let addr = self.addr;
        let (method, path) = (method.to_owned(), path.to_owned());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = body.to_vec();
        tokio::task::spawn_blocking(move || {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            request(addr, &method, &path, &headers, &body)
        })
        .await
        .unwrap()
    }

    /// POSTs JSON to an API route.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.post_with(path, &[], body).await
    }

    /// POSTs JSON with extra headers.
    pub async fn post_with(&self, path: &str, headers: &[(&str, &str)], body: Value) -> Reply {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.request("POST", path, &all, body.to_string().as_bytes())
            .await
    }
}

/// Starts a server for the test functions; `configure` sets the deployment and server.
pub async fn start(
    configure_deployment: impl FnOnce(DeploymentBuilder) -> DeploymentBuilder,
    configure_server: impl FnOnce(ServerBuilder) -> ServerBuilder,
) -> Running {
    let sink = Memory::new();
    let deployment = configure_deployment(deployment(&sink)).build();
    let server = configure_server(crux_server::Server::builder(deployment)).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await
    });
    Running {
        addr,
        sink,
        stop: Some(stop),
        task,
    }
}

/// A reply: status, headers (lower-cased names), body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "reply {} is not JSON ({err}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end
/// within 30 s.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    send_raw(addr, &raw).unwrap_or_else(|err| panic!("{method} {path}: {err}"))
}

/// Sends raw bytes and parses the reply.
pub fn send_raw(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    // The server may answer (and close) before reading a body it refuses.
    let _ = stream.write_all(raw);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    parse_reply(&out)
}

pub fn parse_reply(out: &[u8]) -> std::io::Result<Reply> {
    let bad =
        |what: &str| std::io::Error::other(format!("{what}: {}", String::from_utf8_lossy(out)));
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no complete reply head"))?;
    let head = std::str::from_utf8(&out[..split]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = out[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..pos]).unwrap_or("0"), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// The records of one run.
pub fn of_run(records: &[Value], run_id: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["runId"] == run_id)
        .cloned()
        .collect()
}

/// A `__crux` envelope as the TypeScript Crux wrappers send it (`runAction`).
pub fn ts_envelope(run_id: &str, trace_id: &str, boundary_span: &str) -> Value {
    json!({
        "v": 1,
        "observability": {
            "runId": run_id,
            "operationId": run_id,
            "traceId": trace_id,
            "segmentId": "seg_00000000000000000000000a",
            "startedAtMs": 1_700_000_000_000u64,
            "spanStack": [boundary_span],
            "currentSpanId": boundary_span
        },
        "boundary": {
            "id": boundary_span,
            "spanId": boundary_span,
            "kind": "action",
            "label": "ask the rust service",
            "ref": "work:where",
            "parentSpanStack": [boundary_span],
            "leaseExpiresAt": "2099-01-01T00:00:00.000Z"
        }
    })
}
