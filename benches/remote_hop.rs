//! The added latency of a remote `ctx.crux.run_action` hop over the same HTTP call made
//! with the bare client, both from inside one observed run, over loopback to a crux
//! service (`crux-server`) in the same process on its own runtime thread.
//!
//! Each round makes `CALLS` pairs of calls, alternating which goes first, and keeps every
//! call's latency; a round reports p50 and p99 of each way. Five rounds; the summary is the
//! median of the five with their spread. divan and criterion report means and medians, not
//! tail percentiles, so this bench measures with its own loop (`harness = false`). A third,
//! diagnostic way records the same hop without its two bounded flushes.
//!
//! ```text
//! cargo bench --bench remote_hop --features client
//! ```

use std::time::{Duration, Instant};

use crux::boundary::Hop;
use crux::client::{Client, RemoteAction};
use crux::function::FunctionKind;
use crux::local::Deployment;
use crux::prelude::*;
use crux::sink::Memory;

const CALLS: usize = 2_000; // per way
const WARMUP: usize = 200;
const ROUNDS: usize = 5;

#[derive(Serialize, Deserialize)]
pub struct Work {
    pub text: String,
    pub n: u32,
}

/// Service B's action: what both ways call.
#[crux::action(path = "research:plan")]
pub async fn plan(_ctx: &ActionCtx, args: Work) -> crux::Result<Work> {
    Ok(Work {
        text: args.text,
        n: args.n + 1,
    })
}

const PLAN: RemoteAction<Work, Work> = RemoteAction::new("research:plan");

#[derive(Serialize, Deserialize)]
pub struct Round {
    pub calls: usize,
    /// Only this way (0 bare, 1 hop, 2 hop without flushes): for instruction counts.
    pub only: Option<usize>,
}

#[derive(Serialize, Deserialize)]
pub struct Latencies {
    /// Nanoseconds per call, bare client.
    pub bare: Vec<u64>,
    /// Nanoseconds per call, `ctx.crux.run_action` through the remote reference.
    pub hop: Vec<u64>,
    /// Diagnostic: the same hop's span, `requested` and envelope, without its two bounded
    /// flushes (what the flushes cost is `hop` minus this).
    pub no_flush: Vec<u64>,
}

/// Service A's action: one run, `calls` pairs of calls.
#[crux::action(path = "bench:round", name = "remote hop bench", root = "agent.run")]
pub async fn round(ctx: &ActionCtx, args: Round) -> crux::Result<Latencies> {
    let client = ctx.state::<Client>()?;
    let mut out = Latencies {
        bare: Vec::with_capacity(args.calls),
        hop: Vec::with_capacity(args.calls),
        no_flush: Vec::with_capacity(args.calls),
    };
    for i in 0..args.calls {
        let work = || Work {
            text: "plan the research".into(),
            n: i as u32,
        };
        let ways = match args.only {
            Some(way) => vec![way],
            None => vec![i % 3, (i + 1) % 3, (i + 2) % 3],
        };
        for way in ways {
            let started = Instant::now();
            match way {
                0 => {
                    let _: Work = client.action("research:plan", &work()).await?;
                    out.bare.push(started.elapsed().as_nanos() as u64);
                }
                1 => {
                    ctx.crux
                        .run_action("plan research", PLAN.on(client), work())
                        .await?;
                    out.hop.push(started.elapsed().as_nanos() as u64);
                }
                _ => {
                    let mut hop = Hop::action("plan research", "research:plan");
                    let args = serde_json::to_value(work())?;
                    let result = client
                        .call_json(FunctionKind::Action, "research:plan", args, hop.envelope())
                        .await;
                    hop.end(&result);
                    result?;
                    out.no_flush.push(started.elapsed().as_nanos() as u64);
                }
            }
        }
    }
    Ok(out)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1_000.0
}

fn median_and_spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent: do one tiny round.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (calls, warmup, rounds) = if quick {
        (20, 5, 1)
    } else {
        (CALLS, WARMUP, ROUNDS)
    };

    // Service B on its own runtime thread.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let b = Deployment::builder()
        .sink(Memory::bounded(100_000))
        .function(plan)
        .build();
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = crux_server::Server::builder(b).build();
    server_rt.spawn(async move { server.serve(listener, std::future::pending()).await });

    // Service A, calling it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::builder(&url)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let a = Deployment::builder()
        .sink(Memory::bounded(100_000))
        .function(round)
        .state(client)
        .build();
    let warm = Round {
        calls: warmup,
        only: None,
    };
    rt.block_on(a.action(round, warm)).unwrap();

    // Instruction counts: `CRUX_REMOTE_HOP_ONLY=bare|hop|no_flush CRUX_REMOTE_HOP_CALLS=N
    // valgrind --tool=callgrind <bench binary> --bench` twice with two N; the difference
    // over the added calls is the instructions per call, every thread (both services).
    if let Ok(way) = std::env::var("CRUX_REMOTE_HOP_ONLY") {
        let only = ["bare", "hop", "no_flush"]
            .iter()
            .position(|w| *w == way)
            .expect("CRUX_REMOTE_HOP_ONLY is bare, hop or no_flush");
        let calls = std::env::var("CRUX_REMOTE_HOP_CALLS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(200);
        let only = Round {
            calls,
            only: Some(only),
        };
        rt.block_on(a.action(round, only)).unwrap();
        return;
    }

    let mut rows = Vec::new();
    for r in 0..rounds {
        let mut l = rt
            .block_on(a.action(round, Round { calls, only: None }))
            .unwrap();
        l.bare.sort_unstable();
        l.hop.sort_unstable();
        l.no_flush.sort_unstable();
        let row = [
            percentile(&l.bare, 0.5),
            percentile(&l.hop, 0.5),
            percentile(&l.bare, 0.99),
            percentile(&l.hop, 0.99),
            percentile(&l.no_flush, 0.5),
            percentile(&l.no_flush, 0.99),
        ];
        println!(
            "round {}: bare p50 {:.1} µs, hop p50 {:.1} µs (no flush {:.1}); \
             bare p99 {:.1} µs, hop p99 {:.1} µs (no flush {:.1})",
            r + 1,
            row[0],
            row[1],
            row[4],
            row[2],
            row[3],
            row[5]
        );
        rows.push(row);
    }
    for (name, bare, hop) in [
        ("p50", 0, 1),
        ("p99", 2, 3),
        ("p50 without flushes", 0, 4),
        ("p99 without flushes", 2, 5),
    ] {
        let (ratio, rmin, rmax) =
            median_and_spread(rows.iter().map(|row| row[hop] / row[bare]).collect());
        let (added, amin, amax) =
            median_and_spread(rows.iter().map(|row| row[hop] - row[bare]).collect());
        let (base, _, _) = median_and_spread(rows.iter().map(|row| row[bare]).collect());
        println!(
            "{name}: bare {base:.1} µs; hop/bare {ratio:.3} ({rmin:.3}..{rmax:.3}); \
             added {added:.1} µs ({amin:.1}..{amax:.1}); median of {rounds} rounds of {calls}"
        );
    }
}
