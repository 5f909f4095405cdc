//! Convex rejects scheduled queries; here it does not compile.
use std::time::Duration;

use crux::prelude::*;

#[crux::query]
pub async fn list(_ctx: &QueryCtx) -> crux::Result<u32> {
    Ok(1)
}

#[crux::action]
pub async fn schedules(ctx: &ActionCtx) -> crux::Result<Id> {
    ctx.scheduler.run_after(Duration::ZERO, list, NoArgs {}).await
}

fn main() {}
