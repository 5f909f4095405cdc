//! Reading Convex's reply to a function call into the caller's `Result`.
//!
//! `{"status":"success","value"}` is the value (still in `convex_encoded_json`);
//! `{"status":"error","errorMessage","errorData"?}` (HTTP 200, or 560 from a cloud
//! deployment) is the function's error, a `ConvexError` when it carries data; any other
//! status is an infrastructure failure (`{"code","message"}`), reported with both.
//!
//! The error's kind is read from what Convex sends, as Convex sends it ([`kind_of_message`],
//! [`kind_of_status`]): a remote `NotFound` is a `NotFound` here, not a `Server` error.

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
/// kind is read from the message ([`kind_of_message`]). The message is kept unchanged.
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
    Error::new(kind_of_message(message), message)
}

/// The kind of a failed function's error from its message, as Convex and crux write it:
/// the error's name first (`ArgumentValidationError: …`, `ReturnsValidationError: …`,
/// crux's `TimeoutError: …` and `CallDepthError: …`), or Convex's `Could not find public
/// function for '<path>'` (crux: `Could not find function for …`) for `NotFound`. A cloud
/// deployment prefixes the message with `[Request ID: <id>] Server Error` and a line
/// break, and an uncaught JavaScript error reads `Uncaught <name>: …`: each line is read
/// without them. Anything else is `Server`.
pub(crate) fn kind_of_message(message: &str) -> ErrorKind {
    const NAMED: &[(&str, ErrorKind)] = &[
        ("ArgumentValidationError", ErrorKind::ArgumentValidation),
        ("ReturnsValidationError", ErrorKind::ReturnsValidation),
        ("TimeoutError", ErrorKind::Timeout),
        ("CallDepthError", ErrorKind::CallDepth),
        ("Could not find public function for ", ErrorKind::NotFound),
        ("Could not find function for ", ErrorKind::NotFound),
    ];
    // The name is on the first line, or on the second after Convex's request-id line.
    for line in message.lines().take(2) {
        let mut line = line.trim_start();
        if let Some(rest) = line.strip_prefix("[Request ID: ") {
            line = rest.split_once("] ").map_or("", |(_, rest)| rest);
        }
        let line = line.strip_prefix("Uncaught ").unwrap_or(line);
        if let Some((_, kind)) = NAMED.iter().find(|(name, _)| line.starts_with(name)) {
            return *kind;
        }
    }
    ErrorKind::Server
}

/// The kind of an infrastructure failure from its HTTP status: 404 (an unknown path, on a
/// backend answering so, or an unknown route) is `NotFound`; 408 (the request was not
/// read in time) and 504 (a gateway gave up waiting) are `Timeout`; the rest are `Server`.
pub(crate) fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        404 => ErrorKind::NotFound,
        408 | 504 => ErrorKind::Timeout,
        _ => ErrorKind::Server,
    }
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
    Error::new(
        kind_of_status(status),
        format!("{url} answered HTTP {status} to '{path}': {detail}"),
    )
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

    fn kind_of_reply(message: &str) -> ErrorKind {
        let body = reply(json!({"status": "error", "errorMessage": message}));
        read("a:b", "http://x", 200, &body, None)
            .unwrap_err()
            .kind()
    }

    #[test]
    fn each_kind_is_read_from_the_message_as_convex_and_crux_write_it() {
        let cases = [
            (
                "ArgumentValidationError: Object is missing the required field `q`.",
                ErrorKind::ArgumentValidation,
            ),
            (
                "ReturnsValidationError: Value does not match validator.",
                ErrorKind::ReturnsValidation,
            ),
            (
                "Could not find public function for 'nope:nothing'. Did you forget to run \
                 `npx convex dev` or `npx convex deploy`?",
                ErrorKind::NotFound,
            ),
            (
                "Could not find function for 'jobs:gone'",
                ErrorKind::NotFound,
            ),
            (
                "TimeoutError: 'slow:one' ran longer than 1s",
                ErrorKind::Timeout,
            ),
            (
                "CallDepthError: calling 'a:b' would nest function calls 65 deep",
                ErrorKind::CallDepth,
            ),
            // A cloud deployment's request-id line, and an uncaught JavaScript error.
            (
                "[Request ID: 5f3c0a9b1e2d4c6f] Server Error\nArgumentValidationError: \
                 Object contains extra field `x` that is not in the validator.",
                ErrorKind::ArgumentValidation,
            ),
            (
                "[Request ID: 5f3c0a9b1e2d4c6f] Server Error\nUncaught TimeoutError: late",
                ErrorKind::Timeout,
            ),
            (
                "[Request ID: 5f3c] Could not find public function for 'x:y'",
                ErrorKind::NotFound,
            ),
            // Redacted on a production deployment: nothing to read.
            (
                "[Request ID: 5f3c0a9b1e2d4c6f] Server Error",
                ErrorKind::Server,
            ),
            ("boom", ErrorKind::Server),
            // A name later in the text is not the error's own.
            (
                "Error: failed\nbecause\nArgumentValidationError: in a child",
                ErrorKind::Server,
            ),
            (
                "Uncaught Error: ArgumentValidationError: quoted",
                ErrorKind::Server,
            ),
        ];
        for (message, kind) in cases {
            assert_eq!(kind_of_reply(message), kind, "{message}");
        }
    }

    #[test]
    fn infrastructure_kinds_are_read_from_the_status() {
        let body = reply(json!({"code": "NotFound", "message": "no such route"}));
        let kinds = [
            (404, ErrorKind::NotFound),
            (408, ErrorKind::Timeout),
            (504, ErrorKind::Timeout),
            (401, ErrorKind::Server),
            (503, ErrorKind::Server),
        ];
        for (status, kind) in kinds {
            let err = read("a:b", "http://x", status, &body, None).unwrap_err();
            assert_eq!(err.kind(), kind, "{status}");
        }
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
