//! Pagination: SCIM `startIndex`/`count` (advancing by what each page returned), cursors in a JSON
//! body, and RFC 8288 `Link: <…>; rel="next"` headers.

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{HttpClient, HttpError};

/// How many times a page that looks wrong (empty or short before the announced end) is asked for
/// again before the listing fails: a glitch of the server passes, a fault does not.
pub const PAGE_RETRIES: u32 = 2;

/// Reads every page of a SCIM list (`ListResponse`) and returns all its `Resources`.
///
/// The first page says how many resources there are and how many a page holds (the server's cap, which
/// may be below `count`); the other pages are then fetched concurrently (bounded by the client). That
/// relies on every full page holding the same number: if one comes back short, or the pages do not add
/// up, the listing is read again one page at a time, each starting after what the previous returned.
/// `itemsPerPage` is never trusted (Atlassian has been seen to report 10000 on a page of 100).
///
/// The listing must hold what `totalResults` announced: a page that comes back empty before that
/// is asked for again ([`PAGE_RETRIES`] times), then fails the listing; so do a listing that ends
/// with more or fewer resources than announced, and a resource listed twice (a server that ignores
/// `startIndex` answers the first page again).
///
/// # Errors
/// A page that fails after retries, that is not a `ListResponse`, or a listing that is incomplete.
pub async fn scim_all(
    client: &HttpClient,
    path: &str,
    count: usize,
) -> Result<Vec<Value>, HttpError> {
    scim_all_as(client, path, count, |v| v).await
}

/// As [`scim_all`], each resource turned into a `T` by `each` as soon as its page is read, so that
/// a page's JSON is freed before the listing goes on: a large directory is never held whole as
/// JSON values. `each` sees every resource of a page that is kept; a listing read again (pages
/// that do not add up) reads and turns its pages again.
///
/// # Errors
/// As [`scim_all`].
pub async fn scim_all_as<T: Send + 'static>(
    client: &HttpClient,
    path: &str,
    count: usize,
    each: fn(Value) -> T,
) -> Result<Vec<T>, HttpError> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};

    let first = scim_page(client, path, 1, count, each).await?;
    let per_page = first.resources.len();
    let Some(total) = first.total else {
        return scim_sequential(client, path, count, first, each).await;
    };
    // The announced total is untrusted: a listing it would split into more pages than this is read
    // one page after another, where the first empty page ends an overstated total as an error.
    const MAX_CONCURRENT_PAGES: usize = 20_000; // 2M objects at 100 a page: past Atlassian's 1M-user cap
    if per_page == 0 || per_page >= total || total.div_ceil(per_page) > MAX_CONCURRENT_PAGES {
        return scim_sequential(client, path, count, first, each).await;
    }
    // The other pages are asked for as lanes free up, whichever answers first (a slow page holds
    // up no other), and each is kept in its place.
    let starts: Vec<usize> = (1 + per_page..=total).step_by(per_page).collect();
    let mut slots: Vec<Option<Page<T>>> = starts.iter().map(|_| None).collect();
    let mut pages = stream::iter(starts.clone().into_iter().enumerate().map(
        |(i, start)| async move {
            scim_page(client, path, start, count, each)
                .await
                .map(|page| (i, page))
        },
    ))
    .buffer_unordered(client.concurrency());
    // A listing whose announced total fills its last page must show that nothing follows: the page
    // past the end is asked for with the others (the client's lanes bound them all), not after.
    let ends_full = total % per_page == 0;
    let past = async {
        if ends_full {
            past_end(client, path, count, total).await
        } else {
            Ok(())
        }
    };
    let fetch = async {
        while let Some((i, page)) = pages.try_next().await? {
            slots[i] = Some(page);
        }
        Ok::<(), HttpError>(())
    };
    let (past, fetched) = tokio::join!(past, fetch);
    fetched?;
    drop(pages);
    let pages: Vec<Page<T>> = slots.into_iter().flatten().collect();
    let consistent = pages.len() == starts.len()
        && pages.iter().zip(&starts).all(|(p, &start)| {
            p.resources.len() == per_page.min(total + 1 - start)
                && p.total == Some(total)
                && p.start.is_none_or(|s| s == start)
        });
    if !consistent {
        return scim_sequential(client, path, count, first, each).await;
    }
    past?;
    // The listing is put together, each resource moved once into room for what the total
    // announces (an untrusted number: within reason).
    let room = total.min(1 << 20);
    let mut ids: Vec<String> = Vec::with_capacity(room);
    let mut all: Vec<T> = Vec::with_capacity(room);
    for p in std::iter::once(first).chain(pages) {
        ids.extend(p.ids);
        all.extend(p.resources);
    }
    if first_repeated(&ids).is_some() {
        // Resources moved between pages while they were read: once more, one page at a time.
        let first = scim_page(client, path, 1, count, each).await?;
        return scim_sequential(client, path, count, first, each).await;
    }
    Ok(all)
}

struct Page<T> {
    total: Option<usize>,
    /// The `startIndex` the server says the page starts at.
    start: Option<usize>,
    /// The ids of its resources (those that have one), for the check that none is listed twice.
    ids: Vec<String>,
    resources: Vec<T>,
}

