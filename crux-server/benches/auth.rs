//! What verifying a caller costs per request, against what every request pays anyway:
//! parsing a typical request body as JSON (the baseline).
//!
//! - `bearer_*`: `AuthProvider::verify` of an RS256 (2048-bit), ES256 and HS256 token
//!   (signature, then `iss`, `aud`, `exp`, `nbf`, then the identity);
//! - `signed_context`: `signing::verify_context` of a `Crux-Signature` over a typical
//!   `__crux` envelope and `traceparent`.
//!
//! ```text
//! cargo bench -p crux-server --bench auth
//! ```
//!
//! Instruction counts (load-independent): run the bench binary under
//! `valgrind --tool=callgrind --toggle-collect=<fn>` with `--sample-count 10` and `110`
//! (`--sample-size 1`); the difference over 100 is one call. `<fn>` is `auth::parse_body`,
//! `crux_server::auth::AuthProvider::verify` or `crux_server::signing::verify_context`.

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Duration;

use crux::function::FunctionKind;
use crux_server::AuthProvider;
use crux_server::signing::{ContextSecret, Signed, sign_context, verify_context};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://auth.bench";
const AUDIENCE: &str = "bench";
const SECRET: &[u8] = b"a benchmark secret, thirty-two bytes or more";

fn key(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn claims() -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-ada", "iat": now, "exp": now + 86_400,
           "name": "Ada Lovelace", "email": "ada@example.com"})
}

struct Fixture {
    provider: AuthProvider,
    rs256: String,
    es256: String,
    hs256: String,
    body: String,
    secret: ContextSecret,
    traceparent: String,
    crux: String,
    signature: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let provider = AuthProvider::new(ISSUER, AUDIENCE)
        .rsa_pem(key("rsa_public.pem"))
        .unwrap()
        .ec_pem(key("ec_public.pem"))
        .unwrap()
        .hs256_secret(SECRET)
        .unwrap();
    let sign =
        |alg, key: EncodingKey| jsonwebtoken::encode(&Header::new(alg), &claims(), &key).unwrap();
    let crux = json!({
        "v": 1,
        "observability": {
            "runId": "run_0123456789abcdef01234567", "operationId": "run_0123456789abcdef01234567",
            "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "segmentId": "seg_00000000000000000000000a",
            "startedAtMs": 1_700_000_000_000u64, "spanStack": ["00f067aa0ba902b7"],
            "currentSpanId": "00f067aa0ba902b7"
        },
        "boundary": {
            "id": "00f067aa0ba902b7", "spanId": "00f067aa0ba902b7", "kind": "action",
            "label": "ask the rust service", "ref": "work:where",
            "parentSpanStack": ["00f067aa0ba902b7"], "leaseExpiresAt": "2099-01-01T00:00:00.000Z"
        }
    })
    .to_string();
    let secret = ContextSecret::new(SECRET).unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned();
    let signature = sign_context(
        &secret,
        &Signed::call(FunctionKind::Action, "work:where", &traceparent, &crux),
    );
    Fixture {
        rs256: sign(Algorithm::RS256, EncodingKey::from_rsa_pem(&key("rsa_private.pem")).unwrap()),
        es256: sign(Algorithm::ES256, EncodingKey::from_ec_pem(&key("ec_private.pem")).unwrap()),
        hs256: sign(Algorithm::HS256, EncodingKey::from_secret(SECRET)),
        body: json!({"path": "chat:respond", "format": "json",
                     "args": {"threadId": "thread-42", "message": "Where is my refund? I was charged twice."}})
        .to_string(),
        provider,
        secret,
        traceparent,
        crux,
        signature,
    }
});

fn main() {
    // Every token verifies before anything is timed.
    for token in [&FIXTURE.rs256, &FIXTURE.es256, &FIXTURE.hs256] {
        FIXTURE.provider.verify(token).unwrap();
    }
    divan::main();
}

#[divan::bench]
fn baseline_parse_request_body() -> Value {
    parse_body(black_box(&FIXTURE.body))
}

/// Not inlined, so callgrind can count its instructions alone (`--toggle-collect`).
#[inline(never)]
fn parse_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

#[divan::bench]
fn bearer_rs256() {
    FIXTURE.provider.verify(black_box(&FIXTURE.rs256)).unwrap();
}

#[divan::bench]
fn bearer_es256() {
    FIXTURE.provider.verify(black_box(&FIXTURE.es256)).unwrap();
}

#[divan::bench]
fn bearer_hs256() {
    FIXTURE.provider.verify(black_box(&FIXTURE.hs256)).unwrap();
}

#[divan::bench]
fn signed_context() {
    verify_context(
        &FIXTURE.secret,
        Duration::from_secs(300),
        Some(black_box(&FIXTURE.signature)),
        &Signed::call(
            FunctionKind::Action,
            "work:where",
            &FIXTURE.traceparent,
            black_box(&FIXTURE.crux),
        ),
    )
    .unwrap();
}
