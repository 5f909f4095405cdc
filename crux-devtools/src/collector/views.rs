//! Stored records → `crux-view`'s model: a run with the runs its links name (what `crux
//! show --db` and `GET /api/runs/{runId}/view` show), and text search over runs. The
//! records go through the same decoder, model and folding as a JSON Lines store's.

use std::collections::{BTreeSet, HashSet};

use crux_view::fold::{self, Folding};
use crux_view::model::{self, Model};
use crux_view::record::{Record, decode_line, decode_value};
use crux_view::search;
use crux_view::view::{Hit, RunView};
use serde_json::Value;

use super::store::{RunFilter, Store, StoreError};

/// Decodes stored record texts into `out`, skipping unreadable ones and repeated
/// `recordId`s (`seen` spans several calls).
pub fn decode(texts: &[String], out: &mut Vec<Record>, seen: &mut HashSet<String>) {
    for (i, text) in texts.iter().enumerate() {
        // A record is stored as the text it arrived as. The ingest read it as a `Value`
        // (a repeated key: the last one wins), the typed decoder refuses repeated keys:
        // read such a text as ingest did, so an accepted record is never hidden.
        let record = decode_line(i + 1, text).ok().flatten().or_else(|| {
            let value = serde_json::from_str::<Value>(text).ok()?;
            decode_value(i + 1, &value).ok()
        });
        if let Some(record) = record {
            if let Some(id) = &record.record_id
                && !seen.insert(id.clone())
            {
                continue;
            }
            out.push(record);
        }
    }
}

/// A model holding `run_id`'s records and, whole, every run at the other end of its links
/// (its `run:start`'s parent, edges from or to it in any run, the runs holding the spans
/// those edges name), so that a link shows the other end as it does from a JSON Lines
/// store.
pub fn run_model(store: &Store, run_id: &str) -> Result<Model, StoreError> {
    let own = store.run_records(run_id)?;
    let mut own_ids = HashSet::new();
    own_ids.insert(run_id.to_owned());
    let mut named = BTreeSet::new();
    for text in &own {
        let (ids, links, span) = ids_in(text);
        if links {
            named.extend(ids);
        }
        own_ids.extend(span);
    }
    for text in store.linking_records()? {
        let (ids, links, _) = ids_in(&text);
        if links && ids.iter().any(|i| own_ids.contains(i)) {
            named.extend(ids);
        }
    }
    let mut related = BTreeSet::new();
    for id in named.into_iter().filter(|i| !own_ids.contains(i)) {
        if id.starts_with("run_") {
            related.insert(id);
        } else if id.len() == 16 {
            related.extend(store.runs_of_span(&id)?);
        }
    }
    related.remove(run_id);
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    decode(&own, &mut records, &mut seen);
    for other in &related {
        decode(&store.run_records(other)?, &mut records, &mut seen);
    }
    Ok(model::build(records))
}

/// The view of one run (`crux show RUN --json`), or `None` when it has no records.
pub fn run_view(
    store: &Store,
    run_id: &str,
    folding: Folding,
) -> Result<Option<RunView>, StoreError> {
    let model = run_model(store, run_id)?;
    Ok(model
        .runs
        .iter()
        .find(|r| r.run_id == run_id)
        .map(|run| fold::view(run, folding)))
}

/// What [`search()`] found: the hits, newest run first, and whether it stopped early.
#[derive(Debug)]
pub struct Found {
    /// The matches (`crux search --json`'s shape).
    pub hits: Vec<Hit>,
    /// Runs with at least one hit, newest first.
    pub runs: Vec<String>,
    /// More runs may match than were searched: the search stopped at its run limit, or
    /// (for a text the full-text index cannot look up) read only the newest runs.
    pub truncated: bool,
}

/// Matches of `text` (ignoring case) in run and span names, primitives, attribute values,
/// event names and errors, as `crux search` finds them, among the runs `filter` keeps (its
/// `limit` aside), in at most `max_runs` runs with a match, newest first. Only the runs
/// whose stored records may hold the text are built ([`Store::search_candidates`]).
pub fn search(
    store: &Store,
    text: &str,
    filter: &RunFilter,
    max_runs: usize,
) -> Result<Found, StoreError> {
    let candidates = store.search_candidates(filter, text)?;
    let mut found = Found {
        hits: Vec::new(),
        runs: Vec::new(),
        truncated: candidates.cut,
    };
    for run_id in candidates.runs {
        if found.runs.len() == max_runs {
            found.truncated = true;
            break;
        }
        let mut records = Vec::new();
        decode(
            &store.run_records(&run_id)?,
            &mut records,
            &mut HashSet::new(),
        );
        for run in model::build(records).runs {
            let hits = search::search_run(&run, text);
            if !hits.is_empty() {
                found.runs.push(run.run_id.clone());
                found.hits.extend(hits);
            }
        }
    }
    Ok(found)
}

/// The run ids (`run_` + 24 hex) and span ids (16 hex) a record's strings hold, and
/// whether it links runs (an `edge`, or a `run:start` naming a parent), and the span it
/// opens (`span:start`, `span`).
fn ids_in(text: &str) -> (Vec<String>, bool, Option<String>) {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => {
                let hex = |t: &str| t.bytes().all(|b| b.is_ascii_hexdigit());
                let run = s.len() == 28 && s.starts_with("run_") && hex(&s[4..]);
                if run || (s.len() == 16 && hex(s)) {
                    out.push(s.clone());
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            Value::Object(o) => o.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return (Vec::new(), false, None);
    };
    let kind = v.get("type").and_then(Value::as_str);
    let links = match kind {
        Some("edge") => true,
        Some("run:start") => v.get("parentRunId").is_some() || v.get("triggeredBySpanId").is_some(),
        _ => false,
    };
    let span = match kind {
        Some("span:start" | "span") => v.get("spanId").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    let mut out = Vec::new();
    walk(&v, &mut out);
    (out, links, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_text_with_a_repeated_key_is_shown_as_ingest_read_it() {
        let line = |repeat: &str| {
            format!(
                r#"{{"schemaVersion":5,"recordId":"rec_1","runId":"run_000000000000000000000001",{repeat}"segmentId":"seg_1","segmentSeq":1,"type":"run:start","name":"chat","rootPrimitive":"agent.run","startedAt":"2026-11-30T00:00:00.000Z"}}"#
            )
        };
        let plain = line("");
        let repeated = line(r#""runId":"run_000000000000000000000001","#);
        let mut out = Vec::new();
        decode(&[plain], &mut out, &mut HashSet::new());
        assert_eq!(out.len(), 1, "the fixture is a record the viewer reads");
        assert!(
            decode_line(1, &repeated).is_err(),
            "the typed decoder refuses it"
        );
        let mut out = Vec::new();
        decode(&[repeated], &mut out, &mut HashSet::new());
        assert_eq!(out.len(), 1, "a repeated key must not hide the record");
    }
}
