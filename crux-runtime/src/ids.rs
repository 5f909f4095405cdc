//! Identifiers in the Crux wire formats.
//!
//! SKELETON: types and names are fixed; the fast generator, strict parsing and tests are
//! the runtime-core work (issue 2).

use serde::{Deserialize, Serialize};

/// A 32-hex-digit trace id (W3C), never all zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceId(pub u128);

/// A 16-hex-digit span id, never all zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpanId(pub u64);

/// `run_` followed by 24 hex digits. Also the format of operation ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub [u8; 12]);

/// `seg_` followed by 24 hex digits: one physical invocation's slice of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SegmentId(pub [u8; 12]);
