use crux::prelude::*;

const TIER: u8 = 2;

#[crux::action(attributes(tier = TIER, tags = ["a"], letter = 'x'))]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    let _ = TIER;
    Ok(())
}

fn main() {}
