//! Indexing documents: embeddings are computed on the background worker, outside crux's
//! wrapped boundaries, yet recorded inside this run.

use crux::observe::SpanStatus;
use crux::prelude::*;
use serde_json::json;

use crate::embedder;

#[derive(Serialize, Deserialize)]
pub struct Documents {
    pub texts: Vec<String>,
}

/// Embeds every document on the worker, one job each, and stores the vectors.
#[crux::action(name = "index documents", root = "indexing.pipeline")]
pub async fn index(ctx: &ActionCtx, args: Documents) -> crux::Result<usize> {
    let batch = ctx
        .crux
        .span("embed documents", "retrieval.stage")
        .attr("documents", args.texts.len())
        .start();
    // Captured INSIDE the batch span, so the worker's spans nest under it.
    let here = batch.scope().map(|scope| scope.capture());
    let mut vectors = Vec::new();
    for text in &args.texts {
        vectors.push(embedder::embed_in_background(text.clone(), here.clone()).await?);
    }
    batch.end(SpanStatus::Ok);

    let rows = args
        .texts
        .into_iter()
        .zip(vectors)
        .map(|(text, vector)| Embedded { text, vector })
        .collect();
    ctx.crux
        .run_mutation("store embeddings", store, Batch { rows })
        .await
}

#[derive(Serialize, Deserialize)]
pub struct Embedded {
    pub text: String,
    pub vector: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
pub struct Batch {
    pub rows: Vec<Embedded>,
}

#[crux::internal_mutation]
pub async fn store(ctx: &MutationCtx, args: Batch) -> crux::Result<usize> {
    for row in &args.rows {
        ctx.db
            .insert(
                "embeddings",
                json!({"text": row.text, "vector": row.vector}),
            )
            .await?;
    }
    Ok(args.rows.len())
}
