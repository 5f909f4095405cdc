//! Threads and the access check every public entrypoint makes before doing any work.

use crux::prelude::*;
use serde_json::json;

/// A chat thread and who may use it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub thread_id: String,
    pub owner_id: String,
    pub title: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadRef {
    pub thread_id: String,
}

/// The thread with this id, if there is one.
#[crux::internal_query]
pub async fn get(ctx: &QueryCtx, args: ThreadRef) -> crux::Result<Option<Thread>> {
    let doc = ctx
        .db
        .query("threads")
        .with_index("by_thread", |q| q.eq("threadId", &args.thread_id))
        .unique()
        .await?;
    doc.map(|doc| doc.parse()).transpose()
}

/// Fails with a clear application error unless `user_id` owns `thread_id`. Call it first
/// in public actions: tenant checks belong at the public boundary.
pub async fn require_access(
    ctx: &ActionCtx,
    thread_id: &str,
    user_id: &str,
) -> crux::Result<Thread> {
    let args = ThreadRef {
        thread_id: thread_id.to_owned(),
    };
    match ctx.crux.run_query("check thread access", get, args).await? {
        Some(thread) if thread.owner_id == user_id => Ok(thread),
        // Same answer for "missing" and "not yours": do not reveal which threads exist.
        _ => Err(Error::application(
            format!("thread `{thread_id}` does not exist or does not belong to `{user_id}`"),
            json!({"code": "thread_access_denied", "threadId": thread_id}),
        )),
    }
}
