//! User identities from `Authorization: Bearer <JWT>`: the configured providers (issuer,
//! audience, keys) and the verification of a token against them.
//!
//! As on Convex, the token's `iss` picks the provider (none: `NoAuthProvider`); the
//! provider's keys check the signature (the header's `alg` must be one the key is for:
//! RS256, ES256 or HS256; `none` never is), then `iss`, `aud`, `exp` and `nbf` (with a
//! small leeway) are checked. The claims become the handler's `ctx.auth` identity.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};

use crux_local::UserIdentity;
use crux_runtime::wire::cap_text;

/// How far `exp` and `nbf` may be off the server's clock by default: 30 s.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// The shortest HS256 secret a provider accepts (RFC 7518 §3.2: at least the hash size).
pub const MIN_HS256_SECRET: usize = 32;

/// A JWT issuer the server trusts, like a provider in Convex's `auth.config.ts`: its
/// `issuer` (`domain`), the audience its tokens are for (`applicationID`) and the keys that
/// sign them.
///
/// ```
/// use crux_server::AuthProvider;
/// // The JWKS the issuer serves at its `jwks_uri` (here one P-256 signing key).
/// let jwks = r#"{"keys": [{"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256",
///     "crv": "P-256", "x": "aYI-uMRxtE_Jf_JigFYwe7Q8yjx4WtuaZRQXRFzw604",
///     "y": "h9v9bwiLaxyQy7T5G4th5JCRRVeIremmtOEJfmbB5K4"}]}"#;
/// let provider = AuthProvider::new("https://auth.example.com", "my-app").jwks(jwks)?;
/// // A set with no key to verify with is refused, not accepted as a provider that
/// // verifies nothing.
/// assert!(AuthProvider::new("https://auth.example.com", "my-app").jwks(r#"{"keys": []}"#).is_err());
/// # let _ = provider;
/// # Ok::<(), crux_server::AuthConfigError>(())
/// ```
#[derive(Clone)]
pub struct AuthProvider {
    issuer: String,
    audience: String,
    keys: Vec<VerifyingKey>,
    leeway: Duration,
}

/// One key of a provider and the one algorithm it verifies.
#[derive(Clone)]
struct VerifyingKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

impl fmt::Debug for AuthProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the keys: an HS256 secret must not reach a log.
        f.debug_struct("AuthProvider")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &self.keys.len())
            .field("leeway", &self.leeway)
            .finish()
    }
}

/// A provider's configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// A PEM key did not parse as the kind of key it was given as.
    #[error("the {what} PEM key of auth provider `{issuer}` did not parse: {reason}")]
    BadPem {
        /// The provider's issuer.
        issuer: String,
        /// `RSA public` or `EC public`.
        what: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// The JWKS document is not a JSON `{"keys": [...]}` of JWKs, or holds no key to verify
    /// RS256 or ES256 signatures with.
    #[error("the JWKS of auth provider `{issuer}` cannot be used: {reason}")]
    BadJwks {
        /// The provider's issuer.
        issuer: String,
        /// What was wrong.
        reason: String,
    },
    /// An RSA or P-256 JWK that cannot be used: its `alg` names another algorithm, or its
    /// parameters are not a key.
    #[error(
        "key {index} of the JWKS of auth provider `{issuer}` is not supported: {reason} (RSA \
         keys verify RS256, P-256 EC keys ES256)"
    )]
    UnsupportedJwk {
        /// The provider's issuer.
        issuer: String,
        /// The key's position in `keys`.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// An HS256 secret shorter than [`MIN_HS256_SECRET`] bytes.
    #[error(
        "the HS256 secret of auth provider `{issuer}` has {len} bytes; at least \
         {MIN_HS256_SECRET} are needed"
    )]
    WeakSecret {
        /// The provider's issuer.
        issuer: String,
        /// The secret's length.
        len: usize,
    },
}

