//! A query's `ctx.db` is a `DatabaseReader`: writing does not compile.
use crux::prelude::*;

#[crux::query]
pub async fn sneaky(ctx: &QueryCtx) -> crux::Result<Id> {
    ctx.db.insert("messages", serde_json::json!({"body": "hi"})).await
}

fn main() {}
