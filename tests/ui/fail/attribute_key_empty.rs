use crux::prelude::*;

#[crux::action(attributes("" = "a"))]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
