//! The OTLP exporter's HTTP client: `ureq`, blocking, HTTP or HTTPS (rustls with the
//! `ring` provider; Mozilla's roots, or only the roots the user gives), with a hard timeout
//! per request and the user's headers on every request. It runs only on the export thread,
//! never on an async runtime.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use ureq::http::{HeaderName, HeaderValue};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// Largest response body read back from a collector.
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

#[derive(Debug)]
pub(crate) struct UreqClient {
    agent: ureq::Agent,
    /// Sent on every request, replacing one of the same name.
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl UreqClient {
    /// `roots`: DER certificates to trust instead of Mozilla's roots (none: Mozilla's).
    pub(crate) fn new(
        timeout: Duration,
        headers: Vec<(HeaderName, HeaderValue)>,
        roots: &[Vec<u8>],
    ) -> Self {
        let mut tls = TlsConfig::builder();
        if !roots.is_empty() {
            let certs: Vec<Certificate<'static>> = roots
                .iter()
                .map(|der| Certificate::from_der(der).to_owned())
                .collect();
            tls = tls.root_certs(RootCerts::Specific(Arc::new(certs)));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls.build())
            .build()
            .into();
        Self { agent, headers }
    }

    fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (mut parts, body) = request.into_parts();
        for (name, value) in &self.headers {
            parts.headers.insert(name.clone(), value.clone());
        }
        let response = self.agent.run(Request::from_parts(parts, &body[..]))?;
        let (parts, mut body) = response.into_parts();
        let bytes = body.with_config().limit(MAX_RESPONSE).read_to_vec()?;
        Ok(Response::from_parts(parts, Bytes::from(bytes)))
    }
}

// Written out instead of `#[async_trait]`: the call blocks, which is what the export
// thread wants.
impl HttpClient for UreqClient {
    fn send_bytes<'a, 'b>(
        &'a self,
        request: Request<Bytes>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>,
    >
    where
        'a: 'b,
        Self: 'b,
    {
        let result = self.send(request);
        Box::pin(std::future::ready(result))
    }
}

/// A header as HTTP allows it, marked sensitive (kept out of debug output); else why not.
pub(crate) fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), &'static str> {
    let name =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| "not a valid HTTP header name")?;
    let mut value = HeaderValue::from_str(value).map_err(
        |_| "its value has characters HTTP does not allow (control characters, newlines)",
    )?;
    value.set_sensitive(true);
    Ok((name, value))
}
