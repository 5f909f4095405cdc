//! A three-level waterfall: `daily briefing` → `research topic` (per topic) → `read source`
//! (per source), with queries and mutations over indexed tables.
//!
//! One source is offline: its `read source` boundary fails, the topic's research handles
//! the error (skips the source), and the run still ends `ok`. The tree shows exactly where
//! it failed and that the failure stopped there.
//!
//! `cargo run --example research`; records are appended to `.crux/records.jsonl`.

mod briefing;
mod demo_data;
mod findings;
mod research;
mod sources;

#[path = "../recording/mod.rs"]
mod recording;

use crux::prelude::*;

#[tokio::main]
async fn main() -> crux::Result<()> {
    let (builder, memory) = recording::sinks(Deployment::builder())?;
    let deployment = builder
        .functions((
            briefing::daily,
            research::topic,
            sources::for_topic,
            sources::get,
            sources::read,
            findings::save,
            findings::for_topic,
            findings::save_briefing,
            demo_data::seed,
        ))
        .table("sources", |t| {
            t.index("by_topic", ["topic"]).index("by_url", ["url"])
        })
        .table("findings", |t| t.index("by_topic", ["topic"]))
        .table("briefings", |t| t)
        .build();

    deployment.mutation(demo_data::seed, NoArgs {}).await?;
    let args = briefing::BriefingArgs {
        topics: demo_data::TOPICS.map(String::from).to_vec(),
    };
    let briefing = deployment.action(briefing::daily, args).await?;
    for line in &briefing.lines {
        println!("briefing: {line}");
    }
    for skipped in &briefing.skipped {
        println!("skipped:  {skipped}");
    }

    recording::print_runs(&deployment, &memory).await;
    Ok(())
}
