//! Throughput of a crux server on loopback: an action making two `ctx.crux.run_action`
//! hops, served with crux observing (a Memory sink keeping 100 000 records, and one keeping
//! 1 000; a JSON Lines sink, on the delivery thread and declared prompt), with the
//! observer disabled, and a bare axum handler doing the same work. A load generator in a
//! second process (this binary, re-run with `--load-generator`) keeps `CONNECTIONS` keep-alive
//! connections busy; each run gives requests/s and p50/p99 latency per variant. In a run
//! every variant is served at once and the load moves between them in short slices, the
//! order rotating, so load drift falls on all of them alike. Prints the median of the runs
//! with their spread, and the ratios against the baselines measured in the same runs.
//!
//! ```text
//! crux-server/benches/throughput.sh [RUNS] [SECONDS] [CONNECTIONS]   (defaults 5 3 32)
//! CRUX_THROUGHPUT_VARIANTS=memory,disabled crux-server/benches/throughput.sh   (a subset)
//! CRUX_THROUGHPUT_SLICES=1 ...   (each variant measured in one piece; default 4 slices)
//! CRUX_THROUGHPUT_BUSY=1 ...     (a busy loop in a second process keeps a core busy)
//! ```
//!
//! The figures depend on the machine's load (server, generator and delivery thread share
//! its cores): compare ratios within a run, not absolute figures across runs.

mod load;
mod servers;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use servers::Variant;

/// One variant's figures in one run.
#[derive(Clone, Copy, Debug)]
struct Figures {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--load-generator") {
        let addr: SocketAddr = args[1].parse().expect("an address");
        let connections = args[2].parse().expect("a connection count");
        let warmup = Duration::from_millis(args[3].parse().expect("warm-up ms"));
        let measure = Duration::from_millis(args[4].parse().expect("measured ms"));
        load::main(addr, connections, warmup, measure, servers::BODY);
        return;
    }
    if args.first().map(String::as_str) == Some("--requests") {
        let addr: SocketAddr = args[1].parse().expect("an address");
        let connections = args[2].parse().expect("a connection count");
        let total = args[3].parse().expect("a request count");
        load::count(addr, connections, total, servers::BODY);
        return;
    }
    if args.first().map(String::as_str) == Some("--serve") {
        serve_one(parse_variant(&args[1]));
        return;
    }
    // `cargo bench` passes `--bench`; the rest are RUNS SECONDS CONNECTIONS.
    let numbers: Vec<u64> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("RUNS SECONDS CONNECTIONS are numbers"))
        .collect();
    let runs = numbers.first().copied().unwrap_or(5).max(1) as usize;
    let seconds = numbers.get(1).copied().unwrap_or(3).max(1);
    let connections = numbers.get(2).copied().unwrap_or(32).max(1);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let records =
        std::env::temp_dir().join(format!("crux-throughput-{}.jsonl", std::process::id()));
    let chosen = chosen_variants();
    let slices = env_number("CRUX_THROUGHPUT_SLICES", 4).max(1);
    println!(
        "throughput: {runs} runs x {} variants, {seconds} s each in {slices} slices (the \
         variants taking turns; 1 s warm-up, then 0.25 s before each later slice), \
         {connections} connections; load average at start: {}",
        chosen.len(),
        loadavg()
    );
    let _busy = std::env::var_os("CRUX_THROUGHPUT_BUSY").map(|_| Busy::start());
    let mut table: Vec<Vec<Figures>> = vec![Vec::new(); Variant::ALL.len()];
    for run in 1..=runs {
        // Every variant served at once, the load moved from one to the next in short
        // slices (the order rotating), so a change of the machine's load during the run
        // falls on all of them alike: each ratio compares slices taken seconds apart, not
        // whole measurements taken a minute apart.
        let servers: Vec<(usize, Variant, std::path::PathBuf, servers::Running)> = Variant::ALL
            .into_iter()
            .enumerate()
            .filter(|(_, v)| chosen.contains(v))
            .map(|(i, v)| {
                let file = records.with_extension(format!("{i}.jsonl"));
                let server = runtime.block_on(servers::start(v, &file));
                (i, v, file, server)
            })
            .collect();
        let mut slices_of: Vec<Vec<Figures>> = vec![Vec::new(); servers.len()];
        let measured_ms = seconds * 1000 / slices;
        for slice in 0..slices {
            // The first slice of each server also warms it (connections, allocations).
            let warmup_ms = if slice == 0 { 1000 } else { 250 };
            for k in 0..servers.len() {
                let at = (k + slice as usize) % servers.len();
                let figures = generate(servers[at].3.addr, connections, warmup_ms, measured_ms);
                slices_of[at].push(figures);
            }
        }
        for ((i, variant, file, server), slices) in servers.into_iter().zip(slices_of) {
            runtime.block_on(server.stop());
            let _ = std::fs::remove_file(file);
            let figures = Figures::of_slices(&slices);
            println!(
                "run {run} {:<26} {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  errors {}",
                variant.name(),
                figures.rps,
                figures.p50_us,
                figures.p99_us,
                figures.errors
            );
            table[i].push(figures);
        }
    }
    println!("\nload average at end: {}", loadavg());
    println!(
        "\n{:<26} {:>22} {:>22} {:>22}",
        "median of runs (min–max)", "req/s", "p50 µs", "p99 µs"
    );
    for (variant, figures) in Variant::ALL.iter().zip(&table) {
        if figures.is_empty() {
            continue;
        }
        println!(
            "{:<26} {:>22} {:>22} {:>22}",
            variant.name(),
            spread(figures.iter().map(|f| f.rps)),
            spread(figures.iter().map(|f| f.p50_us)),
            spread(figures.iter().map(|f| f.p99_us)),
        );
    }
    let at = |v: Variant| Variant::ALL.iter().position(|x| *x == v).unwrap();
    let ratio = |a: Variant, b: Variant| {
        spread_ratio(
            table[at(a)]
                .iter()
                .zip(&table[at(b)])
                .map(|(x, y)| x.rps / y.rps),
        )
    };
    println!("\nthroughput ratios, per run (median, min–max):");
    for (a, b) in [
        (Variant::CruxMemory, Variant::CruxDisabled),
        (Variant::CruxMemorySmall, Variant::CruxDisabled),
        (Variant::CruxJsonLines, Variant::CruxDisabled),
        (Variant::CruxJsonLinesPrompt, Variant::CruxDisabled),
        (Variant::CruxDisabled, Variant::BareAxum),
        (Variant::CruxMemory, Variant::BareAxum),
    ] {
        if table[at(a)].is_empty() || table[at(b)].is_empty() {
            continue;
        }
        println!("  {} / {}: {}", a.name(), b.name(), ratio(a, b));
    }
}

