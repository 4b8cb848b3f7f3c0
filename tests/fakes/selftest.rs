//! Tests of the fakes themselves, through plain reqwest.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use super::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use super::{Faults, Storm};

const SCIM_TOKEN: &str = "scim-secret-token";
const ORG_TOKEN: &str = "org-secret-token";

async fn fake() -> FakeAtlassian {
    FakeAtlassian::start(FakeConfig::default()).await
}

/// A SCIM request to `{scim_base}{path}` with the right token; returns the status and the body
/// (`Null` when empty).
async fn scim(
    fake: &FakeAtlassian,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!("{}{path}", fake.scim_base());
    let mut request = Client::new().request(method, url).bearer_auth(SCIM_TOKEN);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("the fake answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("a JSON body")
    };
    (status, body)
}

fn user_body(email: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "emails": [{ "value": email, "type": "work", "primary": true }],
        "name": { "givenName": "Test", "familyName": "User" },
        "active": true,
    })
}

fn patch(operations: Value) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations,
    })
}

fn assert_scim_error(body: &Value, status: &str, scim_type: &str) {
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["scimType"], scim_type, "{body}");
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_with_a_failure_body() {
    let fake = fake().await;
    let users = format!("{}/Users", fake.scim_base());
    let org_users = format!("{}/admin/v1/orgs/org-1/users", fake.base_url);
    let client = Client::new();
    let attempts = [
        client.get(&users),
        client.get(&users).bearer_auth("wrong"),
        client.get(&users).bearer_auth(ORG_TOKEN),
        client.get(&org_users).bearer_auth(SCIM_TOKEN),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "Unauthorized");
        assert!(body["traceId"].as_str().is_some_and(|t| !t.is_empty()));
    }
    let response = client.get(&org_users).bearer_auth(ORG_TOKEN).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn created_users_page_by_the_page_cap_in_creation_order() {
    let fake = fake().await;
    let mut created = Vec::new();
    for n in 0..250 {
        let email = format!("user{n:03}@example.com");
        let (status, body) = scim(&fake, Method::POST, "/Users", Some(user_body(&email))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["userName"], email);
        assert!(
            body["urn:scim:schemas:extension:atlassian-external:1.0"]["atlassianAccountId"]
                .is_string()
        );
        created.push(body["id"].as_str().unwrap().to_owned());
    }

    let mut seen = Vec::new();
    let mut start = 1;
    while seen.len() < 250 {
        let url = format!("{}/Users?startIndex={start}&count=1000", fake.scim_base());
        let response = Client::new()
            .get(url)
            .bearer_auth(SCIM_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], "application/scim+json");
        let page: Value = response.json().await.unwrap();
        assert_eq!(
            page["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
        );
        assert_eq!(page["totalResults"], 250);
        assert_eq!(page["startIndex"], start);
        let resources = page["Resources"].as_array().unwrap();
        assert_eq!(page["itemsPerPage"], resources.len());
        assert_eq!(resources.len(), (250 - seen.len()).min(100));
        seen.extend(
            resources
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_owned()),
        );
        start += resources.len();
    }
    assert_eq!(seen, created);
    let (_, past_the_end) = scim(&fake, Method::GET, "/Users?startIndex=251", None).await;
    assert_eq!(past_the_end["itemsPerPage"], 0);
    assert_eq!(fake.org_accounts().len(), 250);
}

