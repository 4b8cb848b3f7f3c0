//! Tests of the fake Okta itself, through plain reqwest.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{header::HeaderMap, Client, StatusCode};
use serde_json::{json, Value};

use super::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};
use super::Faults;

const API_TOKEN: &str = "okta-secret-api-token";
const CLIENT_ID: &str = "0oa-test-client";
const PRIVATE_KEY: &[u8] = include_bytes!("../fixtures/test-rsa-key.pem");

async fn fake() -> FakeOkta {
    FakeOkta::start(FakeOktaConfig::default()).await
}

/// How a request authenticates.
enum Auth<'a> {
    None,
    Ssws(&'a str),
    Bearer(&'a str),
}

/// A GET of `{base_url}{path}` (or of `path` itself when it is a full URL); returns the status,
/// the headers and the body (`Null` when empty).
async fn get(fake: &FakeOkta, path: &str, auth: Auth<'_>) -> (StatusCode, HeaderMap, Value) {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        format!("{}{path}", fake.base_url)
    };
    let mut request = Client::new().get(url);
    request = match auth {
        Auth::None => request,
        Auth::Ssws(token) => request.header("authorization", format!("SSWS {token}")),
        Auth::Bearer(token) => request.bearer_auth(token),
    };
    let response = request.send().await.expect("the fake answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("a JSON body")
    };
    (status, headers, body)
}

async fn ssws(fake: &FakeOkta, path: &str) -> (StatusCode, HeaderMap, Value) {
    get(fake, path, Auth::Ssws(API_TOKEN)).await
}

fn assert_okta_error(body: &Value, code: &str) {
    assert_eq!(body["errorCode"], code, "{body}");
    assert_eq!(body["errorLink"], code, "{body}");
    assert!(body["errorSummary"].is_string(), "{body}");
    assert!(
        body["errorId"].as_str().is_some_and(|id| !id.is_empty()),
        "{body}"
    );
    assert!(body["errorCauses"].is_array(), "{body}");
}

/// The URL of the `rel="next"` Link header, if any.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.ends_with("rel=\"next\""))
        .map(|v| v[1..v.find('>').expect("<url>")].to_owned())
}

