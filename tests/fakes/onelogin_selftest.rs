//! Tests of the fake OneLogin itself, through plain reqwest.

use std::{collections::BTreeSet, time::Duration};

use reqwest::{header::HeaderMap, Client, StatusCode};
use serde_json::{json, Value};

use super::onelogin::{FakeOneLogin, FakeOneLoginConfig, ACCOUNT_ID};
use super::Faults;

const CLIENT_ID: &str = "ol-client-id";
const CLIENT_SECRET: &str = "ol-client-secret-value";

async fn fake() -> FakeOneLogin {
    FakeOneLogin::start(FakeOneLoginConfig::default()).await
}

/// The status and JSON body of a response.
async fn parts(response: reqwest::Response) -> (StatusCode, HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.expect("a JSON body");
    (status, headers, body)
}

/// A token request in the JSON form, the credentials in OneLogin's own `Authorization` header.
async fn token_request(fake: &FakeOneLogin, id: &str, secret: &str) -> (StatusCode, Value) {
    let response = Client::new()
        .post(fake.token_url())
        .header(
            "authorization",
            format!("client_id:{id}, client_secret:{secret}"),
        )
        .json(&json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .expect("the fake answers");
    let (status, _, body) = parts(response).await;
    (status, body)
}

async fn token(fake: &FakeOneLogin) -> String {
    let (status, body) = token_request(fake, CLIENT_ID, CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("a token").to_owned()
}

/// A GET of `{base_url}{path}` (or of `path` itself when it is a full URL) with these query
/// parameters, authenticated by `bearer <token>` when a token is given.
async fn get(
    fake: &FakeOneLogin,
    token: Option<&str>,
    path: &str,
    query: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        format!("{}{path}", fake.base_url)
    };
    let mut request = Client::new().get(url).query(query);
    if let Some(token) = token {
        request = request.header("authorization", format!("bearer {token}"));
    }
    parts(request.send().await.expect("the fake answers")).await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .map(|v| v.to_str().expect("an ASCII header"))
}

fn number(headers: &HeaderMap, name: &str) -> u64 {
    header(headers, name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .parse()
        .expect("a number")
}

fn unauthorized() -> Value {
    json!({"statusCode": 401, "name": "Unauthorized", "message": "Authentication Failure"})
}

/// Every item of a v2 list, following `After-Cursor`; checks the paging headers on the way and
/// returns the items and the number of pages.
async fn walk(
    fake: &FakeOneLogin,
    token: &str,
    path: &str,
    first: &[(&str, &str)],
) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query: Vec<(&str, &str)> = match &cursor {
            Some(cursor) => vec![("cursor", cursor.as_str())],
            None => first.to_vec(),
        };
        let (status, headers, body) = get(fake, Some(token), path, &query).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        pages += 1;
        let page = body.as_array().expect("a bare array");
        assert_eq!(number(&headers, "current-page"), pages as u64);
        assert_eq!(number(&headers, "page-items"), page.len() as u64);
        assert_eq!(
            header(&headers, "before-cursor").is_some(),
            pages > 1,
            "Before-Cursor on page {pages}"
        );
        items.extend(page.iter().cloned());
        match header(&headers, "after-cursor") {
            Some(next) => {
                let link = header(&headers, "link").expect("a Link header");
                assert!(link.contains("rel=\"next\""), "{link}");
                cursor = Some(next.to_owned());
            }
            None => {
                assert_eq!(number(&headers, "total-pages"), pages as u64);
                assert_eq!(number(&headers, "total-count"), items.len() as u64);
                return (items, pages);
            }
        }
    }
}

fn ids(items: &[Value]) -> Vec<u64> {
    items
        .iter()
        .map(|v| v["id"].as_u64().expect("an integer id"))
        .collect()
}

