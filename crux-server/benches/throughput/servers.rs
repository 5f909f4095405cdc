//! The servers compared, each serving `POST /api/action` for `bench:respond` on loopback:
//! crux observing (Memory or JSON Lines sink), crux with the observer disabled, and a bare
//! axum handler doing the same work without crux.

use std::net::SocketAddr;
use std::path::Path;

use axum::Json;
use axum::routing::post;
use crux::local::Deployment;
use crux::prelude::*;
use crux::sink::{JsonLines, Memory};
use crux_server::Server;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The request body every variant answers.
pub const BODY: &str =
    r#"{"path":"bench:respond","args":{"text":"where is my refund?","n":0},"format":"json"}"#;

#[derive(Debug, Serialize, Deserialize)]
pub struct Ask {
    pub text: String,
    pub n: u32,
}

/// The work of one hop.
fn work(args: Ask) -> Ask {
    Ask {
        text: args.text.to_uppercase(),
        n: args.n + 1,
    }
}

#[crux::internal_action(path = "bench:step", name = "step")]
pub async fn step(_ctx: &ActionCtx, args: Ask) -> crux::Result<Ask> {
    Ok(work(args))
}

/// An action making two `run_action` hops.
#[crux::action(path = "bench:respond", name = "respond", root = "agent.run")]
pub async fn respond(ctx: &ActionCtx, args: Ask) -> crux::Result<Ask> {
    let first = ctx.crux.run_action("first step", step, args).await?;
    ctx.crux.run_action("second step", step, first).await
}

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// crux, recording into a `Memory::bounded` sink.
    CruxMemory,
    /// crux, recording into a `Memory::bounded(1_000)` sink: what retention costs, against
    /// `CruxMemory`: the same recording and delivery, but its records are freed 1 000
    /// records after they were made, while still in cache, instead of 100 000.
    CruxMemorySmall,
    /// crux, recording into a JSON Lines file (written on the delivery thread: every flush
    /// a hand-off to it).
    CruxJsonLines,
    /// crux, recording into a JSON Lines file declared prompt (`JsonLines::prompt`: a
    /// local disk; flushes write it on their own thread).
    CruxJsonLinesPrompt,
    /// crux with `Observer::disabled()`.
    CruxDisabled,
    /// axum alone: the same two steps as plain async calls.
    BareAxum,
}

impl Variant {
    pub const ALL: [Variant; 6] = [
        Variant::CruxMemory,
        Variant::CruxMemorySmall,
        Variant::CruxJsonLines,
        Variant::CruxJsonLinesPrompt,
        Variant::CruxDisabled,
        Variant::BareAxum,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::CruxMemory => "crux, Memory sink",
            Variant::CruxMemorySmall => "crux, Memory sink of 1 000",
            Variant::CruxJsonLines => "crux, JSON Lines sink",
            Variant::CruxJsonLinesPrompt => "crux, JSON Lines, prompt",
            Variant::CruxDisabled => "crux, observer disabled",
            Variant::BareAxum => "bare axum, same work",
        }
    }
}

/// A running server: its address and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts `variant` on 127.0.0.1:0; the JSON Lines variant writes `records`.
pub async fn start(variant: Variant, records: &Path) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = match variant {
        Variant::BareAxum => {
            let app = axum::Router::new().route("/api/action", post(bare));
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .expect("serves");
            })
        }
        _ => {
            let builder = Deployment::builder().function(step).function(respond);
            let builder = match variant {
                Variant::CruxMemory => builder.sink(Memory::bounded(100_000)),
                Variant::CruxMemorySmall => builder.sink(Memory::bounded(1_000)),
                Variant::CruxJsonLines => {
                    let _ = std::fs::remove_file(records);
                    builder.sink(JsonLines::open(records).expect("a records file"))
                }
                Variant::CruxJsonLinesPrompt => {
                    let _ = std::fs::remove_file(records);
                    builder.sink(JsonLines::open(records).expect("a records file").prompt())
                }
                _ => builder.observer(crux::observe::Observer::disabled()),
            };
            let server = Server::builder(builder.build())
                .max_concurrent_requests(4096)
                .build();
            tokio::spawn(async move {
                server.serve(listener, shutdown).await.expect("serves");
            })
        }
    };
    Running { addr, stop, task }
}

/// The bare handler: the same request and reply shapes, the two steps called directly (no
/// function boundary, no JSON between them, nothing recorded): the floor.
async fn bare(Json(body): Json<Value>) -> Json<Value> {
    let args: Ask = match serde_json::from_value(body["args"].clone()) {
        Ok(args) => args,
        Err(err) => return Json(json!({"status": "error", "errorMessage": err.to_string()})),
    };
    let second = work(work(args));
    Json(json!({"status": "success", "value": second}))
}
