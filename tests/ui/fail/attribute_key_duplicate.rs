use crux::prelude::*;

#[crux::action(attributes(agentId = "a", agentId = "b"))]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
