//! Generated code stays clean under the strictest common lint settings.
#![deny(warnings, clippy::all, clippy::pedantic, unused, unused_braces, unreachable_code, missing_docs)]

use crux::function::Function;
use crux::prelude::*;

/// Arguments.
#[derive(Serialize, Deserialize)]
pub struct Args {
    /// An id.
    pub id: u32,
}

/// A documented action.
#[crux::action(name = "lint clean", root = "agent.run", attributes(n = 1))]
async fn act(ctx: &ActionCtx, args: Args) -> crux::Result<u32> {
    let _ = ctx;
    if args.id == 0 {
        return Err(crux::Error::msg("zero"));
    }
    Ok(args.id)
}

/// A query without arguments.
#[crux::internal_query]
async fn count(_ctx: &QueryCtx) -> crux::Result<u64> {
    Ok(0)
}

/// A mutation returning unit.
#[crux::mutation]
async fn touch(_ctx: &MutationCtx, Args { id }: Args) -> crux::Result<()> {
    let _ = id;
    Ok(())
}

fn main() {
    let _ = (act::path(), count::path(), touch::path());
    let _ = (act, count, touch);
}
