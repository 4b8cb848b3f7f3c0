//! In-process fakes of the remote services idsync talks to, plus a reusable fault-injection layer.
//!
//! The crate `idsync-fakes` (never published) serves idsync's tests and benches. What all fakes
//! share is here (the fault layer, the rate limiter, token bookkeeping, query parameters) and in
//! [`directory`] and [`oauth`] (the check of signed client assertions). Every vendor's directory
//! is kept in the [`directory`] core: records in creation order found by id
//! ([`directory::Table`]), names, emails and logins to ids ([`directory::KeyIndex`],
//! case-insensitive), and group (or role) members as ordered sets with the reverse index
//! ([`directory::Memberships`]), so no request scans the directory to find a record, a member or
//! a user's groups. Each vendor module keeps only its dialect: its record types and their JSON,
//! routes, paging (and the order its listings come in, derived from the core's), error bodies,
//! authentication rules and quirks. The fakes' own tests are in idsync's `tests/fakes/`,
//! compiled into its one integration binary.
//!
//! Each fake is an axum router served on `127.0.0.1:0` by [`serve`], which wraps it in the
//! [`FaultLayer`]: a request log, a global latency, and the faults described by [`Faults`].
//!
//! The order in which the layer treats a request is fixed:
//!
//! 1. note when the request came: its answer leaves no sooner than the global latency after that
//!    (the steps below, the handler included, run meanwhile, so a fake's own work is not added to
//!    the latency a client sees unless it takes longer);
//! 2. log the request (every request is logged, faulted or not);
//! 3. `reset_next`, then `throttle_next`, then `error_every`, then `fail_path_contains` — the first
//!    that fires answers the request and the handler never runs, so a faulted mutation is *not*
//!    applied;
//! 4. `slow` delays the request, then the handler runs;
//! 5. `fail_after_mutation` replaces a successful mutation's response with a 500 (the mutation
//!    stays applied); `reset_after_mutation` closes its connection without a response;
//!    `truncate_after_mutation` cuts its body in half; `stall_after_mutation` holds its response
//!    back for `stall_for` (the client times out); or `truncate_next` cuts a successful GET body
//!    in half. In each case the mutation stays applied.
//!
//! `page_fault` aims at chosen pages of a listing (a [`PageFault`] picks them by path, query and
//! the page's order on its path): it resets the connection, answers 503, cuts the body in half,
//! answers another page than the one asked (the paging parameters dropped: the server ignores its
//! cursor), or rewrites the page through the fake's own dialect hook ([`FaultLayer::with_pages`]):
//! its items emptied or halved, or its announced total lowered. A fake without a hook (or a kind its
//! API cannot express) leaves the page alone, and [`FaultLayer::page_faults_fired`] says so.
//!
//! Resets: the connection's socket is wrapped in a [`KillableStream`]. A reset marks it dead, so
//! hyper's attempt to write the response fails and the server closes the socket without having
//! sent a single byte. reqwest then reports an error for which `is_request()` is true (hyper's
//! "connection closed before message completed"); it is not a timeout and carries no status.

pub mod atlassian;
pub mod directory;
pub mod entra;
pub mod google;
pub mod keycloak;
pub mod oauth;
pub mod okta;
pub mod onelogin;

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    body::Body,
    extract::{connect_info::Connected, ConnectInfo, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    middleware::{self, Next},
    response::Response,
    serve::{IncomingStream, Listener},
    Router,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    task::AbortHandle,
};

