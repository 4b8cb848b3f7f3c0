//! Access tokens that expire. A [`TokenSource`] holds the current access token of one OAuth
//! connector (Entra, Google, Keycloak, an Okta service app, OneLogin), renews it shortly before its
//! `expires_in` runs out, and renews it once more when the API refuses it (401), so that a read
//! lasting longer than one token still completes. Every request of a client shares the source:
//! requests that find the token due, or that were refused together, wait for one renewal.
//!
//! The renewal margin is a tenth of the token's lifetime, at most a minute (Keycloak's default
//! five-minute token is renewed 30 s early, an hour's token a minute early). An endpoint that says
//! nothing about the lifetime is taken to give five-minute tokens. An endpoint that hands the same
//! token out again (OneLogin does until it expires) cannot replace it early: it is asked again
//! once the token has run out.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderValue;
use reqwest::Method;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::HttpError;
use crate::config::secret::Secret;

/// The lifetime assumed when a token response has no `expires_in`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// The longest a token is renewed ahead of its expiry.
const MAX_MARGIN: Duration = Duration::from_secs(60);
/// The shortest wait before asking again for a token the endpoint handed out a second time.
const MIN_REISSUE_WAIT: Duration = Duration::from_secs(1);

/// An access token as a token endpoint issued it.
pub struct AccessToken {
    pub token: Secret,
    /// `expires_in`: how long the token is valid from when it was issued; `None` when the endpoint
    /// did not say.
    pub expires_in: Option<Duration>,
}

/// One way of asking a token endpoint for an access token. Each call makes a fresh request (and a
/// fresh client assertion, where the grant uses one).
#[async_trait]
pub trait Grant: Send + Sync {
    /// A new access token.
    ///
    /// # Errors
    /// The endpoint refused or did not answer; the error never quotes a credential.
    async fn fetch(&self) -> Result<AccessToken, HttpError>;
}

/// The current access token of one connector and how to renew it; see the module notes.
pub struct TokenSource {
    scheme: &'static str,
    grant: Box<dyn Grant>,
    held: Mutex<Held>,
}

struct Held {
    header: HeaderValue,
    /// Counts the tokens fetched: a request remembers the generation it was sent with, so that
    /// requests refused together renew once.
    generation: u64,
    renew_at: Instant,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Fetches the first token (so that bad credentials fail before anything is read) and keeps
    /// it; requests send it as `Authorization: <scheme> <token>`.
    ///
    /// # Errors
    /// The first token request failed.
    pub async fn start(
        scheme: &'static str,
        grant: impl Grant + 'static,
    ) -> Result<TokenSource, HttpError> {
        let issued = grant.fetch().await?;
        let held = Held {
            header: header(scheme, &issued.token)?,
            generation: 1,
            renew_at: Instant::now() + renew_after(issued.expires_in, false),
        };
        Ok(TokenSource {
            scheme,
            grant: Box::new(grant),
            held: Mutex::new(held),
        })
    }

    /// The `Authorization` header to send now and its generation; renews the token first when it
    /// is due (concurrent callers wait for that one renewal).
    ///
    /// # Errors
    /// A renewal was due and failed.
    pub async fn authorization(&self) -> Result<(HeaderValue, u64), HttpError> {
        let mut held = self.held.lock().await;
        if Instant::now() >= held.renew_at {
            self.renew(&mut held).await?;
        }
        Ok((held.header.clone(), held.generation))
    }

    /// The API refused the token of `generation`: renews it, unless another request already did.
    ///
    /// # Errors
    /// The renewal failed.
    pub async fn refused(&self, generation: u64) -> Result<(), HttpError> {
        let mut held = self.held.lock().await;
        if held.generation == generation {
            self.renew(&mut held).await?;
        }
        Ok(())
    }

    /// Tokens fetched so far, the first included.
    pub async fn generation(&self) -> u64 {
        self.held.lock().await.generation
    }

    async fn renew(&self, held: &mut Held) -> Result<(), HttpError> {
        let issued = self.grant.fetch().await?;
        let header = header(self.scheme, &issued.token)?;
        let reissued = header == held.header;
        held.renew_at = Instant::now() + renew_after(issued.expires_in, reissued);
        held.header = header;
        held.generation += 1;
        Ok(())
    }
}

/// How long after it was issued a token is renewed: its lifetime less the margin, or, for a token
/// the endpoint handed out again, its whole remaining lifetime (it cannot be replaced sooner).
fn renew_after(expires_in: Option<Duration>, reissued: bool) -> Duration {
    let lifetime = expires_in.unwrap_or(DEFAULT_LIFETIME);
    if reissued {
        lifetime.max(MIN_REISSUE_WAIT)
    } else {
        lifetime - margin(lifetime)
    }
}

