use crux::prelude::*;

#[crux::query(crate = "my crux")]
pub async fn list(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
