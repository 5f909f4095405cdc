//! The request an HTTP action receives and the response it returns: plain data that crosses
//! the deployment's JSON boundary like any function's arguments and result.

use crux_local::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The methods an HTTP action can be routed by, as Convex's `httpRouter` allows them. A
/// `HEAD` request is routed as `GET` (its response goes out without a body).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HttpMethod {
    /// `GET` (and `HEAD`).
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
    /// `PATCH`.
    Patch,
}

impl HttpMethod {
    /// Every method, in Convex's order.
    pub const ALL: [HttpMethod; 6] = [
        HttpMethod::Get,
        HttpMethod::Post,
        HttpMethod::Put,
        HttpMethod::Delete,
        HttpMethod::Options,
        HttpMethod::Patch,
    ];

    /// The method a request's method is routed by: `HEAD` as `GET`; `None` for a method
    /// Convex does not route (`TRACE`, `CONNECT`, …).
    ///
    /// ```
    /// use crux_server::HttpMethod;
    /// assert_eq!(HttpMethod::route_of("HEAD"), Some(HttpMethod::Get));
    /// assert_eq!(HttpMethod::route_of("patch"), None, "methods are case-sensitive");
    /// ```
    pub fn route_of(method: &str) -> Option<HttpMethod> {
        Some(match method {
            "GET" | "HEAD" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "DELETE" => HttpMethod::Delete,
            "OPTIONS" => HttpMethod::Options,
            "PATCH" => HttpMethod::Patch,
            _ => return None,
        })
    }

    /// The method's name on the wire (`"POST"`).
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Patch => "PATCH",
        }
    }
}

/// The request an HTTP action handler takes as its argument.
///
/// Header names are lower-case, in the order they came; a value that is not UTF-8 is
/// decoded lossily. The body is whole (bounded by
/// [`Limits::max_body_bytes`](crate::Limits::max_body_bytes)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequest {
    /// The method as sent (`"HEAD"` stays `"HEAD"` though it is routed as `GET`).
    pub method: String,
    /// The path, without the query string (`/webhooks/stripe`).
    pub path: String,
    /// The query string without its `?`, if the URL had one (percent-encoded, as sent).
    pub query: Option<String>,
    /// The headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl HttpRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// An error saying the body is not UTF-8 (`?` in a handler answers 500 with it).
    pub fn text(&self) -> crux_runtime::Result<&str> {
        std::str::from_utf8(&self.body.0).map_err(|err| {
            crux_runtime::Error::msg(format!("the request body is not UTF-8 text: {err}"))
        })
    }

    /// The body parsed as JSON into `T`.
    ///
    /// # Errors
    ///
    /// An error naming where the body does not fit `T`.
    pub fn json<T: DeserializeOwned>(&self) -> crux_runtime::Result<T> {
        serde_json::from_slice(&self.body.0).map_err(|err| {
            crux_runtime::Error::msg(format!("the request body is not the JSON expected: {err}"))
        })
    }
}

/// What an HTTP action handler returns: a status, headers and a body.
///
/// ```
/// use crux_server::HttpResponse;
/// let reply = HttpResponse::json(&serde_json::json!({"ok": true})).header("x-request", "42");
/// assert_eq!(reply.status, 200);
/// assert_eq!(reply.headers[0], ("content-type".into(), "application/json".into()));
/// assert_eq!(HttpResponse::text("gone").status(410).status, 410);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpResponse {
    /// The status code (100–999; anything else answers 500).
    pub status: u16,
    /// The headers, in order (a name may repeat).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl Default for HttpResponse {
    fn default() -> Self {
        HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: Bytes::default(),
        }
    }
}

impl HttpResponse {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        HttpResponse {
            status,
            ..HttpResponse::default()
        }
    }

    /// 200 with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<String>) -> Self {
        HttpResponse::default()
            .header("content-type", "text/plain; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// 200 with `value` as an `application/json` body.
    pub fn json(value: &impl Serialize) -> Self {
        // Serializing to a Vec fails only for maps with non-string keys or a failing
        // `Serialize` impl; the error text is then the body, as a 500.
        match serde_json::to_vec(value) {
            Ok(body) => HttpResponse::default()
                .header("content-type", "application/json")
                .body(body),
            Err(err) => HttpResponse::text(format!("the response is not JSON: {err}")).status(500),
        }
    }

    /// With status `status`.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// With one more header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// With body `body`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Bytes(body.into());
        self
    }
}
