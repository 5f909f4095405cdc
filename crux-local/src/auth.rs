//! Who is calling: Convex's `UserIdentity` and `ctx.auth`.
//!
//! A host that verified the caller (the HTTP server, from an `Authorization: Bearer <JWT>`)
//! or a test ([`Deployment::with_identity`](crate::Deployment::with_identity), like
//! convex-test's `t.withIdentity`) sets the identity on the client's call; every function
//! the call reaches (`ctx.run_*`, `ctx.crux.run_*`) sees it as `ctx.auth`, as on Convex.
//! Scheduled functions run with no identity, as on Convex.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crux_runtime::{Error, ErrorKind, Result};

/// The issuer convex-test gives identities made in tests; [`UserIdentity::for_test`] uses it.
pub const TEST_ISSUER: &str = "https://convex.test";

/// A verified user, as Convex's `UserIdentity`: the token's issuer and subject, the
/// standard OpenID Connect profile claims it carried, and every other claim it carried.
///
/// Serializes as Convex's `UserIdentity` object (`tokenIdentifier`, `subject`, `issuer`,
/// `name`, `email`, …, then the custom claims at the top level).
///
/// ```
/// use crux_local::UserIdentity;
/// let ada = UserIdentity::new("https://auth.example.com", "user-ada").email("ada@example.com");
/// assert_eq!(ada.token_identifier, "https://auth.example.com|user-ada");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UserIdentity {
    /// `issuer|subject`: stable and unique across providers; what to key users by.
    pub token_identifier: String,
    /// The token's `sub`: the user's id at the provider.
    pub subject: String,
    /// The token's `iss`: the provider.
    pub issuer: String,
    /// `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `given_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// `family_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// `nickname`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// `preferred_username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// `profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_url: Option<String>,
    /// `picture`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
    /// `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email_verified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// `phone_number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// `phone_number_verified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_verified: Option<bool>,
    /// Every other claim of the token under its own name (registered JWT claims such as
    /// `aud`, `exp`, `iat` left out), like Convex's custom claims.
    #[serde(flatten)]
    pub claims: Map<String, Value>,
}

/// Registered JWT claims, the claims [`UserIdentity`] holds in fields, and the names those
/// fields serialize under: never copied into [`UserIdentity::claims`], which serializes
/// flattened beside them (a token's own `tokenIdentifier` claim must not shadow the real
/// one for whoever reads the identity as JSON).
const NOT_CUSTOM: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "name",
    "given_name",
    "family_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "tokenIdentifier",
    "subject",
    "issuer",
    "givenName",
    "familyName",
    "preferredUsername",
    "profileUrl",
    "pictureUrl",
    "emailVerified",
    "phoneNumber",
    "phoneNumberVerified",
];

impl UserIdentity {
    /// An identity for `subject` at `issuer`, with no other claims.
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let subject = subject.into();
        UserIdentity {
            token_identifier: format!("{issuer}|{subject}"),
            subject,
            issuer,
            name: None,
            given_name: None,
            family_name: None,
            nickname: None,
            preferred_username: None,
            profile_url: None,
            picture_url: None,
            email: None,
            email_verified: None,
            phone_number: None,
            phone_number_verified: None,
            claims: Map::new(),
        }
    }

    /// An identity for `subject` at convex-test's issuer ([`TEST_ISSUER`]).
    pub fn for_test(subject: impl Into<String>) -> Self {
        Self::new(TEST_ISSUER, subject)
    }

    /// With a `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// With an `email`.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// With a custom claim. A name the identity holds in a field (`sub`, `email`,
    /// `tokenIdentifier`, …) or a registered JWT claim is not a custom claim and is ignored.
    pub fn claim(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        if !NOT_CUSTOM.contains(&key.as_str()) {
            self.claims.insert(key, value.into());
        }
        self
    }

    /// The identity a verified token's claims describe: `iss` and `sub` (required, strings),
    /// the OpenID Connect profile claims, and every other claim as a custom one.
    ///
    /// # Errors
    ///
    /// A message naming the claim when `iss` or `sub` is missing or not a string.
    pub fn from_claims(mut claims: Map<String, Value>) -> std::result::Result<Self, String> {
        let text = |claims: &Map<String, Value>, key: &str| -> Option<String> {
            claims.get(key).and_then(Value::as_str).map(str::to_owned)
        };
        let flag =
            |claims: &Map<String, Value>, key: &str| claims.get(key).and_then(Value::as_bool);
        let issuer = text(&claims, "iss").ok_or("the token has no `iss` (issuer) string claim")?;
        let subject =
            text(&claims, "sub").ok_or("the token has no `sub` (subject) string claim")?;
        let mut identity = UserIdentity::new(issuer, subject);
        identity.name = text(&claims, "name");
        identity.given_name = text(&claims, "given_name");
        identity.family_name = text(&claims, "family_name");
        identity.nickname = text(&claims, "nickname");
        identity.preferred_username = text(&claims, "preferred_username");
        identity.profile_url = text(&claims, "profile");
        identity.picture_url = text(&claims, "picture");
        identity.email = text(&claims, "email");
        identity.email_verified = flag(&claims, "email_verified");
        identity.phone_number = text(&claims, "phone_number");
        identity.phone_number_verified = flag(&claims, "phone_number_verified");
        claims.retain(|key, _| !NOT_CUSTOM.contains(&key.as_str()));
        identity.claims = claims;
        Ok(identity)
    }
}

