//! A remote function's error comes back with its kind, as a local call's would: a crux
//! server's replies (Convex's shapes: HTTP 200 `status: "error"`) read into the same
//! `ErrorKind` the callee raised.

use std::time::Duration;

use crux::ErrorKind;
use crux::function::FunctionKind;
use crux::local::Deployment;
use crux::prelude::*;
use crux::sink::Memory;
use crux_client::Client;
use serde_json::{Value, json};

#[derive(Debug, Serialize, Deserialize)]
pub struct Needs {
    pub q: String,
}

#[crux::query(path = "kinds:needs")]
pub async fn needs(_ctx: &QueryCtx, args: Needs) -> crux::Result<String> {
    Ok(args.q)
}

#[crux::action(path = "kinds:slow")]
pub async fn slow(_ctx: &ActionCtx) -> crux::Result<()> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(())
}

#[crux::action(path = "kinds:closed")]
pub async fn closed(_ctx: &ActionCtx) -> crux::Result<()> {
    Err(Error::application("closed", json!({"code": "CLOSED"})))
}

#[crux::action(path = "kinds:boom")]
pub async fn boom(_ctx: &ActionCtx) -> crux::Result<()> {
    Err(Error::msg("boom"))
}

#[crux::internal_query(path = "kinds:hidden")]
pub async fn hidden(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_remote_error_kind_comes_back_as_raised() {
    let deployment = Deployment::builder()
        .sink(Memory::new())
        .functions((needs, slow, closed, boom, hidden))
        .action_timeout(Duration::from_millis(100))
        .build();
    let server = crux_server::Server::builder(deployment).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        let stopped = async move {
            let _ = stopped.await;
        };
        server.serve(listener, stopped).await.unwrap();
    });

    let kind = async |kind: FunctionKind, path: &str, args: Value| {
        let err = client.call_json(kind, path, args, None).await.unwrap_err();
        (err.kind(), err)
    };
    let cases = [
        (FunctionKind::Query, "kinds:nothing", ErrorKind::NotFound),
        (FunctionKind::Query, "kinds:hidden", ErrorKind::NotFound),
        (
            FunctionKind::Query,
            "kinds:needs",
            ErrorKind::ArgumentValidation,
        ),
        (FunctionKind::Action, "kinds:slow", ErrorKind::Timeout),
        (FunctionKind::Action, "kinds:closed", ErrorKind::Application),
        (FunctionKind::Action, "kinds:boom", ErrorKind::Server),
    ];
    for (function_kind, path, expected) in cases {
        let (got, err) = kind(function_kind, path, json!({})).await;
        assert_eq!(got, expected, "{path}: {err:?}");
    }
    let _ = stop.send(());
    serving.await.unwrap();
}
