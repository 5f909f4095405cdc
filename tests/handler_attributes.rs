//! An attribute macro on a handler (`#[tracing::instrument]` under `#[crux::action]`) wraps
//! the whole call, awaits included, as it does on any `async fn`.

use crux::local::Deployment;
use crux::prelude::*;

/// The name of the `tracing` span current in the handler's body, after an await.
#[crux::action(path = "spans:instrumented")]
#[tracing::instrument(name = "instrumented handler", skip_all)]
pub async fn instrumented(_ctx: &ActionCtx) -> crux::Result<String> {
    tokio::task::yield_now().await;
    let current = tracing::Span::current();
    Ok(current.metadata().map_or("none", |m| m.name()).to_owned())
}

#[tokio::test]
async fn an_instrumented_handler_runs_inside_its_span_across_awaits() {
    // A current-thread runtime: the default subscriber is this thread's, where the call is
    // polled.
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
    let deployment = Deployment::builder().function(instrumented).build();
    let name = deployment.action(instrumented, NoArgs {}).await.unwrap();
    assert_eq!(name, "instrumented handler");
}

/// A user module named like the expansion's private alias: the handler's body, the user's
/// code, still means the user's module.
mod __crux_rt {
    pub fn helper() -> u64 {
        7
    }
}

#[crux::query(path = "spans:alias")]
pub async fn uses_a_module_named_like_the_alias(_ctx: &QueryCtx) -> crux::Result<u64> {
    Ok(__crux_rt::helper())
}

#[tokio::test]
async fn a_user_item_named_like_the_expansions_alias_stays_the_users() {
    let deployment = Deployment::builder()
        .function(uses_a_module_named_like_the_alias)
        .build();
    let value = deployment
        .query(uses_a_module_named_like_the_alias, NoArgs {})
        .await
        .unwrap();
    assert_eq!(value, 7);
}
