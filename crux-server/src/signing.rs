//! Signed contexts ([`ContextPolicy::Signed`]): the `Crux-Signature` scheme itself lives in
//! [`crux_runtime::signature`], shared with `crux-client` (which signs what it sends); this
//! module re-exports it and finds the exact `__crux` text in a request.
//!
//! [`ContextPolicy::Signed`]: crate::ContextPolicy::Signed

use std::collections::HashMap;

use crux_runtime::boundary::ENVELOPE_KEY;
pub use crux_runtime::signature::*;
use serde_json::value::RawValue;

/// The exact text of `__crux` in a request body `{"args": ...}`; `None` without one (or in
/// a body that is not such an object).
pub(crate) fn crux_text_in_body(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        args: Option<&'a RawValue>,
    }
    let body: Body<'_> = serde_json::from_slice(body).ok()?;
    crux_text_in_args(body.args?.get())
}

/// The exact text of `__crux` in an `args` JSON text: an object, or an array of one.
pub(crate) fn crux_text_in_args(args: &str) -> Option<String> {
    type Fields<'a> = HashMap<String, &'a RawValue>;
    let fields: Fields<'_> = match args.trim_start().as_bytes().first()? {
        b'[' => serde_json::from_str::<Vec<Fields<'_>>>(args)
            .ok()?
            .into_iter()
            .next()?,
        _ => serde_json::from_str(args).ok()?,
    };
    fields.get(ENVELOPE_KEY).map(|raw| raw.get().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crux_text_is_found_as_sent() {
        let body = br#"{"path":"a:b","args":{"x":1,"__crux":  {"v": 1, "k":"\u00e9"} }}"#;
        assert_eq!(
            crux_text_in_body(body).as_deref(),
            Some(r#"{"v": 1, "k":"\u00e9"}"#)
        );
        assert_eq!(
            crux_text_in_args(r#"[{"__crux":{"v":1}}]"#).as_deref(),
            Some(r#"{"v":1}"#)
        );
        assert_eq!(crux_text_in_args(r#"{"x":1}"#), None);
        assert_eq!(crux_text_in_body(b"[1]"), None);
    }
}
