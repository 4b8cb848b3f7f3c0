//! OAuth 2.0 client credentials, as the identity providers' APIs want them: a form POST to a token
//! endpoint, authenticated by a client secret or by a `private_key_jwt` assertion signed with the
//! client's RSA key. The access token is fetched once per run and reused.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::Value;

use super::{HttpClient, HttpError};
use crate::config::secret::Secret;

/// The `client_assertion_type` of a JWT bearer client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

/// Why a client assertion could not be made. Never quotes the key.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("the private key is not an RSA key in PEM form ({0})")]
    Key(String),
    #[error("signing the client assertion failed ({0})")]
    Sign(String),
}

/// A signed RS256 client assertion: `iss` = `sub` = the client id, `aud` = the token URL, valid for
/// five minutes, with a fresh `jti`. `header` may carry `kid` or `x5t#S256`.
///
/// # Errors
/// The key is not a usable RSA PEM key.
pub fn client_assertion(
    client_id: &str,
    token_url: &str,
    key_pem: &Secret,
    mut header: Header,
) -> Result<Secret, AssertionError> {
    header.alg = Algorithm::RS256;
    let key = EncodingKey::from_rsa_pem(key_pem.expose().as_bytes())
        .map_err(|e| AssertionError::Key(e.to_string()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        iss: client_id,
        sub: client_id,
        aud: token_url,
        iat: now,
        nbf: now,
        exp: now + 300,
        jti: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
    };
    encode(&header, &claims, &key)
        .map(Secret::new)
        .map_err(|e| AssertionError::Sign(e.to_string()))
}

/// Exchanges a client-credentials form for an access token.
///
/// # Errors
/// The endpoint refused (its `error_description` is quoted) or did not answer.
pub async fn token(
    http: &HttpClient,
    token_url: &str,
    form: &[(&str, String)],
) -> Result<Secret, HttpError> {
    let reply = http.post_form(token_url, form).await?;
    if !reply.status.is_success() {
        return Err(http.status_error(&reply));
    }
    let body = reply.json("token endpoint")?;
    body.get("access_token")
        .and_then(Value::as_str)
        .map(Secret::new)
        .ok_or_else(|| http.malformed(token_url, "the token response has no access_token"))
}
