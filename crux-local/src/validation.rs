//! Argument validation: JSON args to the handler's `Args` type, Convex-style.
//!
//! Every failure is an [`ErrorKind::ArgumentValidation`] error whose message starts with
//! `ArgumentValidationError:` and names the offending field by its path.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::store::json_type;
use crux_runtime::wire::{MAX_ERROR_MESSAGE, cap_string};
use crux_runtime::{Error, ErrorKind, Result};

/// The path of a field, Convex-style: `.threadId`, `.items[2].name`; empty for the root.
pub(crate) fn convex_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push('.');
                out.push_str(key);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// The error, its message cut to `MAX_ERROR_MESSAGE` bytes: serde's messages echo the
/// offending value (and paths the keys), which may be megabytes long.
fn invalid(message: String) -> Error {
    Error::new(
        ErrorKind::ArgumentValidation,
        cap_string(
            format!("ArgumentValidationError: {message}"),
            MAX_ERROR_MESSAGE,
        ),
    )
}

/// Turns serde's message into Convex's wording where one exists.
fn describe(path: &str, serde_message: &str) -> String {
    let field_at = |field: &str| {
        if path.is_empty() {
            format!(".{field}")
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(field) = backticked_after(serde_message, "missing field `") {
        return format!(
            "Object is missing the required field `{field}`. Path: {}",
            field_at(field)
        );
    }
    if let Some(field) = backticked_after(serde_message, "unknown field `") {
        return format!(
            "Object contains extra field `{field}` that is not in the validator. Path: {}",
            field_at(field)
        );
    }
    let path = if path.is_empty() { "(root)" } else { path };
    format!("Value does not match validator. Path: {path}. {serde_message}")
}

/// The name and Convex-style path (`.items[0].x`) of a field the `Args` type ignored.
fn ignored_field(path: &serde_ignored::Path<'_>) -> (String, String) {
    use serde_ignored::Path;
    fn render(path: &Path<'_>, out: &mut String) {
        match path {
            Path::Root => {}
            Path::Seq { parent, index } => {
                render(parent, out);
                out.push_str(&format!("[{index}]"));
            }
            Path::Map { parent, key } => {
                render(parent, out);
                out.push('.');
                out.push_str(key);
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => render(parent, out),
        }
    }
    let mut rendered = String::new();
    render(path, &mut rendered);
    let field = match path {
        Path::Map { key, .. } => key.clone(),
        _ => rendered.clone(),
    };
    (field, rendered)
}

fn backticked_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// The Convex-style path (`.a[0].b`) of the first place in `value` nested deeper than
/// `max` levels (the outermost object or array is level 1), if any. A bounded recursion
/// ([`RECURSION_LIMIT`] levels), then an iterative walk for anything deeper, so any depth
/// is safe to inspect. A value nested between the two limits is walked twice (the
/// recursion's work is dropped): rare, and still correct.
pub(crate) fn too_deep(value: &Value, max: usize) -> Option<String> {
    // The common case allocates nothing: a bounded recursion first (every call's args and
    // result pass here), the heap walk only for values nested past it.
    let deep = deeper_than(value, 0, max).unwrap_or_else(|| deeper_than_on_heap(value, max));
    if !deep {
        return None;
    }
    // Rare: walk again, keeping paths, to name the place.
    let mut stack: Vec<(&Value, usize, String)> = vec![(value, 0, String::new())];
    while let Some((value, depth, path)) = stack.pop() {
        let children: Vec<(&Value, String)> = match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (v, format!("{path}[{i}]")))
                .collect(),
            Value::Object(fields) => fields
                .iter()
                .map(|(k, v)| (v, format!("{path}.{k}")))
                .collect(),
            _ => continue,
        };
        if children.is_empty() {
            continue;
        }
        if depth + 1 > max {
            return Some(if path.is_empty() {
                "(root)".into()
            } else {
                path
            });
        }
        stack.extend(children.into_iter().map(|(v, p)| (v, depth + 1, p)).rev());
    }
    None
}

/// How many levels [`deeper_than`] recurses before leaving a value to the heap walk: ≈ 2 KB
/// of stack optimised, ≈ 16 KB in debug builds, whatever the deployment's
/// `max_value_depth`.
const RECURSION_LIMIT: usize = 32;

/// Whether a non-empty object or array in `value` (itself at `depth`) sits at depth `max`
/// or deeper (level `max + 1`, the outermost being level 1), so that its members are nested more than `max` levels; `None` when
/// `value` holds containers more than [`RECURSION_LIMIT`] levels down before that is
/// known (the caller then asks [`deeper_than_on_heap`]). Recursive: no allocation.
fn deeper_than(value: &Value, depth: usize, max: usize) -> Option<bool> {
    match value {
        Value::Array(items) if !items.is_empty() => any_deeper(items.iter(), depth, max),
        Value::Object(fields) if !fields.is_empty() => any_deeper(fields.values(), depth, max),
        _ => Some(false),
    }
}

/// [`deeper_than`] of a non-empty container at `depth`, whose members are `children`.
fn any_deeper<'a>(
    children: impl Iterator<Item = &'a Value>,
    depth: usize,
    max: usize,
) -> Option<bool> {
    if depth + 1 > max {
        return Some(true);
    }
    if depth == RECURSION_LIMIT {
        return None;
    }
    for child in children {
        if deeper_than(child, depth + 1, max)? {
            return Some(true);
        }
    }
    Some(false)
}

