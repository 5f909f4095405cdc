//! Reading a request's `{path, args, format}` in one pass, keeping the exact text of the
//! `__crux` it carries (what a signed context's signature covers).
//!
//! The body is parsed once, straight into the args' values, with `__crux` kept as the
//! text sent. A repeated key is refused, in the body (`"args": .., "args": ..`) and in
//! the args object (`"__crux": .., "__crux": ..`):
//! `serde_json` would keep the last silently, so a signature over one copy could vouch for
//! another, or a forged context hide behind a duplicate.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crux_runtime::boundary::ENVELOPE_KEY;
use crux_runtime::helpers::percent_decode;

/// The fields of a request.
#[derive(Debug)]
pub(crate) struct ApiRequest {
    /// The function's path (`""` when the URL names it).
    pub(crate) path: String,
    /// The args: one object, or what the caller sent (checked by [`single_args`]).
    pub(crate) args: Value,
    /// `__crux` in the args exactly as sent, when there is one.
    pub(crate) crux_text: Option<String>,
    /// The value format, when named.
    pub(crate) format: Option<String>,
}

/// `{path, args, format}` from a JSON body (`path` only where the route needs it), in one
/// pass over the body; `__crux`'s text is kept when `keep_crux_text` (a signed-context
/// policy: the copy costs an allocation and a second read of `__crux` alone).
pub(crate) fn parse_body(
    body: &[u8],
    path_in_url: bool,
    keep_crux_text: bool,
) -> Result<ApiRequest, String> {
    // A body that is not an object is not a request (said before any field is read).
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(match serde_json::from_slice::<de::IgnoredAny>(body) {
            Ok(_) => "the request body must be a JSON object `{path, args, format}`".into(),
            Err(err) => format!("the request body is not valid JSON: {err}"),
        });
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    let body = BodySeed { keep_crux_text }
        .deserialize(&mut reader)
        .and_then(|body| reader.end().map(|()| body));
    let body = body.map_err(|err| match err.classify() {
        serde_json::error::Category::Data => format!("the request body is not a request: {err}"),
        _ => format!("the request body is not valid JSON: {err}"),
    })?;
    let path = match body.path {
        Some(Value::String(path)) => path,
        None if path_in_url => String::new(),
        Some(_) => return Err("`path` must be a string like \"messages:list\"".into()),
        None => return Err("the request body needs `path`, like \"messages:list\"".into()),
    };
    let format = match body.format {
        Some(Value::String(format)) => Some(format),
        None | Some(Value::Null) => None,
        Some(_) => return Err("`format` must be a string".into()),
    };
    let args = body.args.unwrap_or(Args {
        value: Value::Object(Map::new()),
        crux_text: None,
    });
    Ok(ApiRequest {
        path,
        args: args.value,
        crux_text: args.crux_text,
        format,
    })
}

/// `path`, `args` (JSON) and `format` from a query string; each may appear once.
pub(crate) fn from_query_string(query: &str, keep_crux_text: bool) -> Result<ApiRequest, String> {
    let mut path = None;
    let mut args = None;
    let mut format = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "path" => &mut path,
            "args" => &mut args,
            "format" => &mut format,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!(
                "the query string repeats `{key}`; each of path, args, format may appear once"
            ));
        }
        let value =
            percent_decode(value).ok_or("the query string is not valid percent-encoded UTF-8")?;
        *slot = Some(value);
    }
    let (args, crux_text) = match args {
        Some(text) => parse_args(&text, keep_crux_text)
            .map_err(|err| format!("`args` in the query string is not valid: {err}"))?,
        None => (Value::Object(Map::new()), None),
    };
    Ok(ApiRequest {
        path: path.ok_or("GET /api/query needs `path` in the query string")?,
        args,
        crux_text,
        format,
    })
}

/// `args` as one object: an array of exactly one, or the object itself.
pub(crate) fn single_args(args: Value) -> Result<Value, String> {
    match args {
        Value::Array(mut items) if items.len() == 1 => Ok(items.remove(0)),
        Value::Array(items) => Err(format!(
            "ArgumentValidationError: a function takes one argument object; the request \
             passed {} positional arguments",
            items.len()
        )),
        Value::Null => Ok(Value::Object(Map::new())),
        other => Ok(other),
    }
}

