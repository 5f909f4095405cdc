//! Attribute values attached to runs, spans, events and edges.
//!
//! ```
//! use crux_runtime::attributes::Attributes;
//! let attrs = Attributes::new().with("agentId", "support-chat").with("attempt", 2);
//! assert_eq!(serde_json::to_string(&attrs).unwrap(), r#"{"agentId":"support-chat","attempt":2}"#);
//! ```

use std::borrow::Cow;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

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

/// An ordered list of attributes; a later value for the same key replaces the earlier one.
///
/// Serializes as a JSON object. An empty list allocates nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes(Vec<(Cow<'static, str>, AttrValue)>);

impl Attributes {
    /// No attributes.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// No attributes, with room for `n` without reallocating.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
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
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Adds every entry of `other`, replacing equal keys.
    pub fn extend(&mut self, other: Attributes) {
        // Keys are unique in every `Attributes`, so into an empty list `other` moves as is
        // (no allocation, no key comparisons).
        if self.0.is_empty() {
            *self = other;
            return;
        }
        for (k, v) in other.0 {
            self.set(k, v);
        }
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
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
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
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
