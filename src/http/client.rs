//! A reqwest wrapper: one per remote API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::retry::{classify, Classifier, Retry, RetryPolicy, TooLong};
use super::token::TokenSource;
use crate::config::secret::Secret;

/// Connection settings a connector's config may carry under `http:`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Seconds before one request is abandoned (and retried).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Attempts per request, the first included, for throttling, 5xx, timeouts and resets.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// The longest wait, in seconds, a server may ask for (`Retry-After`, a rate-limit reset)
    /// before a retry; asked for more, the request fails saying how long the server asked for.
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout_secs: default_timeout(),
            max_attempts: default_attempts(),
            max_concurrency: default_concurrency(),
            max_wait_secs: default_max_wait(),
        }
    }
}

fn default_timeout() -> u64 {
    30
}
fn default_attempts() -> u32 {
    6
}
fn default_concurrency() -> usize {
    4
}
fn default_max_wait() -> u64 {
    super::retry::DEFAULT_MAX_WAIT_SECS
}

/// How requests authenticate.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: <scheme> <token>` (e.g. Okta's `SSWS`).
    Scheme(&'static str, Secret),
    /// An OAuth access token that expires, renewed by its source (shortly before expiry, and once
    /// when the API refuses it).
    Token(Arc<TokenSource>),
}

/// What requests carry, as the client keeps it.
#[derive(Clone, Debug)]
enum Credentials {
    Fixed(Option<HeaderValue>),
    Renewed(Arc<TokenSource>),
}

/// Renewals one request may ask for when the API refuses its token: the first replaces an expired
/// token; a second covers a new token that ran out before the request got to use it (tokens that
/// last only a few requests). A token refused after that is not expiring: the credentials lack
/// access.
const MAX_RENEWALS: u32 = 2;

/// A failed request. Names the method, URL and status; never a credential (they only ever travel
/// in headers, which errors do not quote).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{api}: {method} {url} answered HTTP {status}{detail}")]
    Status {
        api: String,
        method: Method,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{api}: {method} {url} failed after {attempts} attempt(s): {reason}")]
    Transport {
        api: String,
        method: Method,
        url: String,
        attempts: u32,
        reason: String,
    },
    #[error("{api}: {method} {url} answered HTTP {status}; {wait}")]
    WaitTooLong {
        api: String,
        method: Method,
        url: String,
        status: u16,
        wait: TooLong,
    },
    #[error("{api}: {method} {url}: {reason}")]
    Malformed {
        api: String,
        method: Method,
        url: String,
        reason: String,
    },
}

impl HttpError {
    /// The HTTP status, when the server answered.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } | HttpError::WaitTooLong { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// Which failures a request may be sent again after.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// Any: the request is idempotent (reads, PATCHes that set values, token requests).
    Always,
    /// Only those where the request certainly was not applied: throttling, no connection.
    OnlyUnsent,
}

/// What became of a request sent with [`HttpClient::send_once`].
#[derive(Debug)]
pub enum Sent {
    /// The server answered (a 2xx with its whole body, or a 4xx).
    Answered(Reply),
    /// The request may or may not have been applied: a 5xx, a timeout, a connection lost after
    /// sending, or a 2xx whose body was cut off.
    Unknown { reason: String },
}

/// What became of a create sent with [`HttpClient::create_once`].
#[derive(Debug)]
pub enum Created<T> {
    /// The server answered, and the answer is not in doubt (a 2xx, a 409, a 4xx).
    Answered(Box<Reply>),
    /// An answer left it open, and the look-up found what the create would have made.
    Found(T),
}

/// Why [`HttpClient::create_once`] gave up.
#[derive(Debug)]
pub enum CreateError<E> {
    /// No connection, or still throttled, after every attempt.
    Http(HttpError),
    /// An answer left it open (`doubt`), and looking the object up failed.
    Lookup { doubt: String, error: E },
    /// Every attempt was left in doubt (the last: `doubt`), and the look-ups found nothing.
    Exhausted { attempts: u32, doubt: String },
}

