//! The chat entrypoint and what happens after it answers.

use std::time::Duration;

use crux::prelude::*;

use crate::{research, stand_in_model, threads, writer};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RespondArgs {
    pub thread_id: String,
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
}

/// One support chat turn: the public entrypoint, and the root of the run everything below
/// lands in. Who asks is the caller's identity (`ctx.auth`: a verified JWT when served, the
/// identity of an in-process call), never an argument.
#[crux::action(
    name = "support chat",
    root = "agent.run",
    attributes(agentId = "support-chat")
)]
pub async fn respond(ctx: &ActionCtx, args: RespondArgs) -> crux::Result<Reply> {
    let user = ctx.auth.require_user_identity()?;
    threads::require_access(ctx, &args.thread_id, &user.subject).await?;
    ctx.console.info(format_args!(
        "answering {} in {}",
        user.subject, args.thread_id
    ));

    let plan = ctx
        .crux
        .run_action(
            "plan research",
            research::plan,
            research::PlanArgs {
                thread_id: args.thread_id.clone(),
                message: args.message,
            },
        )
        .await?;
    let answer = ctx
        .crux
        .run_action(
            "write answer",
            writer::answer,
            writer::AnswerArgs {
                thread_id: args.thread_id.clone(),
                plan,
            },
        )
        .await?;

    // Detached: recorded here as the enqueue, while the streaming runs later in its own
    // run, linked back to this one.
    ctx.crux
        .scheduler
        .run_after(
            "stream chat response",
            Duration::ZERO,
            stream_response,
            StreamArgs {
                thread_id: args.thread_id,
                text: answer.text.clone(),
            },
        )
        .await?;
    Ok(Reply { text: answer.text })
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamArgs {
    pub thread_id: String,
    pub text: String,
}

/// Streams the reply to the thread and stores it; scheduled by [`respond`].
#[crux::internal_action(
    name = "stream chat response",
    root = "agent.run",
    attributes(agentId = "support-chat")
)]
pub async fn stream_response(ctx: &ActionCtx, args: StreamArgs) -> crux::Result<()> {
    let chunks = stand_in_model::stream("stream reply", &args.text).await;
    let message = Message {
        thread_id: args.thread_id,
        role: "assistant".into(),
        text: chunks.join(" "),
    };
    ctx.crux
        .run_mutation("save assistant message", save_message, message)
        .await?;
    Ok(())
}

/// A message of a thread (`messages`, indexed `by_thread`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub thread_id: String,
    pub role: String,
    pub text: String,
}

#[crux::internal_mutation]
pub async fn save_message(ctx: &MutationCtx, args: Message) -> crux::Result<Id> {
    ctx.db.insert("messages", &args).await
}

/// The thread's messages, oldest first. A plain read for the UI: it joins a run only when
/// called through `ctx.crux`, and records nothing when a client calls it.
#[crux::query]
pub async fn list_messages(ctx: &QueryCtx, args: threads::ThreadRef) -> crux::Result<Vec<Message>> {
    let docs = ctx
        .db
        .query("messages")
        .with_index("by_thread", |q| q.eq("threadId", &args.thread_id))
        .collect()
        .await?;
    docs.iter().map(Document::parse).collect()
}
