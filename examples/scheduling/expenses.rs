//! An expense approval: a durable flow that suspends while a manager decides and resumes
//! in a later invocation: `run.suspend` → carrier stored in a table → `resume_run`.
//!
//! As in the TypeScript Crux, the flow is its own run (`expense approval`), distinct from
//! the boundary runs of the actions that start and resume it. Handlers reach the
//! deployment's observer through [`Observer::global`], which `main` installs.

use std::time::Duration;

use crux::attributes::Attributes;
use crux::observe::{self, Carrier, Observer, ParentRun, RunOptions, RunStatus, SpanStatus};
use crux::prelude::*;
use crux::record::EdgeEnd;
use serde_json::json;

use crate::flows::{self, ByExpense, ParkedFlow};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expense {
    pub expense_id: String,
    pub amount_cents: u64,
}

/// Files an expense and starts its approval flow, which suspends awaiting the manager.
#[crux::action(name = "submit expense", root = "flow.step")]
pub async fn submit(ctx: &ActionCtx, args: Expense) -> crux::Result<()> {
    let expense_id = args.expense_id.clone();
    ctx.crux.run_mutation("store expense", store, args).await?;

    // The flow run: a child of this run (same operation and trace).
    let mut options = RunOptions::new("expense approval", "flow.run")
        .attributes(Attributes::new().with("expenseId", expense_id.clone()));
    if let Some(here) = observe::current_scope() {
        options = options.parent(ParentRun::from_scope(&here));
    }
    let flow = Observer::global().open_run(options);
    flow.scope()
        .in_scope(async {
            ctx.crux
                .span("ask manager", "tool.approval")
                .attr("expenseId", expense_id.clone())
                .start()
                .end(SpanStatus::Ok);
        })
        .await;
    let carrier = flow.suspend("awaiting manager approval");

    // Durable: the carrier outlives this process, so it goes in a table.
    let parked = ParkedFlow {
        expense_id,
        carrier: carrier.to_value(),
    };
    ctx.crux
        .run_mutation("park approval flow", flows::park, parked)
        .await?;
    Ok(())
}

#[crux::internal_mutation]
pub async fn store(ctx: &MutationCtx, args: Expense) -> crux::Result<Id> {
    let doc = json!({"expenseId": args.expense_id, "amountCents": args.amount_cents, "status": "pending"});
    ctx.db.insert("expenses", doc).await
}

/// The manager's decision, from a client. Resuming happens in an action (paying calls out
/// to the world, which a mutation may not do), scheduled only if this mutation commits.
#[crux::mutation]
pub async fn approve(ctx: &MutationCtx, args: ByExpense) -> crux::Result<()> {
    set_status(ctx, &args.expense_id, "approved").await?;
    ctx.crux
        .scheduler
        .run_after("resume approval flow", Duration::ZERO, resume_flow, args)
        .await?;
    Ok(())
}

/// Resumes the parked flow: `run:resume` on the flow's run, in a new segment, then its end.
#[crux::internal_action(name = "resume approval flow", root = "flow.step")]
pub async fn resume_flow(ctx: &ActionCtx, args: ByExpense) -> crux::Result<()> {
    let parked = ctx
        .crux
        .run_mutation(
            "take parked flow",
            flows::take,
            ByExpense {
                expense_id: args.expense_id.clone(),
            },
        )
        .await?;
    let carrier = Carrier::decode(&parked.carrier)?;
    let flow = Observer::global().resume_run(&carrier, "manager approved")?;
    if let Some(here) = observe::current_scope() {
        flow.link_from(EdgeEnd::Run(here.run_id()), "caused", Attributes::new());
    }
    let paid = flow
        .scope()
        .in_scope(async {
            let span = ctx.crux.span("pay expense", "tool.call").start();
            // Starting a span does not make it current: run the work in its scope so the
            // mutation nests inside it.
            let paid = span
                .in_scope(ctx.crux.run_mutation("mark expense paid", mark_paid, args))
                .await;
            match &paid {
                Ok(()) => span.end(SpanStatus::Ok),
                Err(err) => span.fail(err),
            }
            paid
        })
        .await;
    match &paid {
        Ok(()) => flow.end(RunStatus::Ok),
        Err(err) => flow.fail(err),
    }
    paid
}

#[crux::internal_mutation]
pub async fn mark_paid(ctx: &MutationCtx, args: ByExpense) -> crux::Result<()> {
    set_status(ctx, &args.expense_id, "paid").await
}

/// The status of an expense, for the client.
#[crux::query]
pub async fn get_status(ctx: &QueryCtx, args: ByExpense) -> crux::Result<String> {
    let doc = ctx
        .db
        .query("expenses")
        .with_index("by_expense", |q| q.eq("expenseId", &args.expense_id))
        .unique()
        .await?
        .ok_or_else(|| {
            Error::application("no such expense", json!({"expenseId": args.expense_id}))
        })?;
    Ok(doc
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or("unknown")
        .to_owned())
}

async fn set_status(ctx: &MutationCtx, expense_id: &str, status: &str) -> crux::Result<()> {
    let doc = ctx
        .db
        .query("expenses")
        .with_index("by_expense", |q| q.eq("expenseId", expense_id))
        .unique()
        .await?
        .ok_or_else(|| Error::application("no such expense", json!({"expenseId": expense_id})))?;
    ctx.db.patch(&doc.id(), json!({"status": status})).await
}