fn scim_query(start: usize, count: usize) -> [(&'static str, String); 2] {
    [
        ("startIndex", start.to_string()),
        ("count", count.to_string()),
    ]
}

async fn scim_page<T: Send + 'static>(
    client: &HttpClient,
    path: &str,
    start: usize,
    count: usize,
    each: fn(Value) -> T,
) -> Result<Page<T>, HttpError> {
    let mut page = client.get_json(path, &scim_query(start, count)).await?;
    let resources = take_resources(&mut page);
    let page: ScimPage = super::wire::decode(&page);
    let number = |n: Option<u64>| n.map(|t| usize::try_from(t).unwrap_or(usize::MAX));
    let total = number(page.total_results);
    let start_at = number(page.start_index);
    let Some(resources) = resources else {
        return Err(client.malformed(path, "a SCIM ListResponse whose Resources is not a list"));
    };
    if resources.is_empty() && total.is_none() && page.schemas.is_none() {
        return Err(client.malformed(path, "a SCIM ListResponse without Resources"));
    }
    let (ids, resources) = turn(client, path, resources, each).await?;
    Ok(Page {
        total,
        start: start_at,
        ids,
        resources,
    })
}

/// Pages of at least this many resources are turned into the model on a blocking thread.
const TURN_APART: usize = 20;

/// A page's resources turned into the model by `each`, with their ids. A large page is turned on
/// a blocking thread, as its JSON was parsed ([`HttpClient`] parses large answers apart), so that
/// the requests beside it go on meanwhile.
async fn turn<T: Send + 'static>(
    client: &HttpClient,
    path: &str,
    resources: Vec<Value>,
    each: fn(Value) -> T,
) -> Result<(Vec<String>, Vec<T>), HttpError> {
    let small = resources.len() < TURN_APART;
    let work = move || {
        let ids = resources.iter().filter_map(id_text).collect();
        (ids, resources.into_iter().map(each).collect())
    };
    if small {
        return Ok(work());
    }
    super::client::apart(work)
        .await
        .ok_or_else(|| client.malformed(path, "the runtime stopped while a page was read"))
}

/// A SCIM `ListResponse` page as the pager reads it (RFC 7644 §3.4.2).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ScimPage {
    #[serde(deserialize_with = "unsigned")]
    total_results: Option<u64>,
    #[serde(deserialize_with = "unsigned")]
    start_index: Option<u64>,
    schemas: Option<Value>,
}

/// A SCIM `ListResponse` read leniently, for a filter's answer: `Resources` absent, `null` or
/// not a list holds nothing.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ListResponse {
    #[serde(rename = "Resources", deserialize_with = "super::wire::list")]
    pub resources: Vec<Value>,
}

fn unsigned<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(<Value as serde::Deserialize>::deserialize(d)?.as_u64())
}

/// The `Resources` of a SCIM ListResponse, moved out of it (not copied: a page is read once);
/// `None` when it is not a list. An empty page may leave `Resources` out or send it as `null`
/// (RFC 7643 §2.5: unassigned and `null` are the same state): both are no resources.
fn take_resources(page: &mut Value) -> Option<Vec<Value>> {
    match page.get_mut("Resources").map(Value::take) {
        Some(Value::Array(r)) => Some(r),
        None | Some(Value::Null) => Some(Vec::new()),
        Some(_) => None,
    }
}

/// One page after another, each starting after what the previous returned, until `totalResults`
/// (or, from a server that announces none, an empty page).
async fn scim_sequential<T: Send + 'static>(
    client: &HttpClient,
    path: &str,
    count: usize,
    first: Page<T>,
    each: fn(Value) -> T,
) -> Result<Vec<T>, HttpError> {
    let mut all: Vec<T> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut total = first.total;
    let per_page = first.resources.len();
    let mut last_len = 0;
    let mut next = Some(first);
    loop {
        let start = all.len() + 1;
        if let Some(t) = total.filter(|t| start > *t) {
            if t > 0 && last_len == per_page {
                past_end(client, path, count, t).await?;
            }
            break;
        }
        let mut page = match next.take() {
            Some(p) => p,
            None => scim_page(client, path, start, count, each).await?,
        };
        let mut tries = 1;
        while page.resources.is_empty() && page.total.or(total).is_some_and(|t| start <= t) {
            if tries > PAGE_RETRIES {
                let t = page.total.or(total).unwrap_or_default();
                return Err(client.page_fault(
                    path,
                    &scim_query(start, count),
                    &format!(
                        "the page came back empty {tries} times, but totalResults announced {t} and only {} were read: the listing is incomplete",
                        start - 1
                    ),
                ));
            }
            client.pause(tries).await;
            tries += 1;
            page = scim_page(client, path, start, count, each).await?;
        }
        total = page.total.or(total);
        if page.resources.is_empty() {
            break;
        }
        last_len = page.resources.len();
        ids.extend(page.ids);
        all.extend(page.resources);
    }
    if let Some(t) = total.filter(|t| *t != all.len()) {
        return Err(client.malformed(
            path,
            &format!(
                "totalResults announced {t} resources, but the pages held {}: the listing is incomplete or inconsistent",
                all.len()
            ),
        ));
    }
    if let Some(id) = first_repeated(&ids) {
        return Err(client.malformed(
            path,
            &format!(
                "the resource {id} was listed twice: the pages overlap, so others may be missing"
            ),
        ));
    }
    Ok(all)
}

/// A listing that ends exactly on a full page is asked for the page after its announced end: a
/// server whose `totalResults` is too low would otherwise hide what follows.
async fn past_end(
    client: &HttpClient,
    path: &str,
    count: usize,
    total: usize,
) -> Result<(), HttpError> {
    let page = scim_page(client, path, total + 1, count, |v| v).await?;
    if page.resources.is_empty() {
        return Ok(());
    }
    Err(client.page_fault(
        path,
        &scim_query(total + 1, count),
        &format!(
            "totalResults announced {total} resources, but the listing goes on past that: it is inconsistent, so what it holds cannot be trusted"
        ),
    ))
}

