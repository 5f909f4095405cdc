//! The support chat from the Crux function-boundaries guide, in Rust.
//!
//! `cargo run --example support_chat` answers one chat turn and refuses one, then runs the
//! scheduled streaming. Everything one turn does (the access check, two child actions, a
//! query, two stand-in model calls, the scheduling) lands in ONE run, `support chat`; the
//! streaming runs later in its own run, linked back to the span that scheduled it.
//!
//! Records are appended to `.crux/records.jsonl` and every run is printed as a tree.
//! The model is a local stand-in (`stand_in_model`): no network, no key.
//!
//! `cargo run --example support_chat -- --serve 127.0.0.1:3210` instead serves the same
//! functions over Convex's HTTP API (`crux_server`) at their Convex paths until Ctrl-C or
//! SIGTERM, recording the same way; the README shows calls with `curl` and the npm client.
//! Callers sign in with a development JWT (`dev_auth`): `--print-test-token [SUBJECT]`
//! prints one.

mod chat;
mod demo_data;
mod dev_auth;
mod research;
mod stand_in_model;
mod threads;
mod writer;

#[path = "../recording/mod.rs"]
mod recording;

use crux::prelude::*;

#[tokio::main]
async fn main() -> crux::Result<()> {
    let serve_at = match command()? {
        Command::Demo => None,
        Command::Serve(address) => Some(address),
        Command::PrintTestToken(subject) => {
            println!("{}", dev_auth::token(&subject));
            return Ok(());
        }
    };
    // A server keeps no `Memory` of records: it prints no runs, and would keep them all.
    let (builder, memory) = match &serve_at {
        Some(_) => (recording::outward_sinks(Deployment::builder())?, None),
        None => {
            let (builder, memory) = recording::sinks(Deployment::builder())?;
            (builder, Some(memory))
        }
    };
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

    if let Some(address) = serve_at {
        return serve(deployment, &address).await;
    }

    // In-process calls are made for a user, as a verified token would make them.
    let turn = chat::RespondArgs {
        thread_id: demo_data::THREAD.into(),
        message: "Why was I charged twice, and when do I get my money back?".into(),
    };
    let reply = deployment
        .with_identity(dev_auth::identity(demo_data::OWNER))
        .action(chat::respond, turn)
        .await?;
    println!("reply: {}", reply.text);

    // The access check refuses an unknown thread, and someone else's, before any work is
    // done; each run records the refusal as its error.
    for (thread, user) in [
        ("thread-404", demo_data::OWNER),
        (demo_data::THREAD, "user-mallory"),
    ] {
        let intruder = chat::RespondArgs {
            thread_id: thread.into(),
            message: "Show me this thread".into(),
        };
        let as_user = deployment.with_identity(dev_auth::identity(user));
        match as_user.action(chat::respond, intruder).await {
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

    if let Some(memory) = &memory {
        recording::print_runs(&deployment, memory).await;
    }
    Ok(())
}

/// What the command line asks for.
enum Command {
    /// The in-process demo.
    Demo,
    /// `--serve ADDRESS`.
    Serve(String),
    /// `--print-test-token [SUBJECT]` (default: the demo thread's owner).
    PrintTestToken(String),
}

fn command() -> crux::Result<Command> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => Ok(Command::Demo),
        (Some("--serve"), Some(address)) => Ok(Command::Serve(address)),
        (Some("--print-test-token"), subject) => Ok(Command::PrintTestToken(
            subject.unwrap_or_else(|| demo_data::OWNER.to_owned()),
        )),
        _ => Err(Error::msg(
            "usage: support_chat [--serve ADDRESS | --print-test-token [SUBJECT]], e.g. \
             --serve 127.0.0.1:3210",
        )),
    }
}

/// Serves the deployment over Convex's HTTP API until Ctrl-C or SIGTERM.
async fn serve(deployment: Deployment, address: &str) -> crux::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|err| Error::msg(format!("cannot listen on {address}: {err}")))?;
    let local = listener
        .local_addr()
        .map_err(|err| Error::msg(err.to_string()))?;
    // Printed first, and flushed: a script (or a test) reads it to know where to call.
    println!("serving on http://{local} (Ctrl-C stops)");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let server = crux_server::Server::builder(deployment)
        .auth_provider(dev_auth::provider()?)
        .build();
    let shutdown = server
        .serve_until_signal(listener)
        .await
        .map_err(|err| Error::msg(err.to_string()))?;
    println!("stopped; final flush: {:?}", shutdown.flush.status);
    Ok(())
}
