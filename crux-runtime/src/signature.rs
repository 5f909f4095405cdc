//! Signed contexts: a caller proves it may continue a run by signing the context it sends
//! with a secret it shares with the server (`crux_server::ContextPolicy::Signed`; a
//! `crux_client::Client` signs with `ClientBuilder::sign_contexts`).
//!
//! The signature travels in one header:
//!
//! ```text
//! Crux-Signature: t=<unix seconds>,v2=<HMAC-SHA256, 64 lowercase hex digits>
//! ```
//!
//! and is the HMAC-SHA256, keyed with the shared secret, of the UTF-8 text
//!
//! ```text
//! crux-context-v2\n<t>\n<kind>\n<path>\n<traceparent>\n<__crux>
//! ```
//!
//! where `<t>` is the decimal `t` of the header; `<kind>` is `query`, `mutation` or
//! `action` for a function call (the kind of the function called, whatever the route) and
//! `http` for an HTTP action; `<path>` is the function's path as the request names it
//! (`messages:send`; for `/api/run/messages/send`, `messages:send`), or an HTTP action's
//! URL path (`/webhook`, no query string); `<traceparent>` is the exact value of the
//! request's `traceparent` header (empty without one) and `<__crux>` the exact JSON text of
//! the `__crux` value in the request's `args` (empty without one): the bytes from its first
//! character to its last, as they appear in the body (or in the `args` query parameter of
//! `GET /api/query`, after percent-decoding). A caller signs the text it sends, so no
//! canonical JSON is needed. Binding the kind and the path means a signature captured on a
//! call to one function cannot be replayed on another. Several `v2=` entries may be given
//! (a secret being rotated): one matching is enough. The server accepts the context while
//! `t` is within `max_age` of its clock (either way); otherwise, or when the signature is
//! missing or wrong, the call runs as a fresh root whose run records a `security.warning`
//! with the reason, and never fails for it. (`v1`, which bound neither kind nor path, is no
//! longer accepted.)

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

use crate::function::FunctionKind;

/// The header carrying a context's signature.
pub const SIGNATURE_HEADER: &str = "crux-signature";

/// The shortest secret [`ContextSecret::new`] accepts, in bytes.
pub const MIN_SECRET: usize = 32;

/// The prefix of the signed text, naming the scheme's version.
const SCHEME: &str = "crux-context-v2";

/// A shared secret for signing contexts; its `Debug` never shows it.
#[derive(Clone)]
pub struct ContextSecret {
    key: hmac::Key,
}

impl fmt::Debug for ContextSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContextSecret(..)")
    }
}

impl PartialEq for ContextSecret {
    /// Secrets are never compared; two are equal only if they are the same value.
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for ContextSecret {}

/// A context secret was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a context signing secret needs at least {MIN_SECRET} bytes; this one has {len}")]
pub struct WeakSecret {
    /// The secret's length.
    pub len: usize,
}

impl ContextSecret {
    /// A secret of at least [`MIN_SECRET`] bytes (32 random bytes, say, shared by the
    /// callers and the server).
    ///
    /// # Errors
    ///
    /// [`WeakSecret`] when it is shorter.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, WeakSecret> {
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET {
            return Err(WeakSecret { len: secret.len() });
        }
        Ok(ContextSecret {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    fn tag(&self, unix_seconds: u64, signed: &Signed<'_>) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        for part in [
            SCHEME,
            "\n",
            &unix_seconds.to_string(),
            "\n",
            signed.kind,
            "\n",
            signed.path,
            "\n",
            signed.traceparent,
            "\n",
            signed.crux,
        ] {
            context.update(part.as_bytes());
        }
        context.sign()
    }
}

/// What a signature covers: the call (its kind and path) and the context it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signed<'a> {
    /// `query`, `mutation`, `action` or `http` ([`Signed::call`], [`Signed::http`]).
    pub kind: &'a str,
    /// The function's path (`messages:send`), or an HTTP action's URL path.
    pub path: &'a str,
    /// The `traceparent` header's exact value; `""` when not sent.
    pub traceparent: &'a str,
    /// The exact JSON text of `__crux` in the args; `""` when not sent.
    pub crux: &'a str,
}

impl<'a> Signed<'a> {
    /// A call of the function of `kind` at `path`.
    pub fn call(kind: FunctionKind, path: &'a str, traceparent: &'a str, crux: &'a str) -> Self {
        let kind = match kind {
            FunctionKind::Query => "query",
            FunctionKind::Mutation => "mutation",
            FunctionKind::Action => "action",
        };
        Signed {
            kind,
            path,
            traceparent,
            crux,
        }
    }

