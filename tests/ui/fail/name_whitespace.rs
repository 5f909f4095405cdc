use crux::prelude::*;

#[crux::action(name = "   ")]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
