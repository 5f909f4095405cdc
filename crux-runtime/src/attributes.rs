//! Attribute values attached to runs, spans, events and edges.
//!
//! ```
//! use crux_runtime::attributes::Attributes;
//! let attrs = Attributes::new().with("agentId", "support-chat").with("attempt", 2);
//! assert_eq!(serde_json::to_string(&attrs).unwrap(), r#"{"agentId":"support-chat","attempt":2}"#);
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::clock::Timestamp;
use crate::ids::{SpanId, SpanStack};

/// One attribute value. Strings borrowed from `'static` data cost nothing to capture.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(Cow<'static, str>),
    /// An integer.
    Int(i64),
    /// A float; non-finite values serialize as `null` (JSON has no NaN).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Any JSON value (objects such as `presentation: {display: "detail"}`).
    Json(serde_json::Value),
    /// A span id, written as its 16 hex digits (a JSON string): kept as the id, so
    /// recording it copies 8 bytes instead of building a string.
    SpanId(SpanId),
    /// Span ids (a span stack), written as a JSON array of their hex strings: shared, so
    /// recording a boundary's stack costs a reference count.
    SpanIds(SpanStack),
    /// A JSON value built once and shared by every record that carries it (a constant
    /// such as a boundary span's `presentation`): recording it costs a reference count.
    SharedJson(Arc<serde_json::Value>),
    /// A time, written as its ISO-8601 text (a JSON string, `2026-01-02T03:04:05.678Z`):
    /// kept as the time, so recording it (a boundary's lease) builds no string.
    Timestamp(Timestamp),
}

impl Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Str(v) => s.serialize_str(v),
            AttrValue::Int(v) => s.serialize_i64(*v),
            AttrValue::Float(v) if v.is_finite() => s.serialize_f64(*v),
            AttrValue::Float(_) => s.serialize_unit(),
            AttrValue::Bool(v) => s.serialize_bool(*v),
            AttrValue::Json(v) => v.serialize(s),
            AttrValue::SpanId(id) => id.serialize(s),
            AttrValue::SpanIds(ids) => ids.serialize(s),
            AttrValue::SharedJson(v) => v.serialize(s),
            AttrValue::Timestamp(t) => t.serialize(s),
        }
    }
}

impl From<&'static str> for AttrValue {
    fn from(v: &'static str) -> Self {
        AttrValue::Str(Cow::Borrowed(v))
    }
}
impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        AttrValue::Str(Cow::Owned(v))
    }
}
impl From<Cow<'static, str>> for AttrValue {
    fn from(v: Cow<'static, str>) -> Self {
        AttrValue::Str(v)
    }
}
macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for AttrValue {
            fn from(v: $t) -> Self { AttrValue::Int(i64::from(v)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);
impl From<u64> for AttrValue {
    fn from(v: u64) -> Self {
        i64::try_from(v).map_or(AttrValue::Float(v as f64), AttrValue::Int)
    }
}
impl From<usize> for AttrValue {
    fn from(v: usize) -> Self {
        AttrValue::from(v as u64)
    }
}
impl From<f64> for AttrValue {
    fn from(v: f64) -> Self {
        AttrValue::Float(v)
    }
}
impl From<f32> for AttrValue {
    fn from(v: f32) -> Self {
        AttrValue::Float(f64::from(v))
    }
}
impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        AttrValue::Bool(v)
    }
}
impl From<SpanId> for AttrValue {
    fn from(v: SpanId) -> Self {
        AttrValue::SpanId(v)
    }
}
impl From<Vec<SpanId>> for AttrValue {
    fn from(v: Vec<SpanId>) -> Self {
        AttrValue::SpanIds(v.into())
    }
}
impl From<SpanStack> for AttrValue {
    fn from(v: SpanStack) -> Self {
        AttrValue::SpanIds(v)
    }
}
impl From<Timestamp> for AttrValue {
    fn from(v: Timestamp) -> Self {
        AttrValue::Timestamp(v)
    }
}
impl From<Arc<serde_json::Value>> for AttrValue {
    fn from(v: Arc<serde_json::Value>) -> Self {
        AttrValue::SharedJson(v)
    }
}
impl From<serde_json::Value> for AttrValue {
    fn from(v: serde_json::Value) -> Self {
        AttrValue::Json(v)
    }
}
/// A literal attribute value given in `attributes(key = value)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrLiteral {
    /// A string literal.
    Str(&'static str),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A bool literal.
    Bool(bool),
}

