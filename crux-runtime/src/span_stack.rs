//! [`SpanStack`]: a span stack as the wire and records carry it, shared rather than copied.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::ids::SpanId;

/// Span ids, outermost first (an envelope's `spanStack`, a boundary's `parentSpanStack`,
/// a boundary event's attribute), in one shared allocation: a clone costs a reference
/// count, so a hop's context, its boundary and its `requested` event hold one stack, not
/// three copies. Reads as a slice (`Deref<Target = [SpanId]>`); serialized as a JSON array
/// of the ids' hex strings, exactly as a `Vec<SpanId>` is.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SpanStack(Arc<[SpanId]>);

impl SpanStack {
    /// The empty stack.
    pub fn new() -> SpanStack {
        SpanStack::from(&[][..])
    }
}

impl Default for SpanStack {
    fn default() -> Self {
        SpanStack::new()
    }
}

impl Deref for SpanStack {
    type Target = [SpanId];

    fn deref(&self) -> &[SpanId] {
        &self.0
    }
}

impl AsRef<[SpanId]> for SpanStack {
    fn as_ref(&self) -> &[SpanId] {
        &self.0
    }
}

/// As the slice it holds: `[00f067aa0ba902b7, ...]`, as a `Vec<SpanId>` prints.
impl fmt::Debug for SpanStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// One allocation of the ids' exact number (the ids are copied once).
impl From<&[SpanId]> for SpanStack {
    fn from(ids: &[SpanId]) -> Self {
        SpanStack(Arc::from(ids))
    }
}

impl From<Vec<SpanId>> for SpanStack {
    fn from(ids: Vec<SpanId>) -> Self {
        SpanStack(Arc::from(ids))
    }
}

impl<const N: usize> From<[SpanId; N]> for SpanStack {
    fn from(ids: [SpanId; N]) -> Self {
        SpanStack::from(&ids[..])
    }
}

impl FromIterator<SpanId> for SpanStack {
    fn from_iter<I: IntoIterator<Item = SpanId>>(ids: I) -> Self {
        SpanStack(ids.into_iter().collect())
    }
}

impl PartialEq<[SpanId]> for SpanStack {
    fn eq(&self, other: &[SpanId]) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<Vec<SpanId>> for SpanStack {
    fn eq(&self, other: &Vec<SpanId>) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<SpanStack> for Vec<SpanId> {
    fn eq(&self, other: &SpanStack) -> bool {
        **self == *other.0
    }
}

impl<const N: usize> PartialEq<[SpanId; N]> for SpanStack {
    fn eq(&self, other: &[SpanId; N]) -> bool {
        *self.0 == other[..]
    }
}

impl PartialEq<&[SpanId]> for SpanStack {
    fn eq(&self, other: &&[SpanId]) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<SpanStack> for [SpanId] {
    fn eq(&self, other: &SpanStack) -> bool {
        *self == *other.0
    }
}

/// `for id in &stack`, as over the `Vec<SpanId>` a stack used to be.
impl<'a> IntoIterator for &'a SpanStack {
    type Item = &'a SpanId;
    type IntoIter = std::slice::Iter<'a, SpanId>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for SpanStack {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_serializes_reads_and_compares_as_its_ids() {
        let ids = vec![SpanId(0x00f0_67aa_0ba9_02b7), SpanId(1)];
        let stack = SpanStack::from(ids.clone());
        assert_eq!(
            serde_json::to_string(&stack).unwrap(),
            serde_json::to_string(&ids).unwrap()
        );
        assert_eq!(format!("{stack:?}"), format!("{ids:?}"));
        assert_eq!(stack, ids);
        assert_eq!(stack.last(), ids.last());
        let shared = stack.clone();
        assert!(
            std::ptr::eq(shared.as_ptr(), stack.as_ptr()),
            "a clone shares the ids"
        );
        assert_eq!(SpanStack::new().len(), 0);
        assert_eq!(serde_json::to_string(&SpanStack::default()).unwrap(), "[]");
    }
}