/// An item's `id` as text: a string, or a number (OneLogin).
fn id_text(item: &Value) -> Option<String> {
    match item.get("id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// The first id that appears twice.
fn first_repeated(ids: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().map(String::as_str).find(|id| !seen.insert(*id))
}

/// `Err(id)` with the first `id` that appears twice.
fn unique_ids(items: &[Value]) -> Result<(), String> {
    let ids: Vec<String> = items.iter().filter_map(id_text).collect();
    first_repeated(&ids).map_or(Ok(()), |id| Err(id.to_string()))
}

/// Checks that no item of a listing appears twice (pages that overlap hide others).
///
/// # Errors
/// An id listed twice.
pub fn check_unique(client: &HttpClient, path: &str, items: &[Value]) -> Result<(), HttpError> {
    unique_ids(items).map_err(|id| repeated(client, path, &id))
}

/// The error of a listing that holds the item `id` twice.
fn repeated(client: &HttpClient, path: &str, id: &str) -> HttpError {
    client.malformed(
        path,
        &format!("{id} was listed twice: the pages overlap, so others may be missing"),
    )
}

/// Guards a walk along next links or cursors: a next link must stay on the configured origin
/// (it would carry the credentials elsewhere), and must never lead back to a page already read
/// (a repeated cursor would loop forever or list the same items twice).
#[derive(Debug)]
pub struct Trail {
    seen: std::collections::HashSet<String>,
}

impl Trail {
    #[must_use]
    pub fn new() -> Trail {
        Trail {
            seen: std::collections::HashSet::new(),
        }
    }

    /// Checks `next`, a next link (a URL) or a bare cursor, before it is followed.
    ///
    /// # Errors
    /// A link to another origin, or a link or cursor already followed.
    pub fn follow(&mut self, client: &HttpClient, path: &str, next: &str) -> Result<(), HttpError> {
        if next.starts_with("http://") || next.starts_with("https://") {
            check_origin(client, path, next)?;
        }
        if !self.seen.insert(next.to_string()) {
            return Err(client.malformed(
                path,
                &format!("the next link leads back to a page already read ({}): the server repeats its cursor", shorten(next)),
            ));
        }
        Ok(())
    }
}

impl Default for Trail {
    fn default() -> Self {
        Trail::new()
    }
}

/// The origin (scheme, host, port) of a URL.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let u = reqwest::Url::parse(url).ok()?;
    Some((
        u.scheme().to_string(),
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default()?,
    ))
}

/// Refuses a next link to another origin than the client's base URL.
///
/// # Errors
/// The link goes elsewhere, or is not a URL.
pub fn check_origin(client: &HttpClient, path: &str, next: &str) -> Result<(), HttpError> {
    let base = client.url("");
    match (origin(next), origin(&base)) {
        (Some(n), Some(b)) if n == b => Ok(()),
        (Some((scheme, host, port)), _) => Err(client.malformed(
            path,
            &format!(
                "refused to follow a next link to {scheme}://{host}:{port}, another origin than the configured base {}: it would carry the credentials there",
                base.trim_end_matches('/')
            ),
        )),
        (None, _) => Err(client.malformed(
            path,
            &format!("the next link {} is not a valid URL", shorten(next)),
        )),
    }
}

/// A link or cursor as quoted in an error: its start only.
fn shorten(text: &str) -> String {
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(120).collect::<String>())
    } else {
        text.to_string()
    }
}

/// One page of a cursor walk: its items and the next link or cursor, if any.
pub type CursorPage = (Vec<Value>, Option<String>);

/// Fetches one page of a cursor walk with `fetch` and checks it: a page that links to a next page
/// but holds nothing, or fewer items than `page_size` (the size of a full page, when the API keeps
/// its pages full), has lost items. It is asked for again ([`PAGE_RETRIES`] times), then fails.
///
/// # Errors
/// What `fetch` returns, or a page that stays empty or short before the end.
pub async fn checked_page<F, Fut>(
    client: &HttpClient,
    path: &str,
    query: &[(&str, String)],
    page_size: Option<usize>,
    mut fetch: F,
) -> Result<CursorPage, HttpError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<CursorPage, HttpError>>,
{
    let mut tries = 1;
    loop {
        let (items, next) = fetch().await?;
        let short =
            next.is_some() && (items.is_empty() || page_size.is_some_and(|n| items.len() < n));
        if !short {
            return Ok((items, next));
        }
        if tries > PAGE_RETRIES {
            let what = match page_size {
                Some(n) if !items.is_empty() => {
                    format!("held {} items of a full page's {n}", items.len())
                }
                _ => "came back empty".to_string(),
            };
            return Err(client.page_fault(
                path,
                query,
                &format!("the page {what} {tries} times, yet links to a next page: items were left out, so the listing is incomplete"),
            ));
        }
        client.pause(tries).await;
        tries += 1;
    }
}

/// Every item of an Atlassian-style cursor listing: pages of `{data: [...], links: {next}, meta:
/// {total}}`. A `links.next` that is a URL is followed as given (on the same origin; its cursor is
/// never encoded a second time), a bare cursor is passed back as the `cursor` parameter. An empty
/// page that links to a next one is asked for again, then fails; a repeated cursor fails; and
/// where `meta.total` is given, the listing must hold that many items.
///
/// # Errors
/// A page that fails after retries, that has no `data`, or a listing that is incomplete.
pub async fn cursor_all(client: &HttpClient, path: &str) -> Result<Vec<Value>, HttpError> {
    Pager::new(client, path, Vec::new(), ATLASSIAN_CURSOR)
        .all()
        .await
}

