//! Every option, alone and together, on every kind that takes it.
use crux::prelude::*;

#[crux::action(name = "support chat")]
pub async fn name_only(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::action(root = "generation.stream.attempt")]
pub async fn root_only(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::action(attributes(agentId = "support-chat", tier = 2, weight = -0.5, beta = true, "team.name" = "core", agent.version = 3))]
pub async fn attributes_only(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::action(flush = 0)]
pub async fn flush_zero(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::action(flush = 60000)]
pub async fn flush_max(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::action(flush = false)]
pub async fn flush_off(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::action(path = "support/chat:respond")]
pub async fn path_only(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::action(crate = "crux")]
pub async fn crate_only(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::action(
    name = "support chat",
    root = "agent.run",
    attributes(agentId = "support-chat"),
    flush = 1500,
    path = "support/chat:respond_all",
    crate = "::crux",
)]
pub async fn everything(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::internal_action(name = "plan", root = "plan.operation", attributes(step = 1), flush = false, path = "research:plan", crate = "crux")]
pub async fn internal_everything(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::query(path = "research:get_inputs", crate = "crux")]
pub async fn query_everything(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::internal_query(path = "research:count")]
pub async fn internal_query_path(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::mutation(path = "docs:save", crate = "crux")]
pub async fn mutation_everything(_ctx: &MutationCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::internal_mutation(crate = "crux")]
pub async fn internal_mutation_crate(_ctx: &MutationCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
