//! Finds a NaN or ±∞ in a value about to become JSON.
//!
//! Inside a deployment values are JSON, which has no NaN or infinity, and `serde_json`
//! writes such a float as `null` without a word: an `f64` field of a handler's result
//! would reach its caller as `null` (or fail the caller's typed read far from the cause).
//! [`non_finite_float`] walks the value's `Serialize` impl, writing nothing, and names the
//! first such float by its path, so the conversion can refuse it instead.

use std::fmt;

use serde::Serialize;
use serde::ser;

use crate::validation::convex_path;

/// The path (`.scores[2]`, empty for the root) and the value (`NaN`, `inf`, `-inf`) of the
/// first non-finite float in `value`; `None` when it has none.
pub(crate) fn non_finite_float<T: Serialize + ?Sized>(value: &T) -> Option<(String, f64)> {
    let mut track = serde_path_to_error::Track::new();
    match value.serialize(serde_path_to_error::Serializer::new(Probe, &mut track)) {
        Ok(()) => None,
        Err(NonFinite(Some(float))) => Some((convex_path(&track.path()), float)),
        // Serialization itself failed: `serde_json` reports that on its own.
        Err(NonFinite(None)) => None,
    }
}

/// The probe's error: the non-finite float found, or `None` for any other failure.
#[derive(Debug)]
struct NonFinite(Option<f64>);

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(float) => write!(f, "{float} has no JSON form"),
            None => f.write_str("not serializable"),
        }
    }
}

impl std::error::Error for NonFinite {}

impl ser::Error for NonFinite {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        NonFinite(None)
    }
}

/// A serializer that writes nothing and fails on a non-finite float.
struct Probe;

type Done = Result<(), NonFinite>;

fn float(value: f64) -> Done {
    if value.is_finite() {
        Ok(())
    } else {
        Err(NonFinite(Some(value)))
    }
}

impl ser::Serializer for Probe {
    type Ok = ();
    type Error = NonFinite;
    type SerializeSeq = Probe;
    type SerializeTuple = Probe;
    type SerializeTupleStruct = Probe;
    type SerializeTupleVariant = Probe;
    type SerializeMap = Probe;
    type SerializeStruct = Probe;
    type SerializeStructVariant = Probe;

    fn serialize_bool(self, _: bool) -> Done {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> Done {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> Done {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> Done {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> Done {
        Ok(())
    }
    fn serialize_i128(self, _: i128) -> Done {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> Done {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> Done {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> Done {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> Done {
        Ok(())
    }
    fn serialize_u128(self, _: u128) -> Done {
        Ok(())
    }
    fn serialize_f32(self, value: f32) -> Done {
        float(f64::from(value))
    }
    fn serialize_f64(self, value: f64) -> Done {
        float(value)
    }
    fn serialize_char(self, _: char) -> Done {
        Ok(())
    }
    fn serialize_str(self, _: &str) -> Done {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Done {
        Ok(())
    }
    fn serialize_none(self) -> Done {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Done {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Done {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Done {
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Probe, NonFinite> {
        Ok(Probe)
    }
    fn serialize_tuple(self, _: usize) -> Result<Probe, NonFinite> {
        Ok(Probe)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Probe, NonFinite> {
        Ok(Probe)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Probe, NonFinite> {
        Ok(Probe)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Probe, NonFinite> {
        Ok(Probe)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Probe, NonFinite> {
        Ok(Probe)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Probe, NonFinite> {
        Ok(Probe)
    }
}

impl ser::SerializeSeq for Probe {
    type Ok = ();
    type Error = NonFinite;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(Probe)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeTuple for Probe {
    type Ok = ();
    type Error = NonFinite;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(Probe)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Probe {
    type Ok = ();
    type Error = NonFinite;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(Probe)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Probe {
    type Ok = ();
    type Error = NonFinite;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(Probe)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeMap for Probe {
    type Ok = ();
    type Error = NonFinite;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Done {
        // A float key becomes its text in JSON (`serde_json` refuses a non-finite one).
        key.serialize(Probe).or(Ok(()))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(Probe)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeStruct for Probe {
    type Ok = ();
    type Error = NonFinite;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Done {
        value.serialize(Probe)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Probe {
    type Ok = ();
    type Error = NonFinite;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Done {
        value.serialize(Probe)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Report {
        name: String,
        scores: Vec<f64>,
        best: Option<f32>,
        by_day: BTreeMap<String, f64>,
    }

    fn report(scores: Vec<f64>, best: Option<f32>, day: f64) -> Report {
        Report {
            name: "ada".into(),
            scores,
            best,
            by_day: BTreeMap::from([("mon".to_owned(), day)]),
        }
    }

    #[test]
    fn finite_values_pass() {
        assert_eq!(non_finite_float(&report(vec![1.0, -0.0], None, 2.5)), None);
        assert_eq!(non_finite_float(&serde_json::json!({"x": 1.5})), None);
    }

    #[test]
    fn a_non_finite_float_is_named_by_its_path() {
        let (path, value) = non_finite_float(&report(vec![1.0, f64::NAN], None, 0.0)).unwrap();
        assert_eq!(path, ".scores[1]");
        assert!(value.is_nan());
        assert_eq!(
            non_finite_float(&report(vec![], Some(f32::INFINITY), 0.0)),
            Some((".best".into(), f64::INFINITY))
        );
        assert_eq!(
            non_finite_float(&report(vec![], None, f64::NEG_INFINITY)),
            Some((".by_day.mon".into(), f64::NEG_INFINITY))
        );
        assert_eq!(
            non_finite_float(&f64::NAN).map(|(p, _)| p),
            Some(String::new())
        );
    }
}
