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
/// of the ids' hex strings, exactly as a `Vec<SpanId>` is. The empty stack (a call from
/// outside any span) allocates nothing, as an empty `Vec` does.
#[derive(Clone, PartialEq, Eq)]
pub struct SpanStack(
    /// `None` when empty, never `Some` of an empty slice, so the derived equality is
    /// the ids'.
    Option<Arc<[SpanId]>>,
);

/// As the slice of ids hashes.
impl std::hash::Hash for SpanStack {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.ids().hash(state);
    }
}

impl SpanStack {
    /// The empty stack.
    pub const fn new() -> SpanStack {
        SpanStack(None)
    }

    fn ids(&self) -> &[SpanId] {
        self.0.as_deref().unwrap_or_default()
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
        self.ids()
    }
}

impl AsRef<[SpanId]> for SpanStack {
    fn as_ref(&self) -> &[SpanId] {
        self.ids()
    }
}

/// As the slice it holds: `[00f067aa0ba902b7, ...]`, as a `Vec<SpanId>` prints.
impl fmt::Debug for SpanStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.ids(), f)
    }
}

/// One allocation of the ids' exact number (the ids are copied once); none when empty.
impl From<&[SpanId]> for SpanStack {
    fn from(ids: &[SpanId]) -> Self {
        SpanStack((!ids.is_empty()).then(|| Arc::from(ids)))
    }
}

impl From<Vec<SpanId>> for SpanStack {
    fn from(ids: Vec<SpanId>) -> Self {
        SpanStack((!ids.is_empty()).then(|| Arc::from(ids)))
    }
}

impl<const N: usize> From<[SpanId; N]> for SpanStack {
    fn from(ids: [SpanId; N]) -> Self {
        SpanStack::from(&ids[..])
    }
}

impl FromIterator<SpanId> for SpanStack {
    fn from_iter<I: IntoIterator<Item = SpanId>>(ids: I) -> Self {
        let mut ids = ids.into_iter().peekable();
        SpanStack(ids.peek().is_some().then(|| ids.collect()))
    }
}

impl PartialEq<[SpanId]> for SpanStack {
    fn eq(&self, other: &[SpanId]) -> bool {
        self.ids() == other
    }
}

impl PartialEq<Vec<SpanId>> for SpanStack {
    fn eq(&self, other: &Vec<SpanId>) -> bool {
        self.ids() == &other[..]
    }
}

impl PartialEq<SpanStack> for Vec<SpanId> {
    fn eq(&self, other: &SpanStack) -> bool {
        self[..] == *other.ids()
    }
}

impl<const N: usize> PartialEq<[SpanId; N]> for SpanStack {
    fn eq(&self, other: &[SpanId; N]) -> bool {
        self.ids() == &other[..]
    }
}

impl PartialEq<&[SpanId]> for SpanStack {
    fn eq(&self, other: &&[SpanId]) -> bool {
        self.ids() == *other
    }
}

impl PartialEq<SpanStack> for [SpanId] {
    fn eq(&self, other: &SpanStack) -> bool {
        self == other.ids()
    }
}

/// `for id in &stack`, as over the `Vec<SpanId>` a stack used to be.
impl<'a> IntoIterator for &'a SpanStack {
    type Item = &'a SpanId;
    type IntoIter = std::slice::Iter<'a, SpanId>;

    fn into_iter(self) -> Self::IntoIter {
        self.ids().iter()
    }
}

impl Serialize for SpanStack {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.ids().serialize(s)
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

    #[test]
    fn every_empty_stack_is_the_unallocated_one() {
        let empty: [SpanStack; 4] = [
            SpanStack::new(),
            SpanStack::from(Vec::new()),
            SpanStack::from(&[][..]),
            std::iter::empty().collect(),
        ];
        for stack in &empty {
            assert!(stack.0.is_none(), "{stack:?} holds an allocation");
            assert_eq!(*stack, SpanStack::new());
            assert_eq!(stack, &Vec::<SpanId>::new());
        }
        let one: SpanStack = std::iter::once(SpanId(7)).collect();
        assert_eq!(one, [SpanId(7)]);
        assert_ne!(one, SpanStack::new());
    }
}
