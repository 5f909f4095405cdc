//! `POST /api/observability/records`: the ingest contract (dispositions, 413, 422, 503).

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::value::RawValue;
use serde_json::{Value, json};
use tiny_http::Request;

use super::incoming::Incoming;
use super::reply::Reply;
use super::{MAX_BODY, Shared};

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
    // The records stay JSON text until each is parsed on its own: stored as received,
    // never serialized again.
    let batch: BTreeMap<String, &RawValue> = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) if e.is_data() => {
            return Reply::error(400, "invalid_batch", "the batch must be a JSON object");
        }
        Err(e) => return Reply::error(400, "invalid_json", format!("malformed JSON: {e}")),
    };
    let Some(Ok(raw)) = batch
        .get("records")
        .map(|r| serde_json::from_str::<Vec<&RawValue>>(r.get()))
    else {
        return Reply::error(400, "invalid_batch", "the batch needs a `records` array");
    };
    let Some(version) = batch
        .get("schemaVersion")
        .and_then(|v| serde_json::from_str::<Value>(v.get()).ok())
        .and_then(|v| v.as_u64())
    else {
        return Reply::error(
            400,
            "invalid_batch",
            "the batch needs a numeric `schemaVersion`",
        );
    };
    let mut records = Vec::with_capacity(raw.len());
    for r in &raw {
        match serde_json::from_str::<Value>(r.get()) {
            Ok(v) => records.push(v),
            // Well-formed, but not representable (a number out of range).
            Err(e) => return Reply::error(400, "invalid_json", format!("malformed JSON: {e}")),
        }
    }
    // The records move to the writer; the dispositions need only their ids.
    let ids: Vec<Value> = records
        .iter()
        .map(|r| r.get("recordId").cloned().unwrap_or(Value::Null))
        .collect();
    let all = |outcome: &str, code: &str, retryable: bool, message: &str| -> Vec<Value> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| disposition(i, id, outcome, code, retryable, Some(message)))
            .collect()
    };
    if version != u64::from(crux_runtime::record::SCHEMA_VERSION) {
        let message = format!(
            "schemaVersion {version} is not supported; this collector accepts {}",
            crux_runtime::record::SCHEMA_VERSION
        );
        let dispositions = all("rejected", "unsupported_schema_version", false, &message);
        return Reply::json(422, json!({ "dispositions": dispositions }));
    }
    let health = batch
        .get("sourceHealth")
        .and_then(|h| serde_json::from_str::<Value>(h.get()).ok());
    // Prepared here, on the request's thread: the writer is one thread for all.
    let records = records
        .into_iter()
        .zip(&raw)
        .map(|(value, text)| Incoming::with_text(value, text.get().to_owned()))
        .collect();
    let results = match shared.writer.ingest(version, records, health) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("the collector's store failed: {e}");
            let dispositions = all("rejected", "ingest_unavailable", true, &message);
            let mut reply = Reply::json(503, json!({ "dispositions": dispositions }));
            reply.retry_after = true;
            return reply;
        }
    };
    let dispositions: Vec<Value> = ids
        .iter()
        .zip(&results)
        .enumerate()
        .map(|(i, (id, result))| match result {
            Ok(()) => disposition(i, id, "accepted", "accepted", false, None),
            Err(rejection) => disposition(
                i,
                id,
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
    record_id: &Value,
    outcome: &str,
    code: &str,
    retryable: bool,
    message: Option<&str>,
) -> Value {
    let mut d = json!({
        "index": index,
        "recordId": record_id,
        "outcome": outcome,
        "code": code,
        "retryable": retryable,
    });
    if let Some(m) = message {
        d["message"] = Value::String(m.to_owned());
    }
    d
}
