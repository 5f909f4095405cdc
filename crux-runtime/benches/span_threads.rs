//! Where a span's CPU goes, per thread of the process: the `overhead` bench's `span::crux`
//! and `span::fastrace_trace` loops (the same sink and work), each run for a while, with
//! every thread's CPU time (`/proc/self/task/*/schedstat`, ns on a CPU) and context
//! switches (`/proc/self/task/*/status`) read before and after.
//!
//! ```text
//! cargo bench -p crux-runtime --bench span_threads [-- ITERATIONS]   (compare.sh: 20000)
//! ```
//!
//! A timing of the bench thread alone hides the work other threads of the process do for
//! it (crux's `crux-delivery` worker, fastrace's collector): on a machine whose other
//! core is busy, that work competes with the bench thread for its core. Linux only (it
//! prints nothing per thread elsewhere). `benches/compare.sh` runs it.

use std::collections::BTreeMap;
use std::time::Instant;

use crux_runtime::observe::RunOptions;
use crux_runtime::record::SpanStatus;

mod shared;
use shared::{BATCH, DropReporter, fast};

/// One thread's counters at a point in time.
#[derive(Clone, Copy, Default)]
struct Usage {
    cpu_ns: u64,
    voluntary: u64,
    involuntary: u64,
    /// Minor page faults (a freshly mapped page touched).
    faults: u64,
}

/// Every thread of this process: its name (with its id, as names repeat) → usage.
fn threads() -> BTreeMap<String, Usage> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let name = read("comm").trim().to_string();
        let cpu_ns = read("schedstat")
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let status = read("status");
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        // `stat`'s fields after the name (which may hold spaces): minflt is the 8th.
        let stat = read("stat");
        let faults = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(7)?.parse().ok())
            .unwrap_or(0);
        let usage = Usage {
            cpu_ns,
            faults,
            voluntary: field("voluntary_ctxt_switches:"),
            involuntary: field("nonvoluntary_ctxt_switches:"),
        };
        out.insert(
            format!("{name}/{}", task.file_name().to_string_lossy()),
            usage,
        );
    }
    out
}

/// CPU time of every thread but this one (the bench thread), in ns.
fn others_cpu_ns() -> u64 {
    let me = format!("/{}", std::process::id());
    threads()
        .iter()
        .filter(|(name, _)| !name.ends_with(&me))
        .map(|(_, usage)| usage.cpu_ns)
        .sum()
}

/// Waits (at most 5 s) until the other threads' CPU time stops growing for 20 ms, after
/// `drain` (which waits for a crux backlog to be delivered): the work a loop left behind
/// (a crux backlog, fastrace's collector) is then charged to its own window, not to the
/// next loop's.
fn settle(drain: &dyn Fn()) {
    drain();
    let by = Instant::now() + std::time::Duration::from_secs(5);
    let mut last = others_cpu_ns();
    while Instant::now() < by {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = others_cpu_ns();
        if now == last {
            break;
        }
        last = now;
    }
}

/// Runs `iteration` `iterations` times and prints, per span, the wall time of the loop
/// and every thread's CPU time and context switches until the work it caused is done
/// (`drain`: waits until nothing of it is left queued).
fn measure(label: &str, iterations: usize, drain: &dyn Fn(), mut iteration: impl FnMut()) {
    for _ in 0..iterations / 10 {
        iteration();
    }
    settle(drain);
    let before = threads();
    let started = Instant::now();
    for _ in 0..iterations {
        iteration();
    }
    let wall = started.elapsed();
    settle(drain);
    let after = threads();
    let spans = (iterations * BATCH) as f64;
    println!(
        "{label}: {:.1} ns wall per span (load {})",
        wall.as_nanos() as f64 / spans,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
    );
    for (name, a) in &after {
        let b = before.get(name).copied().unwrap_or_default();
        let cpu = a.cpu_ns.saturating_sub(b.cpu_ns);
        if cpu == 0 {
            continue;
        }
        println!(
            "  {name:<24} {:7.1} ns CPU per span  switches: {:6} voluntary {:6} involuntary  \
             {:8} page faults",
            cpu as f64 / spans,
            a.voluntary.saturating_sub(b.voluntary),
            a.involuntary.saturating_sub(b.involuntary),
            a.faults.saturating_sub(b.faults),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`, an unoptimized
    // build) a few iterations only check that it runs.
    let benching = std::env::args().any(|a| a == "--bench");
    let iterations: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benching { 100_000 } else { 10 });
    // Each crux span queues two records of this size (written by the bench thread, read
    // by the worker): the bytes a span moves between the cores.
    println!(
        "crux record: {} bytes",
        std::mem::size_of::<crux_runtime::record::Record>()
    );
    fastrace::set_reporter(DropReporter, fastrace::collector::Config::default());
    // As `overhead`'s `crux_scope`.
    let observer = shared::span_observer();
    let run = observer.open_run(RunOptions::new("bench", "agent.run"));
    let scope = run.scope();
    let _in_run = scope.enter();
    for _ in 0..2 {
        measure(
            "crux",
            iterations,
            &|| shared::wait_until_delivered(&observer),
            || {
                for _ in 0..BATCH {
                    crux_runtime::observe::span("step", "tool.call")
                        .start()
                        .end(SpanStatus::Ok);
                }
            },
        );
        measure("fastrace", iterations, &|| {}, || {
            let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
            let _guard = root.set_local_parent();
            for _ in 0..BATCH {
                fast();
            }
        });
    }
    let stats = observer.stats();
    println!(
        "crux delivery: {} accepted, {} delivered, {} dropped",
        stats.accepted, stats.delivered, stats.dropped
    );
}