/// Atlassian's admin API: `{data, links: {next}, meta: {total}}`.
pub const ATLASSIAN_CURSOR: Style = Style {
    items: Items::Field {
        pointer: "/data",
        missing: Some("a page without `data`"),
    },
    next: Next::Field {
        pointer: "/links/next",
        param: "cursor",
    },
    keep_query: false,
    full_pages: false,
    empty_pages: false,
    total: Some("/meta/total"),
    unique: true,
    noun: "items",
    rereads: 0,
};

/// Where a page's items are.
#[derive(Clone, Copy, Debug)]
pub enum Items {
    /// The body is the JSON array of items (Okta, OneLogin v2, Keycloak).
    Body,
    /// The array at a JSON pointer (`/value`, `/users`, `/data`). Absent or `null`: an empty page
    /// when `missing` is `None` (Google leaves an empty list out), else the error `missing`.
    Field {
        pointer: &'static str,
        missing: Option<&'static str>,
    },
}

/// Where a page says what comes next, and how that is asked for.
#[derive(Clone, Copy, Debug)]
pub enum Next {
    /// RFC 8288 `Link: <…>; rel="next"` (Okta): a URL, followed as given.
    LinkHeader,
    /// A string at a JSON pointer: a URL is followed as given (Graph `@odata.nextLink`,
    /// Atlassian `links.next`); a bare token or cursor is sent back as `param` (Google
    /// `nextPageToken` → `pageToken`, OneLogin v1 `pagination.after_cursor`).
    Field {
        pointer: &'static str,
        param: &'static str,
    },
    /// A response header holding a cursor (OneLogin v2 `After-Cursor` → `cursor`).
    Header {
        name: &'static str,
        param: &'static str,
    },
}

/// A paging style: what one walk along next links, tokens or cursors needs to know. Index
/// (SCIM, [`scim_all`]), offset ([`offset_all`], [`offset_counted`]) and numbered pages
/// ([`numbered`]) have their own entries, as they fetch pages by position.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub items: Items,
    pub next: Next,
    /// A bare cursor is sent with the listing's own query (Google); otherwise alone (Atlassian,
    /// OneLogin).
    pub keep_query: bool,
    /// Every page that links on is full, as big as the first (Okta, Google): a page that is empty
    /// or shorter and still links on has lost items. Without it, only an empty page that links on
    /// has, unless `empty_pages` says the API sends those.
    pub full_pages: bool,
    /// Pages may be empty before the last (Graph): an empty page that links on is followed, and
    /// the announced `total` is what shows a loss.
    pub empty_pages: bool,
    /// A JSON pointer to the total the listing announces (`/meta/total`): the listing must hold
    /// that many.
    pub total: Option<&'static str>,
    /// An item listed twice fails the listing (pages that overlap hide others).
    pub unique: bool,
    /// What the listing's items are called in an error (`items`; Graph's `objects`).
    pub noun: &'static str,
    /// How many times a listing that does not hold its announced `total` is read again from its
    /// first page before it fails (Graph: the directory may have changed meanwhile).
    pub rereads: u32,
}

/// Okta: bare arrays, `Link: rel="next"`, full pages, no repeats.
pub const LINK_HEADER: Style = Style {
    items: Items::Body,
    next: Next::LinkHeader,
    keep_query: false,
    full_pages: true,
    empty_pages: false,
    total: None,
    unique: true,
    noun: "items",
    rereads: 0,
};

/// Walks a listing along its next links, page tokens or cursors, with every check in one place:
/// a next link stays on the configured origin and never leads back ([`Trail`]); a page that looks
/// short or empty yet links on is asked for again, then fails ([`checked_page`]); an announced
/// total must be met; an item listed twice fails the listing.
pub struct Pager<'a> {
    client: &'a HttpClient,
    path: &'a str,
    query: Vec<(&'a str, String)>,
    style: Style,
}

impl<'a> Pager<'a> {
    #[must_use]
    pub fn new(
        client: &'a HttpClient,
        path: &'a str,
        query: Vec<(&'a str, String)>,
        style: Style,
    ) -> Pager<'a> {
        // A pointer without its leading `/` finds nothing, and a field that may be absent would
        // then read every page as empty: a listing silently empty.
        if let Items::Field { pointer, .. } = style.items {
            assert!(
                pointer.starts_with('/'),
                "a JSON pointer starts with `/`: {pointer:?}"
            );
        }
        Pager {
            client,
            path,
            query,
            style,
        }
    }

    /// Every item of the listing.
    ///
    /// # Errors
    /// A page that fails after retries, that is malformed, or a listing that is incomplete.
    pub async fn all(&self) -> Result<Vec<Value>, HttpError> {
        self.all_as(&|v| v).await
    }

    /// As [`Pager::all`], each item turned into a `T` by `each` as soon as its page is read and
    /// checked, so that a page's JSON is freed before the walk goes on: a large listing is never
    /// held whole as JSON values. A listing read again (one that misses its announced total)
    /// turns its items again.
    ///
    /// # Errors
    /// As [`Pager::all`].
    pub async fn all_as<T>(&self, each: &impl Fn(Value) -> T) -> Result<Vec<T>, HttpError> {
        self.walk(
            None,
            |url, q| async move { self.client.get_json_with_headers(&url, &q).await },
            each,
        )
        .await
    }

