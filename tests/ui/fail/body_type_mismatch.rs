use crux::prelude::*;

#[crux::query]
pub async fn count(_ctx: &QueryCtx) -> crux::Result<u32> {
    Ok("three")
}

fn main() {}
