//! A background embedding worker: a plain tokio task fed through a channel. crux does not
//! wrap it, so each job carries the context captured where it was sent, and the worker
//! restores it with `observe::with_context` around the job.

use std::sync::OnceLock;

use crux::observe::{self, CapturedContext, SpanStatus};
use tokio::sync::{mpsc, oneshot};

/// One text to embed, the context to record it in, and where to send the vector.
pub struct Job {
    pub text: String,
    /// `observe::capture_context()` (or a span's scope) at the sender; `None` records nothing.
    pub context: Option<CapturedContext>,
    pub reply: oneshot::Sender<Vec<f32>>,
}

static WORKER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

/// Starts the worker task (once) on the current tokio runtime.
pub fn start() {
    WORKER.get_or_init(|| {
        let (tx, mut rx) = mpsc::channel::<Job>(64);
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                // The escape hatch: without it, the span below has no run to land in.
                let vector = observe::with_context(job.context, embed(&job.text)).await;
                // The sender may have given up waiting; nothing to do then.
                let _ = job.reply.send(vector);
            }
        });
        tx
    });
}

/// Sends `text` to the worker with `context`, and waits for its vector.
pub async fn embed_in_background(
    text: String,
    context: Option<CapturedContext>,
) -> crux::Result<Vec<f32>> {
    let worker = WORKER.get().ok_or_else(|| {
        crux::Error::msg("the embedding worker was not started: call `embedder::start()` first")
    })?;
    let (reply, vector) = oneshot::channel();
    worker
        .send(Job {
            text,
            context,
            reply,
        })
        .await
        .map_err(|_| crux::Error::msg("the embedding worker stopped"))?;
    vector
        .await
        .map_err(|_| crux::Error::msg("the embedding worker dropped the job"))
}

/// A LOCAL STAND-IN embedding model: a deterministic 4-dimensional vector, recorded as an
/// `embedding.call` span in whatever context is current.
async fn embed(text: &str) -> Vec<f32> {
    let mut span = observe::span("embed text", "embedding.call")
        .attr("model", "stand-in-embed-1")
        .attr("provider", "local-stand-in")
        .start();
    tokio::task::yield_now().await;
    let words = text.split_whitespace().count();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let vowels = text.chars().filter(|c| "aeiouAEIOU".contains(*c)).count();
    let vector = vec![
        words as f32,
        letters as f32,
        vowels as f32,
        text.len() as f32,
    ];
    // `inputTokens` is a schema key, so this cannot fail.
    let _ = span.set_metric("inputTokens", words as f64);
    span.set_attr("dimensions", vector.len());
    span.end(SpanStatus::Ok);
    vector
}
