use crux::prelude::*;

pub struct Plain {
    pub id: u32,
}

// The result type is the argument type: both messages, the argument's and the result's.
#[crux::query]
pub async fn same(_ctx: &QueryCtx, args: Plain) -> crux::Result<Plain> {
    Ok(args)
}

fn main() {}
