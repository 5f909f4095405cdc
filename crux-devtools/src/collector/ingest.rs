//! `POST /api/observability/records`: the ingest contract (dispositions, 413, 422, 503).

use std::io::Read;

use serde_json::{Value, json};
use tiny_http::Request;

use super::reply::Reply;
use super::{MAX_BODY, Shared, lock};

/// Reads an ingest request's body and stores its records: the ingest contract.
pub(super) fn ingest(request: &mut Request, shared: &Shared) -> Reply {
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return too_large();
    }
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body);
    if read.is_err() {
        return Reply::error(400, "invalid_body", "the request body could not be read");
    }
    if body.len() > MAX_BODY {
        return too_large();
    }
    let batch: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return Reply::error(400, "invalid_json", format!("malformed JSON: {e}")),
    };
    let Some(records) = batch.get("records").and_then(Value::as_array) else {
        return Reply::error(400, "invalid_batch", "the batch needs a `records` array");
    };
    let Some(version) = batch.get("schemaVersion").and_then(Value::as_u64) else {
        return Reply::error(
            400,
            "invalid_batch",
            "the batch needs a numeric `schemaVersion`",
        );
    };
    if version != u64::from(crux_runtime::record::SCHEMA_VERSION) {
        let message = format!(
            "schemaVersion {version} is not supported; this collector accepts {}",
            crux_runtime::record::SCHEMA_VERSION
        );
        let dispositions: Vec<Value> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                disposition(
                    i,
                    r,
                    "rejected",
                    "unsupported_schema_version",
                    false,
                    Some(&message),
                )
            })
            .collect();
        return Reply::json(422, json!({ "dispositions": dispositions }));
    }
    let mut store = lock(&shared.writer);
    let results = match store.ingest(version, records) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("the collector's store failed: {e}");
            let dispositions: Vec<Value> = records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    disposition(i, r, "rejected", "ingest_unavailable", true, Some(&message))
                })
                .collect();
            let mut reply = Reply::json(503, json!({ "dispositions": dispositions }));
            reply.retry_after = true;
            return reply;
        }
    };
    if let Some(health) = batch.get("sourceHealth") {
        // Health is advisory: a failure to keep it never fails the records.
        let _ = store.source_health(health);
    }
    drop(store);
    let dispositions: Vec<Value> = records
        .iter()
        .zip(&results)
        .enumerate()
        .map(|(i, (r, result))| match result {
            Ok(()) => disposition(i, r, "accepted", "accepted", false, None),
            Err(rejection) => disposition(
                i,
                r,
                "rejected",
                rejection.code(),
                false,
                Some(&rejection.message()),
            ),
        })
        .collect();
    Reply::json(202, json!({ "dispositions": dispositions }))
}

fn too_large() -> Reply {
    Reply::error(
        413,
        "payload_too_large",
        format!("the request body is over {MAX_BODY} bytes; send fewer records per request"),
    )
}

fn disposition(
    index: usize,
    record: &Value,
    outcome: &str,
    code: &str,
    retryable: bool,
    message: Option<&str>,
) -> Value {
    let mut d = json!({
        "index": index,
        "recordId": record.get("recordId").cloned().unwrap_or(Value::Null),
        "outcome": outcome,
        "code": code,
        "retryable": retryable,
    });
    if let Some(m) = message {
        d["message"] = Value::String(m.to_owned());
    }
    d
}
