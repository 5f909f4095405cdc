use crux::prelude::*;

#[crux::query]
pub async fn list(_ctx: &QueryCtx) -> std::result::Result<u32, String> {
    Ok(1)
}

fn main() {}
