//! Typed values ⇄ `convex_encoded_json`, directly: a Rust value is serialized straight
//! into Convex's encoding and a reply deserialized straight out of it, so what plain JSON
//! cannot hold survives: NaN, ±∞ and -0 (`$float`), every integer as an int64
//! (`$integer`, exact past 2^53), bytes (`$bytes`, from [`crux_local::Bytes`] or any
//! `serialize_bytes`).
//!
//! (`serde_json::to_value` would turn NaN into `null` without a word.)

use std::fmt;

use crux_local::encoding::{FLOAT_KEY, INTEGER_KEY};
use crux_local::{BYTES_KEY, base64_decode, base64_encode};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};
use serde_json::{Map, Number, Value};

/// Why a value cannot be encoded or decoded.
#[derive(Debug)]
pub(crate) struct ValueError(String);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

impl ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError(msg.to_string())
    }
}

impl de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError(msg.to_string())
    }
}

fn tagged(key: &str, bytes: &[u8]) -> Value {
    let mut map = Map::with_capacity(1);
    map.insert(key.to_owned(), Value::String(base64_encode(bytes)));
    Value::Object(map)
}

fn integer(i: i64) -> Value {
    tagged(INTEGER_KEY, &i.to_le_bytes())
}

fn float(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) if !(f == 0.0 && f.is_sign_negative()) => Value::Number(n),
        _ => tagged(FLOAT_KEY, &f.to_le_bytes()),
    }
}

/// `value` in `convex_encoded_json`.
pub(crate) fn to_encoded<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    value.serialize(Encoder)
}

/// A `T` read from `convex_encoded_json`.
pub(crate) fn from_encoded<T: DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    T::deserialize(Decoder(value))
}

// ---------------------------------------------------------------------------------------
// Serializing

struct Encoder;

