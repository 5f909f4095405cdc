use crux::prelude::*;

#[crux::action(attributes(functionRef = "x", boundary = 1, entrypoint = true, presentation = "y", crux.kind = "z"))]
pub async fn respond(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