/// `ctx.auth`: the identity of the user the call was made for, if any.
///
/// ```ignore
/// let user = ctx.auth.require_user_identity()?;
/// let threads = ctx.db.query("threads").filter(|t| t["owner"] == user.token_identifier.as_str());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Auth {
    identity: Option<Arc<UserIdentity>>,
}

impl Auth {
    pub(crate) fn new(identity: Option<Arc<UserIdentity>>) -> Self {
        Auth { identity }
    }

    /// The caller's identity (Convex's `ctx.auth.getUserIdentity()`); `None` for an
    /// unauthenticated call, a scheduled function, or an admin call without a user.
    pub fn get_user_identity(&self) -> Option<&UserIdentity> {
        self.identity.as_deref()
    }

    /// The caller's identity, or an error a client sees as `Unauthenticated: ...`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Server`] with a message starting `Unauthenticated:` when the call has
    /// no identity.
    pub fn require_user_identity(&self) -> Result<&UserIdentity> {
        self.get_user_identity().ok_or_else(|| {
            Error::new(
                ErrorKind::Server,
                "Unauthenticated: this function needs a signed-in user (an `Authorization: \
                 Bearer <JWT>` header, or `Deployment::with_identity` in-process)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_claim_cannot_shadow_the_identitys_own_fields() {
        let claims = json!({
            "iss": "https://auth.example.com", "sub": "ada",
            "tokenIdentifier": "https://evil.example.com|admin", "subject": "admin",
            "issuer": "https://evil.example.com", "emailVerified": true, "team": "blue",
        });
        let Value::Object(claims) = claims else {
            unreachable!()
        };
        let identity = UserIdentity::from_claims(claims).unwrap();
        let json = serde_json::to_value(&identity).unwrap();
        assert_eq!(json["tokenIdentifier"], "https://auth.example.com|ada");
        assert_eq!(json["subject"], "ada");
        assert_eq!(json["issuer"], "https://auth.example.com");
        assert_eq!(json.get("emailVerified"), None);
        assert_eq!(json["team"], "blue");
        // Serialized text carries each name once: no duplicate key for a reader to pick.
        let text = serde_json::to_string(&identity).unwrap();
        assert_eq!(text.matches("\"tokenIdentifier\"").count(), 1, "{text}");
        let built = UserIdentity::new("i", "s")
            .claim("subject", "x")
            .claim("k", 1);
        assert_eq!(built.subject, "s");
        assert_eq!(built.claims.len(), 1);
    }

    #[test]
    fn claims_become_an_identity_as_convex_shapes_it() {
        let Value::Object(claims) = json!({
            "iss": "https://auth.example.com", "sub": "user-ada", "aud": "crux", "exp": 1,
            "name": "Ada", "email": "ada@example.com", "email_verified": true,
            "picture": "https://img/ada.png", "org": "engines",
        }) else {
            unreachable!()
        };
        let identity = UserIdentity::from_claims(claims).unwrap();
        assert_eq!(
            serde_json::to_value(&identity).unwrap(),
            json!({
                "tokenIdentifier": "https://auth.example.com|user-ada",
                "subject": "user-ada", "issuer": "https://auth.example.com",
                "name": "Ada", "email": "ada@example.com", "emailVerified": true,
                "pictureUrl": "https://img/ada.png", "org": "engines",
            })
        );
    }

    #[test]
    fn a_token_needs_issuer_and_subject() {
        let Value::Object(claims) = json!({"iss": "x", "sub": 7}) else {
            unreachable!()
        };
        let err = UserIdentity::from_claims(claims).unwrap_err();
        assert!(err.contains("`sub`"), "{err}");
    }

    #[test]
    fn without_identity_require_names_the_fix() {
        let err = Auth::default().require_user_identity().unwrap_err();
        assert!(err.message().starts_with("Unauthenticated:"));
        let auth = Auth::new(Some(Arc::new(UserIdentity::for_test("u1"))));
        assert_eq!(
            auth.get_user_identity().unwrap().token_identifier,
            "https://convex.test|u1"
        );
    }
}
