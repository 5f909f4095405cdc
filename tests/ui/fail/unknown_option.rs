use crux::prelude::*;

#[crux::action(nmae = "support chat")]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::query(colour = "red")]
pub async fn list(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
