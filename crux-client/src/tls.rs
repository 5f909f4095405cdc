//! The HTTPS connector: rustls with the `ring` provider, Mozilla's roots (webpki-roots)
//! plus any certificate the user adds (a private CA, a test's self-signed certificate).

use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::CertificateDer;

use crate::error::ClientError;

/// A connector for `http://` and `https://` URLs trusting Mozilla's roots and `extra`.
pub(crate) fn connector(
    extra: &[CertificateDer<'static>],
) -> Result<HttpsConnector<HttpConnector>, ClientError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|err| ClientError::InvalidCertificate(err.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| ClientError::Tls(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    // `https_or_http` below needs the plain connector to pass `https` URLs through.
    http.enforce_http(false);
    http.set_nodelay(true);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}
