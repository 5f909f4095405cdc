use crux::prelude::*;

pub struct Plain {
    pub id: u32,
}

#[crux::query]
pub async fn get(_ctx: &QueryCtx, args: Plain) -> crux::Result<u32> {
    Ok(args.id)
}

fn main() {}