/// [`deeper_than`] for any depth, walking an explicit stack on the heap.
fn deeper_than_on_heap(value: &Value, max: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((value, depth)) = stack.pop() {
        let nested = match value {
            Value::Array(items) => !items.is_empty(),
            Value::Object(fields) => !fields.is_empty(),
            _ => false,
        };
        if !nested {
            continue;
        }
        if depth + 1 > max {
            return true;
        }
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(fields) => stack.extend(fields.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    false
}

/// Drops a JSON value without recursion: `serde_json`'s own `Drop` recurses once per level
/// and would overflow the stack on a value nested thousands deep.
pub(crate) fn drop_flat(value: Value) {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(fields) => stack.extend(fields.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// Rejects arguments nested deeper than `max` levels, naming where.
pub(crate) fn check_args_depth(args: &Value, max: usize) -> Result<()> {
    match too_deep(args, max) {
        None => Ok(()),
        Some(path) => Err(invalid(format!(
            "Value is nested more than {max} levels deep (the deployment's limit, \
             DeploymentBuilder::max_value_depth). Path: {path}"
        ))),
    }
}

/// Deserializes a function's arguments, rejecting wrong types, missing fields and fields the
/// `Args` type does not declare (even when it does not `deny_unknown_fields`).
pub(crate) fn decode_args<T: DeserializeOwned>(args: Value) -> Result<T> {
    if !args.is_object() {
        return Err(invalid(format!(
            "Value does not match validator. Path: (root). Function arguments must be an object, got {}",
            json_type(&args)
        )));
    }
    let mut extra: Option<(String, String)> = None;
    let mut note_extra = |path: serde_ignored::Path<'_>| {
        extra.get_or_insert_with(|| ignored_field(&path));
    };
    let decoded = serde_path_to_error::deserialize::<_, T>(serde_ignored::Deserializer::new(
        &args,
        &mut note_extra,
    ));
    match decoded {
        Ok(value) => match extra {
            None => Ok(value),
            Some((field, path)) => Err(invalid(format!(
                "Object contains extra field `{field}` that is not in the validator. Path: {path}"
            ))),
        },
        Err(err) => {
            let path = convex_path(err.path());
            Err(invalid(describe(&path, &err.inner().to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        name: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Args {
        thread_id: String,
        #[serde(default)]
        items: Vec<Inner>,
    }

    fn message(args: Value) -> String {
        let err = decode_args::<Args>(args).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentValidation);
        assert!(
            err.message().starts_with("ArgumentValidationError: "),
            "{err}"
        );
        err.message().to_owned()
    }

    #[test]
    fn messages_echoing_huge_inputs_are_capped() {
        let huge = "x".repeat(10 << 20);
        for args in [
            json!({"threadId": "t", "items": huge.clone()}),
            json!({"threadId": "t", "items": [huge.clone()]}),
            json!({"threadId": "t", huge.clone(): 1}),
            json!({"threadId": "t", "items": [{"name": "a", huge.clone(): {}}]}),
        ] {
            let m = message(args);
            assert!(m.len() <= MAX_ERROR_MESSAGE, "{}", m.len());
            assert!(m.ends_with(" bytes]"), "{}", &m[m.len() - 40..]);
        }
        let wrong_type = message(json!({"threadId": "t", "items": huge}));
        assert!(
            wrong_type.contains("Path: .items"),
            "{}",
            &wrong_type[..200]
        );
    }

    /// `levels` arrays nested in each other around `leaf`, beside a shallow sibling.
    fn nested(levels: usize, leaf: Value) -> Value {
        let mut value = leaf;
        for level in 0..levels {
            value = if level % 2 == 0 {
                json!([1, value])
            } else {
                json!({"a": {}, "b": value})
            };
        }
        value
    }

    #[test]
    fn the_recursive_depth_check_agrees_with_the_heap_walk() {
        // Around the recursion limit and around the deployment's limit, both ways.
        for levels in 0..RECURSION_LIMIT + 6 {
            for leaf in [
                json!(1),
                json!([]),
                json!({}),
                json!([2]),
                json!({"x": [3]}),
            ] {
                let value = nested(levels, leaf);
                for max in (0..RECURSION_LIMIT + 8).chain([64, 1000]) {
                    let heap = deeper_than_on_heap(&value, max);
                    match deeper_than(&value, 0, max) {
                        Some(deep) => assert_eq!(deep, heap, "{levels} levels, max {max}"),
                        // Only values nested past the recursion limit (the leaf adds up
                        // to two levels) are left to the heap.
                        None => assert!(levels + 2 > RECURSION_LIMIT && max > RECURSION_LIMIT),
                    }
                    assert_eq!(too_deep(&value, max).is_some(), heap);
                }
            }
        }
        assert_eq!(too_deep(&json!({"a": [[1]]}), 2).as_deref(), Some(".a[0]"));
        assert_eq!(too_deep(&json!({"a": [[1]]}), 3), None);
        assert_eq!(
            too_deep(&json!([[]]), 1),
            None,
            "an empty container nests nothing"
        );
    }

    #[test]
    fn valid_args_decode() {
        let args: Args = decode_args(json!({"threadId": "t1", "items": [{"name": "a"}]})).unwrap();
        assert_eq!(args.thread_id, "t1");
        assert_eq!(args.items, vec![Inner { name: "a".into() }]);
    }

    #[test]
    fn each_failure_names_the_field() {
        let wrong_type = message(json!({"threadId": 3}));
        assert!(wrong_type.contains("Path: .threadId"), "{wrong_type}");
        let missing = message(json!({}));
        assert!(
            missing.contains("missing the required field `threadId`"),
            "{missing}"
        );
        let extra = message(json!({"threadId": "t", "extra": 1}));
        assert!(extra.contains("extra field `extra`"), "{extra}");
        let nested = message(json!({"threadId": "t", "items": [{"name": "a"}, {"name": 7}]}));
        assert!(nested.contains("Path: .items[1].name"), "{nested}");
        let nested_extra = message(json!({"threadId": "t", "items": [{"name": "a", "x": 1}]}));
        assert!(
            nested_extra.contains("extra field `x`") && nested_extra.contains("Path: .items[0].x"),
            "{nested_extra}"
        );
        let not_object = message(json!([1]));
        assert!(
            not_object.contains("must be an object, got an array"),
            "{not_object}"
        );
    }
}