impl AuthProvider {
    /// A provider whose tokens carry `iss` = `issuer` and `aud` = `audience` (Convex's
    /// `domain` and `applicationID`). Add its keys with [`rsa_pem`](Self::rsa_pem),
    /// [`ec_pem`](Self::ec_pem), [`jwks`](Self::jwks) or
    /// [`hs256_secret`](Self::hs256_secret).
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        AuthProvider {
            issuer: issuer.into(),
            audience: audience.into(),
            keys: Vec::new(),
            leeway: DEFAULT_LEEWAY,
        }
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// An RSA public key (PEM, `PUBLIC KEY` or `RSA PUBLIC KEY`) verifying RS256 tokens.
    ///
    /// # Errors
    ///
    /// [`AuthConfigError::BadPem`] when it does not parse.
    pub fn rsa_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, AuthConfigError> {
        let key = DecodingKey::from_rsa_pem(pem.as_ref())
            .map_err(|err| self.bad_pem("RSA public", err))?;
        self.keys.push(VerifyingKey {
            kid: None,
            algorithm: Algorithm::RS256,
            key,
        });
        Ok(self)
    }

    /// A P-256 EC public key (PEM) verifying ES256 tokens.
    ///
    /// # Errors
    ///
    /// [`AuthConfigError::BadPem`] when it does not parse.
    pub fn ec_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, AuthConfigError> {
        let key =
            DecodingKey::from_ec_pem(pem.as_ref()).map_err(|err| self.bad_pem("EC public", err))?;
        self.keys.push(VerifyingKey {
            kid: None,
            algorithm: Algorithm::ES256,
            key,
        });
        Ok(self)
    }

    /// The keys of a JWKS document (the JSON an issuer serves at its `jwks_uri`): RSA keys
    /// verify RS256, P-256 EC keys ES256. A token's `kid` picks its key when both have one.
    /// Keys of other kinds (Ed25519, P-384, …) and encryption keys (`"use": "enc"`), which
    /// real identity providers publish beside their signing keys, are skipped.
    ///
    /// # Errors
    ///
    /// [`AuthConfigError::BadJwks`] when it is not a JWK set or holds no RS256/ES256
    /// signing key, [`AuthConfigError::UnsupportedJwk`] for an RSA or P-256 key that
    /// cannot be used (its `alg` names another algorithm, or its parameters are bad).
    pub fn jwks(mut self, json: &str) -> Result<Self, AuthConfigError> {
        let set: JwkSet = serde_json::from_str(json).map_err(|err| AuthConfigError::BadJwks {
            issuer: self.issuer.clone(),
            reason: err.to_string(),
        })?;
        let before = self.keys.len();
        for (index, jwk) in set.keys.iter().enumerate() {
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let unsupported = |reason: String| AuthConfigError::UnsupportedJwk {
                issuer: self.issuer.clone(),
                index,
                reason,
            };
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                // Not a kind this server verifies: tokens naming it fail at verification.
                _ => continue,
            };
            if let Some(alg) = jwk.common.key_algorithm {
                let named = format!("{alg:?}");
                if named != format!("{algorithm:?}") {
                    return Err(unsupported(format!("`alg` is {named}")));
                }
            }
            let key = DecodingKey::from_jwk(jwk).map_err(|err| unsupported(err.to_string()))?;
            self.keys.push(VerifyingKey {
                kid: jwk.common.key_id.clone(),
                algorithm,
                key,
            });
        }
        if self.keys.len() == before {
            return Err(AuthConfigError::BadJwks {
                issuer: self.issuer.clone(),
                reason: "it holds no RS256 (RSA) or ES256 (P-256) signing key".into(),
            });
        }
        Ok(self)
    }

    /// A shared secret verifying HS256 tokens: for development and for services that mint
    /// their own tokens ([`hs256_token`] makes one). Prefer RS256/ES256 keys in
    /// production: whoever can verify an HS256 token can also forge one.
    ///
    /// # Errors
    ///
    /// [`AuthConfigError::WeakSecret`] below [`MIN_HS256_SECRET`] bytes.
    pub fn hs256_secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, AuthConfigError> {
        let secret = secret.as_ref();
        if secret.len() < MIN_HS256_SECRET {
            return Err(AuthConfigError::WeakSecret {
                issuer: self.issuer.clone(),
                len: secret.len(),
            });
        }
        self.keys.push(VerifyingKey {
            kid: None,
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
        });
        Ok(self)
    }

    /// How far `exp` and `nbf` may be off the server's clock (default [`DEFAULT_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    fn bad_pem(&self, what: &'static str, err: jsonwebtoken::errors::Error) -> AuthConfigError {
        AuthConfigError::BadPem {
            issuer: self.issuer.clone(),
            what,
            reason: err.to_string(),
        }
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway.as_secs();
        validation
    }
}

