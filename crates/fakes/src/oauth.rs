//! The one check of signed OAuth assertions (RFC 7523 JWTs) the fakes' token endpoints share:
//! Okta's `private_key_jwt` client assertions, Entra's certificate client assertions and Google's
//! service-account JWT-bearer grants. Each token endpoint states its rules ([`AssertionRules`])
//! and turns an [`AssertionError`] into its own error body, in its own order of checks; the
//! decoding, signature, audience, issuer, subject, time and `jti` checks are made here.

use std::collections::HashSet;

use jsonwebtoken::{errors::Error as JwtError, Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// The public half of the test-only key in tests/fixtures/ (the tests sign with the private half).
pub const TEST_PUBLIC_KEY_PEM: &str = include_str!("../../../tests/fixtures/test-rsa-key.pub.pem");
/// The test-only certificate of that key (Entra's certificate credentials).
pub const TEST_CERT_PEM: &str = include_str!("../../../tests/fixtures/test-cert.pem");

/// What an assertion must be to be accepted.
#[derive(Clone, Debug)]
pub struct AssertionRules<'a> {
    /// The token endpoint: the one `aud` accepted.
    pub audience: &'a str,
    /// The `iss` required, if the endpoint checks it while decoding.
    pub issuer: Option<&'a str>,
    /// The `sub` required, if the endpoint checks it while decoding.
    pub subject: Option<&'a str>,
    pub algorithms: &'a [Algorithm],
    /// Registered claims that must be present.
    pub required: &'a [&'a str],
    /// Clock skew allowed on `exp` (and `nbf`), in seconds.
    pub leeway: u64,
    /// Whether `nbf` is checked.
    pub validate_nbf: bool,
}

impl AssertionRules<'_> {
    /// RS256, the claims `exp`, `iss`, `sub` and `aud`, 60 s of skew, `nbf` not checked.
    pub fn rs256(audience: &str) -> AssertionRules<'_> {
        AssertionRules {
            audience,
            issuer: None,
            subject: None,
            algorithms: &[Algorithm::RS256],
            required: &["exp", "iss", "sub", "aud"],
            leeway: 60,
            validate_nbf: false,
        }
    }
}

/// Why an assertion was refused: the decoding error (its kind tells signature, expiry, audience,
/// issuer, subject, algorithm and missing claims apart).
pub type AssertionError = JwtError;

/// Parses a PEM public key; panics with `what` when it is not one (a test's setup error).
pub fn rsa_key(pem: &str, what: &str) -> DecodingKey {
    DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Decodes and checks an assertion; returns its claims.
pub fn check_assertion(
    assertion: &str,
    key: &DecodingKey,
    rules: &AssertionRules<'_>,
) -> Result<Claims, AssertionError> {
    let mut validation = Validation::new(rules.algorithms[0]);
    validation.algorithms = rules.algorithms.to_vec();
    validation.set_audience(&[rules.audience]);
    if let Some(issuer) = rules.issuer {
        validation.set_issuer(&[issuer]);
    }
    validation.sub = rules.subject.map(str::to_owned);
    validation.set_required_spec_claims(rules.required);
    validation.leeway = rules.leeway;
    validation.validate_nbf = rules.validate_nbf;
    jsonwebtoken::decode::<Map<String, Value>>(assertion, key, &validation)
        .map(|d| Claims(d.claims))
}

/// The claims of an accepted assertion, with the checks token endpoints make beyond decoding.
#[derive(Clone, Debug)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// A string claim; empty when absent or not a string.
    pub fn str(&self, name: &str) -> &str {
        self.0.get(name).and_then(Value::as_str).unwrap_or_default()
    }

    pub fn number(&self, name: &str) -> Option<u64> {
        self.0.get(name).and_then(Value::as_u64)
    }

    /// The `jti`, when present and not empty.
    pub fn jti(&self) -> Option<&str> {
        Some(self.str("jti")).filter(|j| !j.is_empty())
    }

    /// Whether `exp` lies more than `max_secs` (plus `skew`) from now.
    pub fn expires_too_late(&self, max_secs: u64, skew: u64) -> bool {
        self.number("exp").unwrap_or_default() > now() + max_secs + skew
    }

    /// Whether `iat` is later than now (plus `skew`); false without `iat`.
    pub fn issued_in_future(&self, skew: u64) -> bool {
        self.number("iat").is_some_and(|iat| iat > now() + skew)
    }

    /// Whether the assertion is short-lived as Google wants it: `iat` present, not in the future
    /// (beyond `skew`), and `exp` at most `max_secs` after it.
    pub fn short_lived(&self, max_secs: u64, skew: u64) -> bool {
        let exp = self.number("exp").unwrap_or_default();
        self.number("iat")
            .is_some_and(|iat| iat <= now() + skew && exp <= iat + max_secs)
    }
}

/// The `jti`s a token endpoint has seen: an assertion is accepted once.
#[derive(Debug, Default)]
pub struct SeenJtis(HashSet<String>);

impl SeenJtis {
    /// Records a `jti`; false when it was seen before (a replay).
    pub fn first_use(&mut self, jti: &str) -> bool {
        self.0.insert(jti.to_owned())
    }
}

/// Now, in seconds since the epoch.
pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}
