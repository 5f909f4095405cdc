use crux::prelude::*;

#[crux::query(name = "list docs")]
pub async fn list(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::internal_mutation(root = "agent.run", flush = 10, attributes(a = 1))]
pub async fn save(_ctx: &MutationCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