/// Faults to inject into the next requests. Counters (`*_next`, `fail_after_mutation`) are
/// decremented as they fire.
#[derive(Clone, Debug)]
pub struct Faults {
    /// The next N requests get 429 with `Retry-After` and `X-RateLimit-Reset`.
    pub throttle_next: usize,
    /// The `Retry-After` of a throttled response, in seconds (default 1).
    pub retry_after_secs: u64,
    /// Every Nth request (counting all requests, from 1) gets a 500.
    pub error_every: Option<usize>,
    /// A request whose path+query contains the string gets a 503, the first `usize` times
    /// (`usize::MAX`: always).
    pub fail_path_contains: Option<(String, usize)>,
    /// The next N requests have their connection closed without any response.
    pub reset_next: usize,
    /// Requests whose path+query contains the string are delayed this long.
    pub slow: Option<(String, Duration)>,
    /// The next N successful GET responses have their body cut in half (status stays 200).
    pub truncate_next: usize,
    /// The next N successful mutations are applied, but answered with a 500.
    pub fail_after_mutation: usize,
    /// Raw `Retry-After` and `X-RateLimit-Reset` values of a throttled response, instead of
    /// `retry_after_secs` (absurd or hostile values: `1e30`, a date in 9999).
    pub throttle_headers_raw: Option<String>,
    /// Successful responses say the rate budget is spent (`X-Rate-Limit-Remaining: 0`) and resets
    /// at this raw `X-Rate-Limit-Reset` value.
    pub spent_budget_reset: Option<String>,
    /// The next N requests (with `echo_auth_mutations_only`, mutations) are answered 400 with an
    /// error that quotes the request's `Authorization` header, as a careless server might.
    pub echo_auth_next: usize,
    pub echo_auth_mutations_only: bool,
    /// The echo is plain text, padded so that the credential straddles the 200th character.
    pub echo_auth_plain: bool,
    /// The next N successful mutations are applied, then their connection is closed without a
    /// response (a reset after sending).
    pub reset_after_mutation: usize,
    /// The next N successful mutations are applied and answered 2xx with the body cut in half.
    pub truncate_after_mutation: usize,
    /// The next N successful mutations are applied, then answered only after `stall_for` (the
    /// client times out first).
    pub stall_after_mutation: usize,
    /// How long a `stall_after_mutation` response waits.
    pub stall_for: Duration,
    /// Faults aimed at chosen pages of a listing.
    pub page_fault: Option<PageFault>,
    /// A 429 storm that ends: see [`Storm`].
    pub storm: Option<Storm>,
}

/// A 429 storm that ends: it starts with the first request whose path+query contains `needle`
/// and lasts `length`; every such request meanwhile gets 429 with `Retry-After` (and
/// `X-RateLimit-Reset`) saying when it ends, rounded up to the second. A client that retries
/// before then is refused again, so counting a request's refusals tells whether the waits were
/// honoured, however slowly the client started.
#[derive(Clone, Debug)]
pub struct Storm {
    pub needle: String,
    pub length: Duration,
    /// When it ends; set by the first request it hits.
    pub until: Option<Instant>,
}

impl Storm {
    pub fn new(needle: &str, length: Duration) -> Storm {
        Storm {
            needle: needle.to_owned(),
            length,
            until: None,
        }
    }
}

/// What a page fault does to a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageFaultKind {
    /// The page's items are gone; everything else (totals, next links) is as it was.
    Empty,
    /// The page holds only the first half of its items (at least one is dropped).
    Short,
    /// The server ignores the page's cursor or offset and answers the first page again (whose
    /// next link points at a page already read).
    RepeatCursor,
    /// The total the listing announces (`totalResults`, a count, `Total-Count`) is one less than
    /// what the pages hold: the pages run past the announced end.
    PastEnd,
    /// The body is cut in half, with status 200.
    Truncate,
    /// 503.
    Unavailable,
    /// The connection is closed without an answer.
    Reset,
}

/// Picks the pages of a listing to fault: `(path, query, nth)`, `nth` being the page's rank (from
/// 1) among the distinct queries seen on that path, in order of arrival (a retry keeps its rank).
pub type PagePicker = Arc<dyn Fn(&str, &Params, usize) -> bool + Send + Sync>;

/// A fault aimed at chosen pages, `times` times (`usize::MAX`: always).
#[derive(Clone)]
pub struct PageFault {
    pub kind: PageFaultKind,
    pub pick: PagePicker,
    pub times: usize,
}

impl std::fmt::Debug for PageFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PageFault({:?}, {} times)", self.kind, self.times)
    }
}

/// A fake's dialect hook: rewrites the JSON body and headers of a page for `Empty`, `Short` and
/// `PastEnd`; false when this page or kind has nothing to rewrite.
pub type PageDialect = fn(PageFaultKind, &mut serde_json::Value, &mut HeaderMap) -> bool;

/// Empties or halves a list of items, as the dialect hooks do; false for other kinds.
pub fn cut_items(kind: PageFaultKind, items: &mut Vec<serde_json::Value>) -> bool {
    match kind {
        PageFaultKind::Empty if !items.is_empty() => items.clear(),
        PageFaultKind::Short if !items.is_empty() => items.truncate(items.len() / 2),
        _ => return false,
    }
    true
}

