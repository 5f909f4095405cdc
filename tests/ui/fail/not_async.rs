use crux::prelude::*;

#[crux::action]
pub fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
