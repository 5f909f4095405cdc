//! [`Client`]: Convex's HTTP API from Rust (`/api/query`, `/api/mutation`, `/api/action`).

use std::sync::Arc;
use std::time::Duration;

use crux_local::LogLines;
use crux_local::encoding::{self, Format};
use crux_runtime::boundary::ENVELOPE_KEY;
use crux_runtime::carrier::TraceParent;
use crux_runtime::envelope::Envelope;
use crux_runtime::function::FunctionKind;
use crux_runtime::signature::{self, ContextSecret, SIGNATURE_HEADER, Signed};
use crux_runtime::{Error, ErrorKind, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ClientError;
use crate::reply;
use crate::tls;
use crate::typed;

/// The `Convex-Client` header this client sends: `crux-rust-<version>`.
pub const CLIENT_NAME: &str = concat!("crux-rust-", env!("CARGO_PKG_VERSION"));

/// The default bound of one call (request, function, reply).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest reply body read; Convex's own result limit is far below it.
const MAX_REPLY: usize = 64 << 20;

/// A client of one deployment's HTTP API: a Convex deployment (`https://<name>.convex.cloud`)
/// or a crux service (`crux-server`). Cheap to clone; clones share the connection pool.
///
/// Calls send `{path, args: [args], format: "convex_encoded_json"}` with `Convex-Client:
/// crux-rust-<version>`, and the admin key or token when set. A query is retried (at most
/// [`ClientBuilder::query_retries`] times) when the deployment cannot be reached or answers
/// 502/503/504; a mutation or action never is (they are not idempotent).
///
/// ```no_run
/// # async fn demo() -> crux_runtime::Result<()> {
/// use crux_client::Client;
/// let client = Client::builder("https://happy-otter-123.convex.cloud")
///     .admin_key(std::env::var("CONVEX_DEPLOY_KEY").unwrap_or_default())
///     .build()?;
/// let count: i64 = client.query("messages:count", &serde_json::json!({})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
    timeout: Duration,
}

#[derive(Debug)]
struct Inner {
    /// The deployment URL without a trailing `/`.
    url: String,
    query: Uri,
    mutation: Uri,
    action: Uri,
    authorization: Option<HeaderValue>,
    /// Signs the contexts sent ([`ClientBuilder::sign_contexts`]).
    context_secret: Option<ContextSecret>,
    query_retries: u32,
    pool: Pool<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// Builds a [`Client`]: [`Client::builder`].
#[derive(Debug)]
pub struct ClientBuilder {
    url: String,
    authorization: Option<std::result::Result<HeaderValue, ClientError>>,
    context_secret: Option<ContextSecret>,
    timeout: Duration,
    query_retries: u32,
    roots: Vec<CertificateDer<'static>>,
}

impl ClientBuilder {
    /// Authenticates as an admin: `Authorization: Convex <key>` (an admin key of a
    /// crux service, or a Convex deploy key). Admin calls may reach internal functions.
    pub fn admin_key(mut self, key: impl AsRef<str>) -> Self {
        self.authorization = Some(header(format!("Convex {}", key.as_ref()), "admin key"));
        self
    }

    /// Authenticates as a user: `Authorization: Bearer <JWT>`.
    pub fn auth_token(mut self, jwt: impl AsRef<str>) -> Self {
        self.authorization = Some(header(format!("Bearer {}", jwt.as_ref()), "auth token"));
        self
    }

    /// Signs the context each call carries (`__crux` and `traceparent`, bound to the
    /// function's kind and path) with `secret`, in a `Crux-Signature` header (v3,
    /// [`crux_runtime::signature`]): what a server whose context policy is
    /// `ContextPolicy::Signed` with the same secret needs to continue the run (without it
    /// the callee runs as a fresh root with a `security.warning`). A call without a
    /// context sends no signature.
    pub fn sign_contexts(mut self, secret: ContextSecret) -> Self {
        self.context_secret = Some(secret);
        self
    }

    /// The bound of each call, from sending the request to reading the reply
    /// ([`DEFAULT_TIMEOUT`] unless set). A call past it fails with [`ErrorKind::Timeout`];
    /// the function may still run to its end on the other side.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a query is retried when the deployment cannot be reached or answers
    /// 502, 503 or 504 (default 2), within the call's timeout. Mutations and actions are
    /// never retried.
    pub fn query_retries(mut self, retries: u32) -> Self {
        self.query_retries = retries;
        self
    }

    /// Trusts `der` (a DER-encoded certificate) as a root, besides Mozilla's roots: a
    /// private CA, or a test server's self-signed certificate.
    pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.roots.push(CertificateDer::from(der.into()));
        self
    }

