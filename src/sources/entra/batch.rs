//! Microsoft Graph JSON batching (`POST /$batch`, concepts/json-batching.md): up to 20 GET
//! requests in one round trip. Each request of a batch is answered on its own, in any order, and
//! may be throttled on its own: a 429 or a 5xx inside a batch is sent again in a later batch
//! (after the `Retry-After` it names, else after a backoff), up to the client's attempts; any other
//! failure of one request fails the read, naming it.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

use crate::http::{HttpClient, HttpError};

/// The most requests Graph takes in one batch.
pub(super) const MAX_BATCH: usize = 20;

/// The API's name in messages about a batch reply.
const API: &str = "Microsoft Graph";

/// A GET relative to the Graph version (`groups/{id}/members`) with its query, as a batch
/// request's `url` (`/groups/{id}/members?%24select=…`).
pub(super) fn relative_url(path: &str, query: &[(&str, String)]) -> String {
    let path = path.trim_start_matches('/');
    let Ok(url) = reqwest::Url::parse_with_params(&format!("http://graph/{path}"), query) else {
        return format!("/{path}");
    };
    match url.query() {
        Some(q) if !q.is_empty() => format!("{}?{q}", url.path()),
        _ => url.path().to_string(),
    }
}

/// Sends `urls` (each a GET relative to the Graph version, with `ConsistencyLevel: eventual`) in
/// batches of at most [`MAX_BATCH`], and returns each one's body in the order of `urls`.
///
/// # Errors
/// A batch that fails after the client's retries, a reply that is not a batch reply or leaves a
/// request out, a request answered with an error (other than throttling or a 5xx), or one still
/// throttled or failing after every attempt.
pub(super) async fn get_all(http: &HttpClient, urls: &[String]) -> Result<Vec<Value>, HttpError> {
    let mut out: Vec<Option<Value>> = vec![None; urls.len()];
    let mut attempts = vec![0u32; urls.len()];
    let mut pending: Vec<usize> = (0..urls.len()).collect();
    let policy = http.retry_policy();
    while !pending.is_empty() {
        let chunk: Vec<usize> = pending.iter().copied().take(MAX_BATCH).collect();
        let rest = pending.split_off(chunk.len());
        let mut again = Vec::new();
        let mut wait = Duration::ZERO;
        for (i, mut reply) in send(http, urls, &chunk).await? {
            attempts[i] += 1;
            let status = reply.get("status").and_then(Value::as_u64).unwrap_or(0);
            // Moved out of the reply, not copied.
            let body = reply.get_mut("body").map(Value::take).unwrap_or(Value::Null);
            if (200..300).contains(&status) {
                out[i] = Some(body);
                continue;
            }
            let what = || {
                format!(
                    "GET {} inside a $batch answered HTTP {status}{}",
                    urls[i],
                    graph_message(&body)
                )
            };
            let retryable = matches!(status, 429 | 500 | 502 | 503 | 504);
            if !retryable {
                return Err(http.malformed("$batch", &what()));
            }
            if attempts[i] >= policy.max_attempts {
                return Err(http.malformed(
                    "$batch",
                    &format!("{} {} times: giving up", what(), attempts[i]),
                ));
            }
            let asked = policy
                .requested_wait(&headers(reply.get("headers")))
                .map_err(|too_long| http.malformed("$batch", &format!("{}; {too_long}", what())))?;
            wait = wait.max(asked.unwrap_or_else(|| policy.backoff(attempts[i])));
            again.push(i);
        }
        if !again.is_empty() {
            crate::progress::wait(
                API,
                policy.unscaled(wait).as_secs_f64(),
                &format!("{} requests of a $batch were throttled or failed", again.len()),
                " before sending them again",
            );
            tokio::time::sleep(wait).await;
        }
        pending = again;
        pending.extend(rest);
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

/// One batch of the requests `chunk` (indexes into `urls`): each answer with its index.
async fn send(
    http: &HttpClient,
    urls: &[String],
    chunk: &[usize],
) -> Result<Vec<(usize, Value)>, HttpError> {
    let requests: Vec<Value> = chunk
        .iter()
        .map(|&i| {
            json!({
                "id": i.to_string(),
                "method": "GET",
                "url": urls[i],
                "headers": {"ConsistencyLevel": "eventual"},
            })
        })
        .collect();
    let body = json!({ "requests": requests });
    let reply = http.post_read_json("$batch", &body).await?;
    let Some(responses) = reply.get("responses").and_then(Value::as_array) else {
        return Err(http.malformed("$batch", "a batch reply without `responses`"));
    };
    let mut answered = Vec::with_capacity(chunk.len());
    for r in responses {
        let i = r
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| id.parse::<usize>().ok())
            .filter(|i| chunk.contains(i))
            .ok_or_else(|| {
                http.malformed(
                    "$batch",
                    &format!("the batch reply answers a request it was not asked ({r})"),
                )
            })?;
        if answered.iter().any(|(j, _)| *j == i) {
            return Err(http.malformed(
                "$batch",
                &format!("the batch reply answers GET {} twice", urls[i]),
            ));
        }
        answered.push((i, r.clone()));
    }
    if let Some(&i) = chunk.iter().find(|i| !answered.iter().any(|(j, _)| j == *i)) {
        return Err(http.malformed(
            "$batch",
            &format!(
                "the batch reply leaves GET {} unanswered: its listing would be incomplete",
                urls[i]
            ),
        ));
    }
    Ok(answered)
}

/// A batch answer's `headers` object as a header map (names are case-insensitive).
fn headers(v: Option<&Value>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in v.and_then(Value::as_object).into_iter().flatten() {
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            map.insert(k, v);
        }
    }
    map
}

/// `: <Graph's error message>`, when the body carries one.
fn graph_message(body: &Value) -> String {
    body.pointer("/error/message")
        .and_then(Value::as_str)
        .map(|m| format!(": {}", crate::config::secret::redact(m)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_relative_and_encoded() {
        let q = [
            ("$select", "id,displayName".to_string()),
            ("$top", "999".to_string()),
        ];
        assert_eq!(
            relative_url("groups/abc/members", &q),
            "/groups/abc/members?%24select=id%2CdisplayName&%24top=999"
        );
        assert_eq!(relative_url("/groups", &[]), "/groups");
    }

    #[test]
    fn answer_headers_are_case_insensitive() {
        let h = headers(Some(&json!({"Retry-After": "7", "x": 3, "bad": null})));
        assert_eq!(h.get("retry-after").unwrap(), "7");
        assert_eq!(h.get("x").unwrap(), "3");
        assert!(h.get("bad").is_none());
    }
}
