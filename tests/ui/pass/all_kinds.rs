//! Every kind, with and without arguments, as the design shows them.
use crux::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct RespondArgs {
    pub thread_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
}

/// Answers a support chat message.
#[crux::action(name = "support chat", root = "agent.run", attributes(agentId = "support-chat"))]
pub async fn respond(ctx: &ActionCtx, args: RespondArgs) -> crux::Result<Reply> {
    let _ = ctx;
    Ok(Reply { text: args.thread_id })
}

#[crux::internal_action]
pub async fn plan(_ctx: &ActionCtx, args: RespondArgs) -> Result<Vec<String>> {
    Ok(vec![args.thread_id])
}

#[crux::query]
pub async fn get_inputs(_ctx: &QueryCtx, RespondArgs { thread_id }: RespondArgs) -> crux::Result<String> {
    Ok(thread_id)
}

#[crux::internal_query]
pub async fn count(_ctx: &QueryCtx) -> crux::Result<u64> {
    Ok(3)
}

#[crux::mutation]
pub async fn save(_: &MutationCtx, mut args: RespondArgs) -> std::result::Result<(), crux::Error> {
    args.thread_id.push('!');
    Ok(())
}

#[crux::internal_mutation]
pub async fn clear(_ctx: &MutationCtx) -> crux::Result<()> {
    Ok(())
}

fn main() {}
