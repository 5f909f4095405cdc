//! What can be wrong with a client's configuration.

/// Why a [`Client`](crate::Client) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The deployment URL is not an `http://` or `https://` URL with a host.
    #[error("invalid deployment URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An admin key or token cannot be sent as an HTTP header value.
    #[error("invalid {what}: it must be visible ASCII (no control characters or newlines)")]
    InvalidCredential {
        /// `admin key` or `auth token`.
        what: &'static str,
    },
    /// A root certificate given to trust is not a certificate rustls accepts.
    #[error("invalid root certificate: {0}")]
    InvalidCertificate(String),
    /// The TLS configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}
