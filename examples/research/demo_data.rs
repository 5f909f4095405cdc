//! The example's sources: two topics, one source offline.

use crux::prelude::*;
use serde_json::json;

/// The topics the example researches.
pub const TOPICS: [&str; 2] = ["rust releases", "convex"];

/// Inserts the sources (all or nothing).
#[crux::mutation]
pub async fn seed(ctx: &MutationCtx) -> crux::Result<()> {
    let sources = [
        (
            "rust releases",
            "https://blog.rust-lang.org/",
            "Rust 1.95 stabilised new const features",
            false,
        ),
        (
            "rust releases",
            "https://mirror.example/rust",
            "(unreachable mirror)",
            true,
        ),
        (
            "convex",
            "https://news.convex.dev/",
            "Convex actions may run for up to 10 minutes",
            false,
        ),
    ];
    for (topic, url, text, offline) in sources {
        ctx.db
            .insert(
                "sources",
                json!({"topic": topic, "url": url, "text": text, "offline": offline}),
            )
            .await?;
    }
    Ok(())
}
