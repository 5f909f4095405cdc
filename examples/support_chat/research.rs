//! Research planning: what the answer should rest on.

pub mod data;

use crux::prelude::*;

use crate::stand_in_model;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanArgs {
    pub thread_id: String,
    pub message: String,
}

/// What `write answer` works from.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub question: String,
    pub points: Vec<String>,
    pub summary: String,
}

/// Loads the thread's research inputs and asks the model which matter.
#[crux::internal_action]
pub async fn plan(ctx: &ActionCtx, args: PlanArgs) -> crux::Result<Plan> {
    let inputs = ctx
        .crux
        .run_query(
            "load research inputs",
            data::get_research_inputs,
            data::ByThread {
                thread_id: args.thread_id,
            },
        )
        .await?;
    let points: Vec<String> = inputs.into_iter().map(|input| input.note).collect();
    let prompt = format!(
        "Plan an answer to: {}\nUse these notes:\n{}",
        args.message,
        points
            .iter()
            .map(|p| format!("- {p}\n"))
            .collect::<String>()
    );
    let generation = stand_in_model::generate("plan answer", &prompt).await;
    Ok(Plan {
        question: args.message,
        points,
        summary: generation.text,
    })
}
