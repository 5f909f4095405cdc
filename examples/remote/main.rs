//! One Crux run across two OS processes.
//!
//! `cargo run --example remote --features client` starts the research step as a second
//! service (this same binary with `--serve-research`, its own process, serving Convex's
//! HTTP API on a free loopback port), then answers one chat turn in this process: the
//! action `chat:respond` calls `research:plan` (an action) and `research:sources` (a query)
//! over HTTP through remote references, exactly as it would call local functions. The
//! research process continues the run from the `__crux` argument, in its own segment.
//!
//! At the end the research process is stopped, every record of both processes is appended
//! to `.crux/records.jsonl` (so `crux show latest` shows the run), and the one run is
//! printed as a tree.
//!
//! With `CONVEX_URL` set (and `CONVEX_DEPLOY_KEY` for an admin call), it calls that
//! deployment's `research:plan` and `research:sources` instead of starting a process;
//! the README says what the Convex project needs for the run to continue there.

mod research;

#[path = "../recording/mod.rs"]
#[allow(dead_code)] // `print_runs`: this example prints two processes' records
mod recording;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crux::client::{Client, RemoteAction, RemoteQuery};
use crux::prelude::*;
use crux::sink::{JsonLines, Memory};

use research::{Plan, PlanArgs, SourcesArgs};

/// The research service's functions, declared once where they are called.
const PLAN: RemoteAction<PlanArgs, Plan> = RemoteAction::new("research:plan");
const SOURCES: RemoteQuery<SourcesArgs, Vec<String>> = RemoteQuery::new("research:sources");

#[derive(Debug, Serialize, Deserialize)]
pub struct RespondArgs {
    pub message: String,
}

/// A chat turn: plans the research in the research service, lists the sources there too,
/// then writes the answer here.
#[crux::action(path = "chat:respond", name = "support chat", root = "agent.run")]
pub async fn respond(ctx: &ActionCtx, args: RespondArgs) -> crux::Result<String> {
    let research = ctx.state::<Client>()?;
    let plan = ctx
        .crux
        .run_action(
            "plan research",
            PLAN.on(research),
            PlanArgs {
                question: args.message.clone(),
            },
        )
        .await?;
    let sources = ctx
        .crux
        .run_query(
            "list sources",
            SOURCES.on(research),
            SourcesArgs {
                topic: "billing".into(),
            },
        )
        .await?;
    let writing = ctx
        .crux
        .span("write the answer", "generation.call")
        .model("stand-in")
        .start();
    let answer = format!(
        "I will {} (sources: {}).",
        plan.steps.join(", then "),
        sources.join("; ")
    );
    writing.end(crux::observe::SpanStatus::Ok);
    Ok(answer)
}

#[tokio::main]
async fn main() -> crux::Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--serve-research") {
        let store = args
            .next()
            .ok_or_else(|| Error::msg("--serve-research STORE"))?;
        return serve_research(Path::new(&store)).await;
    }

    let (research, service) = match std::env::var("CONVEX_URL") {
        Ok(url) if !url.trim().is_empty() => {
            let mut client = Client::builder(url.trim());
            if let Ok(key) = std::env::var("CONVEX_DEPLOY_KEY") {
                client = client.admin_key(key);
            }
            (client.build()?, None)
        }
        _ => {
            let service = ResearchService::start()?;
            (Client::new(&service.url)?, Some(service))
        }
    };
    println!("research service at {}", research.url());

    let (builder, memory) = recording::sinks(Deployment::builder())?;
    let deployment = builder.function(respond).state(research).build();
    let reply = deployment
        .action(
            respond,
            RespondArgs {
                message: "Why was I charged twice?".into(),
            },
        )
        .await;
    deployment.flush(Duration::from_secs(3)).await;

    // The research process's records, after it stopped, appended to the same store.
    let remote_records = match service {
        Some(service) => service.stop()?,
        None => Vec::new(),
    };
    append_to_store(&remote_records)?;
    print_run(&memory, &remote_records);
    println!("reply: {}", reply?);
    Ok(())
}

/// Prints every run in this process's records plus the research process's, as `crux show`
/// prints them.
fn print_run(memory: &Memory, remote: &[serde_json::Value]) {
    let mut records = memory.records();
    let local = records.len();
    records.extend(remote.iter().cloned());
    let trees = crux::view::Trees::from_values(&records).to_string();
    println!("\n{}", trees.trim_end());
    println!(
        "\n{local} records from this process and {} from the research process appended to {}",
        remote.len(),
        JsonLines::default_path().display()
    );
}

fn append_to_store(records: &[serde_json::Value]) -> crux::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for record in records {
        text.push_str(&record.to_string());
        text.push('\n');
    }
    // One write: the store's lines stay whole.
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(JsonLines::default_path())?
        .write_all(text.as_bytes())?;
    Ok(())
}

/// The research process, running.
struct ResearchService {
    child: Child,
    url: String,
    store: PathBuf,
}

impl ResearchService {
    /// Starts this binary with `--serve-research` and waits for its address.
    fn start() -> crux::Result<ResearchService> {
        let store =
            std::env::temp_dir().join(format!("crux-remote-example-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&store);
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve-research")
            .arg(&store)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| Error::msg("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            return Err(Error::msg(format!(
                "the research service did not start: {line:?}"
            )));
        };
        Ok(ResearchService {
            url: format!("http://{addr}"),
            child,
            store,
        })
    }

    /// Closes its stdin (its signal to stop), waits, and returns the records it wrote.
    fn stop(mut self) -> crux::Result<Vec<serde_json::Value>> {
        drop(self.child.stdin.take());
        let status = self.child.wait()?;
        if !status.success() {
            return Err(Error::msg(format!("the research service failed: {status}")));
        }
        let text = std::fs::read_to_string(&self.store).unwrap_or_default();
        let _ = std::fs::remove_file(&self.store);
        text.lines()
            .map(|line| serde_json::from_str(line).map_err(Error::from))
            .collect()
    }
}

impl Drop for ResearchService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The research process: serves `research:plan` and `research:sources` on a free loopback
/// port, recording to `store`, until its stdin closes.
async fn serve_research(store: &Path) -> crux::Result<()> {
    let deployment = Deployment::builder()
        .sink(JsonLines::open(store)?)
        .functions((research::plan, research::sources))
        .build();
    let server = crux_server::Server::builder(deployment).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = closed.send(());
    });
    server
        .serve(listener, async move {
            let _ = stdin_closed.await;
        })
        .await
        .map_err(Error::msg)?;
    Ok(())
}