/// Lowers a number in a body by one (`PastEnd`).
pub fn lower(value: Option<&mut serde_json::Value>) -> bool {
    match value.and_then(|v| v.as_u64().map(|n| (v, n))) {
        Some((v, n)) if n > 0 => {
            *v = serde_json::json!(n - 1);
            true
        }
        _ => false,
    }
}

/// The query parameters that choose a page, in every fake's dialect.
const PAGING_PARAMS: &[&str] = &[
    "startIndex",
    "after",
    "$skiptoken",
    "pageToken",
    "first",
    "page",
    "cursor",
    "after_cursor",
];

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            throttle_next: 0,
            retry_after_secs: 1,
            error_every: None,
            fail_path_contains: None,
            reset_next: 0,
            slow: None,
            truncate_next: 0,
            fail_after_mutation: 0,
            throttle_headers_raw: None,
            spent_budget_reset: None,
            echo_auth_next: 0,
            echo_auth_mutations_only: false,
            echo_auth_plain: false,
            reset_after_mutation: 0,
            truncate_after_mutation: 0,
            stall_after_mutation: 0,
            stall_for: Duration::from_secs(30),
            page_fault: None,
            storm: None,
        }
    }
}

/// One request received by a fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLog {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, empty when there is none.
    pub query: String,
    /// The status sent back; 0 for a reset connection.
    pub status: u16,
    /// Whether the request is meant to change state (see [`FaultLayer::is_mutation`]).
    pub mutation: bool,
    /// How long the request took from its arrival to its answer (at least the latency); zero
    /// until it is answered.
    pub took: Duration,
}

/// What the layer does with a request before the handler runs.
enum Verdict {
    Reset,
    /// Answer 400 quoting the `Authorization` header (plain text when true).
    EchoAuth(bool),
    Throttle(u64),
    Fail(StatusCode, &'static str),
    /// Delay, then a page fault to apply around the handler.
    Proceed(Option<Duration>, Option<PageFaultKind>),
}

/// The shared state of the fault layer: the faults to inject and the log of requests.
pub struct FaultLayer {
    faults: Mutex<Faults>,
    log: Mutex<Vec<RequestLog>>,
    latency: Duration,
    /// Tells mutations from reads; by default every method but GET, HEAD and OPTIONS mutates.
    is_mutation: fn(&Method, &str) -> bool,
    /// Renders the body of an injected error (status, detail) in the fake's own error shape.
    render_error: fn(StatusCode, &str) -> Response,
    /// Rewrites a page for a page fault, in the fake's dialect.
    page_dialect: Option<PageDialect>,
    /// The distinct queries seen on each path, in order (the rank of a page).
    pages_seen: Mutex<std::collections::HashMap<String, Vec<String>>>,
    /// Page faults that changed a response.
    fired: AtomicUsize,
}

impl FaultLayer {
    pub fn new(latency: Duration, render_error: fn(StatusCode, &str) -> Response) -> FaultLayer {
        FaultLayer {
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(Vec::new()),
            latency,
            is_mutation: default_is_mutation,
            render_error,
            page_dialect: None,
            pages_seen: Mutex::new(std::collections::HashMap::new()),
            fired: AtomicUsize::new(0),
        }
    }

    /// Gives the layer the fake's dialect for page faults (what a page's items and total are).
    pub fn with_pages(mut self, dialect: PageDialect) -> FaultLayer {
        self.page_dialect = Some(dialect);
        self
    }

    /// How many responses page faults changed so far.
    pub fn page_faults_fired(&self) -> usize {
        self.fired.load(Ordering::SeqCst)
    }