    /// As [`Pager::all`], each page fetched by `fetch(url, query)` (the listing's path and query,
    /// the next link with none, or the path with the cursor as its parameter): for a listing
    /// asked with a POST body (Atlassian's user search carries its cursor in the body).
    ///
    /// # Errors
    /// As [`Pager::all`], and what `fetch` returns.
    pub async fn all_with<F, Fut>(&self, fetch: F) -> Result<Vec<Value>, HttpError>
    where
        F: Fn(String, Vec<(&'a str, String)>) -> Fut,
        Fut: std::future::Future<Output = Result<(Value, HeaderMap), HttpError>>,
    {
        self.walk(None, fetch, &|v| v).await
    }

    /// Every item of the listing, its first page (asked for with the pager's query) already read.
    ///
    /// # Errors
    /// As [`Pager::all`].
    pub async fn rest(&self, first: Value, headers: &HeaderMap) -> Result<Vec<Value>, HttpError> {
        self.walk(
            Some((first, headers.clone())),
            |url, q| async move { self.client.get_json_with_headers(&url, &q).await },
            &|v| v,
        )
        .await
    }

    /// One page's items and what comes next.
    fn split(
        &self,
        url: &str,
        mut page: Value,
        headers: &HeaderMap,
        total: &mut Option<u64>,
    ) -> Result<CursorPage, HttpError> {
        let c = self.client;
        if let Some(t) = self
            .style
            .total
            .and_then(|p| page.pointer(p))
            .and_then(Value::as_u64)
        {
            *total = Some(t);
        }
        let next = match self.style.next {
            Next::LinkHeader => next_link(headers),
            Next::Field { pointer, .. } => page
                .pointer(pointer)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(String::from),
            Next::Header { name, .. } => headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from),
        };
        let items = match self.style.items {
            Items::Body => match page {
                Value::Array(items) => items,
                _ => return Err(c.malformed(url, "a listing that is not a JSON array")),
            },
            Items::Field { pointer, missing } => match page.pointer_mut(pointer).map(Value::take) {
                Some(Value::Array(items)) => items,
                None | Some(Value::Null) if missing.is_none() => Vec::new(),
                _ => return Err(c.malformed(url, missing.unwrap_or("a page without a list"))),
            },
        };
        Ok((items, next))
    }

    async fn walk<F, Fut, T>(
        &self,
        first: Option<(Value, HeaderMap)>,
        fetch: F,
        each: &impl Fn(Value) -> T,
    ) -> Result<Vec<T>, HttpError>
    where
        F: Fn(String, Vec<(&'a str, String)>) -> Fut,
        Fut: std::future::Future<Output = Result<(Value, HeaderMap), HttpError>>,
    {
        let mut first = first;
        let mut tries = 0;
        loop {
            match self.walk_once(first.take(), &fetch, each).await? {
                Ok(out) => return Ok(out),
                Err(mismatch) if tries >= self.style.rereads => return Err(mismatch),
                Err(_) => {
                    tries += 1;
                    self.client.pause(tries).await;
                }
            }
        }
    }

    /// One walk from the first page: the items, or (inner `Err`) the error of a listing that does
    /// not hold its announced total, which may be read again.
    async fn walk_once<F, Fut, T>(
        &self,
        first: Option<(Value, HeaderMap)>,
        fetch: &F,
        each: &impl Fn(Value) -> T,
    ) -> Result<Result<Vec<T>, HttpError>, HttpError>
    where
        F: Fn(String, Vec<(&'a str, String)>) -> Fut,
        Fut: std::future::Future<Output = Result<(Value, HeaderMap), HttpError>>,
    {
        let (c, path) = (self.client, self.path);
        let mut out = Vec::new();
        // The ids of the items read, for the check that none is listed twice.
        let mut ids: Vec<String> = Vec::new();
        let mut trail = Trail::new();
        let mut total: Option<u64> = None;
        let mut url = path.to_string();
        let mut q = self.query.clone();
        let mut full: Option<usize> = None;
        let mut first = first;
        // The previous page's items, turned by `each` while the next page is on its way: the
        // walk is a chain of requests, and the work on a page need not hold up the next one.
        let mut turning: Vec<Value> = Vec::new();
        loop {
            let page_size = if self.style.full_pages { full } else { None };
            let page = async {
                match first.take() {
                    Some((page, headers)) => self.split(&url, page, &headers, &mut total),
                    None if self.style.empty_pages => {
                        let (page, headers) = fetch(url.clone(), q.clone()).await?;
                        self.split(&url, page, &headers, &mut total)
                    }
                    None => {
                        let total = std::sync::Mutex::new(&mut total);
                        checked_page(c, &url, &q, page_size, || {
                            let (url, q, total, fetch) = (&url, &q, &total, &fetch);
                            async move {
                                let (page, headers) = fetch(url.clone(), q.clone()).await?;
                                let mut t = total.lock().expect("not poisoned");
                                self.split(url, page, &headers, &mut t)
                            }
                        })
                        .await
                    }
                }
            };
            let turn = async {
                out.extend(std::mem::take(&mut turning).into_iter().map(each));
            };
            // The request goes out first; the previous page is turned while it is answered.
            let (page, ()) = tokio::join!(biased; page, turn);
            let (items, next) = page?;
            if full.is_none() {
                // Room for what the listing announces (an untrusted number: within reason).
                let announced = total.and_then(|t| usize::try_from(t).ok()).unwrap_or(0);
                out.reserve(announced.min(1 << 20));
            }
            full = full.or(Some(items.len()));
            if self.style.unique {
                ids.extend(items.iter().filter_map(id_text));
            }
            turning = items;
            let Some(next) = next else { break };
            trail.follow(c, path, &next)?;
            if next.starts_with("http://") || next.starts_with("https://") {
                url = next;
                q = Vec::new();
            } else {
                let param = match self.style.next {
                    Next::Field { param, .. } | Next::Header { param, .. } => param,
                    Next::LinkHeader => "after",
                };
                url = path.to_string();
                q = if self.style.keep_query {
                    self.query.clone()
                } else {
                    Vec::new()
                };
                q.push((param, next));
            }
        }
        out.extend(turning.into_iter().map(each));
        if let Some(t) = total.filter(|t| usize::try_from(*t).ok() != Some(out.len())) {
            let field = self
                .style
                .total
                .unwrap_or("")
                .trim_start_matches('/')
                .replace('/', ".");
            let noun = self.style.noun;
            return Ok(Err(c.malformed(
                path,
                &format!(
                    "{field} announced {t} {noun}, but the pages held {}: the listing is incomplete or inconsistent",
                    out.len()
                ),
            )));
        }
        if self.style.unique {
            if let Some(id) = first_repeated(&ids) {
                return Err(repeated(c, path, id));
            }
        }
        Ok(Ok(out))
    }
}

/// Pages 2.. of a listing by number, a few at a time, when its first page held `per_page` items
/// of an announced `total` (OneLogin's `page`). `page(n)` is the query of page `n`; `more` says
/// whether a page's headers link on. `None` when a page does not hold what the count implies
/// (the directory changed, or the count is wrong): the caller walks the listing instead.
///
/// # Errors
/// A page that fails after retries, or that is not a JSON array.
pub async fn numbered<'q>(
    client: &HttpClient,
    path: &str,
    per_page: usize,
    total: usize,
    page: impl Fn(usize) -> Vec<(&'q str, String)>,
    more: impl Fn(&HeaderMap) -> bool,
) -> Result<Option<Vec<Value>>, HttpError> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let pages = total.div_ceil(per_page.max(1));
    let fetched: Vec<(Vec<Value>, bool)> = stream::iter((2..=pages).map(|n| {
        let query = page(n);
        let more = &more;
        async move {
            let (page, headers) = client.get_json_with_headers(path, &query).await?;
            match page {
                Value::Array(items) => Ok::<_, HttpError>((items, more(&headers))),
                _ => Err(client.malformed(path, "a listing that is not a JSON array")),
            }
        }
    }))
    .buffered(client.concurrency())
    .try_collect()
    .await?;
    // The last page by the count must be the last indeed: one that still links on says the count
    // was too low.
    let consistent = fetched.iter().enumerate().all(|(i, (items, more))| {
        items.len() == per_page.min(total - (i + 1) * per_page) && (i + 2 < pages || !more)
    });
    Ok(consistent.then(|| fetched.into_iter().flat_map(|(items, _)| items).collect()))
}

/// The cursor in a page's `links.next`, decoded: a bare cursor, or the `cursor` parameter of a URL
/// (for a body that carries it, as the admin API's search does).
#[must_use]
pub fn next_cursor(page: &Value) -> Option<String> {
    let next = page
        .pointer("/links/next")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())?;
    if next.contains('?') {
        let query = next.split_once('?').map_or("", |(_, q)| q);
        let parsed = reqwest::Url::parse(&format!("http://x/?{query}")).ok()?;
        let cursor = parsed
            .query_pairs()
            .find(|(k, _)| k == "cursor")
            .map(|(_, v)| v.into_owned());
        if cursor.is_some() {
            return cursor;
        }
    }
    Some(next.to_string())
}

/// What an offset server (Keycloak style, `first`/`max`) was seen to do with `max` during one
/// read, shared by its listings: the largest page it filled (a page of exactly what was asked),
/// and the smallest page it returned short before an announced end (a server that caps `max`
/// below what was asked). A listing without a count ends on a short page only when this proves
/// the page short because the listing ran out: the server filled larger pages, and never came
/// back short before the end of a counted listing.
///
/// So that what a read learns does not depend on timing, one listing leads: the first page of
/// the listing at `leader` (its path) settles the evidence ([`OffsetEvidence::settled`]), and
/// listings that rely on it wait for that.
#[derive(Debug)]
pub struct OffsetEvidence {
    filled: std::sync::atomic::AtomicUsize,
    capped: std::sync::atomic::AtomicUsize,
    leader: String,
    settled: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl OffsetEvidence {
    /// Evidence led by the listing at `leader` (a path, as passed to [`offset_counted`]).
    #[must_use]
    pub fn led_by(leader: &str) -> OffsetEvidence {
        OffsetEvidence {
            filled: std::sync::atomic::AtomicUsize::new(0),
            capped: std::sync::atomic::AtomicUsize::new(usize::MAX),
            leader: leader.to_string(),
            settled: std::sync::atomic::AtomicBool::new(false),
            notify: tokio::sync::Notify::new(),
        }
    }

    /// Marks the evidence settled (the leading listing read its first page, or gave up).
    pub fn settle(&self) {
        self.settled
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Waits until the leading listing read its first page (or gave up).
    pub async fn settled(&self) {
        loop {
            let wake = self.notify.notified();
            if self.settled.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            wake.await;
        }
    }

    fn saw_filled(&self, n: usize) {
        self.filled
            .fetch_max(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn saw_capped(&self, n: usize) {
        self.capped
            .fetch_min(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a page of `got` items, asked for `asked`, can only be short because the listing
    /// ended: the server filled pages larger than it and never capped one at or below it.
    #[must_use]
    pub fn ends(&self, got: usize, asked: usize) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        got < asked && got < self.filled.load(Relaxed) && got < self.capped.load(Relaxed)
    }
}

/// Every item of an offset listing (`first`/`max`, Keycloak style) returning bare JSON arrays,
/// whose size nothing announces. The next page starts after what this one returned; the listing
/// ends on an empty page, or on a short page when `seen` proves that the server honours `max`
/// (it filled pages at least that large during this read, and capped none: see
/// [`OffsetEvidence`]). A server that caps `max` below what was asked is never taken to have run
/// out. An item listed twice (the server ignored `first`, or the pages overlap) fails the listing.
///
/// # Errors
/// A page that fails after retries, that is not an array, or pages that overlap.
pub async fn offset_all(
    client: &HttpClient,
    path: &str,
    query: &[(&str, String)],
    max: usize,
    seen: &OffsetEvidence,
) -> Result<Vec<Value>, HttpError> {
    let out = offset_read(client, path, query, max, None, seen).await?;
    check_unique(client, path, &out)?;
    Ok(out)
}

/// As [`offset_all`], for a listing whose size the server announced (`announced`, from a count
/// endpoint or the parent's `subGroupCount`, as `what` says). The listing ends once that many were
/// read, without an extra empty page: the last page is asked for one item more than remains, so
/// that a listing going on past an understated count shows it (with no extra request). When the
/// first page comes back full, the other pages are fetched side by side (they are where the count
/// says), kept while each comes back as asked; from one that does not, one page at a time. A page
/// that comes back empty before the announced end is asked for again, then fails. The caller
/// compares what was read with what was announced (a count taken before may have moved).
///
/// # Errors
/// As [`offset_all`], or a page that stays empty before the announced end.
pub async fn offset_counted(
    client: &HttpClient,
    path: &str,
    query: &[(&str, String)],
    max: usize,
    announced: usize,
    what: &str,
    seen: &OffsetEvidence,
) -> Result<Vec<Value>, HttpError> {
    let out = offset_read(client, path, query, max, Some((announced, what)), seen).await?;
    check_unique(client, path, &out)?;
    Ok(out)
}

async fn offset_read(
    client: &HttpClient,
    path: &str,
    query: &[(&str, String)],
    max: usize,
    announced: Option<(usize, &str)>,
    seen: &OffsetEvidence,
) -> Result<Vec<Value>, HttpError> {
    let mut out = Vec::new();
    loop {
        let remaining = announced.map(|(n, _)| n.saturating_sub(out.len()));
        if remaining == Some(0) && !out.is_empty() {
            return Ok(out);
        }
        // The last page by the count is asked for one more than remains: more than that coming
        // back shows a count that was too low.
        let ask = match remaining {
            Some(r) if r <= max => r + 1,
            _ => max,
        };
        let mut q = query.to_vec();
        q.push(("first", out.len().to_string()));
        q.push(("max", ask.to_string()));
        let before_end = remaining.is_some_and(|r| r > 0);
        let mut tries = 1;
        let items = loop {
            let items = match client.get_json(path, &q).await? {
                Value::Array(items) => items,
                _ => return Err(client.malformed(path, "a listing that is not a JSON array")),
            };
            if !items.is_empty() || !before_end {
                break items;
            }
            if tries > PAGE_RETRIES {
                let (n, what) = announced.unwrap_or_default();
                return Err(client.page_fault(
                    path,
                    &q,
                    &format!(
                        "the page came back empty {tries} times, but {what} announced {n} and only {} were read: the listing is incomplete",
                        out.len()
                    ),
                ));
            }
            client.pause(tries).await;
            tries += 1;
        };
        let got = items.len();
        if got == 0 {
            return Ok(out);
        }
        if got >= ask {
            seen.saw_filled(ask);
        } else if remaining.is_some_and(|r| got < r) {
            seen.saw_capped(got);
        }
        if path == seen.leader {
            seen.settle();
        }
        out.extend(items);
        match remaining {
            Some(r) if got >= r => return Ok(out),
            Some(_) if out.len() == got && got == max => {
                // A full first page of a counted listing: the other pages are where the count
                // says, and are fetched side by side.
                let (n, _) = announced.unwrap_or_default();
                offset_rest(client, path, query, max, n, seen, &mut out).await?;
            }
            Some(_) => {}
            None if seen.ends(got, ask) => return Ok(out),
            None => {}
        }
    }
}

/// The pages of a counted offset listing after its full first page, fetched side by side (up to
/// the client's concurrency), each page asked for `max` but the last by the count, asked for one
/// more than remains. Pages are kept in order while each came back as asked (full, or at least
/// what remained for the last); from the first that did not (a server capping `max`, a glitch),
/// the caller reads on one page at a time, with its checks and retries.
async fn offset_rest(
    client: &HttpClient,
    path: &str,
    query: &[(&str, String)],
    max: usize,
    announced: usize,
    seen: &OffsetEvidence,
    out: &mut Vec<Value>,
) -> Result<(), HttpError> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let starts: Vec<usize> = (out.len()..announced).step_by(max.max(1)).collect();
    let pages: Vec<Vec<Value>> = stream::iter(starts.clone().into_iter().map(|first| {
        let ask = if announced - first <= max {
            announced - first + 1
        } else {
            max
        };
        let mut q = query.to_vec();
        q.push(("first", first.to_string()));
        q.push(("max", ask.to_string()));
        async move {
            match client.get_json(path, &q).await? {
                Value::Array(items) => Ok(items),
                _ => Err(client.malformed(path, "a listing that is not a JSON array")),
            }
        }
    }))
    .buffered(client.concurrency())
    .try_collect()
    .await?;
    for (page, &first) in pages.into_iter().zip(&starts) {
        let wanted = max.min(announced - first);
        if page.len() < wanted {
            break;
        }
        if page.len() == max {
            seen.saw_filled(max);
        }
        out.extend(page);
    }
    Ok(())
}

/// The `rel="next"` target of a `Link` header, if any.
#[must_use]
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all("link") {
        let Ok(text) = value.to_str() else { continue };
        for part in text.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                return target
                    .strip_prefix('<')
                    .and_then(|t| t.strip_suffix('>'))
                    .map(String::from);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn client() -> HttpClient {
        HttpClient::new(
            "test",
            "https://x.okta.com/",
            crate::http::Auth::None,
            &crate::http::HttpSettings::default(),
        )
    }

    #[test]
    fn a_trail_refuses_other_origins_and_repeats() {
        let c = client();
        let mut t = Trail::new();
        t.follow(
            &c,
            "api/v1/users",
            "https://x.okta.com/api/v1/users?after=a",
        )
        .unwrap();
        t.follow(
            &c,
            "api/v1/users",
            "https://X.okta.com:443/api/v1/users?after=b",
        )
        .unwrap();
        t.follow(&c, "api/v1/users", "bare-cursor").unwrap();
        let again = t
            .follow(
                &c,
                "api/v1/users",
                "https://x.okta.com/api/v1/users?after=a",
            )
            .unwrap_err()
            .to_string();
        assert!(
            again.contains("leads back to a page already read"),
            "{again}"
        );
        assert!(t.follow(&c, "api/v1/users", "bare-cursor").is_err());
        for elsewhere in [
            "https://evil.example.com/api/v1/users?after=c",
            "http://x.okta.com/api/v1/users?after=c",
            "https://x.okta.com:8443/api/v1/users?after=c",
        ] {
            let e = t
                .follow(&c, "api/v1/users", elsewhere)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("another origin than the configured base https://x.okta.com"),
                "{e}"
            );
        }
    }

    #[test]
    fn scim_resources_missing_or_null_are_none_and_else_must_be_a_list() {
        use serde_json::json;
        let list = |mut v: Value| take_resources(&mut v);
        assert_eq!(
            list(json!({"totalResults": 0, "Resources": null})),
            Some(Vec::new())
        );
        assert_eq!(list(json!({"totalResults": 0})), Some(Vec::new()));
        assert_eq!(
            list(json!({"Resources": [{"id": "a"}]})),
            Some(vec![json!({"id": "a"})])
        );
        assert_eq!(list(json!({"Resources": {"id": "a"}})), None);
    }

    #[test]
    fn cursors_are_decoded_once() {
        let page = |next: &str| serde_json::json!({"links": {"next": next}});
        assert_eq!(
            next_cursor(&page(
                "https://api.atlassian.com/admin/v1/orgs/o/users?cursor=%2B%2F8%3Dab&x=1"
            ))
            .as_deref(),
            Some("+/8=ab")
        );
        assert_eq!(next_cursor(&page("+/8=ab")).as_deref(), Some("+/8=ab"));
        assert_eq!(next_cursor(&page("")), None);
    }

    #[test]
    fn a_short_page_ends_a_listing_only_when_the_server_was_seen_to_honour_max() {
        let e = OffsetEvidence::led_by("users");
        assert!(
            !e.ends(20, 100),
            "nothing known yet: only an empty page ends"
        );
        e.saw_filled(100);
        assert!(e.ends(20, 100));
        assert!(!e.ends(100, 100), "a full page never ends a listing");
        assert!(!e.ends(20, 20));
        // A page that came back short before a count's end: the server caps at 10.
        e.saw_capped(10);
        assert!(
            !e.ends(20, 100),
            "the evidence contradicts itself: trust nothing above the cap"
        );
        assert!(!e.ends(10, 100));
        assert!(e.ends(5, 100));
    }

    #[test]
    fn ids_listed_twice_are_found() {
        let items = |ids: &[&str]| -> Vec<Value> {
            ids.iter().map(|i| serde_json::json!({"id": i})).collect()
        };
        assert!(unique_ids(&items(&["a", "b", "c"])).is_ok());
        assert_eq!(unique_ids(&items(&["a", "b", "a"])), Err("a".to_string()));
        assert!(unique_ids(&[serde_json::json!({"id": 1}), serde_json::json!({"id": 1})]).is_err());
    }

    #[test]
    fn finds_the_next_link() {
        let mut h = HeaderMap::new();
        h.append(
            "link",
            HeaderValue::from_static("<https://x.okta.com/api/v1/users?limit=200>; rel=\"self\""),
        );
        h.append(
            "link",
            HeaderValue::from_static(
                "<https://x.okta.com/api/v1/users?after=00u5&limit=200>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://x.okta.com/api/v1/users?after=00u5&limit=200")
        );
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            HeaderValue::from_static("<a>; rel=\"prev\", <b>; rel=\"next\""),
        );
        assert_eq!(next_link(&h).as_deref(), Some("b"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
