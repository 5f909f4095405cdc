//! Parked flows (`flows`, indexed `by_expense`): the carrier of a suspended run, stored
//! until the run is resumed, possibly by another process days later.

use crux::prelude::*;
use serde_json::{Value, json};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParkedFlow {
    pub expense_id: String,
    /// `Carrier::to_value()` of the suspended run.
    pub carrier: Value,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByExpense {
    pub expense_id: String,
}

#[crux::internal_mutation]
pub async fn park(ctx: &MutationCtx, args: ParkedFlow) -> crux::Result<Id> {
    ctx.db.insert("flows", &args).await
}

/// Takes the parked flow of an expense out of the table (a flow resumes once).
#[crux::internal_mutation]
pub async fn take(ctx: &MutationCtx, args: ByExpense) -> crux::Result<ParkedFlow> {
    let doc = ctx
        .db
        .query("flows")
        .with_index("by_expense", |q| q.eq("expenseId", &args.expense_id))
        .unique()
        .await?
        .ok_or_else(|| {
            Error::application(
                format!("no parked flow for expense `{}`", args.expense_id),
                json!({"expenseId": args.expense_id}),
            )
        })?;
    ctx.db.delete(&doc.id()).await?;
    doc.parse()
}
