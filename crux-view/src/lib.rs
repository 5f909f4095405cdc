//! Reads Crux wire records into runs and span trees, and prints them: the library behind
//! the `crux` viewer, the examples' printout and `crux::testing`.
//!
//! It reads the records as JSON only (the v5 wire schema, unknown fields ignored), with no
//! dependency on the runtime, so it reads what any crux version or the TypeScript Crux
//! wrote. Data flow: [`record`] decodes records, [`model`] builds runs and span trees from
//! them in any arrival order, [`fold`] turns a run into a [`view::RunView`] (folding
//! infrastructure-only hops), [`search`] finds text in runs, and [`render`] prints views as
//! text. [`Trees`] does all of it for a slice of records.
//!
//! ```
//! use serde_json::json;
//!
//! let base = json!({"runId": "run_0123456789abcdef01234567", "segmentId": "seg_1"});
//! let record = |seq: u64, fields: serde_json::Value| {
//!     let mut r = base.clone();
//!     r["segmentSeq"] = json!(seq);
//!     r.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
//!     r
//! };
//! let records = [
//!     record(1, json!({"type": "run:start", "name": "support chat",
//!         "rootPrimitive": "agent.run", "startedAt": "2026-11-25T10:00:00.000Z"})),
//!     record(2, json!({"type": "span:start", "spanId": "00000000000000a1",
//!         "name": "draft reply", "primitive": "generation.call",
//!         "startedAt": "2026-11-25T10:00:00.001Z", "model": "small"})),
//!     record(3, json!({"type": "span:end", "spanId": "00000000000000a1", "status": "ok",
//!         "endedAt": "2026-11-25T10:00:00.251Z"})),
//!     record(4, json!({"type": "run:end", "status": "ok",
//!         "endedAt": "2026-11-25T10:00:00.300Z"})),
//! ];
//! assert_eq!(crux_view::Trees::from_values(&records).to_string(), "\
//! run run_0123456789abcdef01234567 \"support chat\" (agent.run)
//! status ok · duration 300ms · started 2026-11-25T10:00:00.000Z · 4 records · 1 segment
//!
//! └─ draft reply  generation.call  ok  250ms  model=small
//! ");
//! // Normalized for snapshots: ids numbered in order of appearance, no times or durations.
//! assert_eq!(crux_view::Trees::from_values(&records).normalized().to_string(), "\
//! run run#1 \"support chat\" (agent.run)
//! status ok · 4 records · 1 segment
//!
//! └─ draft reply  generation.call  ok  model=small
//! ");
//! ```

pub mod digest;
pub mod fold;
pub mod model;
pub mod record;
pub mod render;
pub mod search;
pub mod time;
mod trees;
pub mod view;

pub use fold::Folding;
pub use model::Model;
pub use trees::{Trees, decode_values};
