//! The scheduler: timers, draining, cancel, and Convex's transactional rules.

use std::time::{Duration, SystemTime};

use crux::local::{Deployment, DeploymentBuilder, JobState};
use crux::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct Note {
    pub text: String,
}

#[derive(Serialize, Deserialize)]
pub struct Plan {
    pub delay_ms: u64,
    pub fail: bool,
}

#[crux::internal_mutation]
pub async fn write_note(ctx: &MutationCtx, args: Note) -> crux::Result<()> {
    ctx.db.insert("notes", args).await?;
    Ok(())
}

#[crux::query]
pub async fn notes(ctx: &QueryCtx) -> crux::Result<Vec<String>> {
    let docs = ctx.db.query("notes").collect().await?;
    Ok(docs
        .iter()
        .map(|d| d["text"].as_str().unwrap().to_owned())
        .collect())
}

#[crux::action]
pub async fn schedule_then_maybe_fail(ctx: &ActionCtx, args: Plan) -> crux::Result<Id> {
    let id = ctx
        .scheduler
        .run_after(
            Duration::from_millis(args.delay_ms),
            write_note,
            Note {
                text: "later".into(),
            },
        )
        .await?;
    if args.fail {
        return Err(Error::msg("action failed after scheduling"));
    }
    Ok(id)
}

#[crux::action]
pub async fn schedule_at(ctx: &ActionCtx) -> crux::Result<Id> {
    let when = SystemTime::now() + Duration::from_secs(3600);
    ctx.scheduler
        .run_at(
            when,
            write_note,
            Note {
                text: "in an hour".into(),
            },
        )
        .await
}

#[crux::action]
pub async fn schedule_and_cancel(ctx: &ActionCtx) -> crux::Result<Id> {
    let id = ctx
        .scheduler
        .run_after(
            Duration::ZERO,
            write_note,
            Note {
                text: "canceled".into(),
            },
        )
        .await?;
    ctx.scheduler.cancel(&id).await?;
    Ok(id)
}

/// Schedules itself again until the chain is `depth` long.
#[crux::internal_action]
pub async fn chain(ctx: &ActionCtx, args: Plan) -> crux::Result<()> {
    ctx.run_mutation(
        write_note,
        Note {
            text: format!("chain {}", args.delay_ms),
        },
    )
    .await?;
    if args.delay_ms > 0 {
        let next = Plan {
            delay_ms: args.delay_ms - 1,
            fail: false,
        };
        ctx.scheduler
            .run_after(Duration::from_secs(60), chain, next)
            .await?;
    }
    Ok(())
}

#[crux::action]
pub async fn start_chain(ctx: &ActionCtx) -> crux::Result<()> {
    ctx.scheduler
        .run_after(
            Duration::ZERO,
            chain,
            Plan {
                delay_ms: 2,
                fail: false,
            },
        )
        .await?;
    Ok(())
}

/// Schedules with the longest delay a `Duration` holds ("never, unless canceled").
#[crux::action]
pub async fn schedule_forever(ctx: &ActionCtx) -> crux::Result<Id> {
    ctx.scheduler
        .run_after(
            Duration::MAX,
            write_note,
            Note {
                text: "never".into(),
            },
        )
        .await
}

fn builder() -> DeploymentBuilder {
    Deployment::builder()
        .functions((write_note, notes, schedule_then_maybe_fail, schedule_at))
        .functions((schedule_and_cancel, chain, start_chain, schedule_forever))
}

fn deployment() -> Deployment {
    builder().build()
}

/// Jobs run only in drains: counts of jobs due at once are exact.
fn drained() -> Deployment {
    builder().manual_scheduling().build()
}