/// The args of a JSON text and the exact text of the `__crux` of its argument object.
fn parse_args(text: &str, keep_crux_text: bool) -> Result<(Value, Option<String>), String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let args = ArgsSeed::new(keep_crux_text)
        .deserialize(&mut deserializer)
        .and_then(|args| deserializer.end().map(|()| args))
        .map_err(|err| format!("the args are not valid: {err}"))?;
    Ok((args.value, args.crux_text))
}

/// A request body's fields, each at most once; other fields are ignored (Convex's
/// `componentPath`, say).
struct Body {
    path: Option<Value>,
    args: Option<Args>,
    format: Option<Value>,
}

/// Reads a [`Body`], keeping `__crux`'s text or not.
struct BodySeed {
    keep_crux_text: bool,
}

impl<'de> DeserializeSeed<'de> for BodySeed {
    type Value = Body;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Body, D::Error> {
        struct BodyVisitor(bool);
        impl<'de> Visitor<'de> for BodyVisitor {
            type Value = Body;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object `{path, args, format}`")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Body, M::Error> {
                let mut body = Body {
                    path: None,
                    args: None,
                    format: None,
                };
                let mut seen = [false; 3];
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let index = match key.as_ref() {
                        "path" => 0,
                        "args" => 1,
                        "format" => 2,
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    if std::mem::replace(&mut seen[index], true) {
                        return Err(de::Error::custom(format_args!(
                            "the request body repeats the field `{key}`; each of path, args, \
                             format may appear once"
                        )));
                    }
                    match index {
                        0 => body.path = Some(map.next_value()?),
                        1 => body.args = Some(map.next_value_seed(ArgsSeed::new(self.0))?),
                        _ => body.format = Some(map.next_value()?),
                    }
                }
                Ok(body)
            }
        }
        deserializer.deserialize_map(BodyVisitor(self.keep_crux_text))
    }
}

/// Args as read: their value, and the text of `__crux` in their argument object.
struct Args {
    value: Value,
    crux_text: Option<String>,
}

impl Args {
    fn plain(value: Value) -> Args {
        Args {
            value,
            crux_text: None,
        }
    }
}

/// Reads args: an object is an argument object (each key once, `__crux` kept as text);
/// an array's elements are argument objects too (Convex's positional form), one level
/// down only; anything else is a plain value.
#[derive(Clone, Copy)]
struct ArgsSeed {
    in_array: bool,
    keep_crux_text: bool,
}

impl ArgsSeed {
    fn new(keep_crux_text: bool) -> Self {
        ArgsSeed {
            in_array: false,
            keep_crux_text,
        }
    }
}

