use crux::prelude::*;

#[crux::action(flush = 60001)]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
