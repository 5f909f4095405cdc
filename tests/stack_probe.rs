//! Measures how much thread stack one function hop takes (`ctx.crux.run_action` and the raw
//! `ctx.run_action`): each level of a recursion records its stack address, and the median
//! difference between consecutive levels, all polled on one thread, is one hop.
//!
//! `cargo test --release --test stack_probe -- --nocapture` prints the figures.

use std::sync::Mutex;

use crux::local::Deployment;
use crux::prelude::*;

static ADDRESSES: Mutex<Vec<usize>> = Mutex::new(Vec::new());

#[inline(never)]
fn stack_address() -> usize {
    let probe = 0u8;
    std::hint::black_box(&probe) as *const u8 as usize
}

#[derive(Serialize, Deserialize)]
pub struct Levels {
    pub left: u32,
}

#[crux::action]
pub async fn observed_hop(ctx: &ActionCtx, args: Levels) -> crux::Result<u32> {
    ADDRESSES.lock().unwrap().push(stack_address());
    if args.left == 0 {
        return Ok(0);
    }
    let below = Levels {
        left: args.left - 1,
    };
    Ok(ctx.crux.run_action("down", observed_hop, below).await? + 1)
}

#[crux::action]
pub async fn raw_hop(ctx: &ActionCtx, args: Levels) -> crux::Result<u32> {
    ADDRESSES.lock().unwrap().push(stack_address());
    if args.left == 0 {
        return Ok(0);
    }
    let below = Levels {
        left: args.left - 1,
    };
    Ok(ctx.run_action(raw_hop, below).await? + 1)
}

/// The median stack distance between consecutive levels of a 40-deep recursion.
fn bytes_per_hop(observed: bool) -> usize {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let deployment = Deployment::builder()
                    .functions((observed_hop, raw_hop))
                    .build();
                ADDRESSES.lock().unwrap().clear();
                let levels = Levels { left: 40 };
                let depth = if observed {
                    deployment.action(observed_hop, levels).await
                } else {
                    deployment.action(raw_hop, levels).await
                };
                assert_eq!(depth.unwrap(), 40);
                let addresses = std::mem::take(&mut *ADDRESSES.lock().unwrap());
                let mut steps: Vec<usize> =
                    addresses.windows(2).map(|w| w[0].abs_diff(w[1])).collect();
                steps.sort_unstable();
                steps[steps.len() / 2]
            })
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn stack_per_hop() {
    let observed = bytes_per_hop(true);
    let raw = bytes_per_hop(false);
    println!("stack per hop: ctx.crux.run_action {observed} bytes, ctx.run_action {raw} bytes");
    assert!(observed > 0 && raw > 0);
}
