//! Tests of the fake Keycloak itself, through plain reqwest.

use reqwest::{Client, StatusCode};
use serde_json::Value;

use super::keycloak::{FakeKeycloak, FakeKeycloakConfig};

async fn fake() -> FakeKeycloak {
    FakeKeycloak::start(FakeKeycloakConfig::default()).await
}

async fn token_request(url: &str, id: &str, secret: &str) -> (StatusCode, Value) {
    let response = Client::new()
        .post(url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("the fake answers");
    (response.status(), response.json().await.expect("JSON"))
}

async fn token(fake: &FakeKeycloak) -> String {
    let (status, body) = token_request(&fake.token_url(), "idsync", "kc-secret-value").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("a token").to_owned()
}

/// A GET of `{admin_url}{path}`.
async fn get(fake: &FakeKeycloak, token: Option<&str>, path: &str) -> (StatusCode, Value) {
    let mut request = Client::new().get(format!("{}{path}", fake.admin_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the fake answers");
    (response.status(), response.json().await.expect("JSON"))
}

async fn ok(fake: &FakeKeycloak, token: &str, path: &str) -> Vec<Value> {
    let (status, body) = get(fake, Some(token), path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body.as_array().expect("an array").clone()
}

fn field<'a>(items: &'a [Value], name: &str) -> Vec<&'a str> {
    items
        .iter()
        .map(|v| v[name].as_str().expect(name))
        .collect()
}

#[tokio::test]
async fn token_flow() {
    let fake = fake().await;
    let (status, body) = token_request(&fake.token_url(), "idsync", "kc-secret-value").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "profile email");

    let (status, body) = token_request(&fake.token_url(), "idsync", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized_client");
    assert_eq!(
        body["error_description"],
        "Invalid client or Invalid client credentials"
    );

    let other = format!(
        "{}/realms/nope/protocol/openid-connect/token",
        fake.base_url
    );
    let (status, body) = token_request(&other, "idsync", "kc-secret-value").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "Realm does not exist");

    // Legacy /auth prefix, with HTTP Basic client authentication.
    let legacy = format!(
        "{}/auth/realms/acme/protocol/openid-connect/token",
        fake.base_url
    );
    let response = Client::new()
        .post(&legacy)
        .basic_auth("idsync", Some("kc-secret-value"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let legacy_token: Value = response.json().await.unwrap();
    let legacy_token = legacy_token["access_token"].as_str().unwrap();
    let users = format!("{}/auth/admin/realms/acme/users/count", fake.base_url);
    let response = Client::new()
        .get(users)
        .bearer_auth(legacy_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), 0);
    assert_eq!(fake.tokens_issued(), 2);
}

#[tokio::test]
async fn token_realm_can_differ_from_admin_realm() {
    let fake = FakeKeycloak::start(FakeKeycloakConfig {
        token_realm: Some("master".into()),
        ..FakeKeycloakConfig::default()
    })
    .await;
    assert!(fake.token_url().contains("/realms/master/"));
    let token = token(&fake).await;
    assert!(ok(&fake, &token, "/users").await.is_empty());
}

#[tokio::test]
async fn users_page_by_offset_with_a_cap() {
    let fake = fake().await;
    for i in 0..250 {
        fake.add_user(&format!("user{i:03}@example.com"));
    }
    fake.add_service_account("idsync");
    fake.set_attribute("user000@example.com", "department", "R&D");
    let token = token(&fake).await;
    let first = ok(&fake, &token, "/users?first=0&max=500").await;
    assert_eq!(first.len(), 100);
    assert_eq!(first[0]["username"], "user000@example.com");
    assert_eq!(first[0]["firstName"], "User000");
    assert_eq!(first[0]["attributes"]["department"][0], "R&D");
    assert_eq!(first[0]["enabled"], true);
    let second = ok(&fake, &token, "/users?first=100&max=100").await;
    let third = ok(&fake, &token, "/users?first=200&max=100").await;
    assert_eq!((second.len(), third.len()), (100, 50));
    assert_eq!(third[49]["username"], "user249@example.com");
    assert!(ok(&fake, &token, "/users?first=250").await.is_empty());
    let brief = ok(&fake, &token, "/users?max=1&briefRepresentation=true").await;
    assert!(brief[0].get("attributes").is_none());
    let (_, count) = get(&fake, Some(&token), "/users/count").await;
    assert_eq!(count, 250);
}

#[tokio::test]
async fn groups_are_top_level_and_children_page_by_ten() {
    let fake = fake().await;
    let alice = fake.add_user("alice.doe@example.com");
    fake.add_user("bob@example.com");
    let eng = fake.add_group(
        "/Engineering",
        &["bob@example.com", "alice.doe@example.com"],
    );
    fake.add_group("/Sales", &[]);
    for i in 0..25 {
        fake.add_group(&format!("/Engineering/Team{i:02}"), &[]);
    }
    let sre = fake.add_group("/Engineering/Team03/SRE", &["alice.doe@example.com"]);
    let token = token(&fake).await;

    let top = ok(&fake, &token, "/groups").await;
    assert_eq!(field(&top, "name"), ["Engineering", "Sales"]);
    assert_eq!(top[0]["subGroupCount"], 25);
    assert_eq!(top[0]["subGroups"], serde_json::json!([]));
    assert!(top[0].get("parentId").is_none());

    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let path = format!("/groups/{eng}/children?first={}", all.len());
        let page = ok(&fake, &token, &path).await;
        if page.is_empty() {
            break;
        }
        pages += 1;
        assert!(page.len() <= 10);
        all.extend(page);
    }
    assert_eq!((pages, all.len()), (3, 25));
    assert_eq!(all[3]["path"], "/Engineering/Team03");
    assert_eq!(all[3]["parentId"], eng.as_str());
    assert_eq!(all[3]["subGroupCount"], 1);

    let (_, group) = get(&fake, Some(&token), &format!("/groups/{sre}")).await;
    assert_eq!(group["path"], "/Engineering/Team03/SRE");

    let members = ok(
        &fake,
        &token,
        &format!("/groups/{eng}/members?first=0&max=1"),
    )
    .await;
    assert_eq!(field(&members, "username"), ["alice.doe@example.com"]);
    let members = ok(
        &fake,
        &token,
        &format!("/groups/{eng}/members?first=1&max=1"),
    )
    .await;
    assert_eq!(field(&members, "username"), ["bob@example.com"]);
    let members = ok(
        &fake,
        &token,
        &format!("/groups/{eng}/members?first=2&max=1"),
    )
    .await;
    assert!(members.is_empty());

    // Direct members only.
    let members = ok(&fake, &token, &format!("/groups/{sre}/members")).await;
    assert_eq!(field(&members, "id"), [alice.as_str()]);

    assert_eq!(fake.user_groups_calls(), 0);
    ok(&fake, &token, &format!("/users/{alice}/groups")).await;
    assert_eq!(fake.user_groups_calls(), 1);
}

#[tokio::test]
async fn error_shapes() {
    let fake = fake().await;
    let (status, body) = get(&fake, None, "/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, serde_json::json!({"error": "HTTP 401 Unauthorized"}));
    let (status, _) = get(&fake, Some("forged"), "/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let token = token(&fake).await;
    let (status, body) = get(&fake, Some(&token), "/groups/nope/children").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        serde_json::json!({"error": "Could not find group by id"})
    );
    let (status, _) = get(&fake, Some(&token), "/groups/nope/members").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    fake.revoke_tokens();
    let (status, _) = get(&fake, Some(&token), "/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn renames_and_disables_keep_the_id() {
    let fake = fake().await;
    let id = fake.add_user("Carol@Example.com");
    fake.set_enabled("carol@example.com", false);
    fake.set_email(&id, "carol.new@example.com");
    let token = token(&fake).await;
    let users = ok(&fake, &token, "/users").await;
    assert_eq!(users[0]["id"], id.as_str());
    assert_eq!(users[0]["username"], "carol.new@example.com");
    assert_eq!(users[0]["email"], "carol.new@example.com");
    assert_eq!(users[0]["enabled"], false);
}

#[tokio::test]
async fn memberships_change_in_both_directions() {
    let fake = fake().await;
    let id = fake.add_user("dan@example.com");
    let group = fake.add_group("/Sales", &[]);
    fake.set_member("/Sales", "dan@example.com", true);
    let token = token(&fake).await;
    let members = ok(&fake, &token, &format!("/groups/{group}/members")).await;
    assert_eq!(field(&members, "id"), [id.as_str()]);
    let groups = ok(&fake, &token, &format!("/users/{id}/groups")).await;
    assert_eq!(field(&groups, "path"), ["/Sales"]);
    fake.set_member("/Sales", "dan@example.com", false);
    assert!(ok(&fake, &token, &format!("/groups/{group}/members"))
        .await
        .is_empty());
    assert!(ok(&fake, &token, &format!("/users/{id}/groups"))
        .await
        .is_empty());
}

#[tokio::test]
async fn unset_fields_are_left_out_or_with_explicit_nulls_sent_as_null() {
    for pre23 in [false, true] {
        let fake = FakeKeycloak::start(FakeKeycloakConfig {
            pre23,
            ..FakeKeycloakConfig::default()
        })
        .await;
        fake.add_user_without_email("kiosk");
        fake.add_group("/Top", &[]);
        fake.add_group("/Top/Child", &[]);
        let token = token(&fake).await;
        for explicit_nulls in [false, true] {
            fake.state().config.explicit_nulls = explicit_nulls;
            let users = ok(&fake, &token, "/users?briefRepresentation=false").await;
            let groups = ok(&fake, &token, "/groups").await;
            let unset = [
                (&users[0], "email"),
                (&users[0], "firstName"),
                (&users[0], "lastName"),
                (&users[0], "attributes"),
                (&users[0], "serviceAccountClientId"),
                (&groups[0], "parentId"),
                (&groups[0], "attributes"),
            ];
            for (item, key) in unset {
                match item.get(key) {
                    None => assert!(!explicit_nulls, "{key} left out in null mode: {item}"),
                    Some(Value::Null) => assert!(explicit_nulls, "{key} null by default: {item}"),
                    Some(other) => panic!("{key} is set: {other}"),
                }
            }
            // The tree shape itself is unchanged: 23+ counts, older servers inline.
            if pre23 {
                assert_eq!(groups[0]["subGroups"][0]["name"], "Child");
                assert_eq!(
                    groups[0].get("subGroupCount").cloned(),
                    explicit_nulls.then_some(Value::Null)
                );
            } else {
                assert_eq!(groups[0]["subGroupCount"], 1);
            }
        }
    }
}