impl From<AttrLiteral> for AttrValue {
    fn from(v: AttrLiteral) -> Self {
        match v {
            AttrLiteral::Str(s) => AttrValue::Str(Cow::Borrowed(s)),
            AttrLiteral::Int(i) => AttrValue::Int(i),
            AttrLiteral::Float(f) => AttrValue::Float(f),
            AttrLiteral::Bool(b) => AttrValue::Bool(b),
        }
    }
}

/// One entry of an [`Attributes`] list.
type Entry = (Cow<'static, str>, AttrValue);

/// An ordered list of attributes; a later value for the same key replaces the earlier one.
///
/// Serializes as a JSON object. An empty list allocates nothing. A list can be
/// [frozen](Attributes::freeze) so that its clones share its entries (one reference count
/// instead of a copy of every value): a boundary's attributes are built once and carried by
/// both of the callee's acknowledgements.
#[derive(Default)]
pub struct Attributes {
    /// Entries shared with the clones of a frozen list; they come first.
    shared: Option<Arc<Vec<Entry>>>,
    /// Entries of this list alone; no key is also in `shared`. Borrowed: constant entries
    /// after a frozen list's ([`with_constant_tail`](Attributes::with_constant_tail)),
    /// copied into a list of their own only if it changes.
    own: Cow<'static, [Entry]>,
}

impl Attributes {
    /// No attributes.
    pub const fn new() -> Self {
        Self {
            shared: None,
            own: Cow::Borrowed(&[]),
        }
    }

    /// No attributes, with room for `n` without reallocating.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            shared: None,
            own: Cow::Owned(Vec::with_capacity(n)),
        }
    }

    /// A list starting with `base`'s entries, with room for `n` more of its own without
    /// reallocating: `base`'s frozen entries are shared (one reference count), so only the
    /// `n` new ones are allocated. For integrations that put the same few entries on many
    /// records (a `tracing` span's `level` and `target`) and then their own (its fields).
    /// Reads, compares and serializes as `base.clone()` with the new entries `set` on it:
    /// a later key still replaces an earlier one in place.
    ///
    /// ```
    /// use crux_runtime::attributes::Attributes;
    /// let base = Attributes::new().with("level", "INFO").with("target", "db").freeze();
    /// let span = Attributes::shared_with_capacity(&base, 1).with("rows", 3);
    /// assert_eq!(span, Attributes::new().with("level", "INFO").with("target", "db").with("rows", 3));
    /// ```
    pub fn shared_with_capacity(base: &Attributes, n: usize) -> Self {
        let mut own = Vec::with_capacity(base.own.len() + n);
        // Tested first: a frozen base (the usual one) has none, and the generic extend
        // costs a `tracing` span about 30 instructions for nothing.
        if !base.own.is_empty() {
            own.extend_from_slice(&base.own);
        }
        Self {
            shared: base.shared.clone(),
            own: Cow::Owned(own),
        }
    }

    /// Adds (or replaces) `key`, builder style.
    pub fn with(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<AttrValue>) -> Self {
        self.set(key, value);
        self
    }

    /// Adds (or replaces) `key`.
    pub fn set(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<AttrValue>) {
        let key = key.into();
        let value = value.into();
        if let Some(at) = self.own.iter().position(|(k, _)| *k == key) {
            self.own_mut()[at].1 = value;
            return;
        }
        if self
            .shared
            .as_ref()
            .is_some_and(|s| s.iter().any(|(k, _)| *k == key))
        {
            // Replaced in place: this list stops sharing (its own copy, same order).
            self.unshare();
            if let Some(slot) = self.own_mut().iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            }
            return;
        }
        self.own_mut().push((key, value));
    }

    /// Adds `key`, known not to be in the list yet (no search), for the boundary's lists
    /// of fixed, distinct keys on the hop's hot path. A repeated key would be written
    /// twice, which [`set`](Attributes::set) never does: so this stays inside the crate,
    /// where every caller pushes literal keys into a list it built (or froze) itself and
    /// the tests exercise each one under this debug check. Other crates use `set`.
    // Always inlined: a boundary's list is seven of these in a row, a call each when not.
    #[inline(always)]
    pub(crate) fn push_new(&mut self, key: &'static str, value: impl Into<AttrValue>) {
        debug_assert!(self.get(key).is_none(), "{key} set twice");
        self.own_mut().push((Cow::Borrowed(key), value.into()));
    }

    /// The list's own entries, to change: a borrowed constant tail copied first.
    // Inlined, the copy out of line: `Cow::to_mut` as a call cost a `tracing` span's every
    // field about 19 instructions.
    #[inline]
    fn own_mut(&mut self) -> &mut Vec<Entry> {
        if let Cow::Borrowed(tail) = self.own {
            // An empty list (a new one, a frozen one's clone) allocates on its first push,
            // as a `Vec` does.
            self.own = Cow::Owned(if tail.is_empty() {
                Vec::new()
            } else {
                copy_entries(tail)
            });
        }
        match &mut self.own {
            Cow::Owned(own) => own,
            Cow::Borrowed(_) => unreachable!("made owned above"),
        }
    }

    /// This frozen list with `tail` after its entries, borrowed: a constant ending (a
    /// boundary's `completed` adds `status: ok` to the boundary's shared set) costs no
    /// allocation, no copy and no drop. Keys of `tail` must not be in the list, as for
    /// [`push_new`](Attributes::push_new); a list with entries of its own (not frozen)
    /// gets copies of `tail`'s entries pushed instead.
    #[inline]
    pub(crate) fn with_constant_tail(mut self, tail: &'static [Entry]) -> Self {
        debug_assert!(
            tail.iter().all(|(k, _)| self.get(k).is_none()),
            "a tail key set twice"
        );
        if self.own.is_empty() {
            self.own = Cow::Borrowed(tail);
        } else {
            self.own_mut().extend_from_slice(tail);
        }
        self
    }

    /// The list with its entries behind a shared reference: its clones (and lists made from
    /// them with [`with`](Attributes::with)) share the entries instead of copying them.
    /// Iteration, lookup, equality and serialization are unchanged.
    ///
    /// ```
    /// use crux_runtime::attributes::Attributes;
    /// let base = Attributes::new().with("boundaryId", "00f067aa0ba902b7").freeze();
    /// let done = base.clone().with("status", "ok");
    /// assert_eq!(done, Attributes::new().with("boundaryId", "00f067aa0ba902b7").with("status", "ok"));
    /// assert_eq!(serde_json::to_string(&done).unwrap(),
    ///     r#"{"boundaryId":"00f067aa0ba902b7","status":"ok"}"#);
    /// ```
    pub fn freeze(mut self) -> Self {
        if self.own.is_empty() {
            return self;
        }
        let own = self.own.into_owned();
        match self.shared.take() {
            None => Self {
                shared: Some(Arc::new(own)),
                own: Cow::Borrowed(&[]),
            },
            Some(shared) => {
                let mut all = Arc::unwrap_or_clone(shared);
                all.extend(own);
                Self {
                    shared: Some(Arc::new(all)),
                    own: Cow::Borrowed(&[]),
                }
            }
        }
    }

    /// Moves the shared entries into `own`, ahead of the list's own (copied if still shared).
    fn unshare(&mut self) {
        if let Some(shared) = self.shared.take() {
            let mut all = Arc::unwrap_or_clone(shared);
            all.extend(std::mem::take(&mut self.own).into_owned());
            self.own = Cow::Owned(all);
        }
    }

    fn shared(&self) -> &[Entry] {
        self.shared.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.entries().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Adds every entry of `other`, replacing equal keys.
    #[inline]
    pub fn extend(&mut self, other: Attributes) {
        // Keys are unique in every `Attributes`, so into an empty list `other` moves as is
        // (no allocation, no key comparisons): inlined, a span builder's attributes are
        // one move.
        if self.is_empty() {
            *self = other;
        } else {
            self.merge(other);
        }
    }

    /// [`extend`](Attributes::extend) into a list that has entries: each key set in turn.
    fn merge(&mut self, other: Attributes) {
        for (k, v) in other.shared() {
            self.set(k.clone(), v.clone());
        }
        for (k, v) in other.own.into_owned() {
            self.set(k, v);
        }
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.shared().is_empty()
    }

    /// The number of attributes.
    pub fn len(&self) -> usize {
        self.shared().len() + self.own.len()
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.shared().iter().chain(self.own.iter())
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.entries().map(|(k, v)| (k.as_ref(), v))
    }

    /// The attributes of a macro's `attributes(key = literal, ...)` list.
    pub fn from_literals(literals: &'static [(&'static str, AttrLiteral)]) -> Self {
        // Through `set`, so a hand-written list with a repeated key keeps keys unique too.
        let mut out = Self::with_capacity(literals.len());
        for (k, v) in literals {
            out.set(*k, AttrValue::from(*v));
        }
        out
    }
}

