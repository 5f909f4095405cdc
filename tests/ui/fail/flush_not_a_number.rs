use crux::prelude::*;

#[crux::action(flush = true)]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::action(flush = "1s")]
pub async fn other(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
