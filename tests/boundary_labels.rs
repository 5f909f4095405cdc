//! A label the user picks for `ctx.crux.run_action` / `scheduler` is the boundary span's
//! name; whatever its length or characters (even none), the callee must continue the caller's run
//! (the envelope carries a label the receiving decoder accepts).

use std::time::Duration;

use crux::local::Deployment;
use crux::prelude::*;
use crux::sink::Memory;
use serde_json::Value;

const LONG: &str = "summarize every source the research step found, then rank them by relevance to the user's question, drop the duplicates and the ones older than a year, and write a short paragraph about each of the five best ones";
const TABBED: &str = "plan\tresearch\nstep";

#[derive(Serialize, Deserialize)]
pub struct Which {
    pub label: u8,
}

#[crux::action(name = "labels")]
pub async fn caller(ctx: &ActionCtx, args: Which) -> crux::Result<(String, String)> {
    let mine = ctx.crux.capture().expect("in a run").run_id.to_string();
    let theirs = match args.label {
        0 => ctx.crux.run_action(LONG, callee, NoArgs {}).await?,
        1 => ctx.crux.run_action(TABBED, callee, NoArgs {}).await?,
        _ => ctx.crux.run_action("", callee, NoArgs {}).await?,
    };
    Ok((mine, theirs))
}

#[crux::internal_action]
pub async fn callee(ctx: &ActionCtx) -> crux::Result<String> {
    Ok(ctx
        .crux
        .capture()
        .map(|c| c.run_id.to_string())
        .unwrap_or_default())
}

#[tokio::test]
async fn a_long_or_odd_label_keeps_the_callee_in_the_callers_run() {
    assert!(LONG.chars().count() > crux::envelope::MAX_LABEL);
    let sink = Memory::new();
    let d = Deployment::builder()
        .sink(sink.clone())
        .function(caller)
        .function(callee)
        .build();
    for label in [0, 1, 2] {
        let (mine, theirs) = d.action(caller, Which { label }).await.unwrap();
        assert_eq!(
            mine, theirs,
            "label {label}: the callee continued the caller's run"
        );
    }
    d.flush(Duration::from_secs(5)).await;
    let records = sink.records();
    let warnings: Vec<&Value> = records
        .iter()
        .filter(|r| r["primitive"] == "security.warning")
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(
        d.observer().stats().rejected,
        0,
        "every record was accepted"
    );
    // An empty label names the span by the callee's path.
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "span:start" && r["name"] == "boundary_labels:callee")
    );
    // The boundary span keeps the label as written.
    for label in [LONG, TABBED] {
        assert!(
            records
                .iter()
                .any(|r| r["type"] == "span:start" && r["name"] == label),
            "{label:?}"
        );
    }
}