impl ser::Serializer for Encoder {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Variant<Seq>;
    type SerializeMap = Object;
    type SerializeStruct = Object;
    type SerializeStructVariant = Variant<Object>;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(integer(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(integer(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(integer(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(integer(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        i64::try_from(v)
            .map(integer)
            .map_err(|_| ValueError(format!("{v} does not fit in a Convex int64")))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(integer(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(integer(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(integer(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        self.serialize_i128(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        i64::try_from(v)
            .map(integer)
            .map_err(|_| ValueError(format!("{v} does not fit in a Convex int64")))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(tagged(BYTES_KEY, v))
    }
    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        let mut map = Map::with_capacity(1);
        map.insert(variant.to_owned(), value.serialize(self)?);
        Ok(Value::Object(map))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, ValueError> {
        Ok(Seq(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Seq, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Seq>, ValueError> {
        Ok(Variant(variant, Seq(Vec::with_capacity(len))))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Object, ValueError> {
        Ok(Object(Map::new(), None))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Object, ValueError> {
        Ok(Object(Map::new(), None))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Variant<Object>, ValueError> {
        Ok(Variant(variant, Object(Map::new(), None)))
    }
}

struct Seq(Vec<Value>);

impl ser::SerializeSeq for Seq {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.0.push(value.serialize(Encoder)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Array(self.0))
    }
}

impl ser::SerializeTuple for Seq {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Seq {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

/// An object being built, and the key of the entry whose value comes next.
struct Object(Map<String, Value>, Option<String>);

impl ser::SerializeMap for Object {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        // Keys are text; integer keys (a `HashMap<u32, _>`) as their decimal text, as in JSON.
        let key = match key.serialize(Encoder)? {
            Value::String(text) => text,
            other => match from_encoded::<i64>(other) {
                Ok(i) => i.to_string(),
                Err(_) => {
                    return Err(ValueError(
                        "a map key must be a string or an integer".into(),
                    ));
                }
            },
        };
        self.1 = Some(key);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self.1.take().unwrap_or_default();
        self.0.insert(key, value.serialize(Encoder)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Object(self.0))
    }
}

impl ser::SerializeStruct for Object {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.0.insert(key.to_owned(), value.serialize(Encoder)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Object(self.0))
    }
}

/// An enum variant with content: `{variant: content}`.
struct Variant<T>(&'static str, T);

impl<T> Variant<T> {
    fn wrap(variant: &'static str, content: Value) -> Value {
        let mut map = Map::with_capacity(1);
        map.insert(variant.to_owned(), content);
        Value::Object(map)
    }
}

impl ser::SerializeTupleVariant for Variant<Seq> {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(&mut self.1, value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Self::wrap(self.0, Value::Array(self.1.0)))
    }
}

impl ser::SerializeStructVariant for Variant<Object> {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        ser::SerializeStruct::serialize_field(&mut self.1, key, value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Self::wrap(self.0, Value::Object(self.1.0)))
    }
}

// ---------------------------------------------------------------------------------------
// Deserializing

struct Decoder(Value);

/// The 8 little-endian bytes of a `$integer` or `$float` tag, if `map` is one.
fn tag_bytes(map: &Map<String, Value>, key: &str) -> Option<Result<[u8; 8], ValueError>> {
    if map.len() != 1 {
        return None;
    }
    let text = map.get(key)?;
    Some(
        text.as_str()
            .and_then(base64_decode)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            .ok_or_else(|| ValueError(format!("`{key}` is not the base64 of 8 bytes"))),
    )
}

impl<'de> de::Deserializer<'de> for Decoder {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Object(map) => {
                if let Some(bytes) = tag_bytes(&map, INTEGER_KEY) {
                    return visitor.visit_i64(i64::from_le_bytes(bytes?));
                }
                if let Some(bytes) = tag_bytes(&map, FLOAT_KEY) {
                    return visitor.visit_f64(f64::from_le_bytes(bytes?));
                }
                let entries = map.into_iter().map(|(k, v)| (Key(k), Decoder(v)));
                let mut access = de::value::MapDeserializer::new(entries);
                let out = visitor.visit_map(&mut access)?;
                access.end()?;
                Ok(out)
            }
            Value::Array(items) => {
                let mut access = de::value::SeqDeserializer::new(items.into_iter().map(Decoder));
                let out = visitor.visit_seq(&mut access)?;
                access.end()?;
                Ok(out)
            }
            other => other.deserialize_any(visitor).map_err(de::Error::custom),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Decoder(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::String(variant) => visitor.visit_enum(variant.into_deserializer()),
            Value::Object(map) if map.len() == 1 => {
                let (variant, content) = map.into_iter().next().unwrap_or_default();
                visitor.visit_enum(Enum(variant, Decoder(content)))
            }
            _ => Err(ValueError(
                "an enum is a string or an object with one key".into(),
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, ValueError> for Decoder {
    type Deserializer = Decoder;
    fn into_deserializer(self) -> Decoder {
        self
    }
}

/// A map key: always a string in JSON, read as an integer where the map's key type is one
/// (a `BTreeMap<u32, _>` was written with decimal keys), as serde_json reads keys.
struct Key(String);

impl<'de> IntoDeserializer<'de, ValueError> for Key {
    type Deserializer = Key;
    fn into_deserializer(self) -> Key {
        self
    }
}

macro_rules! integer_keys {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
                match self.0.parse::<$ty>() {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => Err(ValueError(format!("map key `{}` is not an integer", self.0))),
                }
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Key {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_string(self.0)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    integer_keys! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
    }

    serde::forward_to_deserialize_any! {
        bool i128 u128 f32 f64 char str string bytes byte_buf option unit unit_struct seq
        tuple tuple_struct map struct identifier ignored_any
    }
}

struct Enum(String, Decoder);

impl<'de> de::EnumAccess<'de> for Enum {
    type Error = ValueError;
    type Variant = Decoder;
    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Decoder), ValueError> {
        let variant = seed.deserialize(self.0.into_deserializer())?;
        Ok((variant, self.1))
    }
}

impl<'de> de::VariantAccess<'de> for Decoder {
    type Error = ValueError;
    fn unit_variant(self) -> Result<(), ValueError> {
        de::Deserialize::deserialize(self)
    }
    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crux_local::Bytes;
    use serde::{Deserialize, Serialize};
    use serde_json::json;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Dot,
        Circle(f64),
        Line { from: i64, to: i64 },
        Pair(u8, u8),
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct All {
        big: i64,
        unsigned: u64,
        nan: f64,
        inf: f64,
        neg_inf: f32,
        neg_zero: f64,
        half: f64,
        bytes: Bytes,
        text: String,
        missing: Option<i32>,
        present: Option<i32>,
        list: Vec<i16>,
        map: BTreeMap<String, f64>,
        shapes: Vec<Shape>,
        unit: (),
    }

    fn all() -> All {
        All {
            big: (1 << 60) + 1,
            unsigned: 9,
            nan: f64::NAN,
            inf: f64::INFINITY,
            neg_inf: f32::NEG_INFINITY,
            neg_zero: -0.0,
            half: 0.5,
            bytes: Bytes(vec![0, 255, 7]),
            text: "hé".into(),
            missing: None,
            present: Some(-3),
            list: vec![1, -2],
            map: [("k".to_owned(), f64::NAN)].into(),
            shapes: vec![
                Shape::Dot,
                Shape::Circle(f64::INFINITY),
                Shape::Line {
                    from: i64::MIN,
                    to: i64::MAX,
                },
                Shape::Pair(1, 2),
            ],
            unit: (),
        }
    }

    #[test]
    fn every_kind_of_value_round_trips_and_special_floats_are_tagged() {
        let encoded = to_encoded(&all()).unwrap();
        assert_eq!(encoded["big"], integer((1 << 60) + 1));
        assert_eq!(encoded["nan"], tagged(FLOAT_KEY, &f64::NAN.to_le_bytes()));
        assert_eq!(
            encoded["neg_zero"],
            tagged(FLOAT_KEY, &(-0.0f64).to_le_bytes())
        );
        assert_eq!(encoded["half"], json!(0.5));
        assert_eq!(encoded["bytes"], json!({"$bytes": "AP8H"}));
        assert_eq!(encoded["shapes"][0], json!("Dot"));
        let back: All = from_encoded(encoded).unwrap();
        assert_eq!(back.big, (1 << 60) + 1);
        assert_eq!(back.unsigned, 9);
        assert!(back.nan.is_nan());
        assert_eq!(back.inf, f64::INFINITY);
        assert_eq!(back.neg_inf, f32::NEG_INFINITY);
        assert!(back.neg_zero == 0.0 && back.neg_zero.is_sign_negative());
        assert_eq!(back.half, 0.5);
        assert_eq!(back.bytes, Bytes(vec![0, 255, 7]));
        assert_eq!(
            (back.text.as_str(), back.missing, back.present),
            ("hé", None, Some(-3))
        );
        assert_eq!(back.list, [1, -2]);
        assert!(back.map["k"].is_nan());
        assert_eq!(
            &back.shapes[1..],
            &[
                Shape::Circle(f64::INFINITY),
                Shape::Line {
                    from: i64::MIN,
                    to: i64::MAX
                },
                Shape::Pair(1, 2),
            ]
        );
        assert_eq!(back.shapes[0], Shape::Dot);
    }

    #[test]
    fn integer_map_keys_round_trip_as_decimal_text() {
        let map: BTreeMap<u32, i64> = [(7, 1 << 60), (300, -1)].into();
        let encoded = to_encoded(&map).unwrap();
        assert_eq!(encoded["7"], integer(1 << 60));
        let back: BTreeMap<u32, i64> = from_encoded(encoded).unwrap();
        assert_eq!(back, map);
        let err = from_encoded::<BTreeMap<u32, i64>>(json!({"x": 1})).unwrap_err();
        assert_eq!(err.to_string(), "map key `x` is not an integer");
    }

    #[test]
    fn values_that_do_not_fit_are_errors_naming_them() {
        let err = to_encoded(&u64::MAX).unwrap_err();
        assert_eq!(
            err.to_string(),
            "18446744073709551615 does not fit in a Convex int64"
        );
        let err = from_encoded::<i64>(json!({"$integer": "AAE="})).unwrap_err();
        assert_eq!(err.to_string(), "`$integer` is not the base64 of 8 bytes");
        let err = from_encoded::<u8>(integer(300)).unwrap_err();
        assert!(err.to_string().contains("300"), "{err}");
    }
}
