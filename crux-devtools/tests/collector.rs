//! The collector's ingest contract and JSON API, over real loopback HTTP.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use crux_devtools::collector::{Collector, CollectorError, CollectorOptions, MAX_BODY, Store};
use serde_json::{Value, json};

fn temp_db() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "crux-devtools-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("devtools.db")
}

fn start(token: Option<&str>) -> Collector {
    start_on(temp_db(), token)
}

/// A collector on loopback storing into `db`.
fn start_on(db: PathBuf, token: Option<&str>) -> Collector {
    Collector::start(CollectorOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        db,
        token: token.map(str::to_owned),
    })
    .unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Past the store's 5 s busy timeout with room to spare on a loaded machine (a
        // request answered 503 only once the store gives up waiting for its lock).
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into()
}

/// Posts `body` to the ingest route: (status, Retry-After, JSON reply).
fn post(c: &Collector, body: &[u8], token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = agent()
        .post(format!("{}/api/observability/records", c.url()))
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        retry,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn batch(records: &[Value]) -> Vec<u8> {
    json!({"schemaVersion": 5, "records": records})
        .to_string()
        .into_bytes()
}

fn get(c: &Collector, path: &str) -> (u16, Value) {
    let mut resp = agent().get(format!("{}{path}", c.url())).call().unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap(),
    )
}

fn start_record(id: &str, run: &str, seg: &str, seq: u32, started: &str) -> Value {
    json!({
        "schemaVersion": 5, "recordId": id, "runId": run, "operationId": run,
        "segmentId": seg, "segmentSeq": seq, "traceId": "0af7651916cd43dd8448eb211c80319c",
        "type": "run:start", "name": format!("run {run}"), "rootPrimitive": "agent.run",
        "startedAt": started, "status": "running", "sessionId": "sess_1"
    })
}

fn event(id: &str, run: &str, seg: &str, seq: u32) -> Value {
    json!({
        "schemaVersion": 5, "recordId": id, "runId": run, "operationId": run,
        "segmentId": seg, "segmentSeq": seq, "traceId": "0af7651916cd43dd8448eb211c80319c",
        "type": "span:event", "spanId": "b7ad6b7169203331", "name": "note",
        "timestamp": "2026-01-01T00:00:01.000Z"
    })
}

fn end_record(id: &str, run: &str, seg: &str, seq: u32) -> Value {
    json!({
        "schemaVersion": 5, "recordId": id, "runId": run, "operationId": run,
        "segmentId": seg, "segmentSeq": seq, "traceId": "0af7651916cd43dd8448eb211c80319c",
        "type": "run:end", "endedAt": "2026-01-01T00:00:02.000Z", "durationMs": 2000.0,
        "status": "ok"
    })
}

