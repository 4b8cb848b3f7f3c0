//! The retry loop and the pager against a scripted server: what a request is answered is a
//! function of its target (path and query) and how many times that target was asked for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::paginate::{self, Items, Next, Pager, Style};
use super::retry::{self, Asked, Retry};
use super::{Auth, CreateError, Created, HttpClient, HttpError, HttpSettings};

/// An answer: status, headers, body.
type Answer = (u16, Vec<(&'static str, String)>, String);
type Script = dyn Fn(&str, usize) -> Answer + Send + Sync;

/// A scripted HTTP/1.1 server on 127.0.0.1; records every request target it receives.
struct Scripted {
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start(script: impl Fn(&str, usize) -> Answer + Send + Sync + 'static) -> Scripted {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let counts = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let (log2, base2) = (log.clone(), base.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (script, log, counts, base) =
                    (script.clone(), log2.clone(), counts.clone(), base2.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let mut parts = head.split_whitespace();
                    let method = parts.next().unwrap_or("").to_string();
                    let target = parts.next().unwrap_or("").to_string();
                    let key = format!("{method} {target}");
                    let nth = {
                        let mut c = counts.lock().unwrap();
                        let n = c.entry(key.clone()).or_default();
                        *n += 1;
                        *n
                    };
                    log.lock().unwrap().push(key.clone());
                    let (status, headers, body) = script(&key, nth);
                    let body = body.replace("{base}", &base);
                    let mut out = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\ncontent-type: application/json\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        out.push_str(&format!("{k}: {}\r\n", v.replace("{base}", &base)));
                    }
                    out.push_str("\r\n");
                    out.push_str(&body);
                    let _ = sock.write_all(out.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Scripted { base, log }
    }

    fn client(&self, max_attempts: u32) -> HttpClient {
        let settings = HttpSettings {
            max_attempts,
            ..HttpSettings::default()
        };
        HttpClient::new("test", &self.base, Auth::None, &settings).without_waits()
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn ok(body: Value) -> Answer {
    (200, vec![], body.to_string())
}

// ---- one retry loop -------------------------------------------------------------------------

#[tokio::test]
async fn a_call_that_always_fails_retryably_makes_exactly_max_attempts_requests() {
    // Throttled twice, then a body that is never JSON: the parse retries and the throttling
    // retries share one budget (two loops, one inside the other, used to make up to 36).
    let s = Scripted::start(|_, nth| {
        if nth <= 2 {
            (429, vec![("retry-after", "0".into())], String::new())
        } else {
            (200, vec![], "{\"cut".into())
        }
    })
    .await;
    let e = s.client(4).get_json("users", &[]).await.unwrap_err();
    assert!(e.to_string().contains("not valid JSON"), "{e}");
    assert_eq!(s.requests().len(), 4);

    for (status, body) in [(429, ""), (503, "down"), (502, "")] {
        let s = Scripted::start(move |_, _| (status, vec![], body.into())).await;
        let e = s.client(5).get_json("users", &[]).await.unwrap_err();
        assert_eq!(e.status(), Some(status), "{e}");
        assert_eq!(s.requests().len(), 5, "HTTP {status}");
    }
}

/// Google's quota answer, which is a 403.
fn quota(status: StatusCode, _: &HeaderMap, body: &[u8]) -> Option<Retry> {
    let body = String::from_utf8_lossy(body);
    let over = body.contains("userRateLimitExceeded") || body.contains("rateLimitExceeded");
    (status == StatusCode::FORBIDDEN && over).then_some(Retry::Backoff)
}

#[tokio::test]
async fn a_vendor_classifier_retries_its_own_signals_in_the_same_loop() {
    let body = json!({"error": {"code": 403, "errors": [{"reason": "userRateLimitExceeded"}]}});
    let answer = move |_: &str, nth: usize| -> Answer {
        if nth % 2 == 1 {
            (403, vec![], body.to_string())
        } else {
            (429, vec![], String::new())
        }
    };
    let s = Scripted::start(answer.clone()).await;
    let e = s
        .client(6)
        .with_classifier(quota)
        .get_json("users", &[])
        .await
        .unwrap_err();
    assert_eq!(s.requests().len(), 6, "{e}");
    // Without the classifier a 403 is an answer, at once.
    let s = Scripted::start(answer).await;
    let e = s.client(6).get_json("users", &[]).await.unwrap_err();
    assert_eq!((e.status(), s.requests().len()), (Some(403), 1));
    // A 403 that is not about quota is not retried either way.
    let s = Scripted::start(|_, _| (403, vec![], json!({"error": "forbidden"}).to_string())).await;
    s.client(6)
        .with_classifier(quota)
        .get_json("users", &[])
        .await
        .unwrap_err();
    assert_eq!(s.requests().len(), 1);
    // Recovered in time: the answer comes back.
    let s = Scripted::start(|_, nth| {
        if nth < 3 {
            (403, vec![], "userRateLimitExceeded".into())
        } else {
            ok(json!({"users": []}))
        }
    })
    .await;
    let v = s
        .client(6)
        .with_classifier(quota)
        .get_json("users", &[])
        .await
        .unwrap();
    assert_eq!((v, s.requests().len()), (json!({"users": []}), 3));
}

#[tokio::test]
async fn header_waits_are_parsed_once_and_clamped() {
    for (name, value) in [
        ("retry-after", "1e30"),
        ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("x-rate-limit-reset", "99999999999999999999"),
        ("ratelimit-reset", "86400"),
    ] {
        let s = Scripted::start(move |_, _| (429, vec![(name, value.to_string())], String::new()))
            .await;
        let e = s.client(6).get_json("users", &[]).await.unwrap_err();
        assert!(matches!(e, HttpError::WaitTooLong { .. }), "{name}: {e}");
        assert!(e.to_string().contains("http.max_wait_secs"), "{e}");
        assert_eq!(s.requests().len(), 1, "{name}: {value}");
    }
    // Nonsense is no wait at all: backed off, retried.
    let s = Scripted::start(|_, nth| {
        if nth == 1 {
            (429, vec![("retry-after", "NaN".into())], String::new())
        } else {
            ok(json!([]))
        }
    })
    .await;
    s.client(6).get_json("users", &[]).await.unwrap();
    assert_eq!(s.requests().len(), 2);

    let mut h = HeaderMap::new();
    h.insert("ratelimit-reset", "7".parse().unwrap());
    assert_eq!(
        retry::asked(&h),
        Some(Asked {
            secs: 7.0,
            by: "RateLimit-Reset"
        })
    );
    h.insert("retry-after", "3".parse().unwrap());
    assert_eq!(retry::asked(&h).map(|a| a.by), Some("Retry-After"));
    assert_eq!(
        retry::classify(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new()),
        Retry::Backoff
    );
    assert_eq!(
        retry::classify(StatusCode::NOT_FOUND, &h),
        Retry::No,
        "a wait asked for on a 404 is no reason to retry"
    );
    assert!(matches!(
        retry::classify(StatusCode::TOO_MANY_REQUESTS, &h),
        Retry::After(Asked {
            by: "Retry-After",
            ..
        })
    ));
    // A vendor's wait goes through the same clamp.
    let p = super::RetryPolicy {
        scale: 1.0,
        ..super::RetryPolicy::default()
    };
    for secs in [f64::NAN, -3.0] {
        assert!(p.clamp(Asked { secs, by: "x" }).unwrap() < std::time::Duration::from_secs(1));
    }
    for secs in [f64::INFINITY, 1e30, 301.0] {
        assert!(p.clamp(Asked { secs, by: "x" }).is_err(), "{secs}");
    }
}

#[tokio::test]
async fn a_create_shares_one_budget_between_throttling_and_look_ups() {
    // Throttled three times, then 503 (applied or not, nobody knows) forever; the look-up finds
    // nothing. Every POST counts against the one budget.
    let s = Scripted::start(|key, nth| {
        if key.starts_with("GET") {
            ok(json!({"Resources": []}))
        } else if nth <= 3 {
            (429, vec![], String::new())
        } else {
            (503, vec![], String::new())
        }
    })
    .await;
    let http = s.client(5);
    let lookups = std::sync::atomic::AtomicUsize::new(0);
    let find = || async {
        lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok::<Option<String>, String>(None)
    };
    let body = json!({"userName": "ana"});
    let got = http
        .create_once(Method::POST, "Users", Some(&body), |_| None, &find)
        .await;
    let Err(CreateError::Exhausted { attempts, doubt }) = got else {
        panic!("{got:?}");
    };
    let posts = s
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST"))
        .count();
    assert_eq!((attempts, posts), (5, 5), "{doubt}");
    assert_eq!(lookups.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(doubt.contains("503"), "{doubt}");

    // The look-up finds what the first create made.
    let s = Scripted::start(|_, _| (502, vec![], String::new())).await;
    let found = || async { Ok::<_, String>(Some("u1".to_string())) };
    let got = s
        .client(5)
        .create_once(Method::POST, "Users", Some(&body), |_| None, &found)
        .await;
    assert!(
        matches!(got, Ok(Created::Found(ref id)) if id == "u1"),
        "{got:?}"
    );
    assert_eq!(s.requests().len(), 1);
}

// ---- one pager ------------------------------------------------------------------------------

fn ids(items: &[Value]) -> Vec<&str> {
    items.iter().filter_map(|v| v["id"].as_str()).collect()
}

#[tokio::test]
async fn link_header_pages_are_followed_on_the_same_origin() {
    let s = Scripted::start(|key, _| match key {
        "GET /api/v1/users?limit=2" => (
            200,
            vec![(
                "link",
                "<{base}/api/v1/users?after=b&limit=2>; rel=\"next\"".into(),
            )],
            json!([{"id": "a"}, {"id": "b"}]).to_string(),
        ),
        "GET /api/v1/users?after=b&limit=2" => ok(json!([{"id": "c"}])),
        _ => (404, vec![], String::new()),
    })
    .await;
    let http = s.client(3);
    let q = vec![("limit", "2".to_string())];
    let all = Pager::new(&http, "api/v1/users", q.clone(), paginate::LINK_HEADER)
        .all()
        .await
        .unwrap();
    assert_eq!(ids(&all), ["a", "b", "c"]);

    // A next link elsewhere is refused before it is followed.
    let s = Scripted::start(|_, _| {
        (
            200,
            vec![("link", "<https://evil.example.com/x>; rel=\"next\"".into())],
            json!([{"id": "a"}]).to_string(),
        )
    })
    .await;
    let http = s.client(3);
    let e = Pager::new(&http, "api/v1/users", q, paginate::LINK_HEADER)
        .all()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("another origin"), "{e}");
    assert_eq!(s.requests().len(), 1);
}

#[tokio::test]
async fn a_short_page_that_links_on_is_asked_again_then_fails() {
    // Full pages are 2; the second page holds 1 yet links on, every time.
    let s = Scripted::start(|key, _| {
        let (items, next) = if key.contains("pageToken") {
            (json!([{"id": "c"}]), "t2")
        } else {
            (json!([{"id": "a"}, {"id": "b"}]), "t1")
        };
        ok(json!({"users": items, "nextPageToken": next}))
    })
    .await;
    let http = s.client(3);
    let style = Style {
        items: Items::Field {
            pointer: "/users",
            missing: None,
        },
        next: Next::Field {
            pointer: "/nextPageToken",
            param: "pageToken",
        },
        keep_query: true,
        full_pages: true,
        empty_pages: false,
        total: None,
        unique: false,
        noun: "items",
        rereads: 0,
    };
    let q = vec![("maxResults", "2".to_string())];
    let e = Pager::new(&http, "users", q, style)
        .all()
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("held 1 items of a full page's 2"),
        "{e}"
    );
    let second = s
        .requests()
        .iter()
        .filter(|r| r.contains("pageToken=t1"))
        .count();
    assert_eq!(second, 1 + paginate::PAGE_RETRIES as usize);
    // The page token is sent with the listing's own query.
    assert!(s
        .requests()
        .contains(&"GET /users?maxResults=2&pageToken=t1".to_string()));
}

#[tokio::test]
async fn page_tokens_next_link_fields_and_header_cursors() {
    let s = Scripted::start(|key, _| match key {
        // Google: a token; the last page leaves the list out.
        "GET /users?maxResults=2" => {
            ok(json!({"users": [{"id": "a"}, {"id": "b"}], "nextPageToken": "t"}))
        }
        "GET /users?maxResults=2&pageToken=t" => ok(json!({"nextPageToken": ""})),
        // Graph: a next link as a field; pages may be empty before the last.
        "GET /v1.0/users" => ok(json!({"value": [{"id": "g1"}], "@odata.count": 2,
            "@odata.nextLink": "{base}/v1.0/users?$skiptoken=x"})),
        "GET /v1.0/users?$skiptoken=x" => ok(json!({"value": [],
            "@odata.nextLink": "{base}/v1.0/users?$skiptoken=y"})),
        "GET /v1.0/users?$skiptoken=y" => {
            ok(json!({"value": [{"id": "g2"}], "@odata.nextLink": null}))
        }
        // OneLogin v2: a cursor in a header, sent alone.
        "GET /api/2/users?cursor=c2" => ok(json!([{"id": "o2"}])),
        // OneLogin v1 / Atlassian: a cursor in the body.
        "GET /api/1/groups?after_cursor=k" => {
            ok(json!({"data": [{"id": 2}], "pagination": {"after_cursor": null}}))
        }
        "GET /admin/users" => {
            ok(json!({"data": [{"id": "x"}], "links": {"next": "n1"}, "meta": {"total": 3}}))
        }
        "GET /admin/users?cursor=n1" => {
            ok(json!({"data": [{"id": "y"}], "links": {}, "meta": {"total": 3}}))
        }
        "GET /admin/repeat" => ok(json!({"data": [{"id": "x"}], "links": {"next": "same"}})),
        "GET /admin/repeat?cursor=same" => {
            ok(json!({"data": [{"id": "y"}], "links": {"next": "same"}}))
        }
        _ => (404, vec![], String::new()),
    })
    .await;
    let http = s.client(3);
    let google = Style {
        items: Items::Field {
            pointer: "/users",
            missing: None,
        },
        next: Next::Field {
            pointer: "/nextPageToken",
            param: "pageToken",
        },
        keep_query: true,
        full_pages: true,
        empty_pages: false,
        total: None,
        unique: false,
        noun: "items",
        rereads: 0,
    };
    let q = vec![("maxResults", "2".to_string())];
    let all = Pager::new(&http, "users", q, google).all().await.unwrap();
    assert_eq!(ids(&all), ["a", "b"]);

    let graph = Style {
        items: Items::Field {
            pointer: "/value",
            missing: Some("a page without `value`"),
        },
        next: Next::Field {
            pointer: "/@odata.nextLink",
            param: "$skiptoken",
        },
        keep_query: false,
        full_pages: false,
        empty_pages: true,
        total: Some("/@odata.count"),
        unique: true,
        noun: "items",
        rereads: 0,
    };
    let all = Pager::new(&http, "v1.0/users", vec![], graph)
        .all()
        .await
        .unwrap();
    assert_eq!(ids(&all), ["g1", "g2"]);
    assert_eq!(
        s.requests()
            .iter()
            .filter(|r| r.contains("skiptoken=x"))
            .count(),
        1,
        "an empty page is followed, not asked for again, where the API sends those"
    );

    let onelogin = Style {
        items: Items::Body,
        next: Next::Header {
            name: "after-cursor",
            param: "cursor",
        },
        keep_query: false,
        full_pages: false,
        empty_pages: false,
        total: None,
        unique: true,
        noun: "items",
        rereads: 0,
    };
    let mut h = HeaderMap::new();
    h.insert("after-cursor", "c2".parse().unwrap());
    let all = Pager::new(&http, "api/2/users", vec![("limit", "1".into())], onelogin)
        .rest(json!([{"id": "o1"}]), &h)
        .await
        .unwrap();
    assert_eq!(ids(&all), ["o1", "o2"]);

    let v1 = Style {
        items: Items::Field {
            pointer: "/data",
            missing: Some("a v1 page without `data`"),
        },
        next: Next::Field {
            pointer: "/pagination/after_cursor",
            param: "after_cursor",
        },
        ..onelogin
    };
    let first = json!({"data": [{"id": 1}], "pagination": {"after_cursor": "k"}});
    let all = Pager::new(&http, "api/1/groups", vec![], v1)
        .rest(first, &HeaderMap::new())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let e = Pager::new(&http, "api/1/groups", vec![], v1)
        .rest(json!({"pagination": {}}), &HeaderMap::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("a v1 page without `data`"), "{e}");

    // Atlassian: an announced total that the pages do not meet; a repeated cursor.
    let e = paginate::cursor_all(&http, "admin/users")
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("meta.total announced 3 items, but the pages held 2"),
        "{e}"
    );
    let e = paginate::cursor_all(&http, "admin/repeat")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("leads back to a page already read"),
        "{e}"
    );
}

#[tokio::test]
async fn numbered_pages_are_read_by_number_and_checked_against_the_count() {
    let s = Scripted::start(|key, _| match key {
        "GET /users?page=2" => ok(json!([{"id": "c"}, {"id": "d"}])),
        "GET /users?page=3" => ok(json!([{"id": "e"}])),
        _ => (404, vec![], String::new()),
    })
    .await;
    let http = s.client(3);
    let page = |n: usize| vec![("page", n.to_string())];
    let rest = paginate::numbered(&http, "users", 2, 5, page, |_| false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&rest), ["c", "d", "e"]);
    // A count one too high: the last page is short of it, so the caller walks instead.
    assert!(paginate::numbered(&http, "users", 2, 6, page, |_| false)
        .await
        .unwrap()
        .is_none());
    // The last page by the count still links on: the count was too low.
    assert!(paginate::numbered(&http, "users", 2, 5, page, |_| true)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn scim_index_and_offset_listings() {
    let s = Scripted::start(|key, _| match key {
        "GET /Users?startIndex=1&count=2" => {
            ok(json!({"schemas": [], "totalResults": 3, "Resources": [{"id": "a"}, {"id": "b"}]}))
        }
        "GET /Users?startIndex=3&count=2" => {
            ok(json!({"schemas": [], "totalResults": 3, "Resources": [{"id": "c"}]}))
        }
        "GET /groups?first=0&max=2" => ok(json!([{"id": "g1"}, {"id": "g2"}])),
        "GET /groups?first=2&max=2" => ok(json!([{"id": "g3"}])),
        "GET /groups?first=3&max=2" => ok(json!([])),
        _ => (404, vec![], String::new()),
    })
    .await;
    let http = s.client(3);
    let all = paginate::scim_all(&http, "Users", 2).await.unwrap();
    assert_eq!(ids(&all), ["a", "b", "c"]);
    let all = paginate::offset_all(
        &http,
        "groups",
        &[],
        2,
        &paginate::OffsetEvidence::led_by("groups"),
    )
    .await
    .unwrap();
    assert_eq!(ids(&all), ["g1", "g2", "g3"]);
}

#[tokio::test]
async fn a_listing_asked_with_a_post_body_pages_through_the_fetch_hook() {
    // Atlassian's user search: POST, the cursor in the body; answers by rank.
    let s = Scripted::start(|_, nth| match nth {
        1 => ok(json!({"data": [{"id": "a"}], "links": {"next": "c1"}})),
        _ => ok(json!({"data": [{"id": "b"}], "links": {}})),
    })
    .await;
    let http = s.client(3);
    let seen = Mutex::new(Vec::new());
    let pager = Pager::new(&http, "search", vec![], paginate::ATLASSIAN_CURSOR);
    let all = pager
        .all_with(|url, q| {
            let (http, seen) = (&http, &seen);
            async move {
                let cursor = q
                    .iter()
                    .find(|(k, _)| *k == "cursor")
                    .map(|(_, v)| v.clone());
                seen.lock().unwrap().push(cursor.clone());
                let body = json!({"limit": 1, "cursor": cursor});
                let reply = http.success(Method::POST, &url, &[], Some(&body)).await?;
                Ok((reply.json("test")?, reply.headers))
            }
        })
        .await
        .unwrap();
    assert_eq!(ids(&all), ["a", "b"]);
    assert_eq!(*seen.lock().unwrap(), [None, Some("c1".to_string())]);
}

#[tokio::test]
async fn a_listing_that_misses_its_count_is_read_again_then_fails_in_the_styles_words() {
    // `/moving`: the first read misses an object, the second holds every one (a directory that
    // changed meanwhile). `/short`: every read misses one.
    let s = Scripted::start(|key, nth| match key {
        "GET /moving" if nth == 1 => ok(json!({"value": [{"id": "a"}], "@odata.count": 2})),
        "GET /moving" => ok(json!({"value": [{"id": "a"}, {"id": "b"}], "@odata.count": 2})),
        "GET /short" => ok(json!({"value": [{"id": "a"}], "@odata.count": 2})),
        _ => (404, vec![], String::new()),
    })
    .await;
    let http = s.client(3);
    let graph = Style {
        items: Items::Field {
            pointer: "/value",
            missing: Some("a page without `value`"),
        },
        next: Next::Field {
            pointer: "/@odata.nextLink",
            param: "$skiptoken",
        },
        keep_query: false,
        full_pages: false,
        empty_pages: true,
        total: Some("/@odata.count"),
        unique: true,
        noun: "objects",
        rereads: 1,
    };
    let all = Pager::new(&http, "moving", vec![], graph)
        .all()
        .await
        .unwrap();
    assert_eq!(ids(&all), ["a", "b"]);
    let e = Pager::new(&http, "short", vec![], graph)
        .all()
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("@odata.count announced 2 objects, but the pages held 1"),
        "{e}"
    );
    let reads = |k: &str| s.requests().iter().filter(|r| *r == k).count();
    assert_eq!((reads("GET /moving"), reads("GET /short")), (2, 2));
    // Without rereads, the first miss fails.
    let once = Style {
        rereads: 0,
        ..graph
    };
    let e = Pager::new(&http, "short", vec![], once)
        .all()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("announced 2 objects"), "{e}");
    assert_eq!(reads("GET /short"), 3);
}