/// The variants `CRUX_THROUGHPUT_VARIANTS` names (`memory`, `memory1k`, `jsonl`,
/// `jsonl-prompt`, `disabled`, `bare`, comma-separated), or all.
fn chosen_variants() -> Vec<Variant> {
    let Ok(names) = std::env::var("CRUX_THROUGHPUT_VARIANTS") else {
        return Variant::ALL.to_vec();
    };
    names.split(',').map(parse_variant).collect()
}

fn parse_variant(name: &str) -> Variant {
    match name.trim() {
        "memory" => Variant::CruxMemory,
        "memory1k" => Variant::CruxMemorySmall,
        "jsonl" => Variant::CruxJsonLines,
        "jsonl-prompt" => Variant::CruxJsonLinesPrompt,
        "disabled" => Variant::CruxDisabled,
        "bare" => Variant::BareAxum,
        other => panic!(
            "unknown variant `{other}` (memory, memory1k, jsonl, jsonl-prompt, disabled, bare)"
        ),
    }
}

/// `--serve VARIANT`: serves one variant, prints `serving <addr>`, and stops (flushing)
/// when its standard input closes. For instruction counts under callgrind
/// (`throughput-callgrind.sh`), with the load generator outside it.
fn serve_one(variant: Variant) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let records =
        std::env::temp_dir().join(format!("crux-throughput-{}.jsonl", std::process::id()));
    let server = runtime.block_on(servers::start(variant, &records));
    println!("serving {}", server.addr);
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    runtime.block_on(server.stop());
    let _ = std::fs::remove_file(&records);
}

/// Runs the load generator for one measurement: `warmup_ms`, then `measured_ms` counted.
fn generate(addr: SocketAddr, connections: u64, warmup_ms: u64, measured_ms: u64) -> Figures {
    let exe = std::env::current_exe().expect("this binary");
    let output = Command::new(exe)
        .args([
            "--load-generator".to_owned(),
            addr.to_string(),
            connections.to_string(),
            warmup_ms.to_string(),
            measured_ms.to_string(),
        ])
        .output()
        .expect("the load generator runs");
    assert!(
        output.status.success(),
        "the load generator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = String::from_utf8_lossy(&output.stdout);
    let value: serde_json::Value = serde_json::from_str(line.trim()).expect("its JSON line");
    let number = |key: &str| value[key].as_f64().expect("a number");
    Figures {
        rps: number("requests") / number("seconds"),
        p50_us: number("p50_us"),
        p99_us: number("p99_us"),
        errors: value["errors"].as_u64().expect("a count"),
    }
}

impl Figures {
    /// One run's figures from its slices: requests/s over all of them, and the median
    /// slice's p50 and p99 (the slices are equally long).
    fn of_slices(slices: &[Figures]) -> Figures {
        let mean = slices.iter().map(|f| f.rps).sum::<f64>() / slices.len() as f64;
        Figures {
            rps: mean,
            p50_us: median_min_max(slices.iter().map(|f| f.p50_us)).0,
            p99_us: median_min_max(slices.iter().map(|f| f.p99_us)).0,
            errors: slices.iter().map(|f| f.errors).sum(),
        }
    }
}

/// A second process that never sleeps (`CRUX_THROUGHPUT_BUSY`): the figures of a machine
/// whose other work competes for the cores, reproducible by anyone; stopped on drop.
struct Busy(std::process::Child);

impl Busy {
    fn start() -> Busy {
        let child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("sh starts");
        println!(
            "CRUX_THROUGHPUT_BUSY: a busy loop runs beside the bench (pid {})",
            child.id()
        );
        Busy(child)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name} is a number, not `{v}`"))
        })
        .unwrap_or(default)
}

fn median_min_max(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (median, v[0], v[v.len() - 1])
}

fn spread(values: impl Iterator<Item = f64>) -> String {
    let (median, min, max) = median_min_max(values);
    format!("{median:.0} ({min:.0}–{max:.0})")
}

fn spread_ratio(values: impl Iterator<Item = f64>) -> String {
    let (median, min, max) = median_min_max(values);
    format!("{median:.3} ({min:.3}–{max:.3})")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
