use crux::prelude::*;

#[crux::action]
pub async fn respond(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::query]
pub async fn list(_ctx: &MutationCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::mutation]
pub async fn save(_ctx: &String) -> crux::Result<()> {
    Ok(())
}

fn main() {}
