//! Scheduled work two ways: detached (its own run, linked back) and as an explicit
//! continuation (joins the run that scheduled it).

use std::time::Duration;

use crux::local::ScheduleOptions;
use crux::observe::SpanStatus;
use crux::prelude::*;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub team: String,
}

/// Schedules the weekly report (detached) and its delivery (a continuation of this run).
#[crux::action(
    name = "weekly report request",
    root = "agent.run",
    attributes(agentId = "reporter")
)]
pub async fn request_weekly(ctx: &ActionCtx, args: Team) -> crux::Result<()> {
    // Detached, the default: recorded here as a `runtime.convex.schedule` span; `compile`
    // opens its OWN run when it executes, with an edge back to that span. Scheduled work
    // crosses time: it must not hang under a span that will long be closed.
    ctx.crux
        .scheduler
        .run_after(
            "compile weekly report",
            Duration::from_millis(20),
            compile,
            Team {
                team: args.team.clone(),
            },
        )
        .await?;

    // An explicit continuation: the delivery is part of THIS operation, so it joins this
    // run under the `await delivery window` span, acknowledged there when it runs.
    let wait = ctx
        .crux
        .span("await delivery window", "flow.suspension")
        .start();
    let here = wait.scope().map(|scope| scope.capture());
    ctx.crux
        .scheduler
        .with_options(ScheduleOptions { continuation: here })
        .run_after(
            "deliver weekly report",
            Duration::from_millis(40),
            deliver,
            args,
        )
        .await?;
    wait.end(SpanStatus::Ok);
    Ok(())
}

/// Compiles the report: runs detached, as its own run.
#[crux::internal_action(
    name = "compile weekly report",
    root = "agent.run",
    attributes(agentId = "reporter")
)]
pub async fn compile(ctx: &ActionCtx, args: Team) -> crux::Result<String> {
    let span = ctx
        .crux
        .span("summarize the week", "plan.operation")
        .attr("team", args.team.clone())
        .start();
    span.end(SpanStatus::Ok);
    Ok(format!("weekly report for {}", args.team))
}

/// Delivers the report: runs as a continuation of the requesting run.
#[crux::internal_action]
pub async fn deliver(ctx: &ActionCtx, args: Team) -> crux::Result<()> {
    let span = ctx
        .crux
        .span("send email", "tool.call")
        .attr("team", args.team)
        .start();
    span.end(SpanStatus::Ok);
    Ok(())
}
