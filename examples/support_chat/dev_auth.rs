//! Who the example's callers are: an HS256 issuer for development, so `curl` and the npm
//! client can call `chat:respond` as a signed-in user (`--print-test-token` prints a token).
//! A real deployment trusts its identity provider's RS256/ES256 keys instead
//! (`AuthProvider::jwks`).

use std::time::Duration;

/// The development issuer (`iss`) and audience (`aud`).
pub const ISSUER: &str = "https://support-chat.crux.dev";
pub const AUDIENCE: &str = "support-chat";

/// The HS256 secret: `CRUX_DEV_JWT_SECRET`, or a fixed development one (never deploy it).
pub fn secret() -> String {
    std::env::var("CRUX_DEV_JWT_SECRET")
        .unwrap_or_else(|_| "support-chat development secret: do not deploy".to_owned())
}

/// The identity provider the example's server trusts.
pub fn provider() -> crux::Result<crux_server::AuthProvider> {
    crux_server::AuthProvider::new(ISSUER, AUDIENCE)
        .hs256_secret(secret())
        .map_err(|err| crux::Error::msg(err.to_string()))
}

/// A token for `subject`, valid for an hour.
pub fn token(subject: &str) -> String {
    crux_server::hs256_token(
        secret().as_bytes(),
        ISSUER,
        AUDIENCE,
        subject,
        Duration::from_secs(3600),
        serde_json::json!({}),
    )
}

/// The identity an in-process call is made for (what a verified token would give).
pub fn identity(subject: &str) -> crux::local::UserIdentity {
    crux::local::UserIdentity::new(ISSUER, subject)
}
