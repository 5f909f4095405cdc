//! Reading Convex's reply to a function call into the caller's `Result`.
//!
//! `{"status":"success","value"}` is the value (still in `convex_encoded_json`);
//! `{"status":"error","errorMessage","errorData"?}` (HTTP 200, or 560 from a cloud
//! deployment) is the function's error, a `ConvexError` when it carries data; any other
//! status is an infrastructure failure (`{"code","message"}`), reported with both.

use crux_local::LogLines;
use crux_local::encoding::{self, Format};
use crux_runtime::{Error, ErrorKind, Result};
use serde_json::Value;

/// The reply of a call to `path` with HTTP `status` and `body`; its `logLines` (on success
/// and on error) are appended to `log_lines` when given.
pub(crate) fn read(
    path: &str,
    url: &str,
    status: u16,
    body: &[u8],
    log_lines: Option<&LogLines>,
) -> Result<Value> {
    if status != 200 && status != 560 {
        return Err(infrastructure(path, url, status, body));
    }
    let reply: Value = serde_json::from_slice(body).map_err(|err| {
        Error::msg(format!(
            "the reply of {url} to '{path}' is not JSON ({err}): {}",
            preview(body)
        ))
    })?;
    if let (Some(log_lines), Some(Value::Array(lines))) = (log_lines, reply.get("logLines")) {
        log_lines.append(lines.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    match reply.get("status").and_then(Value::as_str) {
        Some("success") => Ok(match reply {
            Value::Object(mut fields) => fields.remove("value").unwrap_or(Value::Null),
            _ => Value::Null,
        }),
        Some("error") => Err(function_error(&reply)),
        _ => Err(Error::msg(format!(
            "the reply of {url} to '{path}' has no `status` of \"success\" or \"error\": {}",
            preview(body)
        ))),
    }
}

/// A failed function's error, as close to what the callee raised as the wire allows:
/// `errorData` makes it a `ConvexError` (kind `Application`) with that data; otherwise the
/// kind is read back from the message's prefix (Convex's and crux's messages start with
/// the error's name), else `Server`. The message is kept unchanged.
fn function_error(reply: &Value) -> Error {
    let message = reply
        .get("errorMessage")
        .and_then(Value::as_str)
        .unwrap_or("the function failed without a message");
    if let Some(data) = reply.get("errorData") {
        let data = encoding::decode(data.clone(), Format::ConvexEncodedJson)
            .unwrap_or_else(|_| data.clone());
        return Error::application(message, data);
    }
    let kind = [
        ("ArgumentValidationError", ErrorKind::ArgumentValidation),
        ("ReturnsValidationError", ErrorKind::ReturnsValidation),
        ("TimeoutError", ErrorKind::Timeout),
        ("CallDepthError", ErrorKind::CallDepth),
    ]
    .into_iter()
    .find(|(name, _)| message.starts_with(name))
    .map_or(ErrorKind::Server, |(_, kind)| kind);
    Error::new(kind, message)
}

/// A non-2xx reply: Convex's `{"code","message"}` when the body is one, else its text.
fn infrastructure(path: &str, url: &str, status: u16, body: &[u8]) -> Error {
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            let code = v.get("code")?.as_str()?.to_owned();
            let message = v.get("message").and_then(Value::as_str).unwrap_or("");
            Some(format!("{code}: {message}"))
        })
        .unwrap_or_else(|| preview(body));
    Error::msg(format!(
        "{url} answered HTTP {status} to '{path}': {detail}"
    ))
}

/// The start of a body for an error message (never the whole of a large one).
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    crux_runtime::wire::cap_text(&text, 512).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn success_is_the_value_as_sent() {
        let body =
            reply(json!({"status": "success", "value": {"n": {"$integer": "AAAAAAAAABA="}}}));
        let value = read("a:b", "http://x", 200, &body, None).unwrap();
        assert_eq!(value, json!({"n": {"$integer": "AAAAAAAAABA="}}));
    }

    #[test]
    fn error_data_makes_a_convex_error_and_the_message_is_kept() {
        let body = reply(
            json!({"status": "error", "errorMessage": "closed", "errorData": {"code": "closed"}}),
        );
        let err = read("a:b", "http://x", 200, &body, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Application);
        assert_eq!(err.message(), "closed");
        assert_eq!(err.data(), Some(&json!({"code": "closed"})));
        // A cloud deployment answers a failed function with 560.
        let err = read("a:b", "http://x", 560, &body, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Application);
    }

    #[test]
    fn error_kinds_are_read_back_from_the_message() {
        let body = reply(
            json!({"status": "error", "errorMessage": "ArgumentValidationError: missing field `q`. Path: ."}),
        );
        let err = read("a:b", "http://x", 200, &body, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentValidation);
        let body = reply(json!({"status": "error", "errorMessage": "boom"}));
        let err = read("a:b", "http://x", 200, &body, None).unwrap_err();
        assert_eq!((err.kind(), err.message()), (ErrorKind::Server, "boom"));
    }

    #[test]
    fn infrastructure_failures_name_the_status_code_and_message() {
        let body = reply(json!({"code": "Overloaded", "message": "too many requests"}));
        let err = read("a:b", "http://x", 503, &body, None).unwrap_err();
        assert_eq!(
            err.message(),
            "http://x answered HTTP 503 to 'a:b': Overloaded: too many requests"
        );
        let err = read("a:b", "http://x", 200, b"<html>", None).unwrap_err();
        assert!(err.message().contains("is not JSON"), "{err:?}");
    }
}