#[tokio::test(start_paused = true)]
async fn due_work_runs_on_tokio_timers() {
    let d = deployment();
    let id = d
        .action(
            schedule_then_maybe_fail,
            Plan {
                delay_ms: 5_000,
                fail: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(d.job_state(&id), Some(JobState::Pending));
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    assert!(
        d.query(notes, NoArgs {}).await.unwrap().is_empty(),
        "not due yet"
    );
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(d.query(notes, NoArgs {}).await.unwrap(), ["later"]);
    assert_eq!(d.job_state(&id), Some(JobState::Success));
}

#[tokio::test]
async fn finish_scheduled_advances_past_delays_including_follow_up_work() {
    let d = drained();
    let id = d.action(schedule_at, NoArgs {}).await.unwrap();
    d.action(start_chain, NoArgs {}).await.unwrap();
    assert_eq!(
        d.finish_scheduled().await,
        4,
        "run_at job + three chain links"
    );
    assert_eq!(d.job_state(&id), Some(JobState::Success));
    let mut got = d.query(notes, NoArgs {}).await.unwrap();
    got.sort();
    assert_eq!(got, ["chain 0", "chain 1", "chain 2", "in an hour"]);
    assert_eq!(d.finish_scheduled().await, 0);
}

#[tokio::test]
async fn scheduling_from_an_action_survives_its_failure() {
    let d = drained();
    let err = d
        .action(
            schedule_then_maybe_fail,
            Plan {
                delay_ms: 0,
                fail: true,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.message(), "action failed after scheduling");
    assert_eq!(d.finish_scheduled().await, 1);
    assert_eq!(d.query(notes, NoArgs {}).await.unwrap(), ["later"]);
}

#[tokio::test]
async fn canceled_work_never_runs() {
    let d = drained();
    let id = d.action(schedule_and_cancel, NoArgs {}).await.unwrap();
    assert_eq!(d.job_state(&id), Some(JobState::Canceled));
    assert_eq!(d.finish_scheduled().await, 0);
    assert!(d.query(notes, NoArgs {}).await.unwrap().is_empty());
}

#[tokio::test]
async fn scheduling_an_unregistered_function_fails_at_schedule_time() {
    // As on Convex, the target's existence is checked when scheduling.
    let bare = Deployment::builder().function(schedule_at).build();
    let err = bare.action(schedule_at, NoArgs {}).await.unwrap_err();
    assert_eq!(err.kind(), crux::ErrorKind::NotFound);
    assert!(
        err.message().contains("scheduler:write_note"),
        "{}",
        err.message()
    );
}

// ---------------------------------------------------------------------------------------
// Observed scheduling (`ctx.crux.scheduler`) under a mutation's transaction.

#[derive(Serialize, Deserialize)]
pub struct MaybeFail {
    pub fail: bool,
}

#[crux::internal_mutation]
pub async fn schedules_observed(ctx: &MutationCtx, args: MaybeFail) -> crux::Result<Id> {
    let when = SystemTime::now() + Duration::from_secs(60);
    let id = ctx
        .crux
        .scheduler
        .run_at(
            "write later",
            when,
            write_note,
            Note {
                text: "observed".into(),
            },
        )
        .await?;
    if args.fail {
        return Err(Error::msg("mutation failed after scheduling"));
    }
    Ok(id)
}

#[crux::action(name = "drives a mutation")]
pub async fn drives(ctx: &ActionCtx, args: MaybeFail) -> crux::Result<String> {
    match ctx
        .crux
        .run_mutation("schedule in a mutation", schedules_observed, args)
        .await
    {
        Ok(id) => Ok(id.to_string()),
        Err(err) => Ok(format!("caught: {}", err.message())),
    }
}

#[tokio::test]
async fn observed_scheduling_commits_or_cancels_with_the_mutation() {
    let sink = crux::sink::Memory::new();
    let d = Deployment::builder()
        .sink(sink.clone())
        .function(write_note)
        .function(notes)
        .function(schedules_observed)
        .function(drives)
        .manual_scheduling()
        .build();
    let out = d.action(drives, MaybeFail { fail: true }).await.unwrap();
    assert_eq!(out, "caught: mutation failed after scheduling");
    assert_eq!(
        d.finish_scheduled().await,
        0,
        "the failed mutation's job was canceled"
    );
    let ok = d.action(drives, MaybeFail { fail: false }).await.unwrap();
    assert!(ok.starts_with("_scheduled_functions:"), "{ok}");
    assert_eq!(d.finish_scheduled().await, 1);
    assert_eq!(d.query(notes, NoArgs {}).await.unwrap(), ["observed"]);

    d.flush(Duration::from_secs(5)).await;
    let records = sink.records();
    let spans = |name: &str| -> Vec<serde_json::Value> {
        records
            .iter()
            .filter(|r| r["type"] == "span:start" && r["name"] == name)
            .cloned()
            .collect()
    };
    let mutation_spans = spans("schedule in a mutation");
    assert_eq!(mutation_spans.len(), 2);
    let schedule_spans = spans("write later");
    assert_eq!(schedule_spans.len(), 2, "recorded in both runs");
    for (schedule, mutation) in schedule_spans.iter().zip(&mutation_spans) {
        assert_eq!(schedule["primitive"], "runtime.convex.schedule");
        assert_eq!(
            schedule["parentSpanId"], mutation["spanId"],
            "nested in the mutation span"
        );
        assert_eq!(
            schedule["attributes"]["functionRef"],
            "scheduler:write_note"
        );
    }
    let end_status = |span: &serde_json::Value| {
        records
            .iter()
            .find(|r| r["type"] == "span:end" && r["spanId"] == span["spanId"])
            .map(|r| r["status"].clone())
            .unwrap()
    };
    assert_eq!(end_status(&mutation_spans[0]), "error");
    assert_eq!(end_status(&mutation_spans[1]), "ok");
}

#[tokio::test]
async fn the_longest_delay_schedules_without_panicking_and_waits() {
    let d = deployment();
    let id = d.action(schedule_forever, NoArgs {}).await.unwrap();
    assert_eq!(d.job_state(&id), Some(JobState::Pending));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(d.job_state(&id), Some(JobState::Pending));
    assert!(d.query(notes, NoArgs {}).await.unwrap().is_empty());
    let flushed = d.flush(Duration::MAX).await;
    assert_eq!(flushed.status, crux::observe::FlushStatus::Drained);
}
