//! A response before it is written: status, body, the headers the routes need.

use serde_json::{Value, json};
use tiny_http::{Header, Response};

/// What the page's assets and every reply forbid: scripts, styles and fetches from this
/// origin only, nothing inline, no frames. Record text reaches the page only as text
/// nodes; this is the second line of defence.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A response before it is written.
pub(super) struct Reply {
    pub(super) status: u16,
    body: Vec<u8>,
    content_type: &'static str,
    pub(super) retry_after: bool,
}

impl Reply {
    /// A JSON reply.
    pub(super) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: body.to_string().into_bytes(),
            content_type: "application/json",
            retry_after: false,
        }
    }

    /// A JSON reply already written as text.
    pub(super) fn json_text(status: u16, body: String) -> Reply {
        Reply {
            status,
            body: body.into_bytes(),
            content_type: "application/json",
            retry_after: false,
        }
    }

    /// `{"error": {code, message}}`.
    pub(super) fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
        Reply::json(
            status,
            json!({"error": {"code": code, "message": message.into()}}),
        )
    }

    /// A static asset.
    pub(super) fn asset(content_type: &'static str, body: &'static [u8]) -> Reply {
        Reply {
            status: 200,
            body: body.to_vec(),
            content_type,
            retry_after: false,
        }
    }

    pub(super) fn into_response(self) -> Response<std::io::Cursor<Vec<u8>>> {
        let mut r = Response::from_data(self.body)
            .with_status_code(self.status)
            .with_header(header("Content-Type", self.content_type))
            .with_header(header("Content-Security-Policy", CSP))
            .with_header(header("X-Content-Type-Options", "nosniff"))
            .with_header(header("Cache-Control", "no-store"));
        if self.retry_after {
            r.add_header(header("Retry-After", "1"));
        }
        r
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}
