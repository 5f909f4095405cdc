//! Findings per topic (`findings`, indexed `by_topic`) and the briefings made from them.

use crux::prelude::*;

use crate::sources::ByTopic;

/// What was learned about a topic from one source.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub topic: String,
    pub url: String,
    pub text: String,
}

#[derive(Serialize, Deserialize)]
pub struct NewFindings {
    pub findings: Vec<Finding>,
}

/// Stores a topic's findings, all or nothing.
#[crux::internal_mutation]
pub async fn save(ctx: &MutationCtx, args: NewFindings) -> crux::Result<usize> {
    for finding in &args.findings {
        ctx.db.insert("findings", finding).await?;
    }
    Ok(args.findings.len())
}

/// A topic's findings.
#[crux::internal_query]
pub async fn for_topic(ctx: &QueryCtx, args: ByTopic) -> crux::Result<Vec<Finding>> {
    let docs = ctx
        .db
        .query("findings")
        .with_index("by_topic", |q| q.eq("topic", &args.topic))
        .collect()
        .await?;
    docs.iter().map(Document::parse).collect()
}

/// The briefing the run produces.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Briefing {
    pub lines: Vec<String>,
    /// Sources that could not be read, and why.
    pub skipped: Vec<String>,
}

/// Stores a briefing; returns its id.
#[crux::internal_mutation]
pub async fn save_briefing(ctx: &MutationCtx, args: Briefing) -> crux::Result<Id> {
    ctx.db.insert("briefings", &args).await
}
