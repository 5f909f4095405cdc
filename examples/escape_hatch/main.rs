//! The escape hatch: keeping work in the run across a boundary crux does not wrap.
//!
//! `index documents` hands texts to a background tokio task through a channel. Each job
//! carries `capture_context()` from the sender; the worker runs it under
//! `with_context(...)`, so its `embedding.call` spans land in the `index documents` run,
//! nested under the span that sent them. Prefer `ctx.crux` helpers whenever they apply.
//!
//! `cargo run --example escape_hatch`; records are appended to `.crux/records.jsonl`.

mod embedder;
mod indexing;

#[path = "../recording/mod.rs"]
mod recording;

use crux::prelude::*;

#[tokio::main]
async fn main() -> crux::Result<()> {
    let (builder, memory) = recording::sinks(Deployment::builder())?;
    let deployment = builder
        .functions((indexing::index, indexing::store))
        .table("embeddings", |t| t)
        .build();
    embedder::start();

    // Outside any run the captured context is `None`: the worker records nothing.
    let warm_up =
        embedder::embed_in_background("warm up".into(), crux::observe::capture_context()).await?;
    println!("warm-up vector (recorded nowhere): {warm_up:?}");

    let texts = [
        "Duplicate charges are refunded within 5 business days",
        "Support can speed up a refund with the billing tool",
        "Convex actions may run for up to 10 minutes",
    ];
    let docs = indexing::Documents {
        texts: texts.map(String::from).to_vec(),
    };
    let stored = deployment.action(indexing::index, docs).await?;
    println!("documents indexed: {stored}");

    recording::print_runs(&deployment, &memory).await;
    Ok(())
}
