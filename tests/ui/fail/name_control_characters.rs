use crux::prelude::*;

#[crux::action(name = "support\tchat")]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
