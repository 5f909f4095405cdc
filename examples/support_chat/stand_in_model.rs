//! A LOCAL STAND-IN for a language model, so the example runs with no network and no key.
//!
//! It "answers" deterministically from the prompt, and records what a real model client
//! would: a `generation.call` span with the typed `model` and `provider` fields and the
//! token counts as `metrics` (`inputTokens`, `outputTokens`, `totalTokens`). Swap
//! [`generate`] for your model client and keep the span.

use std::time::Duration;

use crux::observe::{self, Metrics, SpanStatus};

/// The stand-in's model name, recorded as `model`.
pub const MODEL: &str = "stand-in-1";
/// Recorded as `provider`: makes it obvious no real model was called.
pub const PROVIDER: &str = "local-stand-in";

/// What the stand-in produced.
#[derive(Debug)]
pub struct Generation {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Counts tokens the way the stand-in does: one per whitespace-separated word.
fn tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// "Generates" a reply to `prompt`: every `- ` line of the prompt becomes a sentence.
/// Recorded as a `generation.call` span named `name`.
pub async fn generate(name: &'static str, prompt: &str) -> Generation {
    let mut span = observe::span(name, "generation.call")
        .model(MODEL)
        .provider(PROVIDER)
        .start();
    // A real call takes a while; a millisecond keeps durations honest without slowing the example.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let points: Vec<&str> = prompt
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .map(|point| point.trim_end_matches('.'))
        .collect();
    let text = if points.is_empty() {
        "I could not find anything to go on.".to_owned()
    } else {
        points.join(". ") + "."
    };
    let generation = Generation {
        input_tokens: tokens(prompt),
        output_tokens: tokens(&text),
        text,
    };
    span.set_metrics(Metrics::tokens(
        generation.input_tokens,
        generation.output_tokens,
    ));
    span.end(SpanStatus::Ok);
    generation
}

/// Streams `text` sentence by sentence, recording a `generation.stream` span with one
/// `generation.chunk` event per sentence. Returns the chunks.
pub async fn stream(name: &'static str, text: &str) -> Vec<String> {
    let mut span = observe::span(name, "generation.stream")
        .model(MODEL)
        .provider(PROVIDER)
        .start();
    let chunks: Vec<String> = text
        .split_inclusive(". ")
        .map(|sentence| sentence.trim().to_owned())
        .collect();
    for (index, chunk) in chunks.iter().enumerate() {
        tokio::task::yield_now().await;
        span.event(
            "generation.chunk",
            crux::attributes::Attributes::new()
                .with("index", index as u64)
                .with("text", chunk.clone()),
        );
    }
    // `outputTokens` is a schema key, so this cannot fail.
    let _ = span.set_metric("outputTokens", tokens(text) as f64);
    span.end(SpanStatus::Ok);
    chunks
}
