use crux::prelude::*;

#[crux::action(flush = -1)]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
