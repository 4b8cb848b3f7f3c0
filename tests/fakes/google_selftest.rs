//! Tests of the fake Google Workspace itself, through plain reqwest.

use std::collections::BTreeSet;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use super::google::{FakeGoogle, FakeGoogleConfig, JWT_BEARER_GRANT, REQUIRED_SCOPES};

const PRIVATE_KEY: &[u8] = include_bytes!("../fixtures/test-rsa-key.pem");
const SA: &str = "idsync@proj.iam.gserviceaccount.com";

fn assertion(fake: &FakeGoogle, sub: &str, scope: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"iss": SA, "sub": sub, "scope": scope, "aud": fake.token_url(),
                        "iat": now, "exp": now + 3_600});
    let key = EncodingKey::from_rsa_pem(PRIVATE_KEY).expect("the test key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).expect("signed")
}

async fn request_token(fake: &FakeGoogle, sub: &str, scope: &str) -> (StatusCode, Value) {
    let assertion = assertion(fake, sub, scope);
    let form = [("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)];
    let response = Client::new()
        .post(fake.token_url())
        .form(&form)
        .send()
        .await
        .expect("the fake answers");
    (response.status(), response.json().await.expect("JSON"))
}

async fn token(fake: &FakeGoogle) -> String {
    let (status, body) = request_token(fake, "admin@example.com", &REQUIRED_SCOPES.join(" ")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("a token").to_owned()
}

async fn get(fake: &FakeGoogle, token: &str, path: &str) -> (StatusCode, Value) {
    let response = Client::new()
        .get(format!("{}/admin/directory/v1{path}", fake.base_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("the fake answers");
    (response.status(), response.json().await.expect("JSON"))
}

fn emails(body: &Value, field: &str) -> Vec<String> {
    body[field].as_array().map_or_else(Vec::new, |items| {
        items
            .iter()
            .map(|i| {
                let key = if field == "users" {
                    "primaryEmail"
                } else {
                    "email"
                };
                i[key].as_str().expect("an email").to_owned()
            })
            .collect()
    })
}

#[tokio::test]
async fn the_token_flow_checks_sub_and_scopes_and_tokens_authenticate() {
    let fake = FakeGoogle::start(FakeGoogleConfig::default()).await;
    let access = token(&fake).await;
    assert_eq!(fake.tokens_issued(), 1);
    let (status, body) =
        request_token(&fake, "mallory@example.com", &REQUIRED_SCOPES.join(" ")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    let (status, body) = request_token(&fake, "admin@example.com", REQUIRED_SCOPES[0]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"error": "invalid_scope"}));
    assert_eq!(fake.tokens_issued(), 1);

    let (status, body) = get(&fake, &access, "/users?customer=my_customer").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"kind": "admin#directory#users"}));
    let (status, body) = get(&fake, "nope", "/users?customer=my_customer").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");
    assert_eq!(body["error"]["errors"][0]["message"], "Invalid Credentials");
    let (status, _) = get(&fake, &access, "/users").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "customer is required");
}

#[tokio::test]
async fn users_page_by_max_results_and_page_token_sorted_by_email() {
    let fake = FakeGoogle::start(FakeGoogleConfig::default()).await;
    for email in [
        "carol@example.com",
        "alice.doe@example.com",
        "bob@example.com",
    ] {
        fake.add_user(email);
    }
    fake.update_user("carol@example.com", |u| u.title = Some("CTO".into()));
    fake.set_suspended("bob@example.com", true);
    let access = token(&fake).await;
    let (status, first) = get(&fake, &access, "/users?customer=my_customer&maxResults=2").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        emails(&first, "users"),
        ["alice.doe@example.com", "bob@example.com"]
    );
    assert_eq!(first["users"][0]["name"]["fullName"], "Alice Doe");
    assert_eq!(first["users"][1]["suspended"], true);
    let next = first["nextPageToken"].as_str().expect("a next page");
    let path = format!("/users?customer=my_customer&maxResults=2&pageToken={next}&projection=full");
    let (_, second) = get(&fake, &access, &path).await;
    assert_eq!(emails(&second, "users"), ["carol@example.com"]);
    assert_eq!(second["users"][0]["organizations"][0]["title"], "CTO");
    assert!(second.get("nextPageToken").is_none(), "{second}");

    let (status, body) = get(&fake, &access, "/users?customer=my_customer&maxResults=501").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["message"], "Invalid Input: maxResults");
    assert_eq!(body["error"]["errors"][0]["reason"], "invalid");
    let (status, body) = get(&fake, &access, "/users/bob@example.com").await;
    assert_eq!((status, fake.per_user_calls()), (StatusCode::OK, 1));
    assert_eq!(body["primaryEmail"], "bob@example.com");
}

