//! Handler shapes users write: patterns, `mut`, docs, inner attributes, cfg, early return,
//! `?`, visibility, raw identifiers, nested modules.
use crux::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct Pair {
    pub a: u32,
    pub b: u32,
}

/// Adds.
#[crux::query]
pub async fn add(_: &QueryCtx, Pair { a, b }: Pair) -> crux::Result<u32> {
    Ok(a + b)
}

#[crux::mutation]
pub(crate) async fn push(_ctx: &MutationCtx, mut args: Vec<u32>) -> crux::Result<Vec<u32>> {
    #![allow(clippy::needless_return)]
    args.push(1);
    return Ok(args);
}

#[crux::internal_action]
async fn r#type(_ctx: &ActionCtx, (left, right): (u32, u32)) -> crux::Result<u32> {
    let sum = left.checked_add(right).ok_or_else(|| crux::Error::msg("overflow"))?;
    if sum == 0 {
        return Ok(0);
    }
    Ok(sum)
}

#[cfg(any())]
#[crux::action]
pub async fn compiled_out(_ctx: &ActionCtx) -> crux::Result<()> {
    this_would_not_compile
}

pub mod research {
    pub mod data {
        use crux::prelude::*;

        #[crux::query]
        pub async fn get_inputs(_ctx: &QueryCtx) -> Result<Vec<String>> {
            Ok(Vec::new())
        }
    }
}

fn main() {
    let _ = r#type;
    let _ = research::data::get_inputs;
}