    /// Overrides how mutations are told from reads (e.g. a search that is a POST).
    pub fn with_is_mutation(mut self, is_mutation: fn(&Method, &str) -> bool) -> FaultLayer {
        self.is_mutation = is_mutation;
        self
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults() = faults;
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<RequestLog> {
        lock(&self.log).clone()
    }

    /// Logs a request and decides its fate, under one lock so concurrent requests count right.
    fn admit(&self, entry: RequestLog) -> (usize, Verdict) {
        let target = if entry.query.is_empty() {
            entry.path.clone()
        } else {
            format!("{}?{}", entry.path, entry.query)
        };
        let mut faults = self.faults();
        let mutation = entry.mutation;
        let mut log = lock(&self.log);
        log.push(entry);
        let index = log.len() - 1;
        let nth = log.len();
        drop(log);

        let rank = {
            let mut seen = lock(&self.pages_seen);
            let queries = seen.entry(entry_path(&target)).or_default();
            let q = target.split_once('?').map_or("", |(_, q)| q).to_string();
            match queries.iter().position(|x| *x == q) {
                Some(i) => i + 1,
                None => {
                    queries.push(q);
                    queries.len()
                }
            }
        };
        let page_fault = match faults.page_fault.as_mut() {
            Some(pf) if pf.times > 0 => {
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let params = Params(form_pairs(query));
                if (pf.pick)(path, &params, rank) {
                    if pf.times != usize::MAX {
                        pf.times -= 1;
                    }
                    Some(pf.kind)
                } else {
                    None
                }
            }
            _ => None,
        };
        let echo = !faults.echo_auth_mutations_only || mutation;
        let verdict = if page_fault == Some(PageFaultKind::Reset) {
            self.fired.fetch_add(1, Ordering::SeqCst);
            Verdict::Reset
        } else if page_fault == Some(PageFaultKind::Unavailable) {
            self.fired.fetch_add(1, Ordering::SeqCst);
            Verdict::Fail(StatusCode::SERVICE_UNAVAILABLE, "injected unavailability")
        } else if echo && take(&mut faults.echo_auth_next) {
            Verdict::EchoAuth(faults.echo_auth_plain)
        } else if take(&mut faults.reset_next) {
            Verdict::Reset
        } else if let Some(left) = faults
            .storm
            .as_mut()
            .filter(|storm| target.contains(storm.needle.as_str()))
            .and_then(|storm| {
                let now = Instant::now();
                let until = *storm.until.get_or_insert(now + storm.length);
                until.checked_duration_since(now)
            })
            .filter(|left| !left.is_zero())
        {
            Verdict::Throttle(left.as_secs() + u64::from(left.subsec_nanos() > 0))
        } else if take(&mut faults.throttle_next) {
            Verdict::Throttle(faults.retry_after_secs)
        } else if faults
            .error_every
            .is_some_and(|n| n > 0 && nth.is_multiple_of(n))
        {
            Verdict::Fail(StatusCode::INTERNAL_SERVER_ERROR, "injected failure")
        } else if let Some((_, times)) = faults
            .fail_path_contains
            .as_mut()
            .filter(|(needle, times)| *times > 0 && target.contains(needle.as_str()))
        {
            if *times != usize::MAX {
                *times -= 1;
            }
            Verdict::Fail(StatusCode::SERVICE_UNAVAILABLE, "injected unavailability")
        } else {
            let delay = faults
                .slow
                .as_ref()
                .filter(|(needle, _)| target.contains(needle.as_str()))
                .map(|(_, delay)| *delay);
            Verdict::Proceed(delay, page_fault)
        };
        (index, verdict)
    }

    /// Notes the status of a request's answer, and how long it took since `arrived`.
    fn record_status(&self, index: usize, status: u16, arrived: tokio::time::Instant) {
        let mut log = lock(&self.log);
        log[index].status = status;
        log[index].took = arrived.elapsed();
    }

    /// Notes how long a request's answer took since `arrived`, when it leaves.
    fn record_took(&self, index: usize, arrived: tokio::time::Instant) {
        lock(&self.log)[index].took = arrived.elapsed();
    }
}

fn default_is_mutation(method: &Method, _path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Takes one from a fault counter, if any is left.
fn take(counter: &mut usize) -> bool {
    let fire = *counter > 0;
    if fire {
        *counter -= 1;
    }
    fire
}

/// A person's given and family names made from an email's local part: `alice.van_der.berg@…` gives
/// ("Alice", "Van Der Berg"). Seeding helpers of every fake use it.
pub fn names_from_email(email: &str) -> (Option<String>, Option<String>) {
    let capitalise = |word: &str| {
        let mut chars = word.chars();
        chars.next().map_or_else(String::new, |first| {
            first.to_uppercase().chain(chars).collect::<String>()
        })
    };
    let local = email.split('@').next().unwrap_or_default();
    let mut parts = local
        .split(['.', '_'])
        .filter(|p| !p.is_empty())
        .map(capitalise);
    let given = parts.next();
    let family = parts.collect::<Vec<_>>().join(" ");
    (given, (!family.is_empty()).then_some(family))
}

/// Writes a JSON object straight into a buffer, one member at a time: the fakes write the pages of
/// their listings this way, without building a JSON value per record and serializing it after.
pub struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> ObjectWriter<'a> {
        out.push(b'{');
        ObjectWriter { out, first: true }
    }

