use crux::prelude::*;

#[crux::query]
pub async fn get<T: Serialize>(_ctx: &QueryCtx, _args: T) -> crux::Result<()> {
    Ok(())
}

fn main() {}