#[tokio::test]
async fn every_token_form_gets_the_same_token() {
    let fake = fake().await;
    let (status, body) = token_request(&fake, CLIENT_ID, CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["account_id"], ACCOUNT_ID);
    let expires_in = body["expires_in"].as_u64().expect("expires_in");
    assert!((35_999..=36_000).contains(&expires_in), "{expires_in}");
    assert!(body["refresh_token"].is_string());
    let created_at = body["created_at"].as_str().expect("created_at");
    chrono::DateTime::parse_from_rfc3339(created_at).expect("an RFC 3339 created_at");
    let first = body["access_token"].as_str().expect("a token").to_owned();

    // JSON body, HTTP Basic.
    let response = Client::new()
        .post(fake.token_url())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    let (status, _, basic) = parts(response).await;
    assert_eq!(status, StatusCode::OK, "{basic}");
    // A form with the credentials in it.
    let response = Client::new()
        .post(fake.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    let (status, _, form) = parts(response).await;
    assert_eq!(status, StatusCode::OK, "{form}");
    assert_eq!(basic["access_token"], first.as_str());
    assert_eq!(form["access_token"], first.as_str());
    assert_eq!(form["created_at"], created_at);
    assert_eq!((fake.token_requests(), fake.tokens_issued()), (3, 1));
}

#[tokio::test]
async fn bad_credentials_and_grants_are_refused() {
    let fake = fake().await;
    let (status, body) = token_request(&fake, CLIENT_ID, "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, unauthorized());
    let response = Client::new()
        .post(fake.token_url())
        .form(&[("grant_type", "client_credentials"), ("client_id", "nope")])
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(response).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, unauthorized()));

    let grant_error = json!({"statusCode": 400, "name": "BadRequest", "message": "grant_type is incorrect/absent"});
    for grant in [json!({ "grant_type": "password" }), json!({})] {
        let response = Client::new()
            .post(fake.token_url())
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .json(&grant)
            .send()
            .await
            .unwrap();
        let (status, _, body) = parts(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, grant_error);
    }
    assert_eq!((fake.token_requests(), fake.tokens_issued()), (4, 0));
}

#[tokio::test]
async fn a_token_serves_until_it_expires_then_a_new_one_is_issued() {
    let fake = FakeOneLogin::start(FakeOneLoginConfig {
        token_ttl_requests: Some(2),
        ..FakeOneLoginConfig::default()
    })
    .await;
    let first = token(&fake).await;
    let (status, _, _) = get(&fake, Some(&first), "/api/2/users", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        token(&fake).await,
        first,
        "the same token while it is valid"
    );
    let (status, _, _) = get(&fake, Some(&first), "/api/2/roles", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = get(&fake, Some(&first), "/api/2/users", &[]).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, unauthorized()));

    let second = token(&fake).await;
    assert_ne!(second, first);
    assert_eq!((fake.token_requests(), fake.tokens_issued()), (3, 2));
    let (status, _, _) = get(&fake, Some(&second), "/api/2/users", &[]).await;
    assert_eq!(status, StatusCode::OK);

    fake.revoke_tokens();
    let (status, _, _) = get(&fake, Some(&second), "/api/2/users", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_ne!(token(&fake).await, second);
    assert_eq!(fake.tokens_issued(), 3);
}

#[tokio::test]
async fn resource_calls_need_a_valid_bearer_token() {
    let fake = fake().await;
    let (status, _, body) = get(&fake, None, "/api/2/users", &[]).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, unauthorized()));
    let (status, _, body) = get(&fake, Some("forged"), "/api/2/roles", &[]).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, unauthorized()));
    let (status, _, body) = get(&fake, None, "/api/1/groups", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"status": {"error": true, "code": 401, "type": "Unauthorized", "message": "Authentication Failure"}})
    );

    let token = token(&fake).await;
    for authorization in [format!("Bearer {token}"), format!("bearer:{token}")] {
        let response = Client::new()
            .get(format!("{}/api/2/users", fake.base_url))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (status, _, body) = get(&fake, Some(&token), "/api/2/nothing", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["name"], "NotFoundError");
}

