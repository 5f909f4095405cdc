//! The example's starting data: one thread and its research inputs.

use crux::prelude::*;
use serde_json::json;

/// The thread the example asks about, and its owner.
pub const THREAD: &str = "thread-42";
pub const OWNER: &str = "user-ada";

/// Inserts the demo thread and its notes (all or nothing, as every mutation).
#[crux::mutation]
pub async fn seed(ctx: &MutationCtx) -> crux::Result<()> {
    ctx.db
        .insert(
            "threads",
            json!({"threadId": THREAD, "ownerId": OWNER, "title": "Refund for a double charge"}),
        )
        .await?;
    for note in [
        "The customer was charged twice for order 1017 on 3 March",
        "Duplicate charges are refunded automatically within 5 business days",
        "A refund can be sped up by support with the billing tool",
    ] {
        ctx.db
            .insert("researchInputs", json!({"threadId": THREAD, "note": note}))
            .await?;
    }
    Ok(())
}