/// Why a bearer token was refused. The server answers 401 with Convex's code
/// (`NoAuthProvider` for [`AuthError::NoProvider`], `InvalidAuthHeader` otherwise) and this
/// text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No configured provider has the token's issuer.
    #[error("No auth provider found matching the given token (issuer {issuer:?})")]
    NoProvider {
        /// The token's `iss`, unverified (cut to 200 characters).
        issuer: String,
    },
    /// The token is not a JWT this server can read.
    #[error("Could not parse the JWT: {0}")]
    Malformed(String),
    /// The header's `alg` is not one the provider has a key for.
    #[error(
        "Could not verify the JWT: its alg {alg} is not one auth provider {issuer:?} has a key \
         for"
    )]
    Algorithm {
        /// The header's `alg`.
        alg: String,
        /// The provider.
        issuer: String,
    },
    /// The header's `kid` names no key the provider has for its `alg` (a rotated key: pass
    /// the issuer's current JWKS).
    #[error("Could not verify the JWT: auth provider {issuer:?} has no key with kid {kid:?}")]
    UnknownKey {
        /// The header's `kid` (cut to 200 characters).
        kid: String,
        /// The provider.
        issuer: String,
    },
    /// A claim failed validation, or the signature did not verify.
    #[error(
        "Could not verify OIDC token claim. Check that the token signature is valid and the \
         token hasn't expired. ({0})"
    )]
    Invalid(String),
}

impl AuthError {
    /// Convex's error code for it.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::NoProvider { .. } => "NoAuthProvider",
            _ => "InvalidAuthHeader",
        }
    }
}

/// The providers a server trusts.
#[derive(Clone, Debug, Default)]
pub(crate) struct Verifier {
    providers: Vec<AuthProvider>,
}

impl Verifier {
    pub(crate) fn add(&mut self, provider: AuthProvider) {
        self.providers.push(provider);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// For an HTTP action, whose `Authorization` may be its own business (a webhook's
    /// secret): `None` when the bearer token is not a JWT of a configured issuer; the
    /// verification's outcome when it is.
    pub(crate) fn verify_if_ours(&self, token: &str) -> Option<Result<UserIdentity, AuthError>> {
        match self.verify(token) {
            Err(AuthError::NoProvider { .. } | AuthError::Malformed(_)) => None,
            outcome => Some(outcome),
        }
    }

    /// The identity a bearer token proves: the provider its `iss` names verifies it.
    pub(crate) fn verify(&self, token: &str) -> Result<UserIdentity, AuthError> {
        let token = token.trim();
        let (header, issuer) = read_unverified(token)?;
        match self.providers.iter().find(|p| p.issuer == issuer) {
            Some(provider) => provider.verify_read(token, &header),
            None => Err(no_provider(&issuer)),
        }
    }
}

impl AuthProvider {
    /// Verifies `token` against this provider alone (what the server does for a bearer
    /// token whose `iss` is this provider's): the signature with a key for the header's
    /// `alg` (and `kid`), then `iss`, `aud`, `exp` (required) and `nbf`.
    ///
    /// # Errors
    ///
    /// The [`AuthError`] saying what was wrong ([`AuthError::NoProvider`] for another
    /// issuer).
    pub fn verify(&self, token: &str) -> Result<UserIdentity, AuthError> {
        let token = token.trim();
        let (header, issuer) = read_unverified(token)?;
        if issuer != self.issuer {
            return Err(no_provider(&issuer));
        }
        self.verify_read(token, &header)
    }

