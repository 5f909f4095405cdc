use crux::prelude::*;

#[crux::query]
pub async fn list(_ctx: &QueryCtx) -> Option<u32> {
    None
}

#[crux::query]
pub async fn nothing(_ctx: &QueryCtx) {}

fn main() {}