#[tokio::test]
async fn users_page_by_cursor_fifty_at_most() {
    let fake = fake().await;
    let mut seeded = Vec::new();
    for i in 0..123 {
        seeded.push(fake.add_user(&format!("user{i:03}.test@example.com")));
    }
    let eng = fake.add_group("Engineering", &["user000.test@example.com"]);
    fake.update_user("USER000.test@example.com", |u| {
        u.title = Some("Engineer".into());
        u.custom_attributes
            .insert("cost_center".into(), "42".into());
    });
    fake.set_status("user001.test@example.com", 3);
    let token = token(&fake).await;

    let (users, pages) = walk(&fake, &token, "/api/2/users", &[("limit", "500")]).await;
    assert_eq!(pages, 3);
    let unique: BTreeSet<u64> = ids(&users).into_iter().collect();
    assert_eq!(unique.len(), users.len(), "every user exactly once");
    assert_eq!(ids(&users), seeded, "sorted by id");

    let first = &users[0];
    assert_eq!(first["email"], "user000.test@example.com");
    assert_eq!(first["username"], "user000.test");
    assert_eq!(first["firstname"], "User000");
    assert_eq!(first["lastname"], "Test");
    assert_eq!(first["title"], "Engineer");
    assert_eq!(first["status"], 1);
    assert_eq!(first["state"], 1);
    assert_eq!(first["group_id"], eng);
    assert_eq!(first["custom_attributes"], json!({"cost_center": "42"}));
    assert!(first["directory_id"].is_null() && first["member_of"].is_null());
    assert!(first["external_id"].is_null() && first["last_login"].is_null());
    assert_ne!(first["created_at"], first["updated_at"]);
    assert_eq!(users[1]["status"], 3);
    assert!(users[1]["group_id"].is_null());

    let (status, headers, page) = get(
        &fake,
        Some(&token),
        "/api/2/users",
        &[("limit", "10"), ("page", "13")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(page.as_array().unwrap()), seeded[120..]);
    assert_eq!(number(&headers, "total-pages"), 13);
    assert!(header(&headers, "after-cursor").is_none());
    assert!(header(&headers, "link").unwrap().contains("rel=\"prev\""));

    let (status, headers, page) = get(
        &fake,
        Some(&token),
        "/api/2/users",
        &[("email", "User042.TEST@example.com")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(page.as_array().unwrap()), [seeded[42]]);
    assert_eq!(number(&headers, "total-count"), 1);

    let (status, _, body) = get(&fake, Some(&token), "/api/2/users", &[("cursor", "%%%")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"statusCode": 400, "name": "BadRequest", "message": "Invalid cursor"})
    );
}

#[tokio::test]
async fn groups_are_v1_and_page_by_after_cursor() {
    let fake = FakeOneLogin::start(FakeOneLoginConfig {
        groups_page_size: 2,
        ..FakeOneLoginConfig::default()
    })
    .await;
    fake.add_user("alice@example.com");
    fake.add_user("bob@example.com");
    let sales = fake.add_group("Sales", &["alice@example.com", "bob@example.com"]);
    let mut seeded = vec![sales];
    for name in ["Engineering", "Support", "Legal", "Finance"] {
        seeded.push(fake.add_group(name, &[]));
    }
    // One group per user: a later group replaces the earlier one.
    fake.set_group("alice@example.com", Some("Legal"));
    fake.set_group("bob@example.com", None);
    assert_eq!(
        fake.user("alice@example.com").unwrap().group_id,
        Some(seeded[3])
    );
    assert_eq!(fake.user("bob@example.com").unwrap().group_id, None);
    let token = token(&fake).await;

    let (status, _, first) = get(&fake, Some(&token), "/api/1/groups", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        first["status"],
        json!({"error": false, "code": 200, "type": "success", "message": "Success"})
    );
    assert_eq!(
        first["data"][0],
        json!({"id": sales, "name": "Sales", "reference": null})
    );
    assert!(first["pagination"]["before_cursor"].is_null());
    assert!(first["pagination"]["previous_link"].is_null());

    let mut groups = first["data"].as_array().unwrap().clone();
    let mut pagination = first["pagination"].clone();
    let mut pages = 1;
    while let Some(cursor) = pagination["after_cursor"].as_str() {
        let next_link = pagination["next_link"].as_str().expect("a next_link");
        assert!(next_link.starts_with(&format!("{}/api/1/groups?", fake.base_url)));
        // By the cursor, and by the link: the same page.
        let (status, _, page) = get(
            &fake,
            Some(&token),
            "/api/1/groups",
            &[("after_cursor", cursor)],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (_, _, linked) = get(&fake, Some(&token), next_link, &[]).await;
        assert_eq!(page, linked);
        assert!(page["pagination"]["before_cursor"].is_string());
        pages += 1;
        groups.extend(page["data"].as_array().unwrap().iter().cloned());
        pagination = page["pagination"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(ids(&groups), seeded);
    assert!(pagination["next_link"].is_null());

    let (status, _, body) = get(
        &fake,
        Some(&token),
        "/api/1/groups",
        &[("after_cursor", "garbage!")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"]["error"], true);
    assert_eq!(body["status"]["message"], "Invalid cursor");
}

#[tokio::test]
async fn roles_and_their_users_page_in_v2() {
    let fake = FakeOneLogin::start(FakeOneLoginConfig {
        roles_page_max: 2,
        role_users_page_max: 3,
        ..FakeOneLoginConfig::default()
    })
    .await;
    let emails: Vec<String> = (0..7).map(|i| format!("member{i}.x@example.com")).collect();
    let members: Vec<&str> = emails.iter().map(String::as_str).collect();
    let users: Vec<u64> = members.iter().map(|e| fake.add_user(e)).collect();
    let admins = fake.add_role("Admins", &members);
    let mut roles = vec![admins];
    for name in ["Developers", "Auditors", "Dev Leads", "Empty"] {
        roles.push(fake.add_role(name, &[]));
    }
    fake.set_role_member("Developers", "member3.x@example.com", true);
    let token = token(&fake).await;

    let (all, pages) = walk(&fake, &token, "/api/2/roles", &[("limit", "100")]).await;
    assert_eq!((ids(&all), pages), (roles.clone(), 3));
    assert_eq!(all[0], json!({"id": admins, "name": "Admins"}));
    let (status, _, named) = get(&fake, Some(&token), "/api/2/roles", &[("name", "dev*")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(named.as_array().unwrap()), [roles[1], roles[3]]);

    let path = format!("/api/2/roles/{admins}/users");
    let (members_seen, pages) = walk(&fake, &token, &path, &[]).await;
    assert_eq!((ids(&members_seen), pages), (users.clone(), 3));
    assert_eq!(
        members_seen[0],
        json!({"id": users[0], "name": "Member0 X", "email": "member0.x@example.com", "username": "member0.x"})
    );

    fake.remove_user("member0.x@example.com");
    fake.set_role_member("Admins", "member1.x@example.com", false);
    let (members_seen, pages) = walk(&fake, &token, &path, &[]).await;
    assert_eq!((ids(&members_seen), pages), (users[2..].to_vec(), 2));
    let (left, _) = walk(
        &fake,
        &token,
        &format!("/api/2/roles/{}/users", roles[1]),
        &[],
    )
    .await;
    assert_eq!(ids(&left), [users[3]]);

    let (status, headers, body) = get(&fake, Some(&token), "/api/2/roles/999/users", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"statusCode": 404, "name": "NotFoundError", "message": "Role not found"})
    );
    assert!(header(&headers, "x-ratelimit-remaining").is_some());
}

#[tokio::test]
async fn the_rate_budget_runs_out_and_refills() {
    let fake = FakeOneLogin::start(FakeOneLoginConfig {
        rate_limit: 3,
        rate_window: Duration::from_millis(300),
        ..FakeOneLoginConfig::default()
    })
    .await;
    let token = token(&fake).await;
    // The token endpoint spends nothing and carries no rate-limit headers.
    assert_eq!(fake.rate_remaining(), 3);
    for remaining in [2, 1, 0] {
        let (status, headers, _) = get(&fake, Some(&token), "/api/2/users", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(number(&headers, "x-ratelimit-limit"), 3);
        assert_eq!(number(&headers, "x-ratelimit-remaining"), remaining);
        // Seconds left in the 300 ms window, rounded up.
        assert_eq!(number(&headers, "x-ratelimit-reset"), 1);
    }
    assert_eq!(fake.rate_remaining(), 0);
    let (status, headers, body) = get(&fake, Some(&token), "/api/2/roles", &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body,
        json!({"statusCode": 429, "name": "TooManyRequestsError", "message": "Rate limit exceeded"})
    );
    assert_eq!(number(&headers, "x-ratelimit-remaining"), 0);
    assert_eq!(number(&headers, "x-ratelimit-reset"), 1);
    let (status, _, body) = get(&fake, Some(&token), "/api/1/groups", &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["status"]["code"], 429);
    assert_eq!(fake.rate_limited(), 2);

    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(fake.rate_remaining(), 3);
    let (status, headers, _) = get(&fake, Some(&token), "/api/2/users", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(number(&headers, "x-ratelimit-remaining"), 2);

    fake.set_rate_remaining(1);
    let (_, headers, _) = get(&fake, Some(&token), "/api/2/users", &[]).await;
    assert_eq!(number(&headers, "x-ratelimit-remaining"), 0);
    let (status, _, _) = get(&fake, Some(&token), "/api/2/users", &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_fault_layer_answers_in_the_v2_error_shape() {
    let fake = fake().await;
    let token = token(&fake).await;
    fake.set_faults(Faults {
        throttle_next: 1,
        retry_after_secs: 2,
        ..Faults::default()
    });
    let (status, headers, body) = get(&fake, Some(&token), "/api/2/users", &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&headers, "retry-after"), Some("2"));
    assert_eq!(body["name"], "TooManyRequestsError");
    assert!(header(&headers, "x-ratelimit-remaining").is_none());
    assert_eq!((fake.rate_remaining(), fake.rate_limited()), (5_000, 0));

    fake.set_faults(Faults {
        error_every: Some(1),
        ..Faults::default()
    });
    let (status, _, body) = get(&fake, Some(&token), "/api/2/users", &[]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["statusCode"], 500);
    assert_eq!(body["name"], "InternalServerError");
    fake.set_faults(Faults::default());
    let (status, _, _) = get(&fake, Some(&token), "/api/2/users", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 429, 500, 200]);
    assert!(fake.requests().iter().all(|r| !r.mutation));
}

#[tokio::test]
async fn a_users_roles_follow_membership_changes_renames_and_removal() {
    let fake = fake().await;
    let alice = fake.add_user("alice@example.com");
    let bob = fake.add_user("bob@example.com");
    let ops = fake.add_role("Ops", &[]);
    let eng = fake.add_role("Engineering", &["alice@example.com"]);
    let sales = fake.add_role("Sales", &["alice@example.com", "bob@example.com"]);
    let token = token(&fake).await;
    let roles_of = |id: u64| format!("/api/2/users/{id}/roles");

    let (status, _, body) = get(&fake, Some(&token), &roles_of(alice), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([eng, sales]));
    fake.set_role_member("ops", "ALICE@example.com", true);
    fake.set_role_member("Engineering", "alice@example.com", false);
    let (_, _, body) = get(&fake, Some(&token), &roles_of(alice), &[]).await;
    assert_eq!(body, json!([ops, sales]), "sorted by id");

    // Renamed: found by the new email only; its roles stay.
    fake.update_user("alice@example.com", |u| {
        u.email = "alice.b@example.com".into()
    });
    assert_eq!(fake.user_id("Alice.B@example.com"), Some(alice));
    assert_eq!(fake.user_id("alice@example.com"), None);
    let (_, _, body) = get(&fake, Some(&token), &roles_of(alice), &[]).await;
    assert_eq!(body, json!([ops, sales]));

    // A removed user leaves its roles; its id is then unknown.
    fake.remove_user("bob@example.com");
    let (_, _, body) = get(
        &fake,
        Some(&token),
        &format!("/api/2/roles/{sales}/users"),
        &[],
    )
    .await;
    assert_eq!(ids(body.as_array().expect("users")), [alice]);
    let (status, _, _) = get(&fake, Some(&token), &roles_of(bob), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
