//! Pagination: SCIM `startIndex`/`count` (advancing by what each page returned), cursors in a JSON
//! body, and RFC 8288 `Link: <…>; rel="next"` headers.

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{HttpClient, HttpError};

/// Reads every page of a SCIM list (`ListResponse`) and returns all its `Resources`.
///
/// The first page says how many resources there are and how many a page holds (the server's cap, which
/// may be below `count`); the other pages are then fetched concurrently (bounded by the client). That
/// relies on every full page holding the same number: if one comes back short, or the pages do not add
/// up, the listing is read again one page at a time, each starting after what the previous returned.
/// `itemsPerPage` is never trusted (Atlassian has been seen to report 10000 on a page of 100). Any
/// failed page fails the whole listing.
///
/// # Errors
/// A page that fails after retries, or that is not a `ListResponse`.
pub async fn scim_all(
    client: &HttpClient,
    path: &str,
    count: usize,
) -> Result<Vec<Value>, HttpError> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};

    let first = scim_page(client, path, 1, count).await?;
    let per_page = first.resources.len();
    let Some(total) = first.total else {
        return scim_sequential(client, path, count, first).await;
    };
    if per_page == 0 || per_page >= total {
        return Ok(first.resources);
    }
    let starts: Vec<usize> = (1 + per_page..=total).step_by(per_page).collect();
    let pages: Vec<Page> = stream::iter(
        starts
            .clone()
            .into_iter()
            .map(|start| scim_page(client, path, start, count)),
    )
    .buffered(client.concurrency())
    .try_collect()
    .await?;
    let consistent = pages
        .iter()
        .zip(&starts)
        .all(|(p, &start)| p.resources.len() == per_page.min(total + 1 - start))
        && pages.iter().all(|p| p.total == Some(total));
    if !consistent {
        return scim_sequential(client, path, count, first).await;
    }
    let mut all = first.resources;
    for p in pages {
        all.extend(p.resources);
    }
    Ok(all)
}

struct Page {
    total: Option<usize>,
    resources: Vec<Value>,
}

async fn scim_page(
    client: &HttpClient,
    path: &str,
    start: usize,
    count: usize,
) -> Result<Page, HttpError> {
    let query = [
        ("startIndex", start.to_string()),
        ("count", count.to_string()),
    ];
    let mut page = client.get_json(path, &query).await?;
    let total = page
        .get("totalResults")
        .and_then(Value::as_u64)
        .map(|t| usize::try_from(t).unwrap_or(usize::MAX));
    let resources = match page.get_mut("Resources").map(Value::take) {
        Some(Value::Array(r)) => r,
        // An empty list may leave `Resources` out.
        None if total == Some(0) => Vec::new(),
        _ => return Err(client.malformed(path, "a SCIM ListResponse without Resources")),
    };
    Ok(Page { total, resources })
}

/// One page after another, each starting after what the previous returned, until an empty page or
/// `totalResults`.
async fn scim_sequential(
    client: &HttpClient,
    path: &str,
    count: usize,
    first: Page,
) -> Result<Vec<Value>, HttpError> {
    let mut start = 1 + first.resources.len();
    let mut total = first.total;
    let mut done = first.resources.is_empty() || total.is_some_and(|t| start > t);
    let mut all = first.resources;
    while !done {
        let page = scim_page(client, path, start, count).await?;
        total = page.total.or(total);
        start += page.resources.len();
        done = page.resources.is_empty() || total.is_some_and(|t| start > t);
        all.extend(page.resources);
    }
    Ok(all)
}

/// Every item of an Atlassian-style cursor listing: pages of `{data: [...], links: {next}}`, where
/// `links.next` is a bare cursor or a URL carrying `cursor=`, passed back as the `cursor` parameter.
///
/// # Errors
/// A page that fails after retries, or that has no `data`.
pub async fn cursor_all(client: &HttpClient, path: &str) -> Result<Vec<Value>, HttpError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query: Vec<(&str, String)> = cursor.iter().map(|c| ("cursor", c.clone())).collect();
        let mut page = client.get_json(path, &query).await?;
        match page.get_mut("data").map(Value::take) {
            Some(Value::Array(items)) => out.extend(items),
            _ => return Err(client.malformed(path, "a page without `data`")),
        }
        cursor = next_cursor(&page);
        if cursor.is_none() {
            return Ok(out);
        }
    }
}

/// The cursor in a page's `links.next`: a bare cursor, or a URL carrying `cursor=`.
#[must_use]
pub fn next_cursor(page: &Value) -> Option<String> {
    let next = page
        .pointer("/links/next")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())?;
    Some(match next.split_once("cursor=") {
        Some((_, rest)) if next.contains('?') => rest.split('&').next().unwrap_or(rest).to_string(),
        _ => next.to_string(),
    })
}

/// Every item of an offset listing (`first`/`max`, Keycloak style) returning bare JSON arrays. The
/// next page starts after what this one returned, and the listing ends on an empty page: a server
/// that caps `max` below what was asked is never taken to have run out.
///
/// # Errors
/// A page that fails after retries, or that is not an array.
pub async fn offset_all(
    client: &HttpClient,
    path: &str,
    query: &[(&str, String)],
    max: usize,
) -> Result<Vec<Value>, HttpError> {
    let mut out = Vec::new();
    loop {
        let mut q = query.to_vec();
        q.push(("first", out.len().to_string()));
        q.push(("max", max.to_string()));
        match client.get_json(path, &q).await? {
            Value::Array(items) if items.is_empty() => return Ok(out),
            Value::Array(items) => out.extend(items),
            _ => return Err(client.malformed(path, "a listing that is not a JSON array")),
        }
    }
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