/// What a request carries.
#[derive(Clone, Copy)]
enum Payload<'a> {
    None,
    Json(&'a Value),
    Form(&'a [(&'a str, String)]),
}

/// A response: status, headers and the whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    method: Method,
    url: String,
    /// The body as JSON, when the request asked for JSON and it parsed (in the retry loop).
    parsed: Option<Value>,
}

impl Reply {
    /// The body as JSON (an empty body is `null`).
    ///
    /// # Errors
    /// The body is not JSON.
    pub fn json(&self, api: &str) -> Result<Value, HttpError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Malformed {
            api: api.to_string(),
            method: self.method.clone(),
            url: self.url.clone(),
            reason: format!("the response is not valid JSON ({e})"),
        })
    }
}

/// One remote API: a base URL, its credentials and its limits.
#[derive(Clone, Debug)]
pub struct HttpClient {
    api: String,
    client: reqwest::Client,
    base: String,
    /// A token source is shared by clones, so that a renewed token serves every request.
    auth: Credentials,
    limit: Arc<Semaphore>,
    max_concurrency: usize,
    policy: RetryPolicy,
    counter: Arc<AtomicU64>,
    /// Requests wait until then: set when a response says the rate budget is spent.
    not_before: Arc<Mutex<Option<Instant>>>,
    content_type: &'static str,
    /// Headers sent with every request (e.g. Graph's `ConsistencyLevel`).
    extra_headers: HeaderMap,
    /// The vendor's retry signals beyond 429 and 5xx (Google's quota 403s).
    classifier: Option<Classifier>,
}

/// Requests sent by this process, per API name (`Okta`, `Atlassian SCIM`, `Okta token endpoint`,
/// …): a source builds its clients per read, so the counts are kept here, for `-v` to state how
/// many requests a (targeted) read took.
static REQUESTS_BY_API: std::sync::OnceLock<Mutex<std::collections::BTreeMap<String, u64>>> =
    std::sync::OnceLock::new();

fn count_for_api(api: &str) {
    let map = REQUESTS_BY_API.get_or_init(|| Mutex::new(std::collections::BTreeMap::new()));
    if let Ok(mut m) = map.lock() {
        *m.entry(api.to_string()).or_default() += 1;
    }
}

/// Requests sent so far by this process, per API name, retries included.
#[must_use]
pub fn requests_by_api() -> std::collections::BTreeMap<String, u64> {
    REQUESTS_BY_API
        .get()
        .and_then(|m| m.lock().ok().map(|m| m.clone()))
        .unwrap_or_default()
}

impl HttpClient {
    /// A client for the API named `api` (used in messages) at `base_url`.
    ///
    /// # Panics
    /// Only if the TLS backend cannot start.
    #[must_use]
    pub fn new(api: &str, base_url: &str, auth: Auth, settings: &HttpSettings) -> HttpClient {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("idsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client can be built");
        HttpClient {
            api: api.to_string(),
            client,
            base: base_url.trim_end_matches('/').to_string(),
            auth: match auth {
                Auth::Token(source) => Credentials::Renewed(source),
                fixed => Credentials::Fixed(auth_header(&fixed)),
            },
            limit: Arc::new(Semaphore::new(settings.max_concurrency.max(1))),
            max_concurrency: settings.max_concurrency.max(1),
            policy: RetryPolicy {
                max_attempts: settings.max_attempts.max(1),
                max_wait: Duration::from_secs(settings.max_wait_secs),
                ..RetryPolicy::default()
            },
            counter: Arc::new(AtomicU64::new(0)),
            not_before: Arc::new(Mutex::new(None)),
            content_type: "application/json",
            extra_headers: HeaderMap::new(),
            classifier: None,
        }
    }

    /// Consults `classifier` first on every answer: the vendor's own retry signals (a 403 that
    /// means "over quota"), retried by this client's one loop, within `http.max_attempts`.
    #[must_use]
    pub fn with_classifier(mut self, classifier: Classifier) -> Self {
        self.classifier = Some(classifier);
        self
    }

