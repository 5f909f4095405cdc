//! `crux::local::ConsoleLayer` (feature `tracing`): `tracing` events at INFO and above
//! inside a call land in its log lines beside `ctx.console`'s, child calls included;
//! DEBUG events, events outside calls and calls nobody collects are left alone.
#![cfg(feature = "tracing")]

use crux::local::{ClientCall, ConsoleLayer, Deployment, LogLines};
use crux::prelude::*;
use serde_json::json;
use tracing_subscriber::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct Plan {
    pub steps: u32,
}

#[crux::internal_query(path = "plan:child")]
pub async fn child(_ctx: &QueryCtx) -> crux::Result<()> {
    tracing::warn!(source = "child", "cache is cold");
    Ok(())
}

#[crux::action(path = "plan:run")]
pub async fn run(ctx: &ActionCtx, args: Plan) -> crux::Result<u32> {
    ctx.console.log("from the console");
    tracing::info!(steps = args.steps, "planning");
    tracing::debug!("not a log line");
    ctx.crux.run_query("child", child, NoArgs {}).await?;
    tracing::error!("done with {} steps", args.steps);
    Ok(args.steps)
}

#[tokio::test]
async fn tracing_events_in_a_call_become_its_log_lines() {
    // A current-thread runtime: the default subscriber is this thread's, where the call is
    // polled.
    let _subscriber = tracing_subscriber::registry()
        .with(ConsoleLayer)
        .set_default();
    let deployment = Deployment::builder().functions((run, child)).build();
    tracing::info!("outside any call: nowhere");
    let lines = LogLines::new();
    let out = deployment
        .call_with(
            "plan:run",
            json!({"steps": 3}),
            ClientCall::new().log_lines(lines.clone()),
        )
        .await
        .unwrap();
    assert_eq!(out, json!(3));
    assert_eq!(
        lines.take(),
        [
            "[LOG] from the console",
            "[INFO] planning steps=3",
            "[WARN] cache is cold source=child",
            "[ERROR] done with 3 steps",
        ]
    );
    // Nobody collecting: the events go nowhere, the call is unchanged.
    assert_eq!(
        deployment
            .call("plan:run", json!({"steps": 1}))
            .await
            .unwrap(),
        json!(1)
    );
    assert!(lines.take().is_empty());
}