fn ids(body: &Value) -> Vec<String> {
    body.as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| r["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Follows `rel="next"` from `path`; returns the ids of each page and the next links followed.
async fn all_pages(fake: &FakeOkta, path: &str) -> (Vec<Vec<String>>, Vec<String>) {
    let (mut pages, mut links) = (Vec::new(), Vec::new());
    let mut url = path.to_owned();
    loop {
        let (status, headers, body) = ssws(fake, &url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        pages.push(ids(&body));
        match next_link(&headers) {
            Some(next) => {
                links.push(next.clone());
                url = next;
            }
            None => return (pages, links),
        }
    }
}

/// A client assertion signed with the test key.
fn assertion(aud: &str, jti: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": aud,
        "iat": now, "exp": now + 300, "jti": jti,
    });
    let key = EncodingKey::from_rsa_pem(PRIVATE_KEY).expect("the test key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).expect("signed")
}

async fn request_token(fake: &FakeOkta, assertion: &str, scope: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", scope),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ];
    let response = Client::new()
        .post(fake.token_url())
        .form(&form)
        .send()
        .await
        .expect("the fake answers");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

const SCOPES: &str = "okta.users.read okta.groups.read";

#[tokio::test]
async fn the_api_token_authenticates_and_anything_else_is_401_e0000011() {
    let fake = fake().await;
    fake.add_user(OktaSeedUser::new("alice.doe@example.com"));
    let (status, _, body) = ssws(&fake, "/api/v1/users").await;
    assert_eq!(status, StatusCode::OK);
    let alice = &body[0];
    assert!(alice["id"].as_str().unwrap().starts_with("00u"));
    assert_eq!(alice["status"], "ACTIVE");
    assert_eq!(alice["profile"]["login"], "alice.doe@example.com");
    assert_eq!(alice["profile"]["firstName"], "Alice");
    assert_eq!(alice["profile"]["lastName"], "Doe");
    assert!(alice["_links"]["self"]["href"]
        .as_str()
        .unwrap()
        .ends_with(alice["id"].as_str().unwrap()));

    for auth in [Auth::None, Auth::Ssws("wrong"), Auth::Bearer(API_TOKEN)] {
        let (status, _, body) = get(&fake, "/api/v1/users", auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_okta_error(&body, "E0000011");
        assert_eq!(body["errorSummary"], "Invalid token provided");
    }
}

#[tokio::test]
async fn a_signed_client_assertion_gets_a_bearer_token_once() {
    let fake = fake().await;
    fake.add_user(OktaSeedUser::new("alice@example.com"));
    let aud = fake.token_url();

    let (status, body) = request_token(&fake, &assertion(&aud, "jti-1"), SCOPES).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], SCOPES);
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(fake.tokens_issued(), 1);
    let (status, _, body) = get(&fake, "/api/v1/users", Auth::Bearer(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body).len(), 1);

    // The same jti again, a wrong audience, a tampered signature: all invalid_client.
    let reused = assertion(&aud, "jti-1");
    let wrong_aud = assertion("https://example.okta.com/oauth2/v1/token", "jti-2");
    let good = assertion(&aud, "jti-3");
    let (head, signature) = good.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{head}.{flipped}{}", &signature[1..]);
    for bad in [reused, wrong_aud, tampered, "not-a-jwt".to_owned()] {
        let (status, body) = request_token(&fake, &bad, SCOPES).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "invalid_client", "{body}");
        assert!(body["error_description"].is_string());
    }

    // A scope the app was not granted.
    let (status, body) = request_token(
        &fake,
        &assertion(&aud, "jti-4"),
        "okta.users.read okta.users.manage",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(fake.tokens_issued(), 1);

    // A token for users only cannot read groups; an expired token is 401.
    let (_, body) = request_token(&fake, &assertion(&aud, "jti-5"), "okta.users.read").await;
    let users_only = body["access_token"].as_str().unwrap().to_owned();
    let (status, headers, body) = get(&fake, "/api/v1/groups", Auth::Bearer(&users_only)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_okta_error(&body, "E0000006");
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    fake.expire_tokens();
    let (status, _, body) = get(&fake, "/api/v1/users", Auth::Bearer(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_okta_error(&body, "E0000011");
    assert_eq!(fake.tokens_issued(), 2);
}

#[tokio::test]
async fn users_page_by_link_headers_with_the_limit_capped() {
    let fake = fake().await;
    for i in 0..450 {
        fake.add_user(OktaSeedUser::new(&format!("user{i:03}@example.com")));
    }
    let (pages, links) = all_pages(&fake, "/api/v1/users?limit=500&search=status%20pr").await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [200, 200, 50]);
    let all: Vec<String> = pages.concat();
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(all, sorted, "sorted by id, no duplicates");
    assert_eq!(
        links[0],
        format!(
            "{}/api/v1/users?after={}&limit=200&search=status%20pr",
            fake.base_url, pages[0][199]
        )
    );

    // The self link is the request; the default page is 200 too.
    let (_, headers, body) = ssws(&fake, "/api/v1/users").await;
    assert_eq!(ids(&body).len(), 200);
    let links: Vec<&str> = headers
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        links[0],
        format!("<{}/api/v1/users>; rel=\"self\"", fake.base_url)
    );
    assert!(links[1].ends_with("&limit=200>; rel=\"next\""), "{links:?}");
}

#[tokio::test]
async fn deprovisioned_users_are_only_listed_by_a_search_or_filter() {
    let fake = fake().await;
    fake.add_user(OktaSeedUser::new("alice@example.com"));
    fake.add_user(OktaSeedUser::new("bob@example.com").status("SUSPENDED"));
    let carol = fake.add_user(OktaSeedUser::new("carol@example.com"));
    fake.set_status("carol@example.com", "DEPROVISIONED");

    let count = |path: &'static str| {
        let fake = &fake;
        async move {
            let (status, _, body) = ssws(fake, path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            ids(&body)
        }
    };
    assert_eq!(count("/api/v1/users").await.len(), 2);
    assert_eq!(count("/api/v1/users?search=status%20pr").await.len(), 3);
    assert_eq!(
        count("/api/v1/users?search=status+eq+%22DEPROVISIONED%22").await,
        [carol.as_str()]
    );
    assert_eq!(
        count("/api/v1/users?filter=status%20eq%20%22ACTIVE%22")
            .await
            .len(),
        1
    );
    let (status, _, body) = ssws(&fake, &format!("/api/v1/users/{carol}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "DEPROVISIONED");

    let (status, _, body) = ssws(&fake, "/api/v1/users?search=status%20%3D%3D%20x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_okta_error(&body, "E0000031");

    // A rename keeps the id.
    fake.set_email(&carol, "carol.new@example.com");
    assert_eq!(
        fake.user("carol.new@example.com").unwrap()["profile"]["login"],
        "carol.new@example.com"
    );
}

#[tokio::test]
async fn groups_are_found_by_name_type_and_prefix() {
    let fake = FakeOkta::start(FakeOktaConfig {
        group_page_cap: 2,
        ..FakeOktaConfig::default()
    })
    .await;
    fake.add_user(OktaSeedUser::new("alice@example.com"));
    let eng = fake.add_group("Engineering", "OKTA_GROUP", &["alice@example.com"]);
    fake.add_group("Engineering", "APP_GROUP", &[]);
    fake.add_group("Eng Leads", "OKTA_GROUP", &[]);
    fake.add_group("Everyone", "BUILT_IN", &["alice@example.com"]);
    fake.add_group("Sales", "OKTA_GROUP", &[]);

    let (status, _, body) = ssws(
        &fake,
        "/api/v1/groups?search=profile.name%20eq%20%22Engineering%22%20and%20type%20eq%20%22OKTA_GROUP%22",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), [eng.as_str()]);
    assert_eq!(body[0]["type"], "OKTA_GROUP");
    assert_eq!(body[0]["profile"]["name"], "Engineering");

    let (pages, links) =
        all_pages(&fake, "/api/v1/groups?filter=type%20eq%20%22OKTA_GROUP%22").await;
    assert_eq!(pages.concat().len(), 3);
    assert!(
        links[0].contains("&filter=type%20eq%20%22OKTA_GROUP%22"),
        "{links:?}"
    );
    let (pages, _) = all_pages(&fake, "/api/v1/groups").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);

    let (_, headers, body) = ssws(&fake, "/api/v1/groups?q=eng").await;
    assert_eq!(ids(&body).len(), 2, "q is capped and not paged");
    assert_eq!(next_link(&headers), None);

    // The user's groups (an endpoint the connector must not need), counted.
    let alice = fake.user_id("alice@example.com").unwrap();
    let (_, _, body) = ssws(&fake, &format!("/api/v1/users/{alice}/groups")).await;
    assert_eq!(ids(&body).len(), 2);
    assert_eq!(fake.user_groups_calls(), 1);
}

#[tokio::test]
async fn group_members_page_and_an_unknown_group_is_404() {
    let fake = FakeOkta::start(FakeOktaConfig {
        member_page_cap: 2,
        ..FakeOktaConfig::default()
    })
    .await;
    let emails: Vec<String> = (0..5).map(|i| format!("m{i}@example.com")).collect();
    for email in &emails {
        fake.add_user(OktaSeedUser::new(email));
    }
    let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    let group = fake.add_group("Big", "OKTA_GROUP", &refs[..4]);
    fake.add_member("Big", "m4@example.com");
    fake.remove_member(&group, "m0@example.com");
    fake.set_status("m1@example.com", "DEPROVISIONED");

    let (pages, links) = all_pages(&fake, &format!("/api/v1/groups/{group}/users")).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);
    assert!(links[0].contains("/users?after=00u"), "{links:?}");

    let (status, _, body) = ssws(&fake, "/api/v1/groups/00gnope/users").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_okta_error(&body, "E0000007");
    assert_eq!(
        body["errorSummary"],
        "Not found: Resource not found: 00gnope (UserGroup)"
    );
}

#[tokio::test]
async fn the_rate_limit_window_runs_out_and_comes_back() {
    let fake = FakeOkta::start(FakeOktaConfig {
        rate_limit_per_minute: 3,
        rate_window: Duration::from_millis(300),
        ..FakeOktaConfig::default()
    })
    .await;
    let header = |headers: &HeaderMap, name: &str| -> u64 {
        headers[name].to_str().unwrap().parse().unwrap()
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    for remaining in [2, 1, 0] {
        let (status, headers, _) = ssws(&fake, "/api/v1/users").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, "x-rate-limit-limit"), 3);
        assert_eq!(header(&headers, "x-rate-limit-remaining"), remaining);
        // The end of the 300 ms window, rounded up to a whole second.
        let reset = header(&headers, "x-rate-limit-reset");
        let now = now();
        assert!((now..=now + 2).contains(&reset), "reset {reset}, now {now}");
    }
    let (status, headers, body) = ssws(&fake, "/api/v1/users").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_okta_error(&body, "E0000047");
    assert_eq!(
        body["errorSummary"],
        "API call exceeded rate limit due to too many requests."
    );
    assert_eq!(header(&headers, "x-rate-limit-remaining"), 0);
    assert!(headers.get("retry-after").is_none());
    assert_eq!(fake.rate_limited(), 1);

    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, headers, _) = ssws(&fake, "/api/v1/users").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-rate-limit-remaining"), 2);
}

#[tokio::test]
async fn unknown_paths_and_injected_failures_use_the_okta_error_shape() {
    let fake = fake().await;
    let (status, headers, body) = ssws(&fake, "/api/v1/nothing/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_okta_error(&body, "E0000007");
    assert!(headers.contains_key("x-rate-limit-remaining"));

    fake.set_faults(Faults {
        error_every: Some(1),
        ..Faults::default()
    });
    let (status, _, body) = ssws(&fake, "/api/v1/users").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_okta_error(&body, "E0000009");
    assert_eq!(body["errorSummary"], "Internal Server Error");
    fake.set_faults(Faults::default());
    assert_eq!(fake.requests().len(), 2);
}

/// The ids of the groups `GET /api/v1/users/{key}/groups` returns.
async fn groups(fake: &FakeOkta, key: String) -> Vec<String> {
    ids(&ssws(fake, &format!("/api/v1/users/{key}/groups")).await.2)
}

#[tokio::test]
async fn a_users_groups_follow_membership_changes_renames_and_deletes() {
    let fake = fake().await;
    fake.add_user(OktaSeedUser::new("alice@example.com"));
    fake.add_user(OktaSeedUser::new("bob@example.com"));
    let eng = fake.add_group("Engineering", "OKTA_GROUP", &["alice@example.com"]);
    let ops = fake.add_group("Ops", "OKTA_GROUP", &[]);
    let sales = fake.add_group(
        "Sales",
        "OKTA_GROUP",
        &["alice@example.com", "bob@example.com"],
    );
    let alice = fake.user_id("alice@example.com").unwrap();

    assert_eq!(
        groups(&fake, alice.clone()).await,
        [eng.as_str(), sales.as_str()]
    );
    // Added to a group created before the others: listed in id order, not in the order joined.
    fake.add_member("Ops", "alice@example.com");
    assert_eq!(
        groups(&fake, alice.clone()).await,
        [eng.as_str(), ops.as_str(), sales.as_str()]
    );
    fake.remove_member(&eng, "ALICE@example.com");
    assert_eq!(
        groups(&fake, alice.clone()).await,
        [ops.as_str(), sales.as_str()]
    );

    // A renamed user is found by its new login, and no longer by its old one.
    fake.set_email(&alice, "alice.b@example.com");
    assert_eq!(
        groups(&fake, "alice.b@example.com".into()).await,
        [ops.as_str(), sales.as_str()]
    );
    assert_eq!(fake.user_id("alice@example.com"), None);
    let (members_before, _) = all_pages(&fake, &format!("/api/v1/groups/{sales}/users")).await;
    assert_eq!(members_before.concat().len(), 2);

    // A deleted user leaves its groups, and a new user with its old login starts with none.
    fake.delete_user(&alice);
    let (members_after, _) = all_pages(&fake, &format!("/api/v1/groups/{sales}/users")).await;
    assert_eq!(
        members_after.concat(),
        [fake.user_id("bob@example.com").unwrap()]
    );
    let again = fake.add_user(OktaSeedUser::new("alice.b@example.com"));
    assert!(groups(&fake, again).await.is_empty());
}
