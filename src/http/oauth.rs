//! OAuth 2.0 grants, as the identity providers' APIs want them: a form POST to a token endpoint,
//! authenticated by a client secret, by a `private_key_jwt` assertion signed with the client's RSA
//! key, or (Google) by a JWT-bearer grant. The access token lives in a
//! [`TokenSource`](super::token::TokenSource), which renews it before it expires.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use super::token::{AccessToken, Grant};
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

/// The form of one token request; a fresh one (with a fresh client assertion) for each request.
/// Its error says, for people, why the form could not be made (a key that does not sign).
pub type FormFn = dyn Fn() -> Result<Vec<(&'static str, String)>, String> + Send + Sync;

/// A grant that POSTs a form to a token endpoint: client credentials with a secret or a client
/// assertion, or Google's JWT-bearer grant.
pub struct FormGrant {
    endpoint: HttpClient,
    token_url: String,
    form: Box<FormFn>,
}

impl FormGrant {
    /// A grant posting `form()` to `token_url` through `endpoint`.
    ///
    /// # Errors
    /// The form cannot be made (its message), checked once here so that a bad key is reported
    /// as a configuration error before any request.
    pub fn new(
        endpoint: HttpClient,
        token_url: &str,
        form: impl Fn() -> Result<Vec<(&'static str, String)>, String> + Send + Sync + 'static,
    ) -> Result<FormGrant, String> {
        form()?;
        Ok(FormGrant {
            endpoint,
            token_url: token_url.to_string(),
            form: Box::new(form),
        })
    }
}

#[async_trait]
impl Grant for FormGrant {
    async fn fetch(&self) -> Result<AccessToken, HttpError> {
        let form = (self.form)().map_err(|reason| HttpError::Malformed {
            api: "token endpoint".into(),
            method: Method::POST,
            url: self.endpoint.url(&self.token_url),
            reason,
        })?;
        token(&self.endpoint, &self.token_url, &form).await
    }
}

/// Exchanges a token-request form for an access token and its lifetime.
///
/// # Errors
/// The endpoint refused (its `error_description` is quoted) or did not answer.
pub async fn token(
    http: &HttpClient,
    token_url: &str,
    form: &[(&str, String)],
) -> Result<AccessToken, HttpError> {
    let reply = http.post_form(token_url, form).await?;
    if !reply.status.is_success() {
        return Err(http.status_error(&reply));
    }
    let body = reply.json("token endpoint")?;
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| http.malformed(token_url, "the token response has no access_token"))?;
    Ok(AccessToken {
        token,
        expires_in: expires_in(&body),
    })
}

/// `expires_in` in seconds, a number or (some older servers) a numeric string.
fn expires_in(body: &Value) -> Option<Duration> {
    let v = body.get("expires_in")?;
    let secs = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expires_in_is_read_as_number_or_string() {
        let s = Duration::from_secs;
        assert_eq!(expires_in(&json!({"expires_in": 300})), Some(s(300)));
        assert_eq!(expires_in(&json!({"expires_in": "3599"})), Some(s(3599)));
        assert_eq!(expires_in(&json!({"expires_in": -1})), None);
        assert_eq!(expires_in(&json!({"expires_in": null})), None);
        assert_eq!(expires_in(&json!({})), None);
    }
}