fn outcomes(reply: &Value) -> Vec<(String, String, bool)> {
    reply["dispositions"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!(d["index"], i);
            (
                d["outcome"].as_str().unwrap().to_owned(),
                d["code"].as_str().unwrap().to_owned(),
                d["retryable"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn accepted(n: usize) -> Vec<(String, String, bool)> {
    (0..n)
        .map(|_| ("accepted".to_owned(), "accepted".to_owned(), false))
        .collect()
}

#[test]
fn a_batch_is_answered_202_per_record_and_listed_by_the_api() {
    let c = start(None);
    let records = [
        start_record("rec_1", "run_a", "seg_a", 1, "2026-01-01T00:00:00.000Z"),
        event("rec_2", "run_a", "seg_a", 2),
        end_record("rec_3", "run_a", "seg_a", 3),
        start_record("rec_4", "run_b", "seg_b", 1, "2026-01-02T00:00:00.000Z"),
    ];
    let (status, retry, reply) = post(&c, &batch(&records), None);
    assert_eq!(status, 202);
    assert_eq!(retry, None);
    assert_eq!(outcomes(&reply), accepted(4));
    for (i, d) in reply["dispositions"].as_array().unwrap().iter().enumerate() {
        assert_eq!(d["recordId"], records[i]["recordId"]);
    }

    let (status, runs) = get(&c, "/api/runs");
    assert_eq!(status, 200);
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    // Newest first.
    assert_eq!(runs[0]["runId"], "run_b");
    assert_eq!(runs[0]["status"], "running");
    assert_eq!(runs[1]["runId"], "run_a");
    assert_eq!(runs[1]["name"], "run run_a");
    assert_eq!(runs[1]["status"], "ok");
    assert_eq!(runs[1]["durationMs"], 2000.0);
    assert_eq!(runs[1]["records"], 3);
    assert_eq!(runs[1]["sessionId"], "sess_1");
    assert_eq!(runs[1]["startedAt"], "2026-01-01T00:00:00.000Z");

    let (status, run) = get(&c, "/api/runs/run_a");
    assert_eq!(status, 200);
    assert_eq!(run["run"]["runId"], "run_a");
    assert_eq!(run["records"].as_array().unwrap(), &records[..3].to_vec());
    let (status, _) = get(&c, "/api/runs/run_nope");
    assert_eq!(status, 404);
    let (status, limited) = get(&c, "/api/runs?limit=1");
    assert_eq!(status, 200);
    assert_eq!(limited["runs"].as_array().unwrap().len(), 1);
}

#[test]
fn a_body_over_one_mebibyte_is_answered_413_and_one_under_is_stored() {
    let c = start(None);
    let pad = |n: usize| {
        let mut r = event("rec_big", "run_a", "seg_a", 1);
        r["attributes"] = json!({ "pad": "x".repeat(n) });
        r
    };
    let base = batch(&[pad(0)]).len();
    let fits = batch(&[pad(MAX_BODY - base)]);
    assert_eq!(fits.len(), MAX_BODY);
    let over = batch(&[pad(MAX_BODY - base + 1)]);
    assert_eq!(over.len(), MAX_BODY + 1);
    let (status, _, reply) = post(&c, &over, None);
    assert_eq!(status, 413);
    assert_eq!(reply["error"]["code"], "payload_too_large");
    let (status, _, reply) = post(&c, &fits, None);
    assert_eq!(status, 202);
    assert_eq!(outcomes(&reply), accepted(1));
}

#[test]
fn an_unsupported_schema_version_is_422_with_every_record_rejected() {
    let c = start(None);
    let records = [
        event("rec_1", "run_a", "seg_a", 1),
        event("rec_2", "run_a", "seg_a", 2),
    ];
    let body = json!({"schemaVersion": 4, "records": records}).to_string();
    let (status, _, reply) = post(&c, body.as_bytes(), None);
    assert_eq!(status, 422);
    let want: Vec<_> = (0..2)
        .map(|_| {
            (
                "rejected".to_owned(),
                "unsupported_schema_version".to_owned(),
                false,
            )
        })
        .collect();
    assert_eq!(outcomes(&reply), want);
    let (_, runs) = get(&c, "/api/runs");
    assert!(runs["runs"].as_array().unwrap().is_empty());
}

#[test]
fn conflicts_are_permanent_rejections_and_the_first_payload_is_kept() {
    let c = start(None);
    let first = event("rec_1", "run_a", "seg_a", 1);
    let (status, _, _) = post(&c, &batch(std::slice::from_ref(&first)), None);
    assert_eq!(status, 202);

    let mut changed = first.clone();
    changed["name"] = json!("other");
    let other_run = event("rec_2", "run_b", "seg_a", 2);
    let same_slot = event("rec_3", "run_a", "seg_a", 1);
    let (status, _, reply) = post(&c, &batch(&[changed, other_run, same_slot]), None);
    assert_eq!(status, 202);
    let codes: Vec<_> = outcomes(&reply)
        .into_iter()
        .map(|(o, code, retry)| {
            assert_eq!(o, "rejected");
            assert!(!retry, "{code} is permanent");
            code
        })
        .collect();
    assert_eq!(
        codes,
        [
            "record_id_conflict",
            "segment_ownership_conflict",
            "segment_sequence_conflict"
        ]
    );
    let (_, run) = get(&c, "/api/runs/run_a");
    assert_eq!(run["records"], json!([first]));
    let (status, _) = get(&c, "/api/runs/run_b");
    assert_eq!(status, 404);
}

#[test]
fn an_identical_record_sent_twice_is_accepted_twice_and_stored_once() {
    let c = start(None);
    let r = event("rec_1", "run_a", "seg_a", 1);
    // Twice in one batch, then again in a retry (keys in another order: the same record).
    let (_, _, reply) = post(&c, &batch(&[r.clone(), r.clone()]), None);
    assert_eq!(outcomes(&reply), accepted(2));
    let reordered: Value = serde_json::from_str(&{
        let mut o: Vec<(String, Value)> = r.as_object().unwrap().clone().into_iter().collect();
        o.reverse();
        let m: serde_json::Map<String, Value> = o.into_iter().collect();
        Value::Object(m).to_string()
    })
    .unwrap();
    let (_, _, reply) = post(&c, &batch(&[reordered]), None);
    assert_eq!(outcomes(&reply), accepted(1));
    let (_, runs) = get(&c, "/api/runs");
    assert_eq!(runs["runs"][0]["records"], 1);
    let (_, run) = get(&c, "/api/runs/run_a");
    assert_eq!(run["records"].as_array().unwrap().len(), 1);
}

#[test]
fn invalid_records_and_batches_are_named() {
    let c = start(None);
    let mut no_id = event("x", "run_a", "seg_a", 1);
    no_id.as_object_mut().unwrap().remove("recordId");
    let mut bad_seq = event("rec_2", "run_a", "seg_a", 0);
    bad_seq["segmentSeq"] = json!(0);
    let (status, _, reply) = post(
        &c,
        &batch(&[
            no_id,
            bad_seq,
            json!("text"),
            event("rec_4", "run_a", "seg_a", 4),
        ]),
        None,
    );
    assert_eq!(status, 202);
    let o = outcomes(&reply);
    assert_eq!(o[0].1, "invalid_record");
    assert_eq!(o[1].1, "invalid_record");
    assert_eq!(o[2].1, "invalid_record");
    assert_eq!(o[3].1, "accepted");
    assert!(
        reply["dispositions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("recordId")
    );
    let (status, _, reply) = post(&c, b"{not json", None);
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let (status, _, _) = post(&c, br#"{"records": []}"#, None);
    assert_eq!(status, 400);
}

#[test]
fn a_token_is_required_off_loopback_and_checked_when_set() {
    let err = Collector::start(CollectorOptions {
        listen: "0.0.0.0:0".parse().unwrap(),
        db: temp_db(),
        token: None,
    })
    .err()
    .expect("refused without a token");
    assert!(matches!(err, CollectorError::TokenRequired { .. }));
    assert!(err.to_string().contains("CRUX_DEVTOOLS_TOKEN"), "{err}");

    let c = start(Some("s3cret"));
    let body = batch(&[event("rec_1", "run_a", "seg_a", 1)]);
    assert_eq!(post(&c, &body, None).0, 401);
    assert_eq!(post(&c, &body, Some("wrong")).0, 401);
    let (status, _, reply) = post(&c, &body, Some("s3cret"));
    assert_eq!(status, 202);
    assert_eq!(outcomes(&reply), accepted(1));
}

#[test]
fn source_health_keeps_the_maximum_of_each_counter() {
    let c = start(None);
    let health = |accepted: u64, retried: u64| {
        json!({"schemaVersion": 5, "records": [], "sourceHealth": {
            "sourceId": "source_abc", "accepted": accepted, "retried": retried,
            "permanentlyRejected": 1, "overflowDropped": 0, "deadlineDropped": 0,
            "lastError": "boom"
        }})
        .to_string()
    };
    assert_eq!(post(&c, health(10, 2).as_bytes(), None).0, 202);
    assert_eq!(post(&c, health(7, 5).as_bytes(), None).0, 202);
    let (_, sources) = get(&c, "/api/sources");
    let s = &sources["sources"][0];
    assert_eq!(s["sourceId"], "source_abc");
    assert_eq!(s["accepted"], 10);
    assert_eq!(s["retried"], 5);
    assert_eq!(s["lastError"], "boom");
}

#[test]
fn accepted_records_survive_a_restart_of_the_collector() {
    let db = temp_db();
    let options = CollectorOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: db.clone(),
        token: None,
    };
    let c = Collector::start(options.clone()).unwrap();
    let r = start_record("rec_1", "run_a", "seg_a", 1, "2026-01-01T00:00:00.000Z");
    assert_eq!(post(&c, &batch(std::slice::from_ref(&r)), None).0, 202);
    drop(c);
    let store = Store::open_read_only(&db).unwrap();
    assert_eq!(store.record_count().unwrap(), 1);
    assert_eq!(store.runs_matching("a").unwrap()[0].run_id, "run_a");
    drop(store);
    let c = Collector::start(options).unwrap();
    // The same record again is a duplicate, not a conflict: the store kept it.
    let (_, _, reply) = post(&c, &batch(&[r]), None);
    assert_eq!(outcomes(&reply), accepted(1));
    let (_, runs) = get(&c, "/api/runs");
    assert_eq!(runs["runs"][0]["records"], 1);
}

fn span_records(run: &str, seg: &str, seq: u32, span: &str, name: &str, tokens: i64) -> [Value; 2] {
    let base = |id: String, seq: u32, kind: &str| {
        json!({
            "schemaVersion": 5, "recordId": id, "runId": run, "operationId": run,
            "segmentId": seg, "segmentSeq": seq, "traceId": "0af7651916cd43dd8448eb211c80319c",
            "type": kind, "spanId": span,
        })
    };
    let mut start = base(format!("rec_{span}_s"), seq, "span:start");
    for (k, v) in [
        ("parentSpanId", Value::Null),
        ("family", json!("generation")),
        ("primitive", json!("generation.call")),
        ("name", json!(name)),
        ("model", json!("stand-in")),
        ("startedAt", json!("2026-01-01T00:00:00.100Z")),
        ("status", json!("running")),
    ] {
        start[k] = v;
    }
    let mut end = base(format!("rec_{span}_e"), seq + 1, "span:end");
    for (k, v) in [
        ("endedAt", json!("2026-01-01T00:00:00.300Z")),
        ("durationMs", json!(200)),
        ("status", json!("ok")),
        (
            "metrics",
            json!({"inputTokens": tokens, "outputTokens": 2 * tokens, "totalTokens": 3 * tokens}),
        ),
    ] {
        end[k] = v;
    }
    [start, end]
}

#[test]
fn the_run_list_filters_by_status_name_time_session_and_text_and_counts_model_tokens() {
    let c = start(None);
    let [s1, e1] = span_records("run_a", "seg_a", 2, "aaaa000000000001", "draft plan", 10);
    let [s2, e2] = span_records("run_a", "seg_a", 4, "aaaa000000000002", "write answer", 5);
    let mut other = start_record("rec_b1", "run_b", "seg_b", 1, "2026-01-03T00:00:00.000Z");
    other["sessionId"] = json!("sess_2");
    other["userId"] = json!("user_ada");
    let records = [
        start_record("rec_a1", "run_a", "seg_a", 1, "2026-01-01T00:00:00.000Z"),
        s1,
        e1,
        s2,
        e2,
        end_record("rec_a9", "run_a", "seg_a", 6),
        other,
    ];
    assert_eq!(outcomes(&post(&c, &batch(&records), None).2), accepted(7));
    let ids = |path: &str| -> Vec<String> {
        let (status, body) = get(&c, path);
        assert_eq!(status, 200, "{path}: {body}");
        body["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["runId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("/api/runs"), ["run_b", "run_a"]);
    assert_eq!(ids("/api/runs?status=ok"), ["run_a"]);
    assert_eq!(ids("/api/runs?status=running"), ["run_b"]);
    assert_eq!(ids("/api/runs?name=RUN%20RUN_B"), ["run_b"]);
    assert_eq!(ids("/api/runs?since=2026-01-02T00:00:00Z"), ["run_b"]);
    assert_eq!(
        ids("/api/runs?until=2026-01-02T00:00:00%2B00:00"),
        ["run_a"]
    );
    assert_eq!(ids("/api/runs?session=sess_1"), ["run_a"]);
    assert_eq!(ids("/api/runs?user=user_ada"), ["run_b"]);
    // Full text: a span's name, not just the run's.
    assert_eq!(ids("/api/runs?q=Draft%20Plan"), ["run_a"]);
    assert_eq!(ids("/api/runs?q=nothing-like-this"), Vec::<String>::new());
    // Under 3 characters the index cannot answer: every run is searched.
    assert_eq!(ids("/api/runs?q=dr"), ["run_a"]);
    // An error is found as `name: message`, across its two fields.
    let mut failed = end_record("rec_b9", "run_b", "seg_b", 3);
    failed["status"] = json!("error");
    failed["error"] = json!({"name": "QuotaError", "message": "out of \"tokens\""});
    assert_eq!(outcomes(&post(&c, &batch(&[failed]), None).2), accepted(1));
    assert_eq!(
        ids("/api/runs?q=quotaerror%3A%20out%20of%20%22tok"),
        ["run_b"]
    );

    let (_, listed) = get(&c, "/api/runs?status=ok");
    let a = &listed["runs"][0];
    assert_eq!(
        (
            &a["modelCalls"],
            &a["inputTokens"],
            &a["outputTokens"],
            &a["totalTokens"]
        ),
        (&json!(2), &json!(15), &json!(30), &json!(45))
    );

    let (status, found) = get(&c, "/api/search?q=write%20answer");
    assert_eq!(status, 200);
    assert_eq!(found["runs"], json!(["run_a"]));
    assert_eq!(found["hits"][0]["spanId"], "aaaa000000000002");
    assert_eq!(found["hits"][0]["field"], "name");

    let (status, view) = get(&c, "/api/runs/run_a/view");
    assert_eq!(status, 200);
    assert_eq!(view["view"]["status"], "ok");
    let spans = view["view"]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0]["name"], "draft plan");
    assert_eq!(spans[0]["details"]["model"], "stand-in");
    assert_eq!(spans[0]["metrics"]["totalTokens"], 30);
    assert_eq!(view["run"]["modelCalls"], 2);
    assert_eq!(get(&c, "/api/runs/run_nope/view").0, 404);

    let (_, before) = get(&c, "/api/revision");
    post(&c, &batch(&[event("rec_b2", "run_b", "seg_b", 2)]), None);
    let (_, after) = get(&c, "/api/revision");
    assert!(after["revision"].as_i64() > before["revision"].as_i64());
}

#[test]
fn bad_query_parameters_are_400_naming_the_parameter() {
    let c = start(None);
    for (path, name) in [
        ("/api/runs?limit=zero", "`limit`"),
        ("/api/runs?limit=0", "`limit`"),
        ("/api/runs?since=yesterday", "`since`"),
        ("/api/runs?until=2026-13-01", "`until`"),
        ("/api/search", "`q`"),
        ("/api/runs?q=%FF", "`q`"),
    ] {
        let (status, body) = get(&c, path);
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"]["code"], "invalid_query", "{path}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(name), "{path}: {message}");
    }
}

#[test]
fn the_web_viewer_is_served_offline_with_a_strict_content_policy() {
    let c = start(Some("s3cret"));
    for (path, kind, needle) in [
        ("/", "text/html", "/assets/app.js"),
        ("/assets/app.js", "text/javascript", "/api/revision"),
        ("/assets/app.css", "text/css", ".tl-bar"),
    ] {
        // The assets hold no records: they load without the token.
        let mut resp = agent().get(format!("{}{path}", c.url())).call().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let header = |h: &str| {
            resp.headers()
                .get(h)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        let csp = header("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        let body = resp.body_mut().read_to_string().unwrap();
        assert!(body.contains(needle), "{path}");
        // Offline: nothing is fetched from another origin.
        assert!(
            !body.contains("https://") && !body.contains("http://"),
            "{path}"
        );
    }
    // The API still needs it.
    assert_eq!(get(&c, "/api/runs").0, 401);
}

/// A version 2 store (its full-text index kept the texts, sizes and positions) gets the
/// smaller index, rebuilt from its records, on open.
#[test]
fn a_version_2_store_gets_its_search_index_rebuilt() {
    let db = temp_db();
    {
        let mut store = Store::open(&db).unwrap();
        let [s, e] = span_records("run_a", "seg_a", 2, "aaaa000000000001", "draft plan", 7);
        let records = [
            start_record("rec_1", "run_a", "seg_a", 1, "2026-01-01T00:00:00.000Z"),
            s,
            e,
        ];
        assert!(store.ingest(5, &records).unwrap().iter().all(Result::is_ok));
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TABLE search_text; \
         CREATE VIRTUAL TABLE search_text USING fts5(text, run_id UNINDEXED, tokenize = 'trigram'); \
         DROP INDEX runs_listed; \
         CREATE INDEX runs_newest_first ON runs(started_ms DESC, first_seq DESC); \
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);
    let store = Store::open_read_only(&db).unwrap();
    let found = crux_devtools::collector::views::search(
        &store,
        "Draft Plan",
        &crux_devtools::collector::RunFilter::default(),
        10,
    )
    .unwrap();
    assert_eq!(found.runs, ["run_a"]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, crux_devtools::collector::STORE_VERSION);
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(indexes.contains(&"runs_listed".to_owned()), "{indexes:?}");
    assert!(
        !indexes.contains(&"runs_newest_first".to_owned()),
        "{indexes:?}"
    );
    assert_eq!(store.runs(10).unwrap()[0].run_id, "run_a");
}

#[test]
fn a_version_1_store_is_upgraded_with_its_model_totals_backfilled() {
    let db = temp_db();
    {
        let c = start_on(db.clone(), None);
        let [s, e] = span_records("run_a", "seg_a", 2, "aaaa000000000001", "draft", 7);
        let records = [
            start_record("rec_1", "run_a", "seg_a", 1, "2026-01-01T00:00:00.000Z"),
            s,
            e,
        ];
        assert_eq!(outcomes(&post(&c, &batch(&records), None).2), accepted(3));
    }
    // Make it a version 1 store: no totals columns (and the run list's index of then).
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP INDEX runs_listed; \
         CREATE INDEX runs_newest_first ON runs(started_ms DESC, first_seq DESC); \
         ALTER TABLE runs DROP COLUMN model_calls; ALTER TABLE runs DROP COLUMN input_tokens; \
         ALTER TABLE runs DROP COLUMN output_tokens; ALTER TABLE runs DROP COLUMN total_tokens; \
         DROP TABLE search_text; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    // A reader upgrades it.
    let store = Store::open_read_only(&db).unwrap();
    let row = store.run("run_a").unwrap().unwrap();
    assert_eq!(
        (
            row.model_calls,
            row.input_tokens,
            row.output_tokens,
            row.total_tokens
        ),
        (1, 7, 14, 21)
    );
}

/// A search of the run list looks only at the runs its other filters keep: a match past
/// the newest 200 runs matching the text alone is found when a filter keeps it.
#[test]
fn a_filtered_search_finds_a_match_past_the_newest_200_text_matches() {
    let c = start(None);
    let mut records = Vec::new();
    // Run 0 is the oldest and the only one in error; all 230 hold "common step".
    for r in 0..230u32 {
        let run = format!("run_{r:03}");
        let seg = format!("seg_{r:03}");
        let started = format!("2026-01-01T00:{:02}:{:02}.000Z", r / 60, r % 60);
        records.push(start_record(&format!("rec_{r}_1"), &run, &seg, 1, &started));
        let [s, e] = span_records(&run, &seg, 2, &format!("{r:016x}"), "common step", 1);
        records.extend([s, e]);
        let mut end = end_record(&format!("rec_{r}_9"), &run, &seg, 4);
        if r == 0 {
            end["status"] = json!("error");
        }
        records.push(end);
    }
    for chunk in records.chunks(200) {
        assert_eq!(
            outcomes(&post(&c, &batch(chunk), None).2),
            accepted(chunk.len())
        );
    }
    let (status, body) = get(&c, "/api/runs?q=common%20step&status=error");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["runs"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["runs"][0]["runId"], "run_000");
    assert_eq!(body["searchTruncated"], false);
    // A name filter too, and a time filter.
    let (_, body) = get(&c, "/api/runs?q=common%20step&name=run_001");
    assert_eq!(body["runs"][0]["runId"], "run_001", "{body}");
    let (_, body) = get(&c, "/api/runs?q=common%20step&until=2026-01-01T00:00:02Z");
    let ids: Vec<&str> = body["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["run_002", "run_001", "run_000"]);
    // Without filters the search stops at 200 runs and says so.
    let (_, body) = get(&c, "/api/runs?q=common%20step");
    assert_eq!(body["runs"].as_array().unwrap().len(), 200);
    assert_eq!(body["searchTruncated"], true);
}

/// A text the full-text index cannot look up (under 3 characters, no 3 ASCII characters
/// in a row) is searched for in the newest runs only, up to `MAX_SCAN_RECORDS` records,
/// and the answer says when older runs were left out.
#[test]
fn a_text_the_index_cannot_look_up_reads_only_the_newest_runs() {
    use crux_devtools::collector::{MAX_SCAN_RECORDS, RunFilter, views};
    let db = temp_db();
    let mut store = Store::open(&db).unwrap();
    // Runs of 100 records each: one more run than the budget holds.
    let runs = (MAX_SCAN_RECORDS / 100 + 1) as u32;
    for r in 0..runs {
        let run = format!("run_{r:04}");
        let seg = format!("seg_{r:04}");
        let started = format!(
            "2026-01-01T{:02}:{:02}:{:02}.000Z",
            r / 3600,
            (r / 60) % 60,
            r % 60
        );
        let mut records = vec![start_record(&format!("rec_{r}_0"), &run, &seg, 1, &started)];
        for i in 0..99 {
            let mut e = event(&format!("rec_{r}_{}", i + 1), &run, &seg, i + 2);
            e["name"] = json!(if r == 0 { "zq 日本" } else { "note" });
            records.push(e);
        }
        assert!(store.ingest(5, &records).unwrap().iter().all(Result::is_ok));
    }
    // Only the oldest run holds "zq": the scan stops before it, and says so.
    for text in ["zq", "日本", "q 日"] {
        let found = views::search(&store, text, &RunFilter::default(), usize::MAX).unwrap();
        assert!(found.runs.is_empty(), "{text}");
        assert!(found.truncated, "{text}");
    }
    // With a filter keeping the old run, it is found.
    let old = RunFilter {
        until_ms: Some(1_767_225_600_000),
        ..RunFilter::default()
    };
    let found = views::search(&store, "zq", &old, usize::MAX).unwrap();
    assert_eq!(found.runs, ["run_0000"]);
    assert!(!found.truncated);
    // A text with 3 ASCII characters in a row is looked up in the index, whatever else
    // it holds: every run is reachable.
    let found = views::search(&store, "zq 日本", &RunFilter::default(), usize::MAX).unwrap();
    assert_eq!(found.runs, ["run_0000"]);
    assert!(!found.truncated);
    let found = views::search(&store, "NOTE", &RunFilter::default(), 3).unwrap();
    assert_eq!(found.runs.len(), 3);
    assert!(found.truncated, "stopped at 3 runs");
}

/// Without a token the collector serves loopback names only (a rebound DNS name is
/// refused), and takes records as JSON only (a cross-site `text/plain` post is refused).
#[test]
fn a_tokenless_collector_refuses_other_host_names_and_non_json_posts() {
    let c = start(None);
    let status = |host: &str| {
        agent()
            .get(format!("{}/api/runs", c.url()))
            .header("Host", host)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status("evil.example.com"), 403);
    assert_eq!(status("evil.example.com:4400"), 403);
    assert_eq!(status("localhost:4400"), 200);
    assert_eq!(status("127.0.0.1"), 200);
    assert_eq!(status("[::1]:4400"), 200);

    let posted = |content_type: &str| {
        agent()
            .post(format!("{}/api/observability/records", c.url()))
            .header("Content-Type", content_type)
            .send(r#"{"schemaVersion": 5, "records": []}"#)
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(posted("text/plain;charset=UTF-8"), 415);
    assert_eq!(posted("application/json; charset=utf-8"), 202);

    // With a token, other names are served (to whoever has the token).
    let c = start(Some("secret"));
    let reply = agent()
        .get(format!("{}/api/runs", c.url()))
        .header("Host", "devtools.internal:4400")
        .header("Authorization", "Bearer secret")
        .call()
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
}

/// `[[[…1…]]]`, `depth` arrays deep.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

/// A record holding a value nested deeper than serde_json reads (128) is refused alone,
/// over HTTP and through `Store::ingest`: the rest of its batch is stored.
#[test]
fn a_record_nested_too_deep_is_rejected_alone_and_the_rest_of_the_batch_stored() {
    let mut deep = event("rec_2", "run_a", "seg_a", 2);
    deep["attributes"] = json!({"payload": nested(200)});
    let records = [
        event("rec_1", "run_a", "seg_a", 1),
        deep,
        event("rec_3", "run_a", "seg_a", 3),
    ];
    let c = start(None);
    let (status, _, reply) = post(&c, &batch(&records), None);
    assert_eq!(status, 202, "{reply}");
    let rejected = ("rejected".to_owned(), "invalid_record".to_owned(), false);
    let o = outcomes(&reply);
    assert_eq!(
        o,
        [
            accepted(1)[0].clone(),
            rejected.clone(),
            accepted(1)[0].clone()
        ]
    );
    let refused = &reply["dispositions"][1];
    assert_eq!(refused["recordId"], "rec_2", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit"),
        "{refused}"
    );
    // The same batch again: the stored ones are accepted again, the deep one refused.
    let (status, _, reply) = post(&c, &batch(&records), None);
    assert_eq!(status, 202, "{reply}");
    assert_eq!(outcomes(&reply)[1], rejected);

    let mut store = Store::open(temp_db()).unwrap();
    let results = store.ingest(5, &records).unwrap();
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(results[1].as_ref().unwrap_err().code(), "invalid_record");
    assert_eq!(store.revision().unwrap(), 2, "two records stored");
}

/// A store that cannot write answers 503 with `Retry-After`: the records that were read are
/// `ingest_unavailable` (retryable), while a record refused before storing keeps its own,
/// permanent rejection (retrying it could never succeed). Once the store writes again the
/// same batch is stored.
#[test]
fn a_failing_store_is_503_retryable_except_for_records_refused_before_storing() {
    let db = temp_db();
    let c = start_on(db.clone(), None);
    let mut deep = event("rec_2", "run_a", "seg_a", 2);
    deep["attributes"] = json!({"payload": nested(200)});
    let records = [event("rec_1", "run_a", "seg_a", 1), deep];
    // Another connection holds the write lock past the store's busy timeout (5 s).
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let (status, retry, reply) = post(&c, &batch(&records), None);
    assert_eq!(status, 503, "{reply}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(
        outcomes(&reply),
        [
            ("rejected".to_owned(), "ingest_unavailable".to_owned(), true),
            ("rejected".to_owned(), "invalid_record".to_owned(), false),
        ]
    );
    let unavailable = reply["dispositions"][0]["message"].as_str().unwrap();
    assert!(unavailable.contains("store failed"), "{reply}");
    assert_eq!(reply["dispositions"][1]["recordId"], "rec_2", "{reply}");

    blocker.execute_batch("ROLLBACK").unwrap();
    let (status, _, reply) = post(&c, &batch(&records), None);
    assert_eq!(status, 202, "{reply}");
    assert_eq!(outcomes(&reply)[0], accepted(1)[0]);
    assert_eq!(
        Store::open_read_only(&db).unwrap().record_count().unwrap(),
        1
    );
}