/// A tenth of the lifetime, at most [`MAX_MARGIN`].
fn margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_MARGIN)
}

/// `<scheme> <token>`, marked sensitive (never logged by reqwest).
fn header(scheme: &str, token: &Secret) -> Result<HeaderValue, HttpError> {
    let mut v = HeaderValue::from_str(&format!("{scheme} {}", token.expose())).map_err(|_| {
        HttpError::Malformed {
            api: "token endpoint".into(),
            method: Method::POST,
            url: String::new(),
            reason: "the access token holds characters an HTTP header cannot carry".into(),
        }
    })?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// A grant that counts its calls, takes a second to answer (on the paused clock), and issues
    /// `token-<n>` valid for `expires_in`; with `same`, it always issues `token-1`.
    struct Counting {
        calls: Arc<AtomicU64>,
        expires_in: Option<Duration>,
        same: bool,
    }

    #[async_trait]
    impl Grant for Counting {
        async fn fetch(&self) -> Result<AccessToken, HttpError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let n = if self.same { 1 } else { n };
            Ok(AccessToken {
                token: Secret::new(format!("token-{n}")),
                expires_in: self.expires_in,
            })
        }
    }

    async fn source(expires_in: Option<u64>, same: bool) -> (Arc<TokenSource>, Arc<AtomicU64>) {
        let calls = Arc::new(AtomicU64::new(0));
        let grant = Counting {
            calls: calls.clone(),
            expires_in: expires_in.map(Duration::from_secs),
            same,
        };
        let source = TokenSource::start("Bearer", grant).await.unwrap();
        (Arc::new(source), calls)
    }

    async fn token(source: &TokenSource) -> String {
        source
            .authorization()
            .await
            .unwrap()
            .0
            .to_str()
            .unwrap()
            .to_string()
    }

    async fn advance(secs: u64) {
        tokio::time::advance(Duration::from_secs(secs)).await;
    }

    #[test]
    fn the_margin_is_a_tenth_and_at_most_a_minute() {
        let s = Duration::from_secs;
        assert_eq!(renew_after(Some(s(300)), false), s(270));
        assert_eq!(renew_after(Some(s(3599)), false), s(3539));
        assert_eq!(renew_after(Some(s(36_000)), false), s(35_940));
        assert_eq!(renew_after(None, false), s(270), "unknown: five minutes");
        assert_eq!(renew_after(Some(s(40)), true), s(40), "reissued: at expiry");
        assert_eq!(renew_after(Some(s(0)), true), s(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_renewed_shortly_before_it_expires() {
        // Issued at t=1 (the grant takes a second), lasting 100 s: renewed from t=91.
        let (source, calls) = source(Some(100), false).await;
        assert_eq!(token(&source).await, "Bearer token-1");
        advance(89).await;
        assert_eq!(token(&source).await, "Bearer token-1", "t=90: still good");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        advance(1).await;
        assert_eq!(token(&source).await, "Bearer token-2", "t=91: renewed");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Over five more lifetimes, one renewal each.
        for _ in 0..5 {
            advance(50).await;
            token(&source).await;
            advance(50).await;
            token(&source).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        assert_eq!(source.generation().await, 7);
    }

    #[tokio::test(start_paused = true)]
    async fn without_expires_in_five_minutes_are_assumed() {
        let (source, calls) = source(None, false).await;
        advance(269).await;
        token(&source).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        advance(2).await;
        assert_eq!(token(&source).await, "Bearer token-2");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_renewal() {
        let (source, calls) = source(Some(100), false).await;
        advance(95).await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let s = source.clone();
                tokio::spawn(async move { token(&s).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), "Bearer token-2");
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one renewal for eight requests"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_renews_once_per_generation() {
        let (source, calls) = source(Some(3600), false).await;
        let (_, generation) = source.authorization().await.unwrap();
        // Eight requests sent with the same token were refused together.
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let s = source.clone();
                tokio::spawn(async move { s.refused(generation).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(token(&source).await, "Bearer token-2");
        // A late refusal of the old token renews nothing.
        source.refused(generation).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // The new token refused in turn: one more.
        source.refused(generation + 1).await.unwrap();
        assert_eq!(token(&source).await, "Bearer token-3");
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_handed_out_again_is_asked_for_again_only_once_it_ran_out() {
        // OneLogin: the same token until it expires. Renewal at t=91 gets it back with 100 s
        // left (the grant ignores time); it is not asked for again until those have run.
        let (source, calls) = source(Some(100), true).await;
        advance(91).await;
        token(&source).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        for _ in 0..99 {
            advance(1).await;
            token(&source).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "no request per request");
        advance(1).await;
        token(&source).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_is_not_in_debug_output() {
        let (source, _) = source(Some(100), false).await;
        assert!(!format!("{source:?}").contains("token-1"));
    }
}
