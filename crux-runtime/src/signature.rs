//! Signed contexts: a caller proves it may continue a run by signing the context it sends
//! with a secret it shares with the server (`crux_server::ContextPolicy::Signed`; a
//! `crux_client::Client` signs with `ClientBuilder::sign_contexts`).
//!
//! The signature travels in one header:
//!
//! ```text
//! Crux-Signature: t=<unix seconds>,v3=<HMAC-SHA256, 64 lowercase hex digits>
//! ```
//!
//! and is the HMAC-SHA256, keyed with the shared secret, of the UTF-8 text
//!
//! ```text
//! crux-context-v3\n<t>\n<kind>\n<method>\n<path>\n<traceparent>\n<__crux>
//! ```
//!
//! where `<t>` is the decimal `t` of the header; `<kind>` is `query`, `mutation` or
//! `action` for a function call (the kind of the function called, whatever the route) and
//! `http` for an HTTP action; `<method>` is empty for a function call (its kind is what
//! matters, whatever the HTTP method carrying it) and an HTTP action's request method as
//! sent (`GET`, `POST`; `HEAD` for a HEAD request, though it runs the GET route);
//! `<path>` is the function's path as the request names it
//! (`messages:send`; for `/api/run/messages/send`, `messages:send`), or an HTTP action's
//! URL path (`/webhook`, no query string); `<traceparent>` is the exact value of the
//! request's `traceparent` header (empty without one) and `<__crux>` the exact JSON text of
//! the `__crux` value in the request's `args` (empty without one): the bytes from its first
//! character to its last, as they appear in the body (or in the `args` query parameter of
//! `GET /api/query`, after percent-decoding). A caller signs the text it sends, so no
//! canonical JSON is needed. Every field but the last is one line (a line break in one is
//! refused), so the text reads back one way only. Binding the kind, the method and the
//! path means a signature captured on a call to one function, or on one HTTP action's
//! method, cannot be replayed on another. Several `v3=` entries may be given (a secret
//! being rotated): one matching is enough. The server accepts the context while `t` is
//! within `max_age` of its clock (either way); otherwise, or when the signature is missing
//! or wrong, the call runs as a fresh root whose run records a `security.warning` with the
//! reason, and never fails for it. (`v1`, which bound neither kind nor path, and `v2`,
//! which did not bind an HTTP action's method, are no longer accepted.)

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

use crate::function::FunctionKind;

/// The header carrying a context's signature.
pub const SIGNATURE_HEADER: &str = "crux-signature";

/// The shortest secret [`ContextSecret::new`] accepts, in bytes.
pub const MIN_SECRET: usize = 32;

/// The prefix of the signed text, naming the scheme's version.
const SCHEME: &str = "crux-context-v3";

/// The header's name for a signature of [`SCHEME`].
const VERSION: &str = "v3";

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
            signed.method,
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

/// What a signature covers: the call (its kind, an HTTP action's method, the path) and the
/// context it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signed<'a> {
    /// `query`, `mutation`, `action` or `http` ([`Signed::call`], [`Signed::http`]).
    pub kind: &'a str,
    /// An HTTP action's request method as sent (`GET`, `POST`); `""` for a function call.
    pub method: &'a str,
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
            method: "",
            path,
            traceparent,
            crux,
        }
    }

    /// A request with `method` (`GET`, `POST`, as sent) to the HTTP action at the URL path
    /// `path`.
    pub fn http(method: &'a str, path: &'a str, traceparent: &'a str) -> Self {
        Signed {
            kind: "http",
            method,
            path,
            traceparent,
            crux: "",
        }
    }

    /// Whether each line of the signed text is one field: a line break in the kind,
    /// method, path or traceparent could move text from one field to the next.
    fn is_unambiguous(&self) -> bool {
        [self.kind, self.method, self.path, self.traceparent]
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
/// assert!(header.starts_with("t=") && header.contains(",v3="));
/// # Ok::<(), crux_runtime::signature::WeakSecret>(())
/// ```
pub fn sign_context(secret: &ContextSecret, signed: &Signed<'_>) -> String {
    sign_context_at(secret, unix_now(), signed)
}

/// [`sign_context`] with the time of signing given (seconds since the Unix epoch).
pub fn sign_context_at(secret: &ContextSecret, unix_seconds: u64, signed: &Signed<'_>) -> String {
    let tag = secret.tag(unix_seconds, signed);
    format!("t={unix_seconds},{VERSION}={}", hex(tag.as_ref()))
}

/// Why a signed context was not accepted: the `security.warning`'s reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// No `Crux-Signature` header came with the context.
    #[error("the context came without a Crux-Signature header")]
    Missing,
    /// The header is not `t=<unix seconds>,v3=<64 lowercase hex digits>`, or a signed
    /// field (the path, the method) has a line break.
    #[error("the Crux-Signature header is not `t=<unix seconds>,v3=<64 lowercase hex digits>`")]
    Malformed,
    /// The header has only signatures of an earlier scheme: `v1` binds neither the
    /// function's kind nor its path, `v2` not an HTTP action's method.
    #[error(
        "the Crux-Signature is {version}, an earlier scheme this server no longer accepts \
         (v1 binds neither the function's kind nor its path, v2 not an HTTP action's method); \
         sign with v3 (crux-context-v3): caller and server must both run a crux with v3"
    )]
    Outdated {
        /// The newest earlier scheme the header has (`v1`, `v2`).
        version: &'static str,
    },
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
    /// No `v3` matches the context and the secret.
    #[error(
        "the Crux-Signature does not match the context (wrong secret, or the context was changed)"
    )]
    Mismatch,
}