    fn verify_read(&self, token: &str, header: &Header) -> Result<UserIdentity, AuthError> {
        // A token naming its key (`kid`) is checked only against that key or keys with no id.
        let candidates: Vec<&VerifyingKey> = self
            .keys
            .iter()
            .filter(|k| k.algorithm == header.alg)
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(wanted), Some(own)) => wanted == own,
                _ => true,
            })
            .collect();
        if candidates.is_empty() {
            if let Some(kid) = &header.kid
                && self.keys.iter().any(|k| k.algorithm == header.alg)
            {
                return Err(AuthError::UnknownKey {
                    kid: cap_text(kid, 200).into_owned(),
                    issuer: self.issuer.clone(),
                });
            }
            return Err(AuthError::Algorithm {
                alg: format!("{:?}", header.alg),
                issuer: self.issuer.clone(),
            });
        }
        let validation = self.validation(header.alg);
        let mut last = None;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => {
                    return UserIdentity::from_claims(data.claims).map_err(AuthError::Invalid);
                }
                // Another key of the same provider may have signed it.
                Err(err) if *err.kind() == JwtErrorKind::InvalidSignature => last = Some(err),
                Err(err) => return Err(AuthError::Invalid(describe(&err))),
            }
        }
        Err(AuthError::Invalid(
            last.as_ref()
                .map_or_else(|| "no key verified it".into(), describe),
        ))
    }
}

fn no_provider(issuer: &str) -> AuthError {
    AuthError::NoProvider {
        issuer: issuer.chars().take(200).collect(),
    }
}

/// A token's header and its `iss`, before it is verified: only to pick the provider and key
/// that then verify it.
fn read_unverified(token: &str) -> Result<(Header, String), AuthError> {
    let header = jsonwebtoken::decode_header(token).map_err(|err| {
        AuthError::Malformed(match err.kind() {
            JwtErrorKind::Json(_) => "its header is not a JWS header with alg RS256, ES256 or \
                                      HS256 (an unsigned token, alg none, is never accepted)"
                .to_owned(),
            _ => "it is not three base64url parts separated by dots, the first a JWS header"
                .to_owned(),
        })
    })?;
    Ok((header, unverified_issuer(token)?))
}

/// The `iss` of a token before it is verified: only to pick the provider whose keys then
/// verify it.
fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    let mut peek = Validation::default();
    peek.insecure_disable_signature_validation();
    peek.validate_exp = false;
    peek.validate_aud = false;
    peek.required_spec_claims.clear();
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(token, &DecodingKey::from_secret(&[]), &peek)
            .map_err(|err| {
                AuthError::Malformed(format!("its claims are not a JSON object: {err}"))
            })?;
    match data.claims.get("iss") {
        Some(Value::String(iss)) => Ok(iss.clone()),
        _ => Err(AuthError::Malformed(
            "it has no `iss` (issuer) string claim".into(),
        )),
    }
}

/// A validation failure in words.
fn describe(err: &jsonwebtoken::errors::Error) -> String {
    match err.kind() {
        JwtErrorKind::InvalidSignature => "the signature does not verify".into(),
        JwtErrorKind::ExpiredSignature => "the token has expired (`exp`)".into(),
        JwtErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".into(),
        JwtErrorKind::InvalidIssuer => "wrong issuer (`iss`)".into(),
        JwtErrorKind::InvalidAudience => "the token is for another application (`aud`)".into(),
        JwtErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        JwtErrorKind::InvalidAlgorithm => "the algorithm does not match the key".into(),
        _ => err.to_string(),
    }
}

/// An HS256 token for `subject`, valid for `valid_for`, that an [`AuthProvider`] with the
/// same `issuer`, `audience` and [`hs256_secret`](AuthProvider::hs256_secret) accepts: for
/// development, tests and services minting their own tokens. `claims` adds or overrides
/// claims (`name`, `email`, custom ones).
///
/// ```
/// let token = crux_server::hs256_token(
///     b"a development secret of 32 bytes or more",
///     "https://dev.example",
///     "my-app",
///     "user-ada",
///     std::time::Duration::from_secs(3600),
///     serde_json::json!({"name": "Ada"}),
/// );
/// assert_eq!(token.split('.').count(), 3);
/// ```
pub fn hs256_token(
    secret: &[u8],
    issuer: &str,
    audience: &str,
    subject: &str,
    valid_for: Duration,
    claims: Value,
) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut all = json!({
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "exp": now.saturating_add(valid_for.as_secs()),
    });
    if let (Some(all), Value::Object(extra)) = (all.as_object_mut(), claims) {
        all.extend(extra);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &all,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing of a JSON object cannot fail")
}
