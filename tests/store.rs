//! The document store through real functions: CRUD, indexes, queries, transactions.

use crux::local::{Deployment, Order};
use crux::prelude::*;
use serde_json::{Value, json};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMessage {
    pub thread_id: String,
    pub body: String,
    pub seq: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadArgs {
    pub thread_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct IdArgs {
    pub id: Id,
}

#[derive(Serialize, Deserialize)]
pub struct FailArgs {
    pub fail: bool,
}

#[crux::mutation]
pub async fn add(ctx: &MutationCtx, args: NewMessage) -> crux::Result<Id> {
    ctx.db.insert("messages", args).await
}

#[crux::query]
pub async fn get(ctx: &QueryCtx, args: IdArgs) -> crux::Result<Option<Document>> {
    ctx.db.get(&args.id).await
}

#[crux::query]
pub async fn by_thread(ctx: &QueryCtx, args: ThreadArgs) -> crux::Result<Vec<Document>> {
    ctx.db
        .query("messages")
        .with_index("by_thread", |q| q.eq("threadId", &args.thread_id))
        .collect()
        .await
}

#[crux::query]
pub async fn later_desc(ctx: &QueryCtx, args: ThreadArgs) -> crux::Result<Vec<i64>> {
    let docs = ctx
        .db
        .query("messages")
        .with_index("by_thread", |q| {
            q.eq("threadId", &args.thread_id).gt("seq", 1)
        })
        .order(Order::Desc)
        .collect()
        .await?;
    Ok(docs.iter().map(|d| d["seq"].as_i64().unwrap()).collect())
}

#[crux::query]
pub async fn shapes(ctx: &QueryCtx) -> crux::Result<Value> {
    let first = ctx.db.query("messages").first().await?;
    let two = ctx.db.query("messages").take(2).await?;
    let odd = ctx
        .db
        .query("messages")
        .filter(|d| d["seq"].as_i64().unwrap() % 2 == 1)
        .collect()
        .await?;
    let unique_b = ctx
        .db
        .query("messages")
        .with_index("by_thread", |q| q.eq("threadId", "b"))
        .unique()
        .await?;
    let unique_a = ctx
        .db
        .query("messages")
        .with_index("by_thread", |q| q.eq("threadId", "a"))
        .unique()
        .await
        .map_err(|e| e.message().to_owned());
    Ok(json!({
        "first": first.map(|d| d["body"].clone()),
        "two": two.len(),
        "odd": odd.iter().map(|d| d["seq"].clone()).collect::<Vec<_>>(),
        "uniqueB": unique_b.map(|d| d["body"].clone()),
        "uniqueA": unique_a.err(),
    }))
}

#[crux::mutation]
pub async fn edit(ctx: &MutationCtx, args: IdArgs) -> crux::Result<Vec<Option<Document>>> {
    ctx.db.patch(&args.id, json!({"body": "patched"})).await?;
    let patched = ctx.db.get(&args.id).await?;
    ctx.db
        .replace(
            &args.id,
            json!({"threadId": "z", "body": "replaced", "seq": 9}),
        )
        .await?;
    let replaced = ctx.db.get(&args.id).await?;
    ctx.db.delete(&args.id).await?;
    let deleted = ctx.db.get(&args.id).await?;
    Ok(vec![patched, replaced, deleted])
}

#[crux::mutation]
pub async fn add_then_fail(ctx: &MutationCtx, args: FailArgs) -> crux::Result<()> {
    ctx.db
        .insert(
            "messages",
            json!({"threadId": "doomed", "body": "x", "seq": 0}),
        )
        .await?;
    ctx.scheduler
        .run_after(
            std::time::Duration::ZERO,
            add,
            NewMessage {
                thread_id: "scheduled".into(),
                body: "never".into(),
                seq: 0,
            },
        )
        .await?;
    if args.fail {
        return Err(Error::msg("abort"));
    }
    Ok(())
}

#[crux::mutation]
pub async fn parent_catches(ctx: &MutationCtx) -> crux::Result<String> {
    ctx.db
        .insert(
            "messages",
            json!({"threadId": "parent", "body": "kept", "seq": 0}),
        )
        .await?;
    let child = ctx
        .run_mutation(add_then_fail, FailArgs { fail: true })
        .await;
    let ok_child = ctx
        .run_mutation(add_then_fail, FailArgs { fail: false })
        .await;
    ok_child?;
    // The parent sees its committed child's write but not the failed child's.
    let seen = ctx
        .run_query(
            by_thread,
            ThreadArgs {
                thread_id: "doomed".into(),
            },
        )
        .await?;
    Ok(format!("{}:{}", child.unwrap_err().message(), seen.len()))
}

#[crux::mutation]
pub async fn bad_writes(ctx: &MutationCtx) -> crux::Result<Vec<String>> {
    let mut errors = Vec::new();
    errors.push(ctx.db.insert("unknown", json!({"a": 1})).await.unwrap_err());
    errors.push(ctx.db.insert("messages", json!([1])).await.unwrap_err());
    errors.push(
        ctx.db
            .insert("messages", json!({"_id": "x"}))
            .await
            .unwrap_err(),
    );
    let id: Id = serde_json::from_value(json!("messages:ffff")).unwrap();
    errors.push(ctx.db.patch(&id, json!({"a": 1})).await.unwrap_err());
    errors.push(
        ctx.db
            .query("messages")
            .with_index("by_nothing", |q| q)
            .collect()
            .await
            .unwrap_err(),
    );
    errors.push(
        ctx.db
            .query("messages")
            .with_index("by_thread", |q| q.eq("seq", 1))
            .collect()
            .await
            .unwrap_err(),
    );
    Ok(errors.into_iter().map(|e| e.message().to_owned()).collect())
}

#[crux::mutation]
pub async fn bump(ctx: &MutationCtx) -> crux::Result<i64> {
    let counter = ctx.db.query("counters").first().await?;
    let next = match counter {
        Some(doc) => {
            let n = doc["n"].as_i64().unwrap() + 1;
            tokio::task::yield_now().await; // give a racing mutation every chance to interleave
            ctx.db.patch(&doc.id(), json!({"n": n})).await?;
            n
        }
        None => {
            ctx.db.insert("counters", json!({"n": 1})).await?;
            1
        }
    };
    Ok(next)
}

fn deployment() -> Deployment {
    Deployment::builder()
        .function(add)
        .function(get)
        .function(by_thread)
        .function(later_desc)
        .function(shapes)
        .function(edit)
        .function(add_then_fail)
        .function(parent_catches)
        .function(bad_writes)
        .function(bump)
        .table("messages", |t| t.index("by_thread", ["threadId", "seq"]))
        .table("counters", |t| t)
        // Jobs due at once run only in the drains, so their counts are exact.
        .manual_scheduling()
        .build()
}

async fn add_message(d: &Deployment, thread: &str, body: &str, seq: i64) -> Id {
    let args = NewMessage {
        thread_id: thread.into(),
        body: body.into(),
        seq,
    };
    d.mutation(add, args).await.unwrap()
}

#[tokio::test]
async fn inserted_documents_carry_id_and_creation_time() {
    let d = deployment();
    let id = add_message(&d, "a", "hello", 1).await;
    assert_eq!(id.table(), Some("messages"));
    let doc = d
        .query(get, IdArgs { id: id.clone() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.id(), id);
    assert_eq!(doc["body"], "hello");
    assert!(
        doc.creation_time() > 1.6e12,
        "ms since epoch: {}",
        doc.creation_time()
    );
    let second = add_message(&d, "a", "again", 2).await;
    let later = d.query(get, IdArgs { id: second }).await.unwrap().unwrap();
    assert!(later.creation_time() > doc.creation_time());
}

#[tokio::test]
async fn index_ranges_order_and_result_shapes() {
    let d = deployment();
    for (thread, seq) in [("a", 3), ("a", 1), ("b", 5), ("a", 2)] {
        add_message(&d, thread, &format!("{thread}{seq}"), seq).await;
    }
    let a = d
        .query(
            by_thread,
            ThreadArgs {
                thread_id: "a".into(),
            },
        )
        .await
        .unwrap();
    let seqs: Vec<i64> = a.iter().map(|d| d["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3], "index order is by the index fields");
    let desc = d
        .query(
            later_desc,
            ThreadArgs {
                thread_id: "a".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(desc, [3, 2]);
    let out = d.query(shapes, NoArgs {}).await.unwrap();
    assert_eq!(out["first"], "a3", "no index: creation order");
    assert_eq!(out["two"], 2);
    assert_eq!(out["odd"], json!([3, 1, 5]));
    assert_eq!(out["uniqueB"], "b5");
    assert!(out["uniqueA"].as_str().unwrap().contains("more than one"));
}

#[tokio::test]
async fn patch_replace_delete_keep_system_fields() {
    let d = deployment();
    let id = add_message(&d, "a", "hello", 1).await;
    let [patched, replaced, deleted]: [Option<Document>; 3] = d
        .mutation(edit, IdArgs { id: id.clone() })
        .await
        .unwrap()
        .try_into()
        .unwrap();
    let patched = patched.unwrap();
    assert_eq!(
        (patched["body"].as_str(), patched["seq"].as_i64()),
        (Some("patched"), Some(1))
    );
    let replaced = replaced.unwrap();
    assert_eq!(replaced.id(), id);
    assert_eq!(replaced.creation_time(), patched.creation_time());
    assert_eq!(replaced["threadId"], "z");
    assert!(deleted.is_none());
    assert!(d.query(get, IdArgs { id }).await.unwrap().is_none());
}

#[tokio::test]
async fn a_failed_mutation_leaves_no_writes_and_cancels_its_schedule() {
    let d = deployment();
    let err = d
        .mutation(add_then_fail, FailArgs { fail: true })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "abort");
    assert_eq!(
        d.finish_scheduled().await,
        0,
        "the scheduled insert was canceled"
    );
    for thread in ["doomed", "scheduled"] {
        let docs = d
            .query(
                by_thread,
                ThreadArgs {
                    thread_id: thread.into(),
                },
            )
            .await
            .unwrap();
        assert!(docs.is_empty(), "{thread}: {docs:?}");
    }
    d.mutation(add_then_fail, FailArgs { fail: false })
        .await
        .unwrap();
    assert_eq!(d.finish_scheduled().await, 1);
    let scheduled = d
        .query(
            by_thread,
            ThreadArgs {
                thread_id: "scheduled".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(scheduled.len(), 1);
}

#[tokio::test]
async fn nested_mutations_are_sub_transactions() {
    let d = deployment();
    let out = d.mutation(parent_catches, NoArgs {}).await.unwrap();
    assert_eq!(
        out, "abort:1",
        "child error caught, the committed child's write visible"
    );
    let doomed = d
        .query(
            by_thread,
            ThreadArgs {
                thread_id: "doomed".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        doomed.len(),
        1,
        "only the successful child's insert committed"
    );
    let parent = d
        .query(
            by_thread,
            ThreadArgs {
                thread_id: "parent".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(parent.len(), 1);
    assert_eq!(
        d.finish_scheduled().await,
        1,
        "only the successful child's job runs"
    );
}

#[tokio::test]
async fn bad_writes_and_reads_get_errors_naming_the_problem() {
    let d = deployment();
    let errors = d.mutation(bad_writes, NoArgs {}).await.unwrap();
    let expect = [
        "table `unknown` is not in the schema",
        "must be a JSON object, got an array",
        "field `_id` is reserved",
        "document `messages:ffff` does not exist",
        "has no index `by_nothing`; its indexes are: by_thread, by_creation_time",
        "expected a comparison on `threadId`",
    ];
    for (got, want) in errors.iter().zip(expect) {
        assert!(got.contains(want), "{got:?} should contain {want:?}");
    }
    assert_eq!(errors.len(), expect.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mutations_are_serializable() {
    let d = deployment();
    let calls = (0..20).map(|_| {
        let d = d.clone();
        tokio::spawn(async move { d.mutation(bump, NoArgs {}).await.unwrap() })
    });
    let mut seen = Vec::new();
    for call in calls {
        seen.push(call.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<i64>>(), "no lost update");
}
