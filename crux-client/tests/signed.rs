//! A client signs the contexts it sends (`ClientBuilder::sign_contexts`): a server whose
//! policy is `ContextPolicy::Signed` continues the caller's run, with no
//! `security.warning`; an unsigned client, or one signing with another secret, makes the
//! callee a fresh root with a warning, and the call still succeeds.

use std::time::Duration;

use crux::local::Deployment;
use crux::prelude::*;
use crux::sink::Memory;
use crux_client::{Client, ContextSecret, RemoteAction};
use crux_server::{ContextPolicy, Server};
use serde_json::{Value, json};

const SECRET: &str = "the client signing tests' shared secret";

/// The callee: the run it runs in.
#[crux::action(path = "work:where")]
pub async fn where_am_i(ctx: &ActionCtx) -> crux::Result<Value> {
    let here = ctx.crux.capture().expect("an action runs in a run");
    Ok(json!({"runId": here.run_id.to_string()}))
}

const WHERE: RemoteAction<NoArgs, Value> = RemoteAction::new("work:where");

/// The caller: its own run and the callee's.
#[crux::action(path = "chat:ask", root = "agent.run")]
pub async fn ask(ctx: &ActionCtx) -> crux::Result<Value> {
    let remote = ctx.state::<Client>()?;
    let there = ctx
        .crux
        .run_action("ask the service", WHERE.on(remote), NoArgs {})
        .await?;
    let here = ctx.crux.capture().expect("an action runs in a run");
    Ok(json!({"here": here.run_id.to_string(), "there": there["runId"]}))
}

/// A signed-policy server in this process: its URL, its sink, and `stop`, which ends it
/// once its records are flushed.
async fn serve() -> (String, Memory, impl AsyncFnOnce()) {
    let sink = Memory::new();
    let deployment = Deployment::builder()
        .sink(sink.clone())
        .function(where_am_i)
        .build();
    let server = Server::builder(deployment)
        .context_policy(ContextPolicy::Signed {
            secret: ContextSecret::new(SECRET).unwrap(),
            max_age: Duration::from_secs(300),
        })
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        let serving = server.serve(listener, async move {
            let _ = stopped.await;
        });
        serving.await.unwrap();
    });
    let stop = async move || {
        let _ = stop.send(());
        serving.await.unwrap();
    };
    (url, sink, stop)
}

async fn ask_through(client: Client) -> Value {
    let caller = Deployment::builder()
        .sink(Memory::new())
        .function(ask)
        .state(client)
        .build();
    caller
        .action(ask, NoArgs {})
        .await
        .expect("never a failed call")
}

fn warnings(sink: &Memory, run: &Value) -> Vec<String> {
    sink.records()
        .iter()
        .filter(|r| r["runId"] == *run && r["primitive"] == "security.warning")
        .map(|r| r["attributes"]["reason"].to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_client_continues_its_run_on_a_signed_policy_server() {
    let (url, sink, stop) = serve().await;
    let signing = Client::builder(&url)
        .sign_contexts(ContextSecret::new(SECRET).unwrap())
        .build()
        .unwrap();
    let runs = ask_through(signing).await;
    assert_eq!(runs["there"], runs["here"], "the callee continues the run");

    let unsigned = ask_through(Client::new(&url).unwrap()).await;
    assert_ne!(
        unsigned["there"], unsigned["here"],
        "unsigned: a fresh root"
    );

    let other = ContextSecret::new("another secret, also of 32+ bytes").unwrap();
    let wrong = ask_through(Client::builder(&url).sign_contexts(other).build().unwrap()).await;
    assert_ne!(wrong["there"], wrong["here"], "wrong secret: a fresh root");

    stop().await;
    assert_eq!(warnings(&sink, &runs["here"]), Vec::<String>::new());
    let missing = warnings(&sink, &unsigned["there"]);
    assert!(
        missing.len() == 1 && missing[0].contains("without a Crux-Signature"),
        "{missing:?}"
    );
    let mismatch = warnings(&sink, &wrong["there"]);
    assert!(
        mismatch.len() == 1 && mismatch[0].contains("does not match"),
        "{mismatch:?}"
    );
}
