use crux::prelude::*;

#[crux::action(name = "", root = "agentrun", colour = "red", flush = 70000, attributes(crux.id = 1))]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
