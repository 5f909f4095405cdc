//! The research inputs table (`researchInputs`, indexed `by_thread`).

use crux::prelude::*;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByThread {
    pub thread_id: String,
}

/// One note gathered for a thread.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResearchInput {
    pub thread_id: String,
    pub note: String,
}

/// Every research input of a thread, oldest first.
#[crux::internal_query]
pub async fn get_research_inputs(
    ctx: &QueryCtx,
    args: ByThread,
) -> crux::Result<Vec<ResearchInput>> {
    let docs = ctx
        .db
        .query("researchInputs")
        .with_index("by_thread", |q| q.eq("threadId", &args.thread_id))
        .collect()
        .await?;
    docs.iter().map(Document::parse).collect()
}
