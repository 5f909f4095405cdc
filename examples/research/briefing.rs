//! The daily briefing: the public entrypoint and the top of the waterfall.

use crux::prelude::*;

use crate::findings::{self, Briefing};
use crate::research;
use crate::sources::ByTopic;

#[derive(Serialize, Deserialize)]
pub struct BriefingArgs {
    pub topics: Vec<String>,
}

/// Researches each topic (one child action per topic, each reading its sources in
/// grandchild actions), then writes the briefing from the stored findings.
#[crux::action(
    name = "daily briefing",
    root = "agent.run",
    attributes(agentId = "research-assistant")
)]
pub async fn daily(ctx: &ActionCtx, args: BriefingArgs) -> crux::Result<Briefing> {
    let mut briefing = Briefing {
        lines: Vec::new(),
        skipped: Vec::new(),
    };
    for topic in args.topics {
        let report = ctx
            .crux
            .run_action(
                "research topic",
                research::topic,
                ByTopic {
                    topic: topic.clone(),
                },
            )
            .await?;
        briefing.skipped.extend(report.skipped);
        let found = ctx
            .crux
            .run_query("load findings", findings::for_topic, ByTopic { topic })
            .await?;
        briefing.lines.extend(
            found
                .into_iter()
                .map(|f| format!("[{}] {}", f.topic, f.text)),
        );
    }
    ctx.crux
        .run_mutation(
            "save briefing",
            findings::save_briefing,
            Briefing {
                lines: briefing.lines.clone(),
                skipped: briefing.skipped.clone(),
            },
        )
        .await?;
    Ok(briefing)
}