    /// A request to the HTTP action at the URL path `path`.
    pub fn http(path: &'a str, traceparent: &'a str) -> Self {
        Signed {
            kind: "http",
            path,
            traceparent,
            crux: "",
        }
    }

    /// Whether each line of the signed text is one field: a line break in the kind, path
    /// or traceparent could move text from one field to the next.
    fn is_unambiguous(&self) -> bool {
        [self.kind, self.path, self.traceparent]
            .iter()
            .all(|field| !field.contains(['\n', '\r']))
    }
}

/// The `Crux-Signature` header value for a call and its context, sent now.
///
/// ```
/// use crux_runtime::FunctionKind;
/// use crux_runtime::signature::{ContextSecret, Signed, sign_context};
/// let secret = ContextSecret::new("a shared secret of thirty-two bytes!")?;
/// let crux = r#"{"v":1}"#;
/// let header = sign_context(&secret, &Signed::call(FunctionKind::Action, "a:b", "", crux));
/// assert!(header.starts_with("t=") && header.contains(",v2="));
/// # Ok::<(), crux_runtime::signature::WeakSecret>(())
/// ```
pub fn sign_context(secret: &ContextSecret, signed: &Signed<'_>) -> String {
    sign_context_at(secret, unix_now(), signed)
}

/// [`sign_context`] with the time of signing given (seconds since the Unix epoch).
pub fn sign_context_at(secret: &ContextSecret, unix_seconds: u64, signed: &Signed<'_>) -> String {
    let tag = secret.tag(unix_seconds, signed);
    format!("t={unix_seconds},v2={}", hex(tag.as_ref()))
}

/// Why a signed context was not accepted: the `security.warning`'s reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// No `Crux-Signature` header came with the context.
    #[error("the context came without a Crux-Signature header")]
    Missing,
    /// The header is not `t=<unix seconds>,v2=<64 hex digits>`, or the call's path has a
    /// line break.
    #[error("the Crux-Signature header is not `t=<unix seconds>,v2=<64 hex digits>`")]
    Malformed,
    /// The header has only `v1` signatures, which bind neither the function's kind nor its
    /// path.
    #[error(
        "the Crux-Signature is v1, which does not bind the function called; sign with v2 \
         (crux-context-v2)"
    )]
    Outdated,
    /// `t` is further from the server's clock than `max_age`.
    #[error(
        "the Crux-Signature is {age_seconds} s from the server's clock; at most {max_age_seconds} s is accepted"
    )]
    Expired {
        /// How far `t` is from now.
        age_seconds: u64,
        /// The policy's `max_age`.
        max_age_seconds: u64,
    },
    /// The request's `__crux` could not be read exactly as sent, or appears twice (a
    /// repeated key in the body, a repeated `args` parameter). crux-server refuses such a
    /// request with a 400 before any signature is checked; this is for a host that reads
    /// requests otherwise.
    #[error(
        "the request's `__crux` could not be read exactly as sent (a repeated key or `args` parameter?); a signed context must appear once"
    )]
    Unreadable,
    /// No `v2` matches the context and the secret.
    #[error(
        "the Crux-Signature does not match the context (wrong secret, or the context was changed)"
    )]
    Mismatch,
}

