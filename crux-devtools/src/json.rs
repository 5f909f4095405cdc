//! One-pass JSON reading shared by the sink (a collector's reply) and the collector (a
//! record): [`Checked`] reads any value as a `serde_json::Value` parse would check it,
//! without building it, so a reader that keeps only some members refuses exactly what a
//! `Value` parse refuses.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Any JSON value, checked as a `Value` parse checks it (numbers in range, strings well
/// formed, nesting depth: through `deserialize_any`, unlike [`IgnoredAny`], which skips
/// numbers without reading them) and dropped.
pub(crate) struct Checked;

impl<'de> de::Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    crate::json::scalars_read_as!(Checked, Checked);
}

/// A member that should be an array: its elements when it is one, `None` for any other
/// value (checked as a `Value` parse checks it, then dropped). The sink's reading of a
/// reply's `dispositions` and the collector's of a batch's `records`.
pub(crate) struct ArrayOrNone<T>(pub(crate) Option<Vec<T>>);

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for ArrayOrNone<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ArrayOrNoneVisitor(PhantomData))
    }
}

struct ArrayOrNoneVisitor<T>(PhantomData<T>);

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for ArrayOrNoneVisitor<T> {
    type Value = ArrayOrNone<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArrayOrNone<T>, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(64));
        while let Some(element) = seq.next_element()? {
            list.push(element);
        }
        Ok(ArrayOrNone(Some(list)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ArrayOrNone<T>, A::Error> {
        Checked.visit_map(map).map(|_| ArrayOrNone(None))
    }

    crate::json::scalars_read_as!(ArrayOrNone<T>, ArrayOrNone(None));
}

/// The visits of a JSON scalar (boolean, number, string, null), each read as `$value`:
/// for a reader that keeps only objects (or arrays) and checks the rest. serde_json
/// checks a scalar (a number's range, a string's escapes) before it visits it.
macro_rules! scalars_read_as {
    ($t:ty, $value:expr) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<$t, E> {
            Ok($value)
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<$t, E> {
            Ok($value)
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<$t, E> {
            Ok($value)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<$t, E> {
            Ok($value)
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<$t, E> {
            Ok($value)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<$t, E> {
            Ok($value)
        }
    };
}
pub(crate) use scalars_read_as;

/// A key, read as its position in a list of keys (`None`: not in it); no allocation for a
/// key without escapes.
pub(crate) struct KeyIn<F>(pub(crate) F);

impl<'de, F: Fn(&str) -> Option<usize>> de::DeserializeSeed<'de> for KeyIn<F> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, F: Fn(&str) -> Option<usize>> Visitor<'de> for KeyIn<F> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok((self.0)(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_refuses_what_a_value_refuses() {
        for bad in [
            "1e999",
            r#"{"a": [1, 2e400]}"#,
            r#"{"a": "\ud800"}"#,
            r#"{"a": "#,
            "[1,]",
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "{bad}"
            );
            assert!(serde_json::from_str::<Checked>(bad).is_err(), "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
        assert!(serde_json::from_str::<Checked>(&deep).is_err());
        for good in [r#"{"a": [1, -2, 3.5, "x\n", null, true, {}]}"#, "[]", "0"] {
            assert!(serde_json::from_str::<Checked>(good).is_ok(), "{good}");
        }
    }
}
