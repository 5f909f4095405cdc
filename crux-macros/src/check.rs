//! The rules option values must follow, as pure functions returning the message a user sees.
//! `args.rs` applies them at the offending token's span.

use crate::nearest::{nearest, one_of};
use crate::taxonomy::{PRIMITIVES, is_primitive};

/// The longest run name accepted, in characters.
pub const NAME_MAX_CHARS: usize = 200;
/// The largest final-flush bound accepted, in milliseconds.
pub const FLUSH_MAX_MS: u64 = 60_000;
/// Attribute keys the runtime writes itself; users may not override them.
pub const RESERVED_KEYS: &[&str] = &["boundary", "entrypoint", "functionRef", "presentation"];

/// A run name: non-empty, not only whitespace, at most 200 characters, no control characters.
pub fn name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("`name` must not be empty: it is the run's human-readable name".into());
    }
    if value.trim().is_empty() {
        return Err("`name` must not be only whitespace".into());
    }
    let chars = value.chars().count();
    if chars > NAME_MAX_CHARS {
        return Err(format!(
            "`name` is {chars} characters long; the limit is {NAME_MAX_CHARS}"
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "`name` must not contain control characters (found {c:?})"
        ));
    }
    Ok(())
}

/// A root primitive: one of the canonical taxonomy's primitives.
pub fn root(value: &str) -> Result<(), String> {
    if is_primitive(value) {
        return Ok(());
    }
    let near = nearest(value, PRIMITIVES, 3);
    let hint = if near.is_empty() {
        "; see the Crux taxonomy for the full list (for example `agent.run`, `flow.run`, `task.operation`)".to_owned()
    } else {
        format!("; did you mean {}?", one_of(&near))
    };
    Err(format!("`{value}` is not a canonical Crux primitive{hint}"))
}

/// A user attribute key: non-empty and not reserved.
pub fn attribute_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("attribute keys must not be empty".into());
    }
    if key.trim() != key || key.chars().any(char::is_control) {
        return Err(format!(
            "attribute key {key:?} must not contain leading/trailing whitespace or control characters"
        ));
    }
    if RESERVED_KEYS.contains(&key) {
        return Err(format!(
            "attribute key `{key}` is reserved: crux records it itself and a user value would override it"
        ));
    }
    if key == "crux" || key.starts_with("crux.") {
        return Err(format!(
            "attribute key `{key}` is reserved: keys under `crux.` belong to crux"
        ));
    }
    Ok(())
}

/// A final-flush bound in milliseconds: 0 to 60000.
pub fn flush(millis: i128) -> Result<u64, String> {
    match u64::try_from(millis) {
        Ok(ms) if ms <= FLUSH_MAX_MS => Ok(ms),
        _ => Err(format!(
            "`flush` must be between 0 and {FLUSH_MAX_MS} milliseconds, not {millis}; use `flush = false` to disable the final flush"
        )),
    }
}

/// A Convex function path: `dir/file:export`.
pub fn path(value: &str) -> Result<(), String> {
    const SHAPE: &str = "a Convex function path looks like `dir/file:export`";
    let Some((module, export)) = value.split_once(':') else {
        return Err(format!("`{value}` has no `:export` part; {SHAPE}"));
    };
    if module.is_empty() {
        return Err(format!("`{value}` has an empty module part; {SHAPE}"));
    }
    if let Some(c) = module
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '.' | '-')))
    {
        return Err(format!(
            "`{value}`: the module part may only contain ASCII letters, digits, `_`, `/`, `.` and `-`, not {c:?}"
        ));
    }
    if module.starts_with('/') || module.ends_with('/') {
        return Err(format!(
            "`{value}`: the module part must not start or end with `/`"
        ));
    }
    if module.split('/').any(str::is_empty) {
        return Err(format!("`{value}` has an empty path segment (`//`)"));
    }
    if module
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
        || module.contains("..")
    {
        return Err(format!(
            "`{value}`: `.` and `..` are not allowed in a Convex path"
        ));
    }
    let mut chars = export.chars();
    let valid_export = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_export {
        return Err(format!(
            "`{value}`: the export `{export}` must be an identifier (`[A-Za-z_][A-Za-z0-9_]*`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("support chat").is_ok());
        assert!(name(&"x".repeat(200)).is_ok());
        assert!(name("").unwrap_err().contains("must not be empty"));
        assert!(name("  \t").unwrap_err().contains("only whitespace"));
        assert!(
            name(&"é".repeat(201))
                .unwrap_err()
                .contains("201 characters")
        );
        assert!(name("a\u{7}b").unwrap_err().contains("control characters"));
    }

    #[test]
    fn roots_suggest_the_nearest_primitives() {
        assert!(root("agent.run").is_ok());
        assert!(root("memory.capture").is_ok());
        let err = root("agentrun").unwrap_err();
        assert!(
            err.starts_with(
                "`agentrun` is not a canonical Crux primitive; did you mean `agent.run`"
            ),
            "{err}"
        );
        let err = root("tool").unwrap_err();
        assert!(err.contains("`tool.approval` or `tool.call`"), "{err}");
        assert!(
            root("zzzzzzzzzzzz")
                .unwrap_err()
                .contains("see the Crux taxonomy")
        );
    }

    #[test]
    fn attribute_keys() {
        assert!(attribute_key("agentId").is_ok());
        assert!(attribute_key("cruxy").is_ok());
        assert!(attribute_key("").unwrap_err().contains("empty"));
        assert!(
            attribute_key("functionRef")
                .unwrap_err()
                .contains("reserved")
        );
        assert!(
            attribute_key("crux.kind")
                .unwrap_err()
                .contains("under `crux.`")
        );
        assert!(attribute_key(" a").unwrap_err().contains("whitespace"));
    }

    #[test]
    fn flush_range() {
        assert_eq!(flush(0), Ok(0));
        assert_eq!(flush(60_000), Ok(60_000));
        assert!(flush(-1).unwrap_err().contains("between 0 and 60000"));
        assert!(flush(60_001).unwrap_err().contains("not 60001"));
    }

    #[test]
    fn paths() {
        for ok in [
            "research:plan",
            "research/data:get_inputs",
            "a-b/c.d:_x9",
            "x:y",
        ] {
            assert_eq!(path(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("research", "no `:export`"),
            (":plan", "empty module"),
            ("/research:plan", "start or end with `/`"),
            ("research/:plan", "start or end with `/`"),
            ("a//b:plan", "empty path segment"),
            ("a/../b:plan", "`..` are not allowed"),
            ("a..b:plan", "`..` are not allowed"),
            ("a b:plan", "not ' '"),
            ("a:9plan", "must be an identifier"),
            ("a:", "must be an identifier"),
            ("a:b:c", "must be an identifier"),
        ] {
            let err = path(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