    /// The client; a typed error names a bad URL, credential or certificate.
    pub fn build(self) -> std::result::Result<Client, ClientError> {
        let url = self.url.trim_end_matches('/').to_owned();
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: self.url.clone(),
            reason: reason.to_owned(),
        };
        let parsed: Uri = url
            .parse()
            .map_err(|err: hyper::http::uri::InvalidUri| invalid(&err.to_string()))?;
        match parsed.scheme_str() {
            Some("http" | "https") => {}
            Some(_) => return Err(invalid("the scheme must be http or https")),
            None => return Err(invalid("it needs a scheme, like https://")),
        }
        if parsed.host().is_none_or(str::is_empty) {
            return Err(invalid("it has no host"));
        }
        if parsed.query().is_some() {
            return Err(invalid("it must not have a query string"));
        }
        let endpoint = |kind: &str| -> std::result::Result<Uri, ClientError> {
            format!("{url}/api/{kind}")
                .parse()
                .map_err(|err: hyper::http::uri::InvalidUri| invalid(&err.to_string()))
        };
        let authorization = self.authorization.transpose()?;
        let pool = Pool::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(tls::connector(&self.roots)?);
        Ok(Client {
            inner: Arc::new(Inner {
                query: endpoint("query")?,
                mutation: endpoint("mutation")?,
                action: endpoint("action")?,
                url,
                authorization,
                context_secret: self.context_secret,
                query_retries: self.query_retries,
                pool,
            }),
            timeout: self.timeout,
        })
    }
}

fn header(value: String, what: &'static str) -> std::result::Result<HeaderValue, ClientError> {
    let mut value =
        HeaderValue::from_str(&value).map_err(|_| ClientError::InvalidCredential { what })?;
    value.set_sensitive(true);
    Ok(value)
}

impl Client {
    /// A client of the deployment at `url` with the defaults (no auth, [`DEFAULT_TIMEOUT`]).
    pub fn new(url: impl Into<String>) -> std::result::Result<Client, ClientError> {
        Client::builder(url).build()
    }