/// Digits only, no leading zero: the one spelling `u64`'s `Display` writes.
fn is_canonical_decimal(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
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
    let mut outdated = None;
    for item in header.split(',') {
        match item.trim().split_once('=') {
            // One `t`, spelled as `sign_context` writes it: a `+`, a leading zero or a
            // second `t` would give one signature several header texts.
            Some(("t", value)) if t.is_none() && is_canonical_decimal(value) => {
                t = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            Some(("t", _)) => return Err(SignatureError::Malformed),
            Some((VERSION, value)) => {
                signatures.push(unhex(value).ok_or(SignatureError::Malformed)?);
            }
            Some(("v2", _)) => outdated = Some("v2"),
            Some(("v1", _)) => outdated = outdated.or(Some("v1")),
            // Later schemes a newer signer may add beside v3.
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(match outdated {
            Some(version) => SignatureError::Outdated { version },
            None => SignatureError::Malformed,
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
    let mut out = String::with_capacity(2 * bytes.len());
    crate::hex::push_lower(&mut out, bytes);
    out
}

/// 32 bytes from 64 lowercase hex digits (`[0-9a-f]`, as [`hex`] writes them: upper case
/// and signs are refused, so one signature has one spelling).
fn unhex(text: &str) -> Option<[u8; 32]> {
    crate::hex::decode_lower(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a shared secret of thirty-two bytes!";
    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// The README's test vectors: (kind, method, path, traceparent, `__crux`) signed at
    /// `t` 1700000000 with [`SECRET`], and the `v3` each signs to.
    const VECTORS: [(&str, &str, &str, &str, &str, &str); 2] = [
        (
            "action",
            "",
            "research:plan",
            "",
            r#"{"v":1}"#,
            "883cffccaf9b7ab1c2a9a42dbbe8af36911252a1fefbe8bd2a13f7c957bc710d",
        ),
        (
            "http",
            "POST",
            "/webhook",
            TP,
            "",
            "b6ad31b738d0b04c594419b04f8d997dbb200559789dc352a9994852e1c563a2",
        ),
    ];

    fn action<'a>(path: &'a str, traceparent: &'a str, crux: &'a str) -> Signed<'a> {
        Signed::call(FunctionKind::Action, path, traceparent, crux)
    }

    fn vector(i: usize) -> (Signed<'static>, &'static str) {
        let (kind, method, path, traceparent, crux, v3) = VECTORS[i];
        let signed = Signed {
            kind,
            method,
            path,
            traceparent,
            crux,
        };
        (signed, v3)
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_documented_text() {
        // Computed independently:
        //   printf 'crux-context-v3\n1700000000\naction\n\nresearch:plan\n\n{"v":1}' |
        //   openssl dgst -sha256 -hmac 'a shared secret of thirty-two bytes!'
        // and with Node in `the_test_vectors_match_nodes_create_hmac`.
        let secret = ContextSecret::new(SECRET).unwrap();
        assert_eq!(
            vector(0).0,
            action("research:plan", "", r#"{"v":1}"#),
            "the call vector is what `Signed::call` builds"
        );
        assert_eq!(vector(1).0, Signed::http("POST", "/webhook", TP));
        for i in 0..VECTORS.len() {
            let (signed, v3) = vector(i);
            let header = sign_context_at(&secret, 1_700_000_000, &signed);
            assert_eq!(header, format!("t=1700000000,v3={v3}"), "{signed:?}");
        }
    }

    /// The README tells other peers to sign with Node's `createHmac` over the fields
    /// joined by line feeds: that very expression must give the vectors. Skipped (with a
    /// note) where `node` is not installed, except under `CI`, where `.ci/run`'s npm steps
    /// need it anyway and a skip would hide a broken vector.
    #[test]
    fn the_test_vectors_match_nodes_create_hmac() {
        let script = r#"
            const { createHmac } = require("node:crypto");
            const [secret, t, kind, method, path, traceparent, cruxText] = process.argv.slice(1);
            console.log(createHmac("sha256", secret).update(["crux-context-v3", t, kind, method,
                path, traceparent, cruxText].join("\n")).digest("hex"));
        "#;
        for (kind, method, path, traceparent, crux, v3) in VECTORS {
            let output = std::process::Command::new("node")
                .args(["-e", script, "--", SECRET, "1700000000"])
                .args([kind, method, path, traceparent, crux])
                .output();
            let output = match output {
                Ok(output) => output,
                Err(err)
                    if err.kind() == std::io::ErrorKind::NotFound
                        && std::env::var_os("CI").is_none() =>
                {
                    eprintln!("skipped: `node` is not installed");
                    return;
                }
                Err(err) => panic!("node: {err}"),
            };
            assert!(output.status.success(), "{output:?}");
            assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), v3);
        }
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
            Signed::http("POST", "a:b", TP),
            Signed {
                method: "POST",
                ..signed
            },
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
        // Rotation: any matching v3 is enough.
        let rotated = format!("{header},v3={}", "0".repeat(64));
        assert_eq!(verify(&secret, &rotated, signed), Ok(()));
    }

    /// Issue 11: a signature for `GET /webhook` replayed on `POST /webhook` (same
    /// traceparent, same header) does not verify.
    #[test]
    fn an_http_actions_signature_binds_its_method() {
        let secret = ContextSecret::new(SECRET).unwrap();
        let max_age = Duration::from_secs(300);
        let get = Signed::http("GET", "/webhook", TP);
        let header = sign_context(&secret, &get);
        assert_eq!(
            verify_context(&secret, max_age, Some(&header), &get),
            Ok(())
        );
        for method in ["POST", "HEAD", "get", ""] {
            let other = Signed::http(method, "/webhook", TP);
            assert_eq!(
                verify_context(&secret, max_age, Some(&header), &other),
                Err(SignatureError::Mismatch),
                "{method}"
            );
        }
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
        // `GET\n/a` with path `b` and `GET` with path `/a\nb`... the method is a field too.
        let smuggled = Signed::http("GET\n/a", "b", TP);
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
        let zeros = "0".repeat(64);
        for (header, version) in [
            (format!("t={},v1={zeros}", unix_now()), "v1"),
            (format!("t={},v2={zeros}", unix_now()), "v2"),
            (format!("t={},v1={zeros},v2={zeros}", unix_now()), "v2"),
            (format!("t={},v2={zeros},v1={zeros}", unix_now()), "v2"),
        ] {
            assert_eq!(
                verify_context(&secret, max_age, Some(&header), &signed),
                Err(SignatureError::Outdated { version }),
                "{header}"
            );
        }
        for bad in ["", "t=1", "v3=00", "t=x,v3=00", "t=1,v3=zz", "garbage"] {
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

    /// Issue 14: only `[0-9a-f]` is a hex digit; `u8::from_str_radix` took `+f` as `0f`.
    #[test]
    fn unhex_takes_exactly_lowercase_hex_digits() {
        let bytes: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37)).collect();
        assert_eq!(unhex(&hex(&bytes)).map(Vec::from), Some(bytes));
        let zeros = "0".repeat(62);
        for bad in ["+f", "-0", " f", "0x", "AB", "aF", "g0", "é"] {
            assert_eq!(unhex(&format!("{bad}{zeros}")), None, "{bad}");
        }
        assert_eq!(unhex(&"0".repeat(63)), None);
        assert_eq!(unhex(&"0".repeat(66)), None);
    }

    /// A real signature with one pair `0x` spelled `+x`, or in upper case, or its `t` spelled
    /// with a `+`, a leading zero or twice, is refused as malformed rather than accepted as
    /// the same signature.
    #[test]
    fn a_signature_spelled_otherwise_is_malformed() {
        let secret = ContextSecret::new(SECRET).unwrap();
        let max_age = Duration::from_secs(300);
        let signed = action("a:b", TP, "{}");
        // Some second of the next minute signs to a tag with a byte below 0x10.
        let now = unix_now();
        let (header, at) = (now..now + 60)
            .find_map(|t| {
                let header = sign_context_at(&secret, t, &signed);
                let v3 = header.split_once(",v3=").unwrap().1.to_owned();
                let at = (0..32).map(|i| 2 * i).find(|&i| v3.as_bytes()[i] == b'0')?;
                Some((header, at))
            })
            .expect("a byte below 0x10 in 60 tags");
        assert_eq!(
            verify_context(&secret, max_age, Some(&header), &signed),
            Ok(())
        );
        let (t, v3) = header.split_once(",v3=").unwrap();
        let plus = format!("{t},v3={}+{}", &v3[..at], &v3[at + 1..]);
        let upper = format!("{t},v3={}", v3.to_uppercase());
        let seconds = t.strip_prefix("t=").unwrap();
        let signed_plus = format!("t=+{seconds},v3={v3}");
        let leading_zero = format!("t=0{seconds},v3={v3}");
        let two_ts = format!("{t},t={seconds},v3={v3}");
        for spelled in [plus, upper, signed_plus, leading_zero, two_ts] {
            assert_eq!(
                verify_context(&secret, max_age, Some(&spelled), &signed),
                Err(SignatureError::Malformed),
                "{spelled}"
            );
        }
    }
}