/// Checks a `Crux-Signature` header against the call and the context it came with.
///
/// # Errors
///
/// The [`SignatureError`] saying why the context is not accepted.
pub fn verify_context(
    secret: &ContextSecret,
    max_age: Duration,
    header: Option<&str>,
    signed: &Signed<'_>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut signatures = Vec::new();
    let mut outdated = false;
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", value)) => {
                t = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            Some(("v2", value)) => {
                signatures.push(unhex(value).ok_or(SignatureError::Malformed)?);
            }
            Some(("v1", _)) => outdated = true,
            // Later schemes a newer signer may add beside v1.
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(if outdated {
            SignatureError::Outdated
        } else {
            SignatureError::Malformed
        });
    }
    if !signed.is_unambiguous() {
        return Err(SignatureError::Malformed);
    }
    let age = unix_now().abs_diff(t);
    if age > max_age.as_secs() {
        return Err(SignatureError::Expired {
            age_seconds: age,
            max_age_seconds: max_age.as_secs(),
        });
    }
    let expected = secret.tag(t, signed);
    // Every candidate is compared in full, in constant time.
    let matched = signatures.iter().fold(false, |any, given| {
        any | crate::helpers::constant_time_eq(given, expected.as_ref())
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// 32 bytes from 64 hex digits.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..32)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a shared secret of thirty-two bytes!";
    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn action<'a>(path: &'a str, traceparent: &'a str, crux: &'a str) -> Signed<'a> {
        Signed::call(FunctionKind::Action, path, traceparent, crux)
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_documented_text() {
        // Computed independently:
        //   printf 'crux-context-v2\n1700000000\naction\nresearch:plan\n\n{"v":1}' |
        //   openssl dgst -sha256 -hmac 'a shared secret of thirty-two bytes!'
        let secret = ContextSecret::new(SECRET).unwrap();
        let header = sign_context_at(
            &secret,
            1_700_000_000,
            &action("research:plan", "", r#"{"v":1}"#),
        );
        assert_eq!(
            header,
            "t=1700000000,v2=4cde958d3f76411428c87b53e6de51150d818ffb703c8fbabfe3b1f41e182774"
        );
    }

    #[test]
    fn signed_contexts_verify_and_changed_ones_do_not() {
        let secret = ContextSecret::new(SECRET).unwrap();
        let max_age = Duration::from_secs(300);
        let signed = action("a:b", TP, r#"{"v":1}"#);
        let header = sign_context(&secret, &signed);
        let verify = |secret: &ContextSecret, header: &str, signed: Signed<'_>| {
            verify_context(secret, max_age, Some(header), &signed)
        };
        assert_eq!(verify(&secret, &header, signed), Ok(()));
        let changed = [
            action("a:b", TP, r#"{"v": 1}"#),
            action("a:b", "", r#"{"v":1}"#),
            action("c:d", TP, r#"{"v":1}"#),
            Signed::call(FunctionKind::Query, "a:b", TP, r#"{"v":1}"#),
            Signed::http("a:b", TP),
        ];
        for other in changed {
            assert_eq!(
                verify(&secret, &header, other),
                Err(SignatureError::Mismatch),
                "{other:?}"
            );
        }
        let other = ContextSecret::new("another secret of thirty-two bytes").unwrap();
        assert_eq!(
            verify(&other, &header, signed),
            Err(SignatureError::Mismatch)
        );
        // Rotation: any matching v2 is enough.
        let rotated = format!("{header},v2={}", "0".repeat(64));
        assert_eq!(verify(&secret, &rotated, signed), Ok(()));
    }

    #[test]
    fn a_line_break_in_a_field_is_refused() {
        // `a:b\n<tp>` with no traceparent and `a:b` with `<tp>` would sign one text.
        let secret = ContextSecret::new(SECRET).unwrap();
        let path = format!("a:b\n{TP}");
        let smuggled = action(&path, "", "{}");
        let header = sign_context(&secret, &smuggled);
        assert_eq!(
            verify_context(&secret, Duration::from_secs(300), Some(&header), &smuggled),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn old_missing_outdated_and_malformed_signatures_are_refused() {
        let secret = ContextSecret::new(SECRET).unwrap();
        let max_age = Duration::from_secs(300);
        let signed = action("a:b", "", "{}");
        let old = sign_context_at(&secret, unix_now() - 3600, &signed);
        assert!(matches!(
            verify_context(&secret, max_age, Some(&old), &signed),
            Err(SignatureError::Expired {
                max_age_seconds: 300,
                ..
            })
        ));
        let future = sign_context_at(&secret, unix_now() + 3600, &signed);
        assert!(matches!(
            verify_context(&secret, max_age, Some(&future), &signed),
            Err(SignatureError::Expired { .. })
        ));
        assert_eq!(
            verify_context(&secret, max_age, None, &signed),
            Err(SignatureError::Missing)
        );
        let v1 = format!("t={},v1={}", unix_now(), "0".repeat(64));
        assert_eq!(
            verify_context(&secret, max_age, Some(&v1), &signed),
            Err(SignatureError::Outdated)
        );
        for bad in ["", "t=1", "v2=00", "t=x,v2=00", "t=1,v2=zz", "garbage"] {
            assert_eq!(
                verify_context(&secret, max_age, Some(bad), &signed),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            ContextSecret::new("short").unwrap_err(),
            WeakSecret { len: 5 }
        );
    }
}