#[tokio::test]
async fn filters_are_one_eq_clause_on_user_name_or_external_id() {
    let fake = fake().await;
    fake.add_user(SeedUser::new("alice@example.com").external_id("ext-Alice"));
    fake.add_user(SeedUser::new("bob@example.com"));

    let (status, body) = scim(
        &fake,
        Method::GET,
        "/Users?filter=userName%20eq%20%22ALICE%40example.com%22",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["totalResults"], 1);
    assert_eq!(body["Resources"][0]["userName"], "alice@example.com");

    let by_external = |value: &str| format!("/Users?filter=externalId%20eq%20%22{value}%22");
    let (_, body) = scim(&fake, Method::GET, &by_external("ext-Alice"), None).await;
    assert_eq!(body["totalResults"], 1);
    let (_, body) = scim(&fake, Method::GET, &by_external("ext-alice"), None).await;
    assert_eq!(body["totalResults"], 0);

    for filter in [
        "userName%20co%20%22alice%22",
        "emails.value%20eq%20%22alice%40example.com%22",
        "userName%20eq%20%22a%22%20and%20active%20eq%20true",
        "userName%20eq%20alice",
    ] {
        let (status, body) =
            scim(&fake, Method::GET, &format!("/Users?filter={filter}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{filter}");
        assert_scim_error(&body, "400", "invalidFilter");
    }
}

#[tokio::test]
async fn duplicates_conflict_and_unverified_domains_are_refused() {
    let fake = fake().await;
    let (status, _) = scim(
        &fake,
        Method::POST,
        "/Users",
        Some(user_body("carol@example.com")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let mut duplicate = user_body("carol@example.com");
    duplicate["userName"] = json!("CAROL@example.com");
    let (status, body) = scim(&fake, Method::POST, "/Users", Some(duplicate)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_scim_error(&body, "409", "uniqueness");

    let (status, body) = scim(
        &fake,
        Method::POST,
        "/Users",
        Some(user_body("dan@elsewhere.org")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", "invalidValue");
    assert!(body["detail"].as_str().unwrap().contains("elsewhere.org"));

    let mut no_primary = user_body("erin@example.com");
    no_primary["emails"][0]["primary"] = json!(false);
    let (status, _) = scim(&fake, Method::POST, "/Users", Some(no_primary)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fake.users().len(), 1);
}

#[tokio::test]
async fn user_patches_replace_attributes_and_keep_the_org_account_in_step() {
    let fake = fake().await;
    let id = fake.add_user(SeedUser::new("frank.doe@example.com"));
    fake.add_user(SeedUser::new("gina@example.com"));
    let path = format!("/Users/{id}");

    let (status, body) = scim(
        &fake,
        Method::PATCH,
        &path,
        Some(patch(json!([
            { "op": "replace", "path": "active", "value": false },
            { "op": "add", "path": "title", "value": "Engineer" },
            { "op": "replace", "path": "name.givenName", "value": "Francis" },
            { "op": "replace", "value": { "department": "R&D", "displayName": "Francis Doe" } },
        ]))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], false);
    assert_eq!(body["title"], "Engineer");
    assert_eq!(body["name"]["formatted"], "Francis Doe");
    assert_eq!(
        body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "R&D"
    );
    let account = &fake.org_accounts()[0];
    assert_eq!(account["account_status"], "inactive");
    assert_eq!(account["name"], "Francis Doe");

    let (status, body) = scim(
        &fake,
        Method::PATCH,
        &path,
        Some(patch(
            json!([{ "op": "replace", "path": "shoeSize", "value": "42" }]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", "invalidPath");

    let (status, body) = scim(
        &fake,
        Method::PATCH,
        &path,
        Some(patch(
            json!([{ "op": "replace", "path": "userName", "value": "Gina@example.com" }]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_scim_error(&body, "409", "uniqueness");

    fake.state().config.patch_returns_204 = true;
    let lowercase =
        json!({ "operations": [{ "op": "Replace", "path": "active", "value": "True" }] });
    let (status, body) = scim(&fake, Method::PATCH, &path, Some(lowercase)).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(fake.user("frank.doe@example.com").unwrap()["active"], true);

    let (status, body) = scim(&fake, Method::GET, "/Users/no-such-id", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["status"], "404");
}

#[tokio::test]
async fn groups_are_created_once_and_patched_member_by_member() {
    let fake = fake().await;
    let alice = fake.add_user(SeedUser::new("alice@example.com"));
    let bob = fake.add_user(SeedUser::new("bob@example.com"));
    fake.add_group("existing", &["bob@example.com"]);

    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "jira-users",
    });
    let (status, body) = scim(&fake, Method::POST, "/Groups", Some(group.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let path = format!("/Groups/{}", body["id"].as_str().unwrap());
    let mut shouting = group;
    shouting["displayName"] = json!("JIRA-USERS");
    let (status, body) = scim(&fake, Method::POST, "/Groups", Some(shouting)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_scim_error(&body, "409", "uniqueness");

    let members = |op: &str, ids: &[&str]| {
        let values: Vec<Value> = ids.iter().map(|id| json!({ "value": id })).collect();
        Some(patch(
            json!([{ "op": op, "path": "members", "value": values }]),
        ))
    };
    let (status, _) = scim(&fake, Method::PATCH, &path, members("add", &[&alice, &bob])).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = scim(&fake, Method::PATCH, &path, members("add", &[&alice])).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        fake.group_members("jira-users"),
        ["alice@example.com", "bob@example.com"]
    );
    let (status, _) = scim(
        &fake,
        Method::PATCH,
        &path,
        members("remove", &[&bob, "stranger"]),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(fake.group_members("jira-users"), ["alice@example.com"]);

    let (status, body) = scim(&fake, Method::PATCH, &path, members("add", &["nobody"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", "invalidValue");
    fake.state().config.max_members_per_patch = 1;
    let (status, body) = scim(&fake, Method::PATCH, &path, members("add", &[&alice, &bob])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", "tooMany");
    assert_eq!(fake.group_members("jira-users"), ["alice@example.com"]);

    let (status, body) = scim(
        &fake,
        Method::GET,
        "/Groups?filter=displayName%20eq%20%22Jira-Users%22",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["totalResults"], 1);
    assert_eq!(
        body["Resources"][0]["members"],
        json!([{ "value": alice, "display": "alice@example.com", "type": "User" }])
    );
    let (_, body) = scim(&fake, Method::GET, &format!("/Users/{alice}"), None).await;
    assert_eq!(body["groups"][0]["display"], "jira-users");

    let (status, _) = scim(&fake, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = scim(&fake, Method::DELETE, &format!("/Users/{bob}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(fake.deletes(), 2);
    assert!(fake.group_members("existing").is_empty());
}

#[tokio::test]
async fn org_users_page_with_a_cursor_and_jit_accounts_are_linked_on_create() {
    let fake = fake().await;
    for n in 0..110 {
        fake.add_user(SeedUser::new(&format!("u{n}@example.com")).last_active("2026-10-01"));
    }
    let jit = fake.add_org_account("jit@example.com", "Jay It", Some("2026-09-30"));

    let client = Client::new();
    let mut url = format!("{}/admin/v1/orgs/org-1/users", fake.base_url);
    let mut pages = Vec::new();
    loop {
        let request = client.get(&url).bearer_auth(ORG_TOKEN);
        let page: Value = request.send().await.unwrap().json().await.unwrap();
        assert_eq!(page["meta"]["total"], 111);
        pages.push(page["data"].as_array().unwrap().len());
        match page["links"]["next"].as_str() {
            Some(next) => {
                // A link whose cursor holds `+`, `/` and `=`, encoded once; encoded twice, it is
                // refused as the admin API refuses it.
                let (_, cursor) = next.split_once("cursor=").unwrap();
                assert!(
                    cursor.contains("%2B") && cursor.contains("%2F") && cursor.contains("%3D"),
                    "{next}"
                );
                let twice = client
                    .get(format!("{}/admin/v1/orgs/org-1/users", fake.base_url))
                    .query(&[("cursor", cursor)])
                    .bearer_auth(ORG_TOKEN)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(twice.status(), StatusCode::BAD_REQUEST);
                assert!(twice.text().await.unwrap().contains("Invalid page cursor"));
                url = next.to_owned();
            }
            None => {
                let last = page["data"].as_array().unwrap().last().unwrap().clone();
                assert_eq!(last["account_id"], jit);
                assert_eq!(last["last_active"], "2026-09-30");
                assert_eq!(last["account_status"], "active");
                break;
            }
        }
    }
    assert_eq!(pages, [50, 50, 11]);

    let (status, body) = scim(
        &fake,
        Method::POST,
        "/Users",
        Some(user_body("JIT@example.com")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        body["urn:scim:schemas:extension:atlassian-external:1.0"]["atlassianAccountId"],
        jit
    );
    assert_eq!(fake.org_accounts().len(), 111);
}

#[tokio::test]
async fn admins_are_searched_by_role_and_api_tokens_listed_and_revoked() {
    let fake = fake().await;
    fake.add_user(SeedUser::new("root@example.com"));
    fake.add_user(SeedUser::new("plain@example.com"));
    fake.set_admin("root@example.com", "org-admin");
    fake.add_api_token("root@example.com", "ci");
    let client = Client::new();

    let search = format!(
        "{}/admin/v2/orgs/org-1/directories/-/users/search",
        fake.base_url
    );
    let found: Value = client
        .post(&search)
        .bearer_auth(ORG_TOKEN)
        .json(&json!({ "roleIds": ["atlassian/org-admin"], "expand": ["platformRoles"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["email"], "root@example.com");
    assert_eq!(
        found["data"][0]["platformRoles"],
        json!(["atlassian/org-admin"])
    );
    assert_eq!(found["links"]["next"], Value::Null);
    // A bare (un-namespaced) role id: ignored by default (nobody matches), refused when asked.
    let bare = || {
        client
            .post(&search)
            .bearer_auth(ORG_TOKEN)
            .json(&json!({ "roleIds": ["org-admin"] }))
            .send()
    };
    let ignored: Value = bare().await.unwrap().json().await.unwrap();
    assert_eq!(ignored["data"], json!([]));
    fake.state().config.unknown_role_ids = crate::fakes::atlassian::UnknownRoleIds::Refuse;
    let refused = bare().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert!(body["errors"][0]["detail"]
        .as_str()
        .is_some_and(|d| d.contains("org-admin")));

    let account = fake.user("root@example.com").unwrap()
        ["urn:scim:schemas:extension:atlassian-external:1.0"]["atlassianAccountId"]
        .as_str()
        .unwrap()
        .to_owned();
    let tokens_url = format!("{}/users/{account}/manage/api-tokens", fake.base_url);
    let tokens: Value = client
        .get(&tokens_url)
        .bearer_auth(ORG_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tokens[0]["label"], "ci");
    let token = tokens[0]["id"].as_str().unwrap();
    let response = client
        .delete(format!("{tokens_url}/{token}"))
        .bearer_auth(ORG_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(fake.api_tokens("root@example.com"), 0);
    assert_eq!(fake.mutations(), 1); // The search is a read; the revocation is not.
    assert_eq!(fake.deletes(), 0);
}

#[tokio::test]
async fn throttled_requests_get_429_with_retry_after_and_are_not_applied() {
    let fake = fake().await;
    fake.set_faults(Faults {
        throttle_next: 2,
        retry_after_secs: 3,
        ..Faults::default()
    });
    let url = format!("{}/Users", fake.scim_base());
    for _ in 0..2 {
        let response = Client::new()
            .post(&url)
            .bearer_auth(SCIM_TOKEN)
            .json(&user_body("hal@example.com"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "3");
        let reset: u64 = response.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset > 1_700_000_000);
    }
    assert!(fake.users().is_empty());
    let (status, _) = scim(
        &fake,
        Method::POST,
        "/Users",
        Some(user_body("hal@example.com")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 201]);
    assert_eq!(fake.mutations(), 1);
}

#[tokio::test]
async fn a_storm_refuses_its_paths_until_it_ends_and_says_when() {
    let fake = fake().await;
    fake.set_faults(Faults {
        storm: Some(Storm::new("/Users", Duration::from_secs(60))),
        ..Faults::default()
    });
    let get = |path: &'static str| {
        let url = format!("{}{path}", fake.scim_base());
        async move {
            Client::new()
                .get(url)
                .bearer_auth(SCIM_TOKEN)
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..2 {
        let response = get("/Users").await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        // The seconds left, rounded up: the end of the storm, however often one asks.
        let secs: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&secs), "{secs}");
    }
    assert_eq!(
        get("/Groups").await.status(),
        StatusCode::OK,
        "not in the storm"
    );
    assert!(
        fake.faults().storm.as_ref().unwrap().until.is_some(),
        "started by its first request"
    );
    // A storm that has ended refuses nothing.
    fake.set_faults(Faults {
        storm: Some(Storm::new("/Users", Duration::ZERO)),
        ..Faults::default()
    });
    assert_eq!(get("/Users").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn lagging_searches_find_nobody_but_listings_see_everyone() {
    let fake = fake().await;
    fake.add_user(SeedUser::new("ivy@example.com"));
    fake.state().lagging_searches = 1;
    let filter = "/Users?filter=userName%20eq%20%22ivy@example.com%22";
    let (status, body) = scim(&fake, Method::GET, filter, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["totalResults"], 0, "{body}");
    let (_, body) = scim(&fake, Method::GET, "/Users", None).await;
    assert_eq!(body["totalResults"], 1, "a listing is not a search: {body}");
    let (_, body) = scim(&fake, Method::GET, filter, None).await;
    assert_eq!(body["totalResults"], 1, "caught up: {body}");
}

#[tokio::test]
async fn a_reset_drops_the_connection_without_a_response() {
    let fake = fake().await;
    fake.faults().reset_next = 1;
    let client = Client::new();
    let url = format!("{}/Users", fake.scim_base());
    let error = client
        .post(&url)
        .bearer_auth(SCIM_TOKEN)
        .json(&user_body("ivy@example.com"))
        .send()
        .await
        .expect_err("the connection is reset");
    assert!(error.is_request(), "{error:?}");
    assert!(error.status().is_none() && !error.is_timeout());
    assert!(fake.users().is_empty());

    let response = client
        .get(&url)
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [0, 200]);
}

#[tokio::test]
async fn a_truncated_body_is_not_json() {
    let fake = fake().await;
    fake.add_user(SeedUser::new("jo@example.com"));
    fake.faults().truncate_next = 1;
    let url = format!("{}/Users", fake.scim_base());
    let response = Client::new()
        .get(&url)
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(!text.is_empty());
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    let (status, body) = scim(&fake, Method::GET, "/Users", None).await;
    assert_eq!(
        (status, body["totalResults"].clone()),
        (StatusCode::OK, json!(1))
    );
}

#[tokio::test]
async fn a_failure_after_a_mutation_keeps_the_change_so_a_retry_conflicts() {
    let fake = fake().await;
    fake.faults().fail_after_mutation = 1;
    let (status, body) = scim(
        &fake,
        Method::POST,
        "/Users",
        Some(user_body("kim@example.com")),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["status"], "500");
    assert_eq!(fake.users().len(), 1);
    let (status, _) = scim(
        &fake,
        Method::POST,
        "/Users",
        Some(user_body("kim@example.com")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(fake.mutations(), 0);
}

#[tokio::test]
async fn periodic_errors_path_failures_and_slow_paths() {
    let fake = fake().await;
    fake.add_user(SeedUser::new("lee@example.com"));
    fake.set_faults(Faults {
        error_every: Some(3),
        fail_path_contains: Some(("startIndex=201".into(), 1)),
        slow: Some(("startIndex=301".into(), Duration::from_millis(150))),
        ..Faults::default()
    });
    let get = |query: &'static str| {
        let fake = &fake;
        async move {
            scim(fake, Method::GET, &format!("/Users?{query}"), None)
                .await
                .0
        }
    };
    assert_eq!(get("startIndex=1").await, StatusCode::OK);
    assert_eq!(get("startIndex=201").await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get("startIndex=1").await, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(get("startIndex=201").await, StatusCode::OK);
    let started = std::time::Instant::now();
    assert_eq!(get("startIndex=301").await, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(get("startIndex=1").await, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(fake.requests().len(), 6);
    assert_eq!(fake.requests()[1].query, "startIndex=201");
}

#[tokio::test]
async fn unset_fields_are_left_out_or_with_explicit_nulls_sent_as_null() {
    let fake = fake().await;
    fake.add_user(SeedUser::new("ana@example.com"));
    fake.add_group("empty", &[]);
    let enterprise = "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    for explicit_nulls in [false, true] {
        fake.state().config.explicit_nulls = explicit_nulls;
        let (_, users) = scim(&fake, Method::GET, "/Users", None).await;
        let (_, groups) = scim(&fake, Method::GET, "/Groups", None).await;
        let (_, past) = scim(&fake, Method::GET, "/Users?startIndex=2", None).await;
        let ana = &users["Resources"][0];
        for (item, pointer) in [
            (ana, "/externalId"),
            (ana, "/displayName"),
            (ana, "/title"),
            (ana, "/groups"),
            (ana, enterprise),
            (&groups["Resources"][0], "/members"),
            (&past, "/Resources"),
        ] {
            match item.pointer(pointer) {
                None => assert!(!explicit_nulls, "{pointer} left out in null mode: {item}"),
                Some(Value::Null) => assert!(explicit_nulls, "{pointer} null by default: {item}"),
                Some(Value::Array(a)) if a.is_empty() && !explicit_nulls => {}
                Some(Value::Object(o)) if o.is_empty() && !explicit_nulls => {}
                Some(other) => panic!("{pointer} is set: {other}"),
            }
        }
        assert_eq!(ana["userName"], "ana@example.com");
    }
}
