//! Writing the answer from a plan.

use crux::prelude::*;

use crate::research::Plan;
use crate::stand_in_model;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerArgs {
    pub thread_id: String,
    pub plan: Plan,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub text: String,
    pub output_tokens: u64,
}

/// Turns the plan into the reply the user sees.
#[crux::internal_action]
pub async fn answer(_ctx: &ActionCtx, args: AnswerArgs) -> crux::Result<Answer> {
    let prompt = format!(
        "Answer in the thread {} the question: {}\n- {}\n",
        args.thread_id, args.plan.question, args.plan.summary
    );
    let generation = stand_in_model::generate("write reply", &prompt).await;
    Ok(Answer {
        text: generation.text,
        output_tokens: generation.output_tokens,
    })
}
