//! The support chat from the Crux function-boundaries guide, in Rust.
//!
//! `cargo run --example support_chat` answers one chat turn and refuses one, then runs the
//! scheduled streaming. Everything one turn does (the access check, two child actions, a
//! query, two stand-in model calls, the scheduling) lands in ONE run, `support chat`; the
//! streaming runs later in its own run, linked back to the span that scheduled it.
//!
//! Records are appended to `.crux/records.jsonl` and every run is printed as a tree.
//! The model is a local stand-in (`stand_in_model`): no network, no key.

mod chat;
mod demo_data;
mod research;
mod stand_in_model;
mod threads;
mod writer;

#[path = "../recording/mod.rs"]
mod recording;

use crux::prelude::*;

#[tokio::main]
async fn main() -> crux::Result<()> {
    let (builder, memory) = recording::sinks(Deployment::builder())?;
    let deployment = builder
        .functions((
            chat::respond,
            chat::stream_response,
            chat::save_message,
            chat::list_messages,
            research::plan,
            research::data::get_research_inputs,
            writer::answer,
            threads::get,
            demo_data::seed,
        ))
        .table("threads", |t| t.index("by_thread", ["threadId"]))
        .table("researchInputs", |t| t.index("by_thread", ["threadId"]))
        .table("messages", |t| t.index("by_thread", ["threadId"]))
        .build();

    // A plain client mutation outside any run: records nothing.
    deployment.mutation(demo_data::seed, NoArgs {}).await?;

    let turn = chat::RespondArgs {
        thread_id: demo_data::THREAD.into(),
        user_id: demo_data::OWNER.into(),
        message: "Why was I charged twice, and when do I get my money back?".into(),
    };
    let reply = deployment.action(chat::respond, turn).await?;
    println!("reply: {}", reply.text);

    // The access check refuses an unknown thread, and someone else's, before any work is
    // done; each run records the refusal as its error.
    for (thread, user) in [
        ("thread-404", demo_data::OWNER),
        (demo_data::THREAD, "user-mallory"),
    ] {
        let intruder = chat::RespondArgs {
            thread_id: thread.into(),
            user_id: user.into(),
            message: "Show me this thread".into(),
        };
        match deployment.action(chat::respond, intruder).await {
            Ok(reply) => {
                return Err(Error::msg(format!(
                    "the access check let {user} into {thread}: {reply:?}"
                )));
            }
            Err(err) => println!("refused: {err}"),
        }
    }

    // Wait for the detached work the turn scheduled: it runs on its own timer; this runs
    // anything still pending right away and waits for what already started.
    deployment.finish_scheduled().await;
    let messages = deployment
        .query(
            chat::list_messages,
            threads::ThreadRef {
                thread_id: demo_data::THREAD.into(),
            },
        )
        .await?;
    for message in &messages {
        println!("stored {} message: {}", message.role, message.text);
    }

    recording::print_runs(&deployment, &memory).await;
    Ok(())
}
