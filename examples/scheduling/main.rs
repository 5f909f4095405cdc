//! Scheduling across time: detached work, an explicit continuation, and a durable flow
//! that suspends and is resumed from a carrier stored in a table.
//!
//! - `weekly report request` schedules `compile weekly report` detached (its own run, with
//!   an edge back to the schedule span) and `deliver weekly report` as a continuation
//!   (joins the requesting run).
//! - `submit expense` starts the `expense approval` flow run, which suspends; the carrier
//!   is parked in the `flows` table. A manager's `approve` schedules `resume approval
//!   flow`, which resumes the flow run (`run:resume`), pays, and ends it.
//!
//! `cargo run --example scheduling`; records are appended to `.crux/records.jsonl`.

mod expenses;
mod flows;
mod reports;

#[path = "../recording/mod.rs"]
mod recording;

use crux::prelude::*;

#[tokio::main]
async fn main() -> crux::Result<()> {
    let (builder, memory) = recording::sinks(Deployment::builder())?;
    let deployment = builder
        .functions((
            reports::request_weekly,
            reports::compile,
            reports::deliver,
            expenses::submit,
            expenses::store,
            expenses::approve,
            expenses::resume_flow,
            expenses::mark_paid,
            expenses::get_status,
            flows::park,
            flows::take,
        ))
        .table("expenses", |t| t.index("by_expense", ["expenseId"]))
        .table("flows", |t| t.index("by_expense", ["expenseId"]))
        .build();
    // Flows open and resume runs themselves; they find the observer here.
    deployment.observer().install_global();

    let team = reports::Team {
        team: "support".into(),
    };
    deployment.action(reports::request_weekly, team).await?;

    let expense = expenses::Expense {
        expense_id: "exp-7".into(),
        amount_cents: 12_900,
    };
    deployment.action(expenses::submit, expense).await?;
    println!("expense exp-7 submitted; the approval flow is suspended");

    // Days later, in a real deployment. Here: the manager approves right away.
    let which = flows::ByExpense {
        expense_id: "exp-7".into(),
    };
    deployment.mutation(expenses::approve, which).await?;

    // Runs what is still pending now, and waits for what already started on its timer.
    deployment.finish_scheduled().await;
    let status = deployment
        .query(
            expenses::get_status,
            flows::ByExpense {
                expense_id: "exp-7".into(),
            },
        )
        .await?;
    println!("expense exp-7 is {status}");

    recording::print_runs(&deployment, &memory).await;
    Ok(())
}
