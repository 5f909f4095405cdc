//! `ctx.auth`: the identity a call is made for reaches the handler, is inherited by every
//! function it calls (observed or raw), never by scheduled work, and is recorded on the run
//! only as the `userId` correlator when the deployment opts in.

use std::sync::{Arc, Mutex};

use crux::local::{Deployment, DeploymentBuilder, UserIdentity};
use crux::prelude::*;
use crux::sink::Memory;
use serde_json::{Value, json};

/// Who each scheduled job ran as, written by `seen_by_job`.
#[derive(Debug, Default)]
struct JobSaw(Mutex<Vec<Option<String>>>);

fn who(identity: Option<&UserIdentity>) -> Value {
    match identity {
        Some(identity) => json!(identity.token_identifier),
        None => Value::Null,
    }
}

#[crux::query(path = "auth:whoami")]
pub async fn whoami(ctx: &QueryCtx) -> crux::Result<Value> {
    Ok(who(ctx.auth.get_user_identity()))
}

#[crux::internal_mutation(path = "auth:whoami_mutation")]
pub async fn whoami_mutation(ctx: &MutationCtx) -> crux::Result<Value> {
    Ok(json!({
        "self": who(ctx.auth.get_user_identity()),
        "rawQuery": ctx.run_query(whoami, NoArgs {}).await?,
    }))
}

#[crux::internal_action(path = "auth:child")]
pub async fn child(ctx: &ActionCtx) -> crux::Result<Value> {
    Ok(who(ctx.auth.get_user_identity()))
}

#[crux::internal_action(path = "auth:seen_by_job")]
pub async fn seen_by_job(ctx: &ActionCtx) -> crux::Result<()> {
    let saw = ctx.state::<Arc<JobSaw>>()?;
    saw.0.lock().unwrap().push(
        ctx.auth
            .get_user_identity()
            .map(|i| i.token_identifier.clone()),
    );
    Ok(())
}

#[crux::action(path = "auth:parent", name = "auth parent")]
pub async fn parent(ctx: &ActionCtx) -> crux::Result<Value> {
    let user = ctx.auth.require_user_identity()?;
    ctx.crux
        .scheduler
        .run_after("later", std::time::Duration::ZERO, seen_by_job, NoArgs {})
        .await?;
    Ok(json!({
        "self": user.token_identifier,
        "name": user.name,
        "observedAction": ctx.crux.run_action("child", child, NoArgs {}).await?,
        "observedQuery": ctx.crux.run_query("whoami", whoami, NoArgs {}).await?,
        "observedMutation": ctx.crux.run_mutation("mutation", whoami_mutation, NoArgs {}).await?,
        "rawAction": ctx.run_action(child, NoArgs {}).await?,
    }))
}

fn builder(sink: &Memory, saw: &Arc<JobSaw>) -> DeploymentBuilder {
    Deployment::builder()
        .sink(sink.clone())
        .functions((whoami, whoami_mutation, child, seen_by_job, parent))
        .state(saw.clone())
        .manual_scheduling()
}

#[tokio::test]
async fn an_identity_reaches_the_handler_and_every_function_it_calls() {
    let sink = Memory::new();
    let saw = Arc::new(JobSaw::default());
    let deployment = builder(&sink, &saw).build();
    let ada = UserIdentity::for_test("user-ada").name("Ada");
    let out = deployment
        .with_identity(ada)
        .action(parent, NoArgs {})
        .await
        .unwrap();
    let ada = "https://convex.test|user-ada";
    assert_eq!(
        out,
        json!({
            "self": ada, "name": "Ada",
            "observedAction": ada, "observedQuery": ada,
            "observedMutation": {"self": ada, "rawQuery": ada},
            "rawAction": ada,
        })
    );
    // Scheduled work runs with no identity, as on Convex.
    assert_eq!(deployment.finish_scheduled().await, 1);
    assert_eq!(*saw.0.lock().unwrap(), vec![None]);
    // Not opted in: the run records no user.
    deployment.flush(std::time::Duration::from_secs(10)).await;
    assert!(
        sink.records().iter().all(|r| r.get("userId").is_none()),
        "no userId unless the deployment opts in"
    );
}

#[tokio::test]
async fn without_an_identity_handlers_see_none() {
    let sink = Memory::new();
    let deployment = builder(&sink, &Arc::new(JobSaw::default())).build();
    assert_eq!(
        deployment.query(whoami, NoArgs {}).await.unwrap(),
        Value::Null
    );
    let err = deployment.action(parent, NoArgs {}).await.unwrap_err();
    assert!(err.message().starts_with("Unauthenticated:"), "{err}");
    let as_ada = deployment.with_identity(UserIdentity::new("https://issuer", "ada"));
    assert_eq!(
        as_ada.call("auth:whoami", json!({})).await.unwrap(),
        json!("https://issuer|ada")
    );
}

#[tokio::test]
async fn an_opted_in_deployment_records_only_the_token_identifier_as_user_id() {
    let sink = Memory::new();
    let deployment = builder(&sink, &Arc::new(JobSaw::default()))
        .correlate_user_id(true)
        .build();
    let ada = UserIdentity::for_test("user-ada").email("ada@example.com");
    let key = ada.token_identifier.clone();
    // Another provider's user with the same subject is another user.
    let namesake = UserIdentity::new("https://other.example", "user-ada");
    for user in [ada, namesake] {
        deployment
            .with_identity(user)
            .action(parent, NoArgs {})
            .await
            .unwrap();
    }
    deployment.flush(std::time::Duration::from_secs(10)).await;
    let records = sink.records();
    let users: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "run:start" && r["name"] == "auth parent")
        .map(|r| &r["userId"])
        .collect();
    assert_eq!(
        users,
        [&json!(key), &json!("https://other.example|user-ada")],
        "Convex's key for a user: issuer|subject"
    );
    let text = serde_json::to_string(&records).unwrap();
    assert!(
        !text.contains("ada@example.com"),
        "no other claim is recorded"
    );
}