    /// Starts a client of the deployment at `url` (`https://<name>.convex.cloud`,
    /// `http://127.0.0.1:3210`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            authorization: None,
            context_secret: None,
            timeout: DEFAULT_TIMEOUT,
            query_retries: 2,
            roots: Vec::new(),
        }
    }

    /// The deployment URL (without a trailing `/`).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// This client with another per-call timeout (sharing the connection pool).
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            inner: self.inner.clone(),
            timeout,
        }
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs the query at `path` (`dir/file:export`) with `args`, outside any Crux hop.
    pub async fn query<A: Serialize, O: DeserializeOwned>(
        &self,
        path: &str,
        args: &A,
    ) -> Result<O> {
        self.typed(FunctionKind::Query, path, args, None, None)
            .await
    }

    /// Runs the mutation at `path` with `args`, outside any Crux hop.
    pub async fn mutation<A: Serialize, O: DeserializeOwned>(
        &self,
        path: &str,
        args: &A,
    ) -> Result<O> {
        self.typed(FunctionKind::Mutation, path, args, None, None)
            .await
    }

    /// Runs the action at `path` with `args`, outside any Crux hop.
    pub async fn action<A: Serialize, O: DeserializeOwned>(
        &self,
        path: &str,
        args: &A,
    ) -> Result<O> {
        self.typed(FunctionKind::Action, path, args, None, None)
            .await
    }

    /// A typed call with `envelope` as `__crux` (and its `traceparent` header): `args`
    /// serialized straight into `convex_encoded_json` and the reply read straight out of
    /// it ([`typed`](crate::typed)), so NaN, ±∞, -0, int64 and bytes survive.
    pub(crate) async fn typed<A: Serialize, O: DeserializeOwned>(
        &self,
        kind: FunctionKind,
        path: &str,
        args: &A,
        envelope: Option<&Envelope>,
        log_lines: Option<&LogLines>,
    ) -> Result<O> {
        let args = typed::to_encoded(args).map_err(|err| {
            Error::new(
                ErrorKind::ArgumentValidation,
                format!("ArgumentValidationError: the arguments of '{path}' cannot be sent: {err}"),
            )
        })?;
        let value = self
            .call_encoded(kind, path, args, envelope, log_lines)
            .await?;
        typed::from_encoded(value).map_err(|err| {
            Error::new(
                ErrorKind::ReturnsValidation,
                format!("ReturnsValidationError: the result of '{path}' does not match the caller's type: {err}"),
            )
        })
    }

    /// Calls the function at `path` with `args` as a crux deployment's JSON (integers as
    /// JSON integers, bytes as `{"$bytes": ..}`), encoded as `convex_encoded_json`; returns
    /// the value decoded the same way (a NaN or ±∞ in it is an error: JSON has none; the
    /// typed calls have no such limit). `envelope` travels as `__crux`.
    pub async fn call_json(
        &self,
        kind: FunctionKind,
        path: &str,
        args: Value,
        envelope: Option<Envelope>,
    ) -> Result<Value> {
        let args = encoding::encode(args, Format::ConvexEncodedJson).map_err(|err| {
            Error::new(
                ErrorKind::ArgumentValidation,
                format!(
                    "ArgumentValidationError: {}. Path: {}",
                    err.reason, err.path
                ),
            )
        })?;
        let value = self
            .call_encoded(kind, path, args, envelope.as_ref(), None)
            .await?;
        encoding::decode(value, Format::ConvexEncodedJson).map_err(|err| {
            Error::new(
                ErrorKind::ReturnsValidation,
                format!(
                    "ReturnsValidationError: the result of '{path}' cannot be read: {}. Path: {}",
                    err.reason, err.path
                ),
            )
        })
    }

    /// The call itself: `args` already in `convex_encoded_json`, the reply's value as sent.
    async fn call_encoded(
        &self,
        kind: FunctionKind,
        path: &str,
        args: Value,
        envelope: Option<&Envelope>,
        log_lines: Option<&LogLines>,
    ) -> Result<Value> {
        let traceparent = envelope.and_then(traceparent_of).map(|t| t.to_string());
        // Written once: the text sent is the text signed. Only an object's args carry it
        // (`request_body` sends other args as they are), so only then is it signed.
        let crux = envelope
            .filter(|_| args.is_object())
            .map(Envelope::to_json_string);
        let body = request_body(path, args, crux.as_deref()).map_err(Error::msg)?;
        let signed = self.signature(kind, path, traceparent.as_deref(), crux.as_deref());
        let headers = Headers {
            traceparent,
            signature: signed,
        };
        let attempt = self.attempts(kind, path, body, &headers, log_lines);
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "TimeoutError: '{path}' at {} did not answer within {:?}",
                    self.inner.url, self.timeout
                ),
            )),
        }
    }

    /// The `Crux-Signature` of a context sent with the configured secret (none without a
    /// secret or a context).
    fn signature(
        &self,
        kind: FunctionKind,
        path: &str,
        traceparent: Option<&str>,
        crux: Option<&str>,
    ) -> Option<String> {
        let secret = self.inner.context_secret.as_ref()?;
        if traceparent.is_none() && crux.is_none() {
            return None;
        }
        let signed = Signed::call(
            kind,
            path,
            traceparent.unwrap_or_default(),
            crux.unwrap_or_default(),
        );
        Some(signature::sign_context(secret, &signed))
    }

    /// One attempt, or several for a query that could not reach the deployment.
    async fn attempts(
        &self,
        kind: FunctionKind,
        path: &str,
        body: Bytes,
        headers: &Headers,
        log_lines: Option<&LogLines>,
    ) -> Result<Value> {
        let retries = match kind {
            FunctionKind::Query => self.inner.query_retries,
            FunctionKind::Mutation | FunctionKind::Action => 0,
        };
        let mut attempt = 0;
        loop {
            match self.send(kind, path, body.clone(), headers).await {
                Sent::Reply(status, reply) if attempt < retries && matches!(status, 502..=504) => {
                    let _ = reply;
                }
                Sent::Reply(status, reply) => {
                    return reply::read(path, &self.inner.url, status, &reply, log_lines);
                }
                Sent::Unreachable(_) if attempt < retries => {}
                Sent::Unreachable(err) => return Err(err),
                Sent::Failed(err) => return Err(err),
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
        }
    }

    async fn send(&self, kind: FunctionKind, path: &str, body: Bytes, headers: &Headers) -> Sent {
        let uri = match kind {
            FunctionKind::Query => &self.inner.query,
            FunctionKind::Mutation => &self.inner.mutation,
            FunctionKind::Action => &self.inner.action,
        };
        let mut request = Request::post(uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("convex-client", CLIENT_NAME);
        if let Some(auth) = &self.inner.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(traceparent) = &headers.traceparent {
            request = request.header("traceparent", traceparent);
        }
        if let Some(signature) = &headers.signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let request = match request.body(Full::new(body)) {
            Ok(request) => request,
            Err(err) => return Sent::Failed(Error::msg(err)),
        };
        let response = match self.inner.pool.request(request).await {
            Ok(response) => response,
            Err(err) => {
                let error = Error::msg(format!(
                    "could not reach {} for '{path}': {}",
                    self.inner.url,
                    chain(&err)
                ));
                // Only a failed connect is known not to have reached the function.
                return if err.is_connect() {
                    Sent::Unreachable(error)
                } else {
                    Sent::Failed(error)
                };
            }
        };
        let status = response.status().as_u16();
        match Limited::new(response.into_body(), MAX_REPLY)
            .collect()
            .await
        {
            Ok(body) => Sent::Reply(status, body.to_bytes()),
            Err(err) => Sent::Failed(Error::msg(format!(
                "the reply of {} to '{path}' could not be read: {err}",
                self.inner.url
            ))),
        }
    }
}

/// The context headers of a call.
struct Headers {
    /// `traceparent`.
    traceparent: Option<String>,
    /// `Crux-Signature`.
    signature: Option<String>,
}

/// `{"path", "format": "convex_encoded_json", "args": [args + __crux]}` as bytes. `__crux`
/// is the envelope's own JSON text (`envelope`), written after the encoding (plain JSON, as
/// a Crux TypeScript wrapper reads it: its numbers are numbers, not `$integer`s), replacing
/// an args field of that name; args that are not an object travel without it.
fn request_body(path: &str, args: Value, envelope: Option<&str>) -> serde_json::Result<Bytes> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"path\":");
    serde_json::to_writer(&mut out, path)?;
    out.extend_from_slice(b",\"format\":\"convex_encoded_json\",\"args\":[");
    match (args, envelope) {
        (Value::Object(mut fields), Some(envelope)) => {
            fields.remove(ENVELOPE_KEY);
            serde_json::to_writer(&mut out, &fields)?;
            // `{...}` → `{..., "__crux": <envelope>}`
            out.pop();
            if !fields.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"__crux\":");
            out.extend_from_slice(envelope.as_bytes());
            out.push(b'}');
        }
        (args, _) => serde_json::to_writer(&mut out, &args)?,
    }
    out.extend_from_slice(b"]}");
    Ok(Bytes::from(out))
}