#[tokio::test]
async fn members_are_direct_or_derived_through_nested_groups() {
    let fake = FakeGoogle::start(FakeGoogleConfig::default()).await;
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        fake.add_user(email);
    }
    fake.add_group(
        "Backend",
        "backend@example.com",
        &["b@example.com", "c@example.com"],
    );
    let eng = fake.add_group(
        "Engineering",
        "eng@example.com",
        &[
            "a@example.com",
            "b@example.com",
            "group:backend@example.com",
        ],
    );
    let access = token(&fake).await;
    let (_, groups) = get(&fake, &access, "/groups?customer=my_customer&maxResults=1").await;
    assert_eq!(emails(&groups, "groups"), ["backend@example.com"]);
    assert_eq!(groups["groups"][0]["directMembersCount"], "2");
    let next = groups["nextPageToken"].as_str().expect("a next page");
    let (_, groups) = get(
        &fake,
        &access,
        &format!("/groups?customer=my_customer&pageToken={next}"),
    )
    .await;
    assert_eq!(groups["groups"][0]["id"], eng.as_str());
    let (status, _) = get(
        &fake,
        &access,
        "/groups?customer=my_customer&maxResults=201",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, direct) = get(&fake, &access, &format!("/groups/{eng}/members")).await;
    assert_eq!(
        emails(&direct, "members"),
        ["a@example.com", "b@example.com", "backend@example.com"]
    );
    assert_eq!(direct["members"][2]["type"], "GROUP");
    let path = "/groups/eng@example.com/members?includeDerivedMembership=true&maxResults=2";
    let (_, derived) = get(&fake, &access, path).await;
    assert_eq!(
        emails(&derived, "members"),
        ["a@example.com", "b@example.com"]
    );
    let next = derived["nextPageToken"].as_str().expect("a next page");
    let (_, rest) = get(&fake, &access, &format!("{path}&pageToken={next}")).await;
    assert_eq!(emails(&rest, "members"), ["c@example.com"]);
    assert!(rest["members"]
        .as_array()
        .expect("members")
        .iter()
        .all(|m| m["type"] == "USER"));
}

#[tokio::test]
async fn quota_errors_answer_403_user_rate_limit_exceeded_then_clear() {
    let fake = FakeGoogle::start(FakeGoogleConfig::default()).await;
    let access = token(&fake).await;
    fake.set_quota_errors(2);
    for _ in 0..2 {
        let (status, body) = get(&fake, &access, "/groups?customer=my_customer").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"]["code"], 403);
        assert_eq!(
            body["error"]["errors"][0]["reason"],
            "userRateLimitExceeded"
        );
        assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Quota exceeded for quota metric 'Queries'")));
    }
    let (status, _) = get(&fake, &access, "/groups?customer=my_customer").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        fake.requests().len(),
        4,
        "the token request and three listings"
    );
}

