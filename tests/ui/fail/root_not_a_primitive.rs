use crux::prelude::*;

#[crux::action(root = "agentrun")]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::action(root = "tool")]
pub async fn call_tool(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
