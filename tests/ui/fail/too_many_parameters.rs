use crux::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct A {}

#[crux::mutation]
pub async fn save(_ctx: &MutationCtx, _a: A, _b: A) -> crux::Result<()> {
    Ok(())
}

fn main() {}