    /// Starts a member: writes `"key":` and hands back the buffer for its value.
    pub fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        write_json_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    pub fn value(&mut self, key: &str, value: &serde_json::Value) {
        let out = self.key(key);
        serde_json::to_writer(out, value).expect("a JSON value serializes");
    }

    pub fn str(&mut self, key: &str, value: &str) {
        let out = self.key(key);
        write_json_str(out, value);
    }

    pub fn bool(&mut self, key: &str, value: bool) {
        let out = self.key(key);
        out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    pub fn number(&mut self, key: &str, value: usize) {
        let out = self.key(key);
        out.extend_from_slice(value.to_string().as_bytes());
    }

    /// A string when there is one; without, nothing, or `null` when `nulls`.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>, nulls: bool) {
        match value {
            Some(v) => self.str(key, v),
            None if nulls => self.key(key).extend_from_slice(b"null"),
            None => {}
        }
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// A body written by `write` into a buffer this thread keeps from one body to the next, then
/// copied out at its exact size: a large page grows no buffer of its own through many
/// reallocations, each in memory the process has not touched yet.
pub fn written(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| {
        let mut buffer = scratch.take();
        buffer.clear();
        write(&mut buffer);
        let body = buffer.as_slice().to_vec();
        scratch.replace(buffer);
        body
    })
}

/// Writes a JSON string (escaped).
pub fn write_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("a string serializes");
}

/// Writes a JSON array whose items `write` writes.
pub fn write_json_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// Locks a mutex, ignoring poisoning: a panicking test must not hide the state from the next one.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The axum middleware applying a [`FaultLayer`]; [`serve`] installs it.
pub async fn fault_middleware(
    State(layer): State<Arc<FaultLayer>>,
    request: Request,
    next: Next,
) -> Response {
    // The answer leaves no sooner than the latency after the request came: the handler works
    // meanwhile, so a fake's own rendering is not added to the latency a client sees.
    let arrived = tokio::time::Instant::now();
    let ready = arrived + layer.latency;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mutation = (layer.is_mutation)(&method, &path);
    let (index, verdict) = layer.admit(RequestLog {
        method: method.to_string(),
        path,
        query: request.uri().query().unwrap_or_default().to_owned(),
        status: 0,
        mutation,
        took: Duration::ZERO,
    });

    let response = match verdict {
        Verdict::Reset => {
            if !layer.latency.is_zero() {
                tokio::time::sleep_until(ready).await;
            }
            request
                .extensions()
                .get::<ConnectInfo<ConnHandle>>()
                .expect("fakes are served by fakes::serve, which tracks connections")
                .0
                .kill();
            layer.record_status(index, 0, arrived);
            // Never written: the dead socket makes hyper drop the connection instead.
            return (layer.render_error)(StatusCode::INTERNAL_SERVER_ERROR, "reset");
        }
        Verdict::EchoAuth(plain) => echo_auth(&layer, &authorization, plain),
        Verdict::Throttle(secs) => throttled(&layer, secs),
        Verdict::Fail(status, detail) => (layer.render_error)(status, detail),
        Verdict::Proceed(delay, page_fault) => {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let conn = request
                .extensions()
                .get::<ConnectInfo<ConnHandle>>()
                .map(|c| c.0.clone());
            let mut request = request;
            if page_fault == Some(PageFaultKind::RepeatCursor) {
                if let Some(uri) = without_paging(request.uri()) {
                    *request.uri_mut() = uri;
                    layer.fired.fetch_add(1, Ordering::SeqCst);
                }
            }
            let mut response = next.run(request).await;
            let ok = response.status().is_success();
            match page_fault {
                Some(PageFaultKind::Truncate) if ok => {
                    layer.fired.fetch_add(1, Ordering::SeqCst);
                    response = truncated(response).await;
                }
                Some(
                    kind @ (PageFaultKind::Empty | PageFaultKind::Short | PageFaultKind::PastEnd),
                ) if ok => {
                    if let Some(dialect) = layer.page_dialect {
                        response = rewritten(response, kind, dialect, &layer.fired).await;
                    }
                }
                _ => {}
            }
            if ok && mutation && take(&mut layer.faults().fail_after_mutation) {
                (layer.render_error)(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "injected failure after the change was applied",
                )
            } else if ok && mutation && take(&mut layer.faults().reset_after_mutation) {
                if !layer.latency.is_zero() {
                    tokio::time::sleep_until(ready).await;
                }
                conn.expect("fakes are served by fakes::serve, which tracks connections")
                    .kill();
                layer.record_status(index, 0, arrived);
                // Never written: the dead socket makes hyper drop the connection instead.
                return response;
            } else if ok && mutation && take(&mut layer.faults().truncate_after_mutation) {
                truncated(response).await
            } else if ok && mutation && take(&mut layer.faults().stall_after_mutation) {
                let wait = layer.faults().stall_for;
                tokio::time::sleep(wait).await;
                response
            } else if ok && method == Method::GET && take(&mut layer.faults().truncate_next) {
                truncated(response).await
            } else {
                let spent = layer.faults().spent_budget_reset.clone();
                let mut response = response;
                if let Some(reset) = spent.filter(|_| ok) {
                    let h = response.headers_mut();
                    h.insert("x-rate-limit-remaining", HeaderValue::from(0));
                    if let Ok(v) = HeaderValue::from_str(&reset) {
                        h.insert("x-rate-limit-reset", v);
                    }
                }
                response
            }
        }
    };
    // The status is noted as soon as it is known: a client that goes away while the answer is
    // held back still leaves it in the log (the change, if any, is made).
    layer.record_status(index, response.status().as_u16(), arrived);
    if !layer.latency.is_zero() {
        tokio::time::sleep_until(ready).await;
        layer.record_took(index, arrived);
    }
    response
}

/// A 400 whose error quotes the request's credential: in the fake's error shape, or as plain text
/// padded so that the credential straddles the 200th character (where quoted bodies are cut).
fn echo_auth(layer: &FaultLayer, authorization: &str, plain: bool) -> Response {
    let detail = format!("bad request; you sent Authorization: {authorization}");
    if !plain {
        return (layer.render_error)(StatusCode::BAD_REQUEST, &detail);
    }
    let before = detail.len() - authorization.len() + authorization.len() / 2;
    let pad = 200usize.saturating_sub(before);
    let body = format!("{}{detail}", ".".repeat(pad));
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn throttled(layer: &FaultLayer, secs: u64) -> Response {
    let mut response = (layer.render_error)(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
    let raw = layer.faults().throttle_headers_raw.clone();
    if let Some(raw) = raw.and_then(|r| HeaderValue::from_str(&r).ok()) {
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, raw.clone());
        headers.insert("x-ratelimit-reset", raw);
        return response;
    }
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        + secs;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    response
}

/// The path of a request target (without its query).
fn entry_path(target: &str) -> String {
    target
        .split_once('?')
        .map_or(target, |(p, _)| p)
        .to_string()
}

/// The URI without the parameters that choose a page; `None` when it has none.
fn without_paging(uri: &Uri) -> Option<Uri> {
    let pairs = form_pairs(uri.query()?);
    let kept: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !PAGING_PARAMS.contains(&k.as_str()))
        .collect();
    if kept.len() == pairs.len() {
        return None;
    }
    let mut url = url::Url::parse("http://fake/").expect("a URL");
    url.query_pairs_mut()
        .extend_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let query = url.query().unwrap_or_default();
    let text = if query.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{query}", uri.path())
    };
    text.parse().ok()
}

