use crux::prelude::*;

#[crux::query(path = "research")]
pub async fn a(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::query(path = "/research:b")]
pub async fn b(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::query(path = "research//data:c")]
pub async fn c(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::query(path = "../research:d")]
pub async fn d(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

#[crux::query(path = "research:9e")]
pub async fn e(_ctx: &QueryCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
