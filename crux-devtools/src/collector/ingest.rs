//! `POST /api/observability/records`: the ingest contract (dispositions, 413, 422, 503).

use std::io::Read;

use serde_json::Value;
use tiny_http::Request;

use super::incoming::{self, Incoming};
use super::reply::Reply;
use super::store::with_refused;
use super::{MAX_BODY, Rejection, Shared};

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
    // One pass over the body; each record stays text until it is read on its own.
    let batch = match super::batch::parse(&body) {
        Ok(b) => b,
        Err(e) if e.is_data() => {
            return Reply::error(400, "invalid_batch", "the batch must be a JSON object");
        }
        Err(e) => return Reply::error(400, "invalid_json", format!("malformed JSON: {e}")),
    };
    let Some(raw) = batch.records else {
        return Reply::error(400, "invalid_batch", "the batch needs a `records` array");
    };
    let Some(version) = batch
        .schema_version
        .and_then(|v| serde_json::from_str::<Value>(v.get()).ok())
        .and_then(|v| v.as_u64())
    else {
        return Reply::error(
            400,
            "invalid_batch",
            "the batch needs a numeric `schemaVersion`",
        );
    };
    // Read here, on the request's thread: the writer is one thread for all.
    let mut records = Vec::with_capacity(raw.len());
    let mut refused = Vec::new();
    let mut ids = Ids::default();
    for (i, r) in raw.iter().enumerate() {
        match Incoming::parse(r.get()) {
            Ok(record) => {
                ids.push(record.fields.get("recordId"));
                records.push(record);
            }
            // Well-formed (the batch parsed), but not a value serde_json reads: nested
            // deeper than 128, or a number out of range. Refused alone.
            Err(e) => {
                ids.push(incoming::record_id(r.get()).as_ref());
                refused.push((i, Rejection::unreadable(&e)));
            }
        }
    }
    if version != u64::from(crux_runtime::record::SCHEMA_VERSION) {
        let message = format!(
            "schemaVersion {version} is not supported; this collector accepts {}",
            crux_runtime::record::SCHEMA_VERSION
        );
        return ids.reply(422, |_| {
            (
                "rejected",
                "unsupported_schema_version",
                false,
                Some(&message),
            )
        });
    }
    let health = batch
        .source_health
        .and_then(|h| serde_json::from_str::<Value>(h.get()).ok());
    let read = records.len();
    match shared.writer.ingest(version, records, health) {
        Ok(stored) => dispositions(&ids, with_refused(stored, refused), None),
        // The records that were read may be stored on a retry; the ones refused before
        // storing never will, so they keep their own, permanent disposition.
        Err(e) => dispositions(
            &ids,
            with_refused(vec![Ok(()); read], refused),
            Some(format!("the collector's store failed: {e}")),
        ),
    }
}

/// The reply to a batch whose records have `results` (in batch order): 202 with each
/// record's disposition; or, when the store failed (`unavailable`: why), 503 with every
/// record that was read `ingest_unavailable` (retryable, `Retry-After`), and the records
/// refused before storing rejected as they were.
fn dispositions(
    ids: &Ids,
    results: Vec<Result<(), Rejection>>,
    unavailable: Option<String>,
) -> Reply {
    let messages: Vec<Option<String>> = results
        .iter()
        .map(|r| r.as_ref().err().map(Rejection::message))
        .collect();
    let status = if unavailable.is_some() { 503 } else { 202 };
    let mut reply = ids.reply(status, |i| match (&results[i], &unavailable) {
        (Ok(()), None) => ("accepted", "accepted", false, None),
        (Ok(()), Some(why)) => ("rejected", "ingest_unavailable", true, Some(why)),
        (Err(rejection), _) => ("rejected", rejection.code(), false, messages[i].as_ref()),
    });
    reply.retry_after = unavailable.is_some();
    reply
}

/// The `recordId`s of a batch's records as JSON (whatever each record holds there, `null`
/// when none), for the dispositions: one buffer, written into the reply as they are.
#[derive(Default)]
struct Ids {
    json: String,
    ends: Vec<usize>,
}

impl Ids {
    fn push(&mut self, id: Option<&Value>) {
        use std::fmt::Write;
        let _ = match id {
            Some(id) => write!(self.json, "{id}"),
            None => write!(self.json, "null"),
        };
        self.ends.push(self.json.len());
    }

    /// `{"dispositions": [...]}`, one per record in order, `each` giving the outcome,
    /// code, whether it is retryable, and a message, of the record at an index. Written
    /// as text: the dispositions are as many as the records.
    fn reply<'m>(
        &self,
        status: u16,
        each: impl Fn(usize) -> (&'static str, &'static str, bool, Option<&'m String>),
    ) -> Reply {
        use std::fmt::Write;
        let mut out = String::with_capacity(32 + self.ends.len() * 110 + self.json.len());
        out.push_str(r#"{"dispositions":["#);
        let mut start = 0;
        for (i, &end) in self.ends.iter().enumerate() {
            let (outcome, code, retryable, message) = each(i);
            if i > 0 {
                out.push(',');
            }
            let id = &self.json[start..end];
            start = end;
            let _ = write!(
                out,
                r#"{{"index":{i},"recordId":{id},"outcome":"{outcome}","code":"{code}","retryable":{retryable}"#
            );
            if let Some(m) = message {
                out.push_str(r#","message":"#);
                out.push_str(&Value::from(m.as_str()).to_string());
            }
            out.push('}');
        }
        out.push_str("]}");
        Reply::json_text(status, out)
    }
}

fn too_large() -> Reply {
    Reply::error(
        413,
        "payload_too_large",
        format!("the request body is over {MAX_BODY} bytes; send fewer records per request"),
    )
}