#[tokio::test]
async fn customer_and_external_members_are_listed_direct_and_derived() {
    let fake = FakeGoogle::start(FakeGoogleConfig::default()).await;
    fake.add_user("a@example.com");
    fake.add_group("Inner", "inner@example.com", &[]);
    let outer = fake.add_group(
        "Outer",
        "outer@example.com",
        &["a@example.com", "group:inner@example.com"],
    );
    fake.add_customer_member("inner@example.com");
    let ext = fake.add_external_member("inner@example.com", "x@partner.example.com");
    let access = token(&fake).await;

    let (_, direct) = get(&fake, &access, "/groups/inner@example.com/members").await;
    let members = direct["members"].as_array().expect("members");
    assert_eq!(members.len(), 2);
    let customer = members
        .iter()
        .find(|m| m["type"] == "CUSTOMER")
        .expect("a CUSTOMER member");
    assert_eq!(customer["id"], super::google::CUSTOMER_ID);
    assert!(
        customer.get("email").is_none(),
        "the whole account has no email"
    );
    let external = members
        .iter()
        .find(|m| m["type"] == "USER")
        .expect("the external member");
    assert_eq!(external["id"], ext.as_str());
    assert_eq!(external["email"], "x@partner.example.com");

    let path = format!("/groups/{outer}/members?includeDerivedMembership=true");
    let (_, derived) = get(&fake, &access, &path).await;
    let types: BTreeSet<&str> = derived["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, BTreeSet::from(["CUSTOMER", "USER"]));
    assert_eq!(derived["members"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn unset_fields_are_left_out_or_with_explicit_nulls_sent_as_null() {
    let fake = FakeGoogle::start(FakeGoogleConfig::default()).await;
    fake.add_user("ana@example.com");
    fake.add_group("Empty", "empty@example.com", &[]);
    fake.add_group("All", "all@example.com", &[]);
    fake.add_customer_member("all@example.com");
    let access = token(&fake).await;
    for explicit_nulls in [false, true] {
        fake.state().config.explicit_nulls = explicit_nulls;
        let (_, users) = get(&fake, &access, "/users?customer=my_customer").await;
        let (_, empty) = get(&fake, &access, "/groups/empty@example.com/members").await;
        let (_, all) = get(&fake, &access, "/groups/all@example.com/members").await;
        let ana = &users["users"][0];
        let unset = [
            (ana, "/organizations"),
            (ana, "/relations"),
            (ana, "/customSchemas"),
            (&users, "/nextPageToken"),
            (&empty, "/members"),
            (&all, "/members/0/email"),
        ];
        for (item, pointer) in unset {
            match item.pointer(pointer) {
                None => assert!(!explicit_nulls, "{pointer} left out in null mode: {item}"),
                Some(Value::Null) => assert!(explicit_nulls, "{pointer} null by default: {item}"),
                Some(other) => panic!("{pointer} is set: {other}"),
            }
        }
        assert_eq!(ana["name"]["givenName"], "Ana");
        // Google requires both names; the fake's empty one is "" by default.
        let family = if explicit_nulls {
            Value::Null
        } else {
            json!("")
        };
        assert_eq!(ana["name"]["familyName"], family);
    }
}

#[tokio::test]
async fn a_users_groups_follow_membership_changes_renames_and_removal() {
    let fake = FakeGoogle::start(FakeGoogleConfig::default()).await;
    fake.add_user("a@example.com");
    fake.add_user("b@example.com");
    fake.add_group("Ops", "ops@example.com", &[]);
    fake.add_group("Eng", "eng@example.com", &["a@example.com"]);
    fake.add_group(
        "Sales",
        "sales@example.com",
        &["a@example.com", "b@example.com"],
    );
    let access = token(&fake).await;
    let groups_of = |key: &str| format!("/groups?userKey={key}");

    let (_, body) = get(&fake, &access, &groups_of("a@example.com")).await;
    assert_eq!(
        emails(&body, "groups"),
        ["eng@example.com", "sales@example.com"]
    );
    fake.set_member("ops@example.com", "a@example.com", true);
    fake.set_member("eng@example.com", "A@example.com", false);
    let (_, body) = get(&fake, &access, &groups_of("a@example.com")).await;
    assert_eq!(
        emails(&body, "groups"),
        ["ops@example.com", "sales@example.com"]
    );
    assert_eq!(body["groups"][0]["directMembersCount"], "1");

    // Renamed: found by the new email (and by id), no longer by the old one.
    let c = fake.add_user("c@example.com");
    fake.set_email(&c, "c2@example.com");
    fake.set_member("eng@example.com", "c2@example.com", true);
    let (_, body) = get(&fake, &access, &groups_of(&c)).await;
    assert_eq!(emails(&body, "groups"), ["eng@example.com"]);
    let (status, _) = get(&fake, &access, &groups_of("c@example.com")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A removed user leaves its groups.
    fake.remove_user("b@example.com");
    let (_, body) = get(&fake, &access, "/groups/sales@example.com/members").await;
    assert_eq!(emails(&body, "members"), ["a@example.com"]);
    let (_, body) = get(
        &fake,
        &access,
        "/groups/sales@example.com/hasMember/b@example.com",
    )
    .await;
    assert_eq!(body["error"]["code"], 404, "{body}");
}