    /// No waits between attempts (unit tests of the retry loop).
    #[cfg(test)]
    #[must_use]
    pub(crate) fn without_waits(mut self) -> Self {
        self.policy.scale = 0.0;
        self
    }

    /// Sends `name: value` with every request.
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.extra_headers
            .insert(name, HeaderValue::from_static(value));
        self
    }

    /// Sends JSON bodies as `content_type` (SCIM uses `application/scim+json`).
    #[must_use]
    pub fn with_content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = content_type;
        self
    }

    /// Requests sent so far, retries included.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }

    /// How many requests may be in flight at once.
    #[must_use]
    pub fn concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// The full URL of a path (or a full URL, returned as is).
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        }
    }

    pub(crate) fn malformed(&self, path: &str, reason: &str) -> HttpError {
        HttpError::Malformed {
            api: self.api.clone(),
            method: Method::GET,
            url: self.url(path),
            reason: reason.to_string(),
        }
    }

    /// An error about one page of a listing, naming its URL with the query that asked for it.
    pub(crate) fn page_fault(
        &self,
        path: &str,
        query: &[(&str, String)],
        reason: &str,
    ) -> HttpError {
        let url = self.url(path);
        let url = if query.is_empty() {
            url
        } else {
            reqwest::Url::parse_with_params(&url, query).map_or(url, String::from)
        };
        HttpError::Malformed {
            api: self.api.clone(),
            method: Method::GET,
            url,
            reason: reason.to_string(),
        }
    }

    /// Waits before asking again for a page that looked wrong (retry number `retry`, 1-based).
    pub(crate) async fn pause(&self, retry: u32) {
        let wait = self.policy.backoff(retry);
        self.say_wait(
            wait,
            "a page looked incomplete",
            &format!(" before asking for it again (retry {retry})"),
        );
        tokio::time::sleep(wait).await;
    }

    /// Says a wait of `wait` (scaled, as slept) for the reason `why` ([`crate::progress::wait`]).
    fn say_wait(&self, wait: Duration, why: &str, then: &str) {
        crate::progress::wait(
            &self.api,
            self.policy.unscaled(wait).as_secs_f64(),
            why,
            then,
        );
    }

    /// GETs JSON; a body that does not parse is retried like a failed request (a truncated page is
    /// never taken for a short one).
    ///
    /// # Errors
    /// A non-2xx answer, or a failure after every attempt.
    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Value, HttpError> {
        Ok(self.get_json_with_headers(path, query).await?.0)
    }

    /// As [`HttpClient::get_json`], with the response headers (for `Link` paging).
    ///
    /// # Errors
    /// As [`HttpClient::get_json`].
    pub async fn get_json_with_headers(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(Value, HeaderMap), HttpError> {
        let sent = self
            .send_payload(
                Method::GET,
                path,
                query,
                Payload::None,
                Replay::Always,
                &mut 0,
                true,
            )
            .await?;
        let mut reply = self.answered(sent, Method::GET, path)?;
        if !reply.status.is_success() {
            return Err(self.status_error(&reply));
        }
        let v = match reply.parsed.take() {
            Some(v) => v,
            None => reply.json(&self.api)?,
        };
        crate::progress::page(crate::progress::listed(&v));
        Ok((v, reply.headers))
    }

    /// POSTs a request that only reads (Graph's `$batch` of GETs), and reads its JSON answer: sent
    /// again, within the one attempt budget, after throttling, a 5xx or a cut-off body, as a GET is.
    ///
    /// # Errors
    /// A non-2xx answer, or a failure after every attempt.
    pub async fn post_read_json(&self, path: &str, body: &Value) -> Result<Value, HttpError> {
        let sent = self
            .send_payload(
                Method::POST,
                path,
                &[],
                Payload::Json(body),
                Replay::Always,
                &mut 0,
                true,
            )
            .await?;
        let mut reply = self.answered(sent, Method::POST, path)?;
        if !reply.status.is_success() {
            return Err(self.status_error(&reply));
        }
        match reply.parsed.take() {
            Some(v) => Ok(v),
            None => reply.json(&self.api),
        }
    }

    /// The retry policy, for what answers one call with many (the items of a Graph `$batch`, each
    /// retried in a later batch within the same attempt budget). Never for a loop around a call:
    /// every call retries in the client's own loop.
    #[must_use]
    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Sends a request and insists on a 2xx answer.
    ///
    /// # Errors
    /// A non-2xx answer (its SCIM or API error detail quoted), or a failure after every attempt.
    pub async fn success(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Reply, HttpError> {
        let reply = self.send(method, path, query, body).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(self.status_error(&reply))
        }
    }

    /// The error for a non-2xx reply, quoting what the body says went wrong.
    #[must_use]
    pub fn status_error(&self, reply: &Reply) -> HttpError {
        HttpError::Status {
            api: self.api.clone(),
            method: reply.method.clone(),
            url: reply.url.clone(),
            status: reply.status.as_u16(),
            // Redacted before it is parsed and cut short, so that no part of an echoed credential
            // survives (the output boundary redacts again, but cannot see a cut-off prefix).
            detail: error_detail(&crate::config::secret::redact_bytes(&reply.body)),
        }
    }

    /// Sends a request, retrying throttling (429), 5xx, timeouts and connection failures; returns
    /// whatever the server finally answered, 4xx included.
    ///
    /// # Errors
    /// No answer after every attempt, or a last answer that was still throttled or a 5xx.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Reply, HttpError> {
        let payload = body.map_or(Payload::None, Payload::Json);
        let sent = self
            .send_payload(
                method.clone(),
                path,
                query,
                payload,
                Replay::Always,
                &mut 0,
                false,
            )
            .await?;
        self.answered(sent, method, path)
    }

    /// The reply of a request sent with `Replay::Always`, which never comes back unknown (kept an
    /// error rather than a panic).
    fn answered(&self, sent: Sent, method: Method, path: &str) -> Result<Reply, HttpError> {
        match sent {
            Sent::Answered(reply) => Ok(reply),
            Sent::Unknown { reason } => Err(HttpError::Transport {
                api: self.api.clone(),
                method,
                url: self.url(path),
                attempts: 1,
                reason,
            }),
        }
    }

    /// Sends a request that must not be repeated blindly (a create: sent twice, it may create two
    /// objects). Only what certainly did not reach the server is retried: throttling (429) and a
    /// connection that could not be made. A 5xx, a timeout, a connection lost after sending, or a
    /// 2xx whose body was cut off come back as [`Sent::Unknown`]: the caller looks the object up
    /// before trying again.
    ///
    /// # Errors
    /// No connection after every attempt, or a last answer that was still throttled.
    pub async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Sent, HttpError> {
        let payload = body.map_or(Payload::None, Payload::Json);
        self.send_payload(
            method,
            path,
            &[],
            payload,
            Replay::OnlyUnsent,
            &mut 0,
            false,
        )
        .await
    }

    /// Sends a create that must not be repeated blindly, and after an answer that leaves open
    /// whether it was applied ([`Sent::Unknown`], or a 2xx that `doubt` finds wanting) looks for
    /// what it would have made with `find` before sending it again. Every send, the retries of
    /// throttling included, counts against the one budget of `http.max_attempts`.
    ///
    /// # Errors
    /// No connection or still throttled after every attempt ([`CreateError::Http`]); a look-up
    /// that failed ([`CreateError::Lookup`]); every attempt left in doubt and nothing found
    /// ([`CreateError::Exhausted`]).
    pub async fn create_once<T, E, F, Fut>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        doubt: impl Fn(&Reply) -> Option<String>,
        find: &F,
    ) -> Result<Created<T>, CreateError<E>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, E>>,
    {
        let payload = body.map_or(Payload::None, Payload::Json);
        let mut attempt = 0;
        loop {
            let sent = self
                .send_payload(
                    method.clone(),
                    path,
                    &[],
                    payload,
                    Replay::OnlyUnsent,
                    &mut attempt,
                    false,
                )
                .await
                .map_err(CreateError::Http)?;
            let why = match sent {
                Sent::Answered(reply) => match doubt(&reply) {
                    None => return Ok(Created::Answered(Box::new(reply))),
                    Some(why) => why,
                },
                Sent::Unknown { reason } => reason,
            };
            // The create may have happened: look before sending it again.
            match find().await {
                Err(error) => return Err(CreateError::Lookup { doubt: why, error }),
                Ok(Some(found)) => return Ok(Created::Found(found)),
                Ok(None) => {}
            }
            if attempt >= self.policy.max_attempts {
                return Err(CreateError::Exhausted {
                    attempts: attempt,
                    doubt: why,
                });
            }
            let wait = self.policy.backoff(attempt);
            self.say_wait(
                wait,
                &format!("{method} {}: {why}", self.url(path)),
                &format!(
                    " (backing off) before attempt {} of {}",
                    attempt + 1,
                    self.policy.max_attempts
                ),
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Waits `wait` (as the policy scales waits) before sending more requests: a pause a
    /// connector decides on from the rate budget an answer stated.
    pub async fn hold(&self, wait: Duration) {
        let wait = self.policy.scaled(wait);
        let until = Instant::now().checked_add(wait);
        {
            let mut nb = self.not_before.lock().expect("not poisoned");
            if until > *nb {
                *nb = until;
            }
        }
        self.wait_for_budget().await;
    }

    /// POSTs a form (an OAuth token request), with the same retries; returns whatever the server
    /// finally answered. The form, which holds credentials, is never quoted in errors.
    ///
    /// # Errors
    /// As [`HttpClient::send`].
    pub async fn post_form(&self, path: &str, form: &[(&str, String)]) -> Result<Reply, HttpError> {
        let sent = self
            .send_payload(
                Method::POST,
                path,
                &[],
                Payload::Form(form),
                Replay::Always,
                &mut 0,
                false,
            )
            .await?;
        self.answered(sent, Method::POST, path)
    }

    /// The one retry loop: every retry of every request happens here. `attempt` counts the
    /// attempts already made for this call (so that a caller resending after a doubt shares the
    /// budget); `json`: a 2xx body that is not JSON is a failed attempt (a cut-off page is never
    /// taken for a short one), and the parsed body travels in the reply.
    #[allow(clippy::too_many_arguments)]
    async fn send_payload(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        payload: Payload<'_>,
        replay: Replay,
        attempt: &mut u32,
        json: bool,
    ) -> Result<Sent, HttpError> {
        let url = self.url(path);
        // Errors name the URL with its query (the page, the filter): only ever idsync's own
        // parameters, never a credential.
        let shown = if query.is_empty() {
            url.clone()
        } else {
            reqwest::Url::parse_with_params(&url, query).map_or_else(|_| url.clone(), String::from)
        };
        let mut renewals = 0;
        loop {
            *attempt += 1;
            let attempt_now = *attempt;
            self.wait_for_budget().await;
            // The generation of the access token the request is sent with, when it has one.
            let mut generation = None;
            let outcome = {
                let _permit = self
                    .limit
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                self.counter.fetch_add(1, Ordering::Relaxed);
                count_for_api(&self.api);
                let mut req = self
                    .client
                    .request(method.clone(), &url)
                    .header(ACCEPT, "application/scim+json, application/json")
                    .headers(self.extra_headers.clone());
                if !query.is_empty() {
                    req = req.query(query);
                }
                let auth = match &self.auth {
                    Credentials::Fixed(header) => header.clone(),
                    Credentials::Renewed(source) => {
                        let (header, g) = source.authorization().await?;
                        generation = Some(g);
                        Some(header)
                    }
                };
                if let Some(auth) = auth {
                    req = req.header(AUTHORIZATION, auth);
                }
                match payload {
                    Payload::None => {}
                    Payload::Json(b) => {
                        req = req
                            .header(CONTENT_TYPE, self.content_type)
                            .body(serde_json::to_vec(b).expect("JSON values serialize"));
                    }
                    Payload::Form(f) => req = req.form(f),
                }
                match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let headers = resp.headers().clone();
                        match resp.bytes().await {
                            // `Vec::from` takes the buffer over when it can: no copy of the page.
                            Ok(b) => Ok((status, headers, Vec::from(b), false)),
                            // The status came, the body did not: for a request that is never
                            // replayed blindly, that is a cut answer; otherwise a failure to retry.
                            Err(_) if replay == Replay::OnlyUnsent && status.is_success() => {
                                Ok((status, headers, Vec::new(), true))
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            };
            let last = attempt_now >= self.policy.max_attempts;
            match outcome {
                Ok((status, headers, body, cut)) => {
                    self.note_budget(&headers);
                    let reply = Reply {
                        status,
                        headers,
                        body,
                        method: method.clone(),
                        url: shown.clone(),
                        parsed: None,
                    };
                    if let (StatusCode::UNAUTHORIZED, Credentials::Renewed(source), Some(g)) =
                        (status, &self.auth, generation)
                    {
                        if renewals >= MAX_RENEWALS {
                            return Err(self.refused_error(&reply));
                        }
                        // Expired: a new token (one for every request refused with this one),
                        // and the request again, which does not count as a failed attempt.
                        renewals += 1;
                        *attempt -= 1;
                        source.refused(g).await?;
                        continue;
                    }
                    let mut decision = self
                        .classifier
                        .and_then(|c| c(status, &reply.headers, &reply.body))
                        .unwrap_or_else(|| classify(status, &reply.headers));
                    let mut reply = reply;
                    let mut what = if status == StatusCode::TOO_MANY_REQUESTS {
                        "throttled (HTTP 429)".to_string()
                    } else {
                        format!("HTTP {}", status.as_u16())
                    };
                    if decision == Retry::No && json && status.is_success() && !cut {
                        if reply.body.is_empty() {
                            reply.parsed = Some(Value::Null);
                        } else {
                            match parse_json(&mut reply.body).await {
                                Ok(v) => reply.parsed = Some(v),
                                Err(_) if last => return Ok(Sent::Answered(reply)),
                                Err(_) => {
                                    decision = Retry::Backoff;
                                    what = "the answer is not valid JSON".to_string();
                                }
                            }
                        }
                    }
                    if decision == Retry::No {
                        // A 2xx whose body was cut is not an answer to rely on.
                        if replay == Replay::OnlyUnsent && status.is_success() && cut {
                            return Ok(Sent::Unknown {
                                reason: format!("HTTP {status} with its body cut off"),
                            });
                        }
                        return Ok(Sent::Answered(reply));
                    }
                    // Only what certainly was not applied is sent again blindly: throttling and
                    // the vendor's own refusals, never a 5xx.
                    if replay == Replay::OnlyUnsent && status.is_server_error() {
                        return Ok(Sent::Unknown {
                            reason: format!(
                                "HTTP {status}{}",
                                error_detail(&crate::config::secret::redact_bytes(&reply.body))
                            ),
                        });
                    }
                    if last {
                        return Err(self.status_error(&reply));
                    }
                    let why = format!("{method} {shown}: {what}");
                    let next = format!(
                        " before attempt {} of {}",
                        attempt_now + 1,
                        self.policy.max_attempts
                    );
                    let wait = match decision {
                        Retry::After(asked) => match self.policy.clamp(asked) {
                            Ok(wait) => {
                                // What the server asked for, not the scaled wait of a test.
                                crate::progress::wait(
                                    &self.api,
                                    asked.secs,
                                    &why,
                                    &format!(" ({}){next}", asked.by),
                                );
                                wait
                            }
                            Err(wait) => {
                                return Err(HttpError::WaitTooLong {
                                    api: self.api.clone(),
                                    method,
                                    url: shown,
                                    status: status.as_u16(),
                                    wait,
                                })
                            }
                        },
                        _ => {
                            let wait = self.policy.backoff(attempt_now);
                            self.say_wait(wait, &why, &format!(" (backing off){next}"));
                            wait
                        }
                    };
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    if replay == Replay::OnlyUnsent && !e.is_connect() {
                        return Ok(Sent::Unknown {
                            reason: transport_reason(&e),
                        });
                    }
                    if last {
                        return Err(HttpError::Transport {
                            api: self.api.clone(),
                            method,
                            url: shown,
                            attempts: attempt_now,
                            reason: transport_reason(&e),
                        });
                    }
                    let wait = self.policy.backoff(attempt_now);
                    self.say_wait(
                        wait,
                        &format!("{method} {shown}: {}", transport_reason(&e)),
                        &format!(
                            " (backing off) before attempt {} of {}",
                            attempt_now + 1,
                            self.policy.max_attempts
                        ),
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// The error for an access token refused although it was just issued.
    fn refused_error(&self, reply: &Reply) -> HttpError {
        let mut e = self.status_error(reply);
        if let HttpError::Status { detail, .. } = &mut e {
            detail.push_str(
                "; newly issued access tokens were refused as well, so the credentials are not \
                 allowed to read this API: check the app's roles, scopes or API permissions",
            );
        }
        e
    }

    /// Paces requests before a 429 happens: a response saying (almost) no requests remain in the
    /// rate window sets a moment, the window's reset, before which no request is sent.
    fn note_budget(&self, headers: &HeaderMap) {
        let remaining = ["x-rate-limit-remaining", "x-ratelimit-remaining"]
            .iter()
            .find_map(|h| headers.get(*h))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // With requests in flight, stop while a few remain: the ones already sent will use them.
        let reserve = u64::try_from(self.max_concurrency.saturating_sub(1)).unwrap_or(0);
        if remaining.is_some_and(|r| r <= reserve) {
            // A reset further off than `max_wait` is not waited for here: the server's own 429,
            // if it comes, fails the request saying how long it asked for.
            let asked = super::retry::asked(headers);
            if let Some((asked, Ok(wait))) = asked.map(|a| (a, self.policy.clamp(a))) {
                let mut nb = self.not_before.lock().expect("not poisoned");
                let now = Instant::now();
                // Said once per spent budget, not by every request that sees it.
                let pausing = nb.is_some_and(|t| t > now);
                *nb = now.checked_add(wait);
                drop(nb);
                if !pausing {
                    crate::progress::wait(
                        &self.api,
                        asked.secs,
                        "the rate limit's budget is spent",
                        &format!(
                            " for it to reset ({}) before sending more requests",
                            asked.by
                        ),
                    );
                }
            }
        }
    }

    async fn wait_for_budget(&self) {
        let until = *self.not_before.lock().expect("not poisoned");
        if let Some(t) = until {
            let now = Instant::now();
            if t > now {
                tokio::time::sleep(t - now).await;
            }
        }
    }
}

/// The `Authorization` header of `auth`, marked sensitive (never logged by reqwest).
fn auth_header(auth: &Auth) -> Option<HeaderValue> {
    let v = match auth {
        Auth::None | Auth::Token(_) => return None,
        Auth::Bearer(s) => format!("Bearer {}", s.expose()),
        Auth::Scheme(scheme, s) => format!("{scheme} {}", s.expose()),
    };
    let mut v = HeaderValue::from_str(&v).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// A short description of a transport failure, without the URL (the error names it already).
fn transport_reason(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the response body was cut off"
    } else {
        "the connection failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

/// Bodies at least this large are parsed off the runtime's thread.
const PARSE_APART: usize = 32 << 10;

/// Parses a JSON body. A large one (a page of a listing) is parsed on a blocking thread, so that
/// the requests in flight beside it are answered and sent on meanwhile instead of waiting for the
/// parse: on two cores, reading and parsing overlap.
async fn parse_json(body: &mut Vec<u8>) -> serde_json::Result<Value> {
    if body.len() < PARSE_APART {
        return serde_json::from_slice(body);
    }
    let bytes = std::mem::take(body);
    let parsed = apart(move || {
        let parsed = serde_json::from_slice(&bytes);
        (bytes, parsed)
    });
    match parsed.await {
        Some((bytes, parsed)) => {
            *body = bytes;
            parsed
        }
        None => Err(<serde_json::Error as serde::de::Error>::custom(
            "the runtime stopped while the answer was parsed",
        )),
    }
}

/// Runs CPU-bound work (parsing or converting a large page) on a blocking thread, so that the
/// requests beside it go on meanwhile. `None` only when the runtime is shutting down; a panic in
/// `work` goes on as a panic here.
pub(crate) async fn apart<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    match tokio::task::spawn_blocking(work).await {
        Ok(r) => Some(r),
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => None,
        },
    }
}

/// What an error body says: SCIM `detail` (with `scimType`), Atlassian `error`, Okta `errorSummary`,
/// Graph `error.message`, or the start of the text.
fn error_detail(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        return if text.is_empty() {
            String::new()
        } else {
            format!(": {}", text.chars().take(200).collect::<String>())
        };
    };
    let s = |v: &Value| v.as_str().map(String::from);
    // Atlassian's admin APIs: {"errors":[{"code","title","detail"}, …]}.
    if let Some(errors) = v.get("errors").and_then(Value::as_array) {
        let parts: Vec<String> = errors
            .iter()
            .filter_map(|e| {
                let f = |k: &str| e.get(k).and_then(Value::as_str).filter(|t| !t.is_empty());
                let text = match (f("title"), f("detail")) {
                    (Some(t), Some(d)) if t != d => format!("{t}: {d}"),
                    (Some(t), _) => t.to_string(),
                    (None, Some(d)) => d.to_string(),
                    (None, None) => e.as_str()?.to_string(),
                };
                Some(match f("code") {
                    Some(c) => format!("{c}: {text}"),
                    None => text,
                })
            })
            .collect();
        if !parts.is_empty() {
            return format!(" ({})", parts.join("; "));
        }
    }
    let detail = v
        .get("detail")
        .and_then(s)
        .map(|d| match v.get("scimType").and_then(Value::as_str) {
            Some(t) => format!("{t}: {d}"),
            None => d,
        })
        .or_else(|| v.get("errorSummary").and_then(s))
        .or_else(|| v.get("error_description").and_then(s))
        .or_else(|| v.pointer("/error/message").and_then(s))
        .or_else(|| v.get("error").and_then(s))
        .or_else(|| v.get("message").and_then(s))
        // OneLogin's v1 envelope: {"status": {"error": true, "message": ...}}.
        .or_else(|| v.pointer("/status/message").and_then(s));
    detail.map(|d| format!(" ({d})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_quoted_briefly() {
        let scim = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"userName taken"}"#;
        assert_eq!(error_detail(scim), " (uniqueness: userName taken)");
        let admin = br#"{"errors":[{"code":"INVALID_ROLE_ID","title":"Bad Request","detail":"roleIds: unknown role org-admin"},{"title":"Second"}]}"#;
        assert_eq!(
            error_detail(admin),
            " (INVALID_ROLE_ID: Bad Request: roleIds: unknown role org-admin; Second)"
        );
        assert_eq!(
            error_detail(br#"{"errors":[{"code":"401","title":"Unauthorized"}]}"#),
            " (401: Unauthorized)"
        );
        assert_eq!(
            error_detail(br#"{"error":"Unauthorized","traceId":"x"}"#),
            " (Unauthorized)"
        );
        assert_eq!(
            error_detail(
                br#"{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit"}"#
            ),
            " (API call exceeded rate limit)"
        );
        assert_eq!(error_detail(b""), "");
    }

    #[test]
    fn the_token_is_never_in_debug_output() {
        let c = HttpClient::new(
            "test",
            "https://example.com/",
            Auth::Bearer(Secret::new("s3cr3t-value")),
            &HttpSettings::default(),
        );
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
        assert_eq!(c.url("/Users"), "https://example.com/Users");
    }
}