/// A JSON response rewritten by a fake's dialect hook.
async fn rewritten(
    response: Response,
    kind: PageFaultKind,
    dialect: PageDialect,
    fired: &AtomicUsize,
) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if !dialect(kind, &mut value, &mut parts.headers) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    fired.fetch_add(1, Ordering::SeqCst);
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&value).expect("JSON serializes");
    Response::from_parts(parts, Body::from(body))
}

/// The same response with only the first half of its body.
async fn truncated(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes.slice(..bytes.len() / 2)))
}

/// A running fake server; aborts its accept loop when dropped.
pub struct Server {
    pub base_url: String,
    pub addr: SocketAddr,
    accept_loop: AbortHandle,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// Binds `127.0.0.1:0`, without serving yet (so a fake can learn its URL before building state).
pub async fn bind() -> (KillableListener, String) {
    let inner = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = inner.local_addr().expect("local address");
    (KillableListener { inner }, format!("http://{addr}"))
}

/// Serves `router`, wrapped in `layer`, on a listener from [`bind`], on the current tokio runtime.
pub fn serve(listener: KillableListener, router: Router, layer: Arc<FaultLayer>) -> Server {
    let addr = listener.inner.local_addr().expect("local address");
    let app = router
        .layer(middleware::from_fn_with_state(layer, fault_middleware))
        .into_make_service_with_connect_info::<ConnHandle>();
    let task = tokio::spawn(async move {
        // Serving only ends when the task is aborted; an I/O error here has nobody to report to.
        let _ = axum::serve(listener, app).await;
    });
    Server {
        base_url: format!("http://{addr}"),
        addr,
        accept_loop: task.abort_handle(),
    }
}

/// A TCP listener whose connections can be killed from the fault layer.
pub struct KillableListener {
    inner: TcpListener,
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (KillableStream, SocketAddr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let stream = KillableStream {
            inner: stream,
            handle: ConnHandle::default(),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A handle on one connection, handed to every request on it as `ConnectInfo<ConnHandle>`.
#[derive(Clone, Debug, Default)]
pub struct ConnHandle {
    killed: Arc<AtomicBool>,
}

impl ConnHandle {
    /// Makes every later read and write on the connection fail, so hyper closes it.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> ConnHandle {
        stream.io().handle.clone()
    }
}

/// A TCP stream that fails all I/O once its [`ConnHandle`] is killed.
pub struct KillableStream {
    inner: TcpStream,
    handle: ConnHandle,
}

fn reset_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "fault injection: reset")
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.handle.is_killed() {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.handle.is_killed() {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.handle.is_killed() {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The query parameters of a request, decoded, in order.
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn of(uri: &Uri) -> Params {
        Params(form_pairs(uri.query().unwrap_or_default()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The pairs of a query string or form body (`+` is a space).
pub fn form_pairs(text: &str) -> Vec<(String, String)> {
    url::Url::parse(&format!("http://fake/?{text}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// A fixed rate-limit window as Okta and OneLogin keep them: `limit` requests per `length`, a
/// window opening with the first request after the previous one ended.
#[derive(Debug)]
pub struct RateLimiter {
    pub limit: u64,
    length: Duration,
    /// The current window: when it ends (monotonic and wall clock) and the requests it counted.
    window: Option<(Instant, SystemTime, u64)>,
    /// Requests refused so far.
    pub refused: usize,
}

/// What the rate limiter says about one request.
pub struct RateVerdict {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    ends: Instant,
    ends_at: SystemTime,
}

/// How a fake names its rate-limit headers and states the reset.
#[derive(Clone, Copy, Debug)]
pub enum RateHeaders {
    /// Okta: `X-Rate-Limit-*`, the reset in epoch seconds.
    Okta,
    /// OneLogin: `X-RateLimit-*`, the reset in seconds left (at least 1).
    OneLogin,
}

impl RateVerdict {
    /// Puts the limit, the remaining requests and the reset on a response.
    pub fn stamp(&self, headers: &mut HeaderMap, style: RateHeaders) {
        let (prefix, reset) = match style {
            RateHeaders::Okta => {
                let end = self.ends_at.duration_since(UNIX_EPOCH).unwrap_or_default();
                (
                    "x-rate-limit",
                    end.as_secs() + u64::from(end.subsec_nanos() > 0),
                )
            }
            RateHeaders::OneLogin => {
                let left = self.ends.saturating_duration_since(Instant::now());
                let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                ("x-ratelimit", secs.max(1))
            }
        };
        for (name, value) in [
            ("limit", self.limit),
            ("remaining", self.remaining),
            ("reset", reset),
        ] {
            let name = header::HeaderName::try_from(format!("{prefix}-{name}"))
                .expect("a valid header name");
            headers.insert(name, HeaderValue::from(value));
        }
    }
}

impl RateLimiter {
    pub fn new(limit: u64, length: Duration) -> RateLimiter {
        RateLimiter {
            limit,
            length: length.max(Duration::from_millis(1)),
            window: None,
            refused: 0,
        }
    }

    /// The current window, a new one when there is none or it has ended.
    fn current(&mut self) -> &mut (Instant, SystemTime, u64) {
        let now = Instant::now();
        if self.window.is_none_or(|(ends, _, _)| now >= ends) {
            self.window = Some((now + self.length, SystemTime::now() + self.length, 0));
        }
        self.window.as_mut().expect("a window was just opened")
    }

    /// Counts one request, or refuses it when the window is used up.
    pub fn check(&mut self) -> RateVerdict {
        let limit = self.limit;
        let (ends, ends_at, used) = self.current();
        let allowed = *used < limit;
        if allowed {
            *used += 1;
        }
        let verdict = RateVerdict {
            allowed,
            limit,
            remaining: limit.saturating_sub(*used),
            ends: *ends,
            ends_at: *ends_at,
        };
        if !allowed {
            self.refused += 1;
        }
        verdict
    }

    /// Uses the current window (opening one if needed) down to `n` requests left, or gives some
    /// back when fewer were left.
    pub fn set_remaining(&mut self, n: u64) {
        let limit = self.limit;
        self.current().2 = limit - n.min(limit);
    }

    /// Requests left in the current window (the whole limit when none is open).
    pub fn remaining(&self) -> u64 {
        match self.window {
            Some((ends, _, used)) if Instant::now() < ends => self.limit.saturating_sub(used),
            _ => self.limit,
        }
    }
}

/// The access tokens a fake's token endpoint issued. A token is valid for the fake's `token_ttl`
/// (the `expires_in` its token endpoint reports) and, when the fake's `token_ttl_requests` is set,
/// for that many authorized requests only: a deterministic way to make tokens run out in the
/// middle of a read, however fast or slow the machine.
#[derive(Debug, Default)]
pub struct IssuedTokens {
    /// Token -> when it was issued and the requests it authorized.
    tokens: std::collections::HashMap<String, (Instant, usize)>,
}

/// What a fake makes of a presented access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    /// Issued, unexpired and not used up; counted as one more use.
    Valid,
    /// Issued, but past its lifetime or its uses.
    Expired,
    /// Never issued here (or revoked).
    Unknown,
}

impl IssuedTokens {
    pub fn issue(&mut self, token: &str) {
        self.tokens.insert(token.to_owned(), (Instant::now(), 0));
    }

    /// Checks a token presented to a resource endpoint, counting a use of a valid one.
    pub fn check(&mut self, token: &str, ttl: Duration, uses: Option<usize>) -> TokenCheck {
        match self.tokens.get_mut(token) {
            None => TokenCheck::Unknown,
            Some((issued, used)) => {
                if issued.elapsed() >= ttl || uses.is_some_and(|n| *used >= n) {
                    TokenCheck::Expired
                } else {
                    *used += 1;
                    TokenCheck::Valid
                }
            }
        }
    }

    /// Forgets every token: they then count as never issued.
    pub fn clear(&mut self) {
        self.tokens.clear();
    }
}

/// Requests a fake's token endpoint received (`path` ends with `token_path`), and the resource
/// requests it answered 200 and 401: from the fake's request log.
pub fn token_traffic(log: &[RequestLog], token_path: &str) -> TokenTraffic {
    let (token, resource): (Vec<_>, Vec<_>) =
        log.iter().partition(|r| r.path.ends_with(token_path));
    TokenTraffic {
        token_requests: token.len(),
        token_failures: token.iter().filter(|r| r.status != 200).count(),
        ok: resource.iter().filter(|r| r.status == 200).count(),
        refused: resource.iter().filter(|r| r.status == 401).count(),
    }
}

/// See [`token_traffic`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenTraffic {
    pub token_requests: usize,
    pub token_failures: usize,
    /// Resource requests answered 200: each used a token once.
    pub ok: usize,
    /// Resource requests answered 401.
    pub refused: usize,
}

impl TokenTraffic {
    /// Checks a read made with tokens that each work for `uses` requests (and would last long
    /// otherwise), over several of their lifetimes: every token request succeeded; each token
    /// served its `uses` requests before the next was asked for, so there was one renewal per
    /// expiry (not one per request, nor one per request refused together); and each expiry was
    /// noticed through a refusal.
    pub fn assert_one_renewal_per_expiry(&self, uses: usize) {
        assert_eq!(self.token_failures, 0, "{self:?}");
        assert!(
            self.ok >= 3 * uses,
            "the read spans at least three token lifetimes: {self:?}"
        );
        assert_eq!(
            self.token_requests,
            self.ok.div_ceil(uses),
            "one token per {uses} requests: {self:?}"
        );
        assert!(self.refused >= self.token_requests - 1, "{self:?}");
    }
}
