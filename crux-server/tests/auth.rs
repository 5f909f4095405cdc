//! `Authorization: Bearer <JWT>`: tokens of a configured provider become the handler's
//! `ctx.auth` (inherited by its child calls); every bad token is a 401 naming what was
//! wrong, and the server keeps serving.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Running, start};
use crux_server::{AuthConfigError, AuthProvider, hs256_token};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://auth.crux.test";
const AUDIENCE: &str = "crux-tests";
const SECRET: &[u8] = b"an hs256 secret for the crux tests only";

fn key(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims valid for an hour, `overrides` applied.
fn claims(overrides: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user-ada",
        "iat": now(), "exp": now() + 3600,
        "name": "Ada Lovelace", "email": "ada@example.com", "team": "engines",
    });
    claims
        .as_object_mut()
        .unwrap()
        .extend(overrides.as_object().unwrap().clone());
    claims
}

fn rs256(private: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_rsa_pem(&key(private)).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn es256(kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_ec_pem(&key("ec_private.pem")).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    crux::local::base64_encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// A server trusting the RSA PEM key and an HS256 secret, plus the JWKS under a second
/// issuer.
async fn server() -> Running {
    let pem = AuthProvider::new(ISSUER, AUDIENCE)
        .rsa_pem(key("rsa_public.pem"))
        .unwrap()
        .hs256_secret(SECRET)
        .unwrap();
    let jwks = AuthProvider::new("https://jwks.crux.test", AUDIENCE)
        .jwks(&String::from_utf8(key("jwks.json")).unwrap())
        .unwrap();
    start(|d| d, |s| s.auth_provider(pem).auth_provider(jwks)).await
}

async fn whoami(server: &Running, token: &str) -> common::Reply {
    let bearer = format!("Bearer {token}");
    server
        .post_with(
            "/api/query",
            &[("Authorization", &bearer)],
            json!({"path": "auth:whoami", "args": {}, "format": "json"}),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_is_the_handlers_identity_and_its_childrens() {
    let server = server().await;
    let reply = whoami(&server, &rs256("rsa_private.pem", None, &claims(json!({})))).await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    assert_eq!(
        reply.json()["value"],
        json!({
            "tokenIdentifier": format!("{ISSUER}|user-ada"),
            "subject": "user-ada", "issuer": ISSUER,
            "name": "Ada Lovelace", "email": "ada@example.com", "team": "engines",
        })
    );
    // Without a token: no identity.
    let anonymous = server
        .post(
            "/api/query",
            json!({"path": "auth:whoami", "args": {}, "format": "json"}),
        )
        .await;
    assert_eq!(anonymous.json()["value"], Value::Null);
    // A child call inherits the identity.
    let token = hs256_token(
        SECRET,
        ISSUER,
        AUDIENCE,
        "user-bob",
        Duration::from_secs(60),
        json!({}),
    );
    let reply = server
        .post_with(
            "/api/action",
            &[("Authorization", &format!("Bearer {token}"))],
            json!({"path": "auth:ask_child", "args": {}, "format": "json"}),
        )
        .await;
    let value = &reply.json()["value"];
    assert_eq!(value["action"], "user-bob", "{value}");
    assert_eq!(
        value["child"]["tokenIdentifier"],
        format!("{ISSUER}|user-bob")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_keys_verify_rs256_and_es256_by_kid() {
    let server = server().await;
    let jwks_claims = claims(json!({"iss": "https://jwks.crux.test", "sub": "user-eve"}));
    for token in [
        rs256("rsa_private.pem", Some("rsa-1"), &jwks_claims),
        es256(Some("ec-1"), &jwks_claims),
        es256(None, &jwks_claims),
    ] {
        let reply = whoami(&server, &token).await;
        assert_eq!(reply.status, 200, "{}", reply.json());
        assert_eq!(reply.json()["value"]["subject"], "user-eve");
    }
    // A kid naming another key of the set is checked against that key only.
    let reply = whoami(&server, &es256(Some("rsa-1"), &jwks_claims)).await;
    assert_eq!(reply.status, 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_401_naming_what_was_wrong() {
    let server = server().await;
    let none_header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let none_claims = b64url(claims(json!({})).to_string().as_bytes());
    // HS256 signed with the RSA public key as the secret: the classic algorithm confusion.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({"iss": "https://jwks.crux.test"})),
        &EncodingKey::from_secret(&key("rsa_public.pem")),
    )
    .unwrap();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "expired",
            rs256(
                "rsa_private.pem",
                None,
                &claims(json!({"exp": now() - 3600, "iat": now() - 7200})),
            ),
            "InvalidAuthHeader",
            "expired",
        ),
        (
            "not yet valid",
            rs256(
                "rsa_private.pem",
                None,
                &claims(json!({"nbf": now() + 3600})),
            ),
            "InvalidAuthHeader",
            "nbf",
        ),
        (
            "wrong issuer",
            rs256(
                "rsa_private.pem",
                None,
                &claims(json!({"iss": "https://evil.example"})),
            ),
            "NoAuthProvider",
            "https://evil.example",
        ),
        (
            "wrong audience",
            rs256(
                "rsa_private.pem",
                None,
                &claims(json!({"aud": "another-app"})),
            ),
            "InvalidAuthHeader",
            "aud",
        ),
        (
            "bad signature",
            rs256("other_rsa_private.pem", None, &claims(json!({}))),
            "InvalidAuthHeader",
            "signature",
        ),
        (
            "wrong hs256 secret",
            hs256_token(
                b"not the secret the server has, but long enough",
                ISSUER,
                AUDIENCE,
                "user-ada",
                Duration::from_secs(60),
                json!({}),
            ),
            "InvalidAuthHeader",
            "signature",
        ),
        (
            "alg none",
            format!("{none_header}.{none_claims}."),
            "InvalidAuthHeader",
            "alg none",
        ),
        (
            "algorithm confusion",
            confused,
            "InvalidAuthHeader",
            "HS256",
        ),
        (
            "no expiry",
            {
                let mut c = claims(json!({}));
                c.as_object_mut().unwrap().remove("exp");
                rs256("rsa_private.pem", None, &c)
            },
            "InvalidAuthHeader",
            "`exp`",
        ),
        ("not a jwt", "hello".into(), "InvalidAuthHeader", "parse"),
    ];
    for (case, token, code, says) in cases {
        let reply = whoami(&server, &token).await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.json());
        let body = reply.json();
        assert_eq!(body["code"], code, "{case}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{case}: {message}");
    }
    // Still serving.
    let reply = whoami(&server, &rs256("rsa_private.pem", None, &claims(json!({})))).await;
    assert_eq!(reply.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_providers_a_bearer_token_is_no_auth_provider() {
    let server = start(|d| d, |s| s).await;
    let reply = whoami(&server, &rs256("rsa_private.pem", None, &claims(json!({})))).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["code"], "NoAuthProvider");
    server.stop().await;
}

#[test]
fn bad_provider_configuration_is_a_typed_error() {
    let err = AuthProvider::new(ISSUER, AUDIENCE)
        .rsa_pem("not a pem")
        .unwrap_err();
    assert!(matches!(err, AuthConfigError::BadPem { .. }), "{err}");
    let err = AuthProvider::new(ISSUER, AUDIENCE)
        .hs256_secret("short")
        .unwrap_err();
    assert!(err.to_string().contains("5 bytes"), "{err}");
    let err = AuthProvider::new(ISSUER, AUDIENCE)
        .jwks(r#"{"keys": 3}"#)
        .unwrap_err();
    assert!(matches!(err, AuthConfigError::BadJwks { .. }), "{err}");
    let err = AuthProvider::new(ISSUER, AUDIENCE)
        .jwks(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#)
        .unwrap_err();
    assert!(
        matches!(err, AuthConfigError::BadJwks { .. }) && err.to_string().contains("no RS256"),
        "{err}"
    );
    let err = AuthProvider::new(ISSUER, AUDIENCE)
        .jwks(r#"{"keys": [{"kty": "RSA", "alg": "RS512", "n": "AQAB", "e": "AQAB"}]}"#)
        .unwrap_err();
    assert!(
        matches!(err, AuthConfigError::UnsupportedJwk { index: 0, .. }),
        "{err}"
    );
}

/// Who called, as an HTTP action sees it.
#[crux::internal_action(path = "http:whoami")]
async fn http_whoami(
    ctx: &crux::local::ActionCtx,
    request: crux_server::HttpRequest,
) -> crux::Result<crux_server::HttpResponse> {
    Ok(crux_server::HttpResponse::json(&json!({
        "subject": ctx.auth.get_user_identity().map(|u| u.subject.clone()),
        "authorization": request.header("authorization"),
    })))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_actions_see_a_users_token_and_keep_other_bearers_to_themselves() {
    use crux_server::{HttpMethod, HttpRouter};
    let provider = AuthProvider::new(ISSUER, AUDIENCE)
        .hs256_secret(SECRET)
        .unwrap();
    let router = HttpRouter::new()
        .route(HttpMethod::Get, "/whoami", http_whoami)
        .unwrap();
    let server = start(
        |d| d.function(http_whoami),
        |s| s.auth_provider(provider).http_actions(router).unwrap(),
    )
    .await;
    let get = |auth: String| {
        let server = &server;
        async move {
            server
                .request("GET", "/whoami", &[("Authorization", auth.as_str())], b"")
                .await
        }
    };
    let token = hs256_token(
        SECRET,
        ISSUER,
        AUDIENCE,
        "user-ada",
        Duration::from_secs(60),
        json!({}),
    );
    let reply = get(format!("Bearer {token}")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["subject"], "user-ada");
    // A webhook's own bearer secret is the action's business.
    let reply = get("Bearer whsec_not_a_jwt".into()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["subject"], Value::Null);
    assert_eq!(reply.json()["authorization"], "Bearer whsec_not_a_jwt");
    // A user's token that does not verify is refused, as on the API routes.
    let expired = rs256(
        "rsa_private.pem",
        None,
        &claims(json!({"exp": now() - 3600})),
    );
    let bad = hs256_token(
        b"another secret, also 32 bytes long!",
        ISSUER,
        AUDIENCE,
        "x",
        Duration::from_secs(60),
        json!({}),
    );
    for token in [expired, bad] {
        let reply = get(format!("Bearer {token}")).await;
        assert_eq!(reply.status, 401, "{}", reply.json());
        assert_eq!(reply.json()["code"], "InvalidAuthHeader");
    }
    server.stop().await;
}

/// A real issuer's JWKS holds keys this server does not verify with (Ed25519, encryption
/// keys) beside its signing keys: those are skipped, and a token naming a key the set no
/// longer has (a rotation) says so.
#[test]
fn a_jwks_with_other_keys_is_accepted_and_an_unknown_kid_is_named() {
    let mut set: Value = serde_json::from_slice(&key("jwks.json")).unwrap();
    let keys = set["keys"].as_array_mut().unwrap();
    let mut encryption = keys[0].clone();
    encryption["kid"] = json!("rsa-enc");
    encryption["use"] = json!("enc");
    encryption["n"] = json!("not even a key");
    keys.push(encryption);
    keys.push(json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed-1",
                     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}));
    let issuer = "https://jwks.crux.test";
    let provider = AuthProvider::new(issuer, AUDIENCE)
        .jwks(&set.to_string())
        .expect("the signing keys are taken, the others skipped");
    let good = claims(json!({"iss": issuer, "sub": "user-eve"}));
    let identity = provider
        .verify(&rs256("rsa_private.pem", Some("rsa-1"), &good))
        .unwrap();
    assert_eq!(identity.subject, "user-eve");
    let err = provider
        .verify(&rs256("rsa_private.pem", Some("rotated"), &good))
        .unwrap_err();
    assert!(
        err.to_string().contains(r#"no key with kid "rotated""#),
        "{err}"
    );

    // A set with nothing to verify with is a configuration error, not a silent no-op.
    let only_ed = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "ed-1",
                                   "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
    let err = AuthProvider::new(issuer, AUDIENCE)
        .jwks(&only_ed.to_string())
        .unwrap_err();
    assert!(err.to_string().contains("no RS256"), "{err}");
}
