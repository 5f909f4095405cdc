use crux::prelude::*;

#[crux::action(name = "a", root = "agent.run", name = "b")]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
