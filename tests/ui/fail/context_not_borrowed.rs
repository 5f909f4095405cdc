use crux::prelude::*;

#[crux::query]
pub async fn list(_ctx: QueryCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
