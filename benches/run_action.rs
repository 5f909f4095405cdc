//! `ctx.crux.run_action` through the deployment vs a raw `ctx.run_action` of the same
//! function with the same args, both from inside one observed run, Memory sink.
//!
//! Each sample is one run of `drive`, which makes `HOPS` calls to `leaf` one way or the
//! other; the per-hop cost is the sample time divided by `HOPS`.
//!
//! The sink is filled to its bound before the first sample, so both hops are measured at
//! a service's steady state: the records a hop leaves replace older ones in memory the
//! process already has. While a sink still grows, every new record also costs page faults
//! (a crux hop keeps about 5 records, a raw hop 2), which put the time ratio well above
//! the instruction ratio (1.57–2.03× against 1.20×, session 8).
//!
//! ```text
//! cargo bench --bench run_action
//! ```

use std::sync::LazyLock;

use crux::local::Deployment;
use crux::prelude::*;
use crux::sink::Memory;

const HOPS: u32 = 50;

#[derive(Serialize, Deserialize)]
pub struct Work {
    pub text: String,
    pub n: u32,
}

#[derive(Serialize, Deserialize)]
pub struct Drive {
    pub observed: bool,
}

#[crux::internal_action(name = "leaf")]
pub async fn leaf(_ctx: &ActionCtx, args: Work) -> crux::Result<Work> {
    Ok(Work {
        text: args.text,
        n: args.n + 1,
    })
}

#[crux::action(name = "drive")]
pub async fn drive(ctx: &ActionCtx, args: Drive) -> crux::Result<u32> {
    let mut total = 0;
    for n in 0..HOPS {
        let work = Work {
            text: "plan the research".into(),
            n,
        };
        let out = if args.observed {
            ctx.crux.run_action("plan research", leaf, work).await?
        } else {
            ctx.run_action(leaf, work).await?
        };
        total += out.n;
    }
    Ok(total)
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

/// Records the bench's sink keeps: the newest, as a long-running service's would.
const SINK_BOUND: usize = 10_000;

static DEPLOYMENT: LazyLock<Deployment> = LazyLock::new(|| {
    let deployment = Deployment::builder()
        .sink(Memory::bounded(SINK_BOUND))
        .function(leaf)
        .function(drive)
        .build();
    // Past the bound: a drive keeps about 5 records a hop observed (2 raw), so
    // `SINK_BOUND / HOPS` observed drives keep about 5× the bound.
    let drives = SINK_BOUND / HOPS as usize;
    for observed in [true, false] {
        for _ in 0..drives {
            run(&deployment, observed);
        }
    }
    deployment
});

/// The same functions with observability off: what the JSON hops cost on their own.
static UNOBSERVED: LazyLock<Deployment> = LazyLock::new(|| {
    Deployment::builder()
        .observer(crux::observe::Observer::disabled())
        .function(leaf)
        .function(drive)
        .build()
});

fn main() {
    // Built (and the sink filled) before divan's first sample, so no sample counts it.
    LazyLock::force(&DEPLOYMENT);
    LazyLock::force(&UNOBSERVED);
    divan::main();
}

fn run(deployment: &Deployment, observed: bool) -> u32 {
    RUNTIME
        .block_on(deployment.action(drive, Drive { observed }))
        .expect("drive runs")
}

/// `ctx.crux.run_action`: boundary span, `requested`, flushes, envelope, child restore.
#[divan::bench(sample_count = 100, sample_size = 1)]
fn crux_run_action() -> u32 {
    run(&DEPLOYMENT, true)
}

/// Raw `ctx.run_action`: same hop over JSON, no boundary (the callee opens its own run).
#[divan::bench(sample_count = 100, sample_size = 1)]
fn raw_run_action() -> u32 {
    run(&DEPLOYMENT, false)
}

/// `ctx.crux.run_action` with observability disabled (no records, no flushes).
#[divan::bench(sample_count = 100, sample_size = 1)]
fn crux_run_action_unobserved() -> u32 {
    run(&UNOBSERVED, true)
}

/// Raw `ctx.run_action` with observability disabled: the bare JSON hop.
#[divan::bench(sample_count = 100, sample_size = 1)]
fn raw_run_action_unobserved() -> u32 {
    run(&UNOBSERVED, false)
}
