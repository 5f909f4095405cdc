//! Service B: the research step, served over Convex's HTTP API in its own process.

use crux::observe::SpanStatus;
use crux::prelude::*;

#[derive(Debug, Serialize, Deserialize)]
pub struct PlanArgs {
    pub question: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<String>,
}

/// Plans the research: searches the archive, then reads the matching sources through a
/// query of its own deployment.
#[crux::action(path = "research:plan")]
pub async fn plan(ctx: &ActionCtx, args: PlanArgs) -> crux::Result<Plan> {
    let search = ctx
        .crux
        .span("search the archive", "retrieval.retrieve")
        .attr("query", args.question.clone())
        .start();
    let found = search
        .in_scope(ctx.crux.run_query(
            "read matching sources",
            sources,
            SourcesArgs {
                topic: "billing".into(),
            },
        ))
        .await?;
    search.end(SpanStatus::Ok);
    Ok(Plan {
        steps: found
            .into_iter()
            .map(|source| format!("check {source}"))
            .collect(),
    })
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SourcesArgs {
    pub topic: String,
}

/// The sources on a topic (public: service A also calls it directly).
#[crux::query(path = "research:sources")]
pub async fn sources(_ctx: &QueryCtx, args: SourcesArgs) -> crux::Result<Vec<String>> {
    Ok(vec![
        format!("{} ledger", args.topic),
        format!("{} refund policy", args.topic),
    ])
}
