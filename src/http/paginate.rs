//! Pagination: SCIM `startIndex`/`count` (advancing by what each page returned), cursors in a JSON
//! body, and RFC 8288 `Link: <…>; rel="next"` headers.

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{HttpClient, HttpError};

/// Reads every page of a SCIM list (`ListResponse`) and returns all its `Resources`.
///
/// `itemsPerPage` is not trusted (Atlassian has been seen to report 10000 on a page of 100): the next
/// page starts after what this one returned, and the listing ends on an empty page or once
/// `totalResults` is reached. Any failed page fails the whole listing.
///
/// # Errors
/// A page that fails after retries, or that is not a `ListResponse`.
pub async fn scim_all(
    client: &HttpClient,
    path: &str,
    count: usize,
) -> Result<Vec<Value>, HttpError> {
    let mut all = Vec::new();
    let mut start = 1usize;
    loop {
        let query = [
            ("startIndex", start.to_string()),
            ("count", count.to_string()),
        ];
        let page = client.get_json(path, &query).await?;
        let total = page.get("totalResults").and_then(Value::as_u64);
        let Some(resources) = page
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .or_else(|| {
                // An empty list may leave `Resources` out.
                (total == Some(0)).then(Vec::new)
            })
        else {
            return Err(client.malformed(path, "a SCIM ListResponse without Resources"));
        };
        let got = resources.len();
        all.extend(resources);
        start += got;
        let done =
            got == 0 || total.is_some_and(|t| start > usize::try_from(t).unwrap_or(usize::MAX));
        if done {
            return Ok(all);
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