/// What one request came to.
enum Sent {
    /// An HTTP reply: status and body.
    Reply(u16, Bytes),
    /// No connection: the function did not run.
    Unreachable(Error),
    /// The request may have reached the function.
    Failed(Error),
}

/// An error and its sources, `: `-separated (hyper's own text alone says little).
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

/// The `traceparent` naming the hop's span: the boundary span of an action hop, else the
/// caller's innermost span.
fn traceparent_of(envelope: &Envelope) -> Option<TraceParent> {
    let context = envelope.observability.as_ref()?;
    let parent_id = envelope
        .boundary
        .as_ref()
        .map(|b| b.span_id)
        .or(context.current_span_id)
        .unwrap_or_else(|| context.run_id.root_span_id());
    Some(TraceParent {
        trace_id: context.trace_id,
        parent_id,
        flags: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crux_runtime::observe::{Observer, RunOptions};
    use serde_json::json;

    fn parsed(body: Bytes) -> Value {
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn the_envelope_joins_the_args_as_plain_json_and_replaces_a_field_of_its_name() {
        let observer = Observer::builder().build();
        let run = observer.open_run(RunOptions::new("r", "agent.run"));
        let _in_run = run.scope().enter();
        let envelope = crux_runtime::boundary::Hop::action("plan", "research:plan")
            .envelope()
            .unwrap();
        let args = json!({"topic": "tides", "__crux": "forged"});
        let text = envelope.to_json_string();
        let body = parsed(request_body("research:plan", args, Some(&text)).unwrap());
        assert_eq!(body["path"], "research:plan");
        assert_eq!(body["format"], "convex_encoded_json");
        assert_eq!(body["args"][0]["topic"], "tides");
        assert_eq!(body["args"][0]["__crux"], envelope.to_value());
        assert_eq!(
            body["args"][0]["__crux"]["v"], 1,
            "a plain number, not an $integer"
        );
        // Empty args, no envelope, non-object args.
        let body = parsed(request_body("a:b", json!({}), Some(&text)).unwrap());
        assert_eq!(body["args"][0], json!({"__crux": envelope.to_value()}));
        let body = parsed(request_body("a:b", json!({"x": 1}), None).unwrap());
        assert_eq!(body["args"], json!([{"x": 1}]));
        let body = parsed(request_body("a:b", json!([1]), Some(&text)).unwrap());
        assert_eq!(body["args"], json!([[1]]));
    }
}