/// A borrowed tail as a list of its own, with room for one more.
#[cold]
#[inline(never)]
fn copy_entries(tail: &[Entry]) -> Vec<Entry> {
    let mut own = Vec::with_capacity(tail.len() + 1);
    own.extend_from_slice(tail);
    own
}

impl Clone for Attributes {
    /// A frozen list's clone (the usual one) is a reference count: an empty list of its
    /// own is made, not copied.
    #[inline]
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            // A borrowed tail is copied as the reference it is.
            own: if self.own.is_empty() {
                Cow::Borrowed(&[])
            } else {
                self.own.clone()
            },
        }
    }
}

/// Equal when the entries are, in order, whether or not either list shares them.
impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.entries().eq(other.entries())
    }
}

impl std::fmt::Debug for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Entries<'a>(&'a Attributes);
        impl std::fmt::Debug for Entries<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_list().entries(self.0.entries()).finish()
            }
        }
        f.debug_tuple("Attributes").field(&Entries(self)).finish()
    }
}

impl<K: Into<Cow<'static, str>>, V: Into<AttrValue>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut out = Attributes::new();
        for (k, v) in iter {
            out.set(k, v);
        }
        out
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.entries() {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_values_replace_earlier_ones_in_place() {
        let mut a = Attributes::new().with("a", 1).with("b", "x");
        a.set("a", true);
        assert_eq!(a.len(), 2);
        assert_eq!(a.get("a"), Some(&AttrValue::Bool(true)));
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"a":true,"b":"x"}"#);
    }

    #[test]
    fn non_finite_floats_become_null_and_json_nests() {
        let a = Attributes::new()
            .with("nan", f64::NAN)
            .with("presentation", serde_json::json!({"display": "detail"}));
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"nan":null,"presentation":{"display":"detail"}}"#
        );
        let shared = Arc::new(serde_json::json!({"display": "detail"}));
        let b = Attributes::new().with("presentation", Arc::clone(&shared));
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"presentation":{"display":"detail"}}"#
        );
    }

    #[test]
    fn frozen_lists_share_their_entries_and_behave_as_copies() {
        let base = Attributes::new().with("a", 1).with("b", "x").freeze();
        let mut done = base.clone().with("status", "ok");
        assert_eq!(done.len(), 3);
        assert_eq!(done.get("a"), Some(&AttrValue::Int(1)));
        assert_eq!(
            serde_json::to_string(&done).unwrap(),
            r#"{"a":1,"b":"x","status":"ok"}"#
        );
        // Replacing a shared key keeps its place and leaves the other clones alone.
        done.set("a", 2);
        done.set("status", "error");
        assert_eq!(
            serde_json::to_string(&done).unwrap(),
            r#"{"a":2,"b":"x","status":"error"}"#
        );
        assert_eq!(serde_json::to_string(&base).unwrap(), r#"{"a":1,"b":"x"}"#);
        assert_eq!(base, Attributes::new().with("a", 1).with("b", "x"));
        assert_ne!(base, done);
        // A clone of a list with shared and own entries is a copy of both.
        let mut copy = done.clone();
        copy.set("b", "y");
        copy.set("status", "cancelled");
        assert_eq!(
            serde_json::to_string(&copy).unwrap(),
            r#"{"a":2,"b":"y","status":"cancelled"}"#
        );
        assert_eq!(
            serde_json::to_string(&done).unwrap(),
            r#"{"a":2,"b":"x","status":"error"}"#
        );
        assert_eq!(serde_json::to_string(&base).unwrap(), r#"{"a":1,"b":"x"}"#);
        // Freezing a list that shares already keeps every entry once, in order.
        let twice = base.clone().with("c", true).freeze();
        assert_eq!(
            serde_json::to_string(&twice).unwrap(),
            r#"{"a":1,"b":"x","c":true}"#
        );
        let mut into = Attributes::new().with("z", 0);
        into.extend(twice.clone());
        assert_eq!(
            serde_json::to_string(&into).unwrap(),
            r#"{"z":0,"a":1,"b":"x","c":true}"#
        );
        let mut empty = Attributes::new();
        empty.extend(twice.clone());
        assert_eq!(empty, twice);
        assert_eq!(
            format!("{twice:?}"),
            r#"Attributes([("a", Int(1)), ("b", Str("x")), ("c", Bool(true))])"#
        );
        assert!(Attributes::new().freeze().is_empty());
    }

    /// A frozen list with a constant tail reads, compares, clones and serializes as the
    /// same entries set one by one; changing it copies the tail first, leaving the constant
    /// and the other lists alone.
    #[test]
    fn a_constant_tail_reads_as_entries_of_the_lists_own() {
        static TAIL: [Entry; 2] = [
            (Cow::Borrowed("status"), AttrValue::Str(Cow::Borrowed("ok"))),
            (Cow::Borrowed("n"), AttrValue::Int(2)),
        ];
        let json = |a: &Attributes| serde_json::to_string(a).unwrap();
        let base = Attributes::new().with("a", 1).with("b", "x").freeze();
        let plain = base.clone().with("status", "ok").with("n", 2);
        let tailed = base.clone().with_constant_tail(&TAIL);
        assert_eq!(tailed, plain);
        assert_eq!(json(&tailed), r#"{"a":1,"b":"x","status":"ok","n":2}"#);
        assert_eq!(tailed.len(), 4);
        assert_eq!(tailed.get("n"), Some(&AttrValue::Int(2)));
        assert_eq!(tailed.clone(), plain);
        assert_eq!(tailed.clone().freeze(), plain);
        let mut into = Attributes::new().with("z", true);
        into.extend(tailed.clone());
        assert_eq!(
            json(&into),
            r#"{"z":true,"a":1,"b":"x","status":"ok","n":2}"#
        );
        // Changes: a tail key, a shared key, a new key; the constant stays as it was.
        let mut changed = tailed.clone();
        changed.set("n", 3);
        changed.set("a", 0);
        changed.push_new("c", "y");
        assert_eq!(
            json(&changed),
            r#"{"a":0,"b":"x","status":"ok","n":3,"c":"y"}"#
        );
        assert_eq!(json(&tailed), r#"{"a":1,"b":"x","status":"ok","n":2}"#);
        assert_eq!(TAIL[1].1, AttrValue::Int(2));
        // On a list with entries of its own, the tail's entries are pushed.
        let unfrozen = Attributes::new().with("a", 1).with_constant_tail(&TAIL);
        assert_eq!(json(&unfrozen), r#"{"a":1,"status":"ok","n":2}"#);
    }

    #[test]
    fn a_list_on_a_shared_base_reads_and_serializes_as_a_fresh_one() {
        let base = Attributes::new()
            .with("level", "INFO")
            .with("target", "db")
            .freeze();
        let fresh = |rows: i64| {
            Attributes::new()
                .with("level", "INFO")
                .with("target", "db")
                .with("rows", rows)
        };
        let mut on_base = Attributes::shared_with_capacity(&base, 1);
        assert_eq!(on_base, base);
        on_base.set("rows", 3);
        assert_eq!(on_base, fresh(3));
        assert_eq!(on_base.len(), 3);
        assert_eq!(on_base.get("target"), Some(&AttrValue::from("db")));
        assert_eq!(
            serde_json::to_string(&on_base).unwrap(),
            serde_json::to_string(&fresh(3)).unwrap()
        );
        // A later key wins, in its place, shared or own; the base is left alone.
        on_base.set("rows", 4);
        on_base.set("level", "WARN");
        assert_eq!(
            serde_json::to_string(&on_base).unwrap(),
            r#"{"level":"WARN","target":"db","rows":4}"#
        );
        assert_eq!(
            serde_json::to_string(&base).unwrap(),
            r#"{"level":"INFO","target":"db"}"#
        );
        // A base with entries of its own (not frozen) gives them too, in order.
        let unfrozen = base.clone().with("own", true);
        let more = Attributes::shared_with_capacity(&unfrozen, 2).with("rows", 1);
        assert_eq!(
            serde_json::to_string(&more).unwrap(),
            r#"{"level":"INFO","target":"db","own":true,"rows":1}"#
        );
        assert_eq!(
            serde_json::to_string(&unfrozen).unwrap(),
            r#"{"level":"INFO","target":"db","own":true}"#
        );
        assert!(Attributes::shared_with_capacity(&Attributes::new(), 4).is_empty());
    }

    #[test]
    fn span_ids_serialize_as_their_hex_text() {
        let a = Attributes::new()
            .with("boundaryId", SpanId(0x00f0_67aa_0ba9_02b7))
            .with("stack", vec![SpanId(0xb7ad_6b71_6920_3331), SpanId(1)]);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"boundaryId":"00f067aa0ba902b7","stack":["b7ad6b7169203331","0000000000000001"]}"#
        );
    }

    #[test]
    fn a_time_serializes_as_its_iso_text() {
        let lease: crate::clock::Timestamp = "2026-01-02T03:15:05.678Z".parse().unwrap();
        let a = Attributes::new().with("leaseExpiresAt", lease);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"leaseExpiresAt":"2026-01-02T03:15:05.678Z"}"#
        );
    }

    #[test]
    fn literals_from_macros_convert() {
        static LITS: [(&str, AttrLiteral); 2] = [
            ("agentId", AttrLiteral::Str("support")),
            ("tries", AttrLiteral::Int(3)),
        ];
        let a = Attributes::from_literals(&LITS);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"agentId":"support","tries":3}"#
        );
    }

    #[test]
    fn extend_keeps_keys_unique_whether_or_not_the_list_was_empty() {
        let mut empty = Attributes::new();
        empty.extend(Attributes::new().with("a", 1).with("b", 2));
        let mut full = Attributes::new().with("b", 0).with("c", 3);
        full.extend(Attributes::new().with("a", 1).with("b", 2));
        assert_eq!(serde_json::to_string(&empty).unwrap(), r#"{"a":1,"b":2}"#);
        assert_eq!(
            serde_json::to_string(&full).unwrap(),
            r#"{"b":2,"c":3,"a":1}"#
        );
        // A hand-written literal list with a repeated key: the later value wins, once.
        static TWICE: [(&str, AttrLiteral); 2] =
            [("k", AttrLiteral::Int(1)), ("k", AttrLiteral::Int(2))];
        let mut into_empty = Attributes::new();
        into_empty.extend(Attributes::from_literals(&TWICE));
        assert_eq!(serde_json::to_string(&into_empty).unwrap(), r#"{"k":2}"#);
    }
}