impl<'de> DeserializeSeed<'de> for ArgsSeed {
    type Value = Args;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Args, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ArgsSeed {
    type Value = Args;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an argument object, or an array of one")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Args, M::Error> {
        let mut values = Map::new();
        let mut crux_text = None;
        while let Some(key) = map.next_key::<String>()? {
            if values.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the argument object repeats the key `{key}`; each key may appear once"
                )));
            }
            let value = if self.keep_crux_text && key == ENVELOPE_KEY {
                let raw = map.next_value::<Box<RawValue>>()?;
                let value = serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
                crux_text = Some(String::from(Box::<str>::from(raw)));
                value
            } else {
                map.next_value()?
            };
            values.insert(key, value);
        }
        Ok(Args {
            value: Value::Object(values),
            crux_text,
        })
    }

    fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<Args, S::Error> {
        let mut values = Vec::new();
        let mut crux_text = None;
        if self.in_array {
            while let Some(value) = seq.next_element::<Value>()? {
                values.push(value);
            }
        } else {
            let element = ArgsSeed {
                in_array: true,
                ..self
            };
            while let Some(args) = seq.next_element_seed(element)? {
                values.push(args.value);
                crux_text = args.crux_text;
            }
            // Only the one argument object of `[args]` is continued.
            if values.len() != 1 {
                crux_text = None;
            }
        }
        Ok(Args {
            value: Value::Array(values),
            crux_text,
        })
    }

    fn visit_bool<E>(self, v: bool) -> Result<Args, E> {
        Ok(Args::plain(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Args, E> {
        Ok(Args::plain(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Args, E> {
        Ok(Args::plain(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Args, E> {
        Ok(Args::plain(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Args, E> {
        Ok(Args::plain(Value::from(v)))
    }

    fn visit_string<E>(self, v: String) -> Result<Args, E> {
        Ok(Args::plain(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Args, E> {
        Ok(Args::plain(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Args, E> {
        Ok(Args::plain(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_crux_text_is_kept_as_sent() {
        let body = br#"{"path":"a:b","args":{"x":1,"__crux":  {"v": 1, "k":"\u00e9"} }}"#;
        let request = parse_body(body, false, true).unwrap();
        assert_eq!(request.path, "a:b");
        assert_eq!(
            request.crux_text.as_deref(),
            Some(r#"{"v": 1, "k":"\u00e9"}"#)
        );
        assert_eq!(request.args, json!({"x": 1, "__crux": {"v": 1, "k": "é"}}));
        let request = parse_body(
            br#"{"path":"a:b","args":[{"__crux":{"v":1}}]}"#,
            false,
            true,
        )
        .unwrap();
        assert_eq!(request.crux_text.as_deref(), Some(r#"{"v":1}"#));
        assert_eq!(request.args, json!([{"__crux": {"v": 1}}]));
        let request = parse_body(br#"{"path":"a:b","args":{"x":1}}"#, false, true).unwrap();
        assert_eq!(request.crux_text, None);
        // Not kept when no policy needs it; the value is the same.
        let request = parse_body(body, false, false).unwrap();
        assert_eq!(request.crux_text, None);
        assert_eq!(request.args, json!({"x": 1, "__crux": {"v": 1, "k": "é"}}));
    }

    #[test]
    fn a_repeated_key_is_refused_in_the_body_and_in_the_args() {
        for body in [
            r#"{"path":"a:b","args":{},"args":{"__crux":{"v":1}}}"#,
            r#"{"path":"a:b","path":"c:d","args":{}}"#,
        ] {
            let err = parse_body(body.as_bytes(), false, true).unwrap_err();
            assert!(err.contains("repeats the field"), "{body}: {err}");
        }
        // Refused whether or not `__crux`'s text is kept: the policy changes nothing here.
        for (args, keep) in [
            (r#"{"__crux":{"v":1},"__crux":{"v":1,"forged":true}}"#, true),
            (
                r#"{"__crux":{"v":1},"__crux":{"v":1,"forged":true}}"#,
                false,
            ),
            (r#"[{"x":1,"x":2}]"#, true),
        ] {
            let body = format!(r#"{{"path":"a:b","args":{args}}}"#);
            let err = parse_body(body.as_bytes(), false, keep).unwrap_err();
            assert!(err.contains("repeats the key"), "{args}: {err}");
        }
        // Nested objects are the function's values: serde_json's rule (the last wins).
        let nested = br#"{"path":"a:b","args":{"o":{"k":1,"k":2}}}"#;
        assert_eq!(
            parse_body(nested, false, true).unwrap().args,
            json!({"o": {"k": 2}})
        );
    }

    #[test]
    fn bodies_that_are_not_requests_say_why() {
        assert!(
            parse_body(b"{", false, true)
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            parse_body(b"[1]", false, true)
                .unwrap_err()
                .contains("must be a JSON object")
        );
        assert!(
            parse_body(br#"{"args":{}}"#, false, true)
                .unwrap_err()
                .contains("needs `path`")
        );
        let null_args = parse_body(br#"{"args":null}"#, true, true).unwrap().args;
        assert_eq!(single_args(null_args).unwrap(), json!({}));
        assert!(
            parse_body(br#"{"path":1}"#, false, true)
                .unwrap_err()
                .contains("must be a string")
        );
    }

    #[test]
    fn query_strings_decode_and_repeat_nothing() {
        let r = from_query_string("path=a%3Ab&args=%7B%22x%22%3A1%7D&format=json", true).unwrap();
        assert_eq!(r.path, "a:b");
        assert_eq!(r.args, json!({"x": 1}));
        assert_eq!(r.format.as_deref(), Some("json"));
        assert!(from_query_string("path=a&args=%7B", true).is_err());
        let err = from_query_string("path=a&args=%7B%7D&args=%7B%7D", false).unwrap_err();
        assert!(err.contains("repeats `args`"), "{err}");
    }

    #[test]
    fn args_are_one_object() {
        assert_eq!(single_args(json!([{"a": 1}])).unwrap(), json!({"a": 1}));
        assert_eq!(single_args(json!({"a": 1})).unwrap(), json!({"a": 1}));
        assert!(single_args(json!([{}, {}])).is_err());
    }
}
