//! Tests of the fake Entra ID / Microsoft Graph, through plain reqwest.

use std::{
    collections::BTreeSet,
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{header::HeaderMap, Client, StatusCode};
use serde_json::{json, Value};

use super::entra::{
    cert_thumbprint_sha1, cert_thumbprint_sha256, EntraSeedUser, FakeEntra, FakeEntraConfig,
    CLIENT_ASSERTION_TYPE, GRAPH_SCOPE,
};
use super::Faults;

const CLIENT_ID: &str = "app-client-id";
const SECRET: &str = "entra-secret-value";
const CERT_PEM: &str = include_str!("../fixtures/test-cert.pem");
const KEY_PEM: &[u8] = include_bytes!("../fixtures/test-rsa-key.pem");
/// `openssl x509 -in test-cert.pem -outform DER | openssl dgst -sha1 -binary | basenc --base64url`
const CERT_X5T: &str = "nMX3zYezh2D_cp_lPegUt5PHYFQ";
/// The same with `-sha256`.
const CERT_X5T_S256: &str = "kMe0KuVx7IAFlhFrFJioGMuSFhk1rP-5a-rocKq-kjU";

async fn fake() -> FakeEntra {
    FakeEntra::start(FakeEntraConfig::default()).await
}

/// Posts a token request to `{base}/{tenant}/oauth2/v2.0/token`; returns the status and body.
async fn token_request(
    fake: &FakeEntra,
    tenant: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let url = format!("{}/{tenant}/oauth2/v2.0/token", fake.base_url);
    let response = Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .expect("the fake answers");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

fn secret_form(secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", CLIENT_ID.into()),
        ("scope", GRAPH_SCOPE.into()),
        ("client_secret", secret.into()),
    ]
}

async fn secret_token_request(fake: &FakeEntra, tenant: &str, secret: &str) -> (StatusCode, Value) {
    let form = secret_form(secret);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    token_request(fake, tenant, &form).await
}

/// A valid access token, got with the client secret.
async fn token(fake: &FakeEntra) -> String {
    let (status, body) = secret_token_request(fake, "tenant-1", SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("a token").to_owned()
}

/// A client assertion signed with the test key.
fn assertion(header: Header, audience: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims = json!({
        "aud": audience,
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "exp": now + 600,
        "nbf": now,
        "iat": now,
        "jti": format!("jti-{now}-{}", fastrand::u64(..)),
    });
    let key = EncodingKey::from_rsa_pem(KEY_PEM).expect("the test key");
    jsonwebtoken::encode(&header, &claims, &key).expect("a signed assertion")
}

fn header_with_x5t(x5t: Option<&str>, x5t_s256: Option<&str>) -> Header {
    let mut header = Header::new(Algorithm::RS256);
    header.x5t = x5t.map(str::to_owned);
    header.x5t_s256 = x5t_s256.map(str::to_owned);
    header
}

async fn assertion_request(fake: &FakeEntra, assertion: &str) -> (StatusCode, Value) {
    token_request(
        fake,
        "tenant-1",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("scope", GRAPH_SCOPE),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// GET `{base_url}{path}` (or an absolute URL) with a bearer token; returns status, body, headers.
async fn get(fake: &FakeEntra, token: Option<&str>, path: &str) -> (StatusCode, Value, HeaderMap) {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        format!("{}{path}", fake.base_url)
    };
    let mut request = Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the fake answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, body, headers)
}

/// GET, asserting 200; the `value` array and the nextLink.
async fn page(fake: &FakeEntra, token: &str, path: &str) -> (Vec<Value>, Option<String>) {
    let (status, body, _) = get(fake, Some(token), path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    let values = body["value"].as_array().expect("a value array").clone();
    let next = body["@odata.nextLink"].as_str().map(str::to_owned);
    (values, next)
}

/// Every item of a list, following nextLinks.
async fn all_pages(fake: &FakeEntra, token: &str, path: &str) -> Vec<Value> {
    let (mut items, mut next) = page(fake, token, path).await;
    while let Some(link) = next {
        let (more, after) = page(fake, token, &link).await;
        items.extend(more);
        next = after;
    }
    items
}

fn field_set(items: &[Value], field: &str) -> BTreeSet<String> {
    items
        .iter()
        .map(|v| v[field].as_str().unwrap_or("<none>").to_owned())
        .collect()
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn assert_graph_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    let inner = &body["error"]["innerError"];
    for key in ["date", "request-id", "client-request-id"] {
        assert!(inner[key].is_string(), "innerError.{key} in {body}");
    }
}

#[tokio::test]
async fn a_client_secret_gets_a_token_graph_accepts() {
    let fake = fake().await;
    let (status, body) = secret_token_request(&fake, "tenant-1", SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let token = body["access_token"].as_str().expect("a token");
    assert_eq!(fake.tokens_issued(), 1);

    let (status, body, _) = get(&fake, Some(token), "/v1.0/users").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["@odata.context"],
        format!("{}/v1.0/$metadata#users", fake.graph_url())
    );
    assert_eq!(body["value"], json!([]));
}

#[tokio::test]
async fn a_certificate_assertion_gets_a_token() {
    let fake = fake().await;
    assert_eq!(cert_thumbprint_sha1(CERT_PEM), CERT_X5T);
    assert_eq!(cert_thumbprint_sha256(CERT_PEM), CERT_X5T_S256);
    let audience = fake.token_url();
    assert_eq!(
        audience,
        format!("{}/tenant-1/oauth2/v2.0/token", fake.base_url)
    );

    let signed = assertion(header_with_x5t(Some(CERT_X5T), None), &audience);
    let (status, body) = assertion_request(&fake, &signed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().expect("a token");
    let (status, _, _) = get(&fake, Some(token), "/v1.0/users").await;
    assert_eq!(status, StatusCode::OK);

    // x5t#S256 alone will do as well.
    let signed = assertion(header_with_x5t(None, Some(CERT_X5T_S256)), &audience);
    let (status, body) = assertion_request(&fake, &signed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(fake.tokens_issued(), 2);
    let assertions = fake.assertions();
    assert_eq!(assertions.len(), 2);
    assert_eq!(assertions[0]["header"]["x5t"], CERT_X5T);
    assert_eq!(assertions[0]["claims"]["iss"], CLIENT_ID);
    assert_eq!(assertions[1]["header"]["x5t#S256"], CERT_X5T_S256);

    // No thumbprint, a hex thumbprint, the wrong audience: invalid_client.
    let hex_x5t = "9CC5F7CD87B38760FF729FE53DE814B793C76054";
    let bad = [
        (assertion(header_with_x5t(None, None), &audience), 700_027),
        (
            assertion(header_with_x5t(Some(hex_x5t), None), &audience),
            700_027,
        ),
        (
            assertion(
                header_with_x5t(Some(CERT_X5T), None),
                "https://login.example/x",
            ),
            700_212,
        ),
    ];
    for (signed, code) in bad {
        let (status, body) = assertion_request(&fake, &signed).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "invalid_client", "{body}");
        assert_eq!(body["error_codes"], json!([code]), "{body}");
    }
    assert_eq!(fake.tokens_issued(), 2);
}

#[tokio::test]
async fn a_wrong_secret_tenant_or_scope_has_the_entra_error_shape() {
    let fake = fake().await;
    let (status, body) = secret_token_request(&fake, "tenant-1", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7_000_215]));
    let description = body["error_description"].as_str().expect("a description");
    assert!(
        description.starts_with("AADSTS7000215: Invalid client secret provided."),
        "{description}"
    );
    for key in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }

    let (status, body) = secret_token_request(&fake, "other-tenant", SECRET).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["error_codes"], json!([90_002]));
    let description = body["error_description"].as_str().expect("a description");
    assert!(
        description.starts_with("AADSTS90002: Tenant 'other-tenant' not found."),
        "{description}"
    );

    let (status, body) = token_request(
        &fake,
        "tenant-1",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("scope", "https://graph.microsoft.com/User.Read.All"),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(fake.tokens_issued(), 0);
}

#[tokio::test]
async fn a_missing_or_unknown_access_token_is_401() {
    let fake = fake().await;
    let (status, body, headers) = get(&fake, None, "/v1.0/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_graph_error(&body, "InvalidAuthenticationToken");
    assert_eq!(body["error"]["message"], "Access token is empty.");
    assert!(headers.contains_key("www-authenticate"));

    let (status, body, _) = get(&fake, Some("not-a-token"), "/v1.0/groups").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_graph_error(&body, "InvalidAuthenticationToken");

    let token = token(&fake).await;
    fake.expire_tokens();
    let (status, body, _) = get(&fake, Some(&token), "/v1.0/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_graph_error(&body, "InvalidAuthenticationToken");
}

#[tokio::test]
async fn users_page_through_next_links_and_top_is_bounded() {
    let fake = fake().await;
    for i in 0..1_500 {
        fake.add_user(EntraSeedUser::new(&format!("user{i:04}@example.com")));
    }
    let token = token(&fake).await;
    let (first, next) = page(&fake, &token, "/v1.0/users?$select=id,mail&$top=999").await;
    assert_eq!(first.len(), 999);
    let next = next.expect("a nextLink after the first page");
    let prefix = format!(
        "{}/v1.0/users?$select=id,mail&$top=999&$skiptoken=X%27",
        fake.graph_url()
    );
    assert!(next.starts_with(&prefix), "{next}");
    let (second, after) = page(&fake, &token, &next).await;
    assert_eq!(second.len(), 501);
    assert_eq!(after, None, "the last page has no nextLink");
    assert_eq!(keys(&second[0]), BTreeSet::from(["id", "mail"]));
    let ids = field_set(&[first, second].concat(), "id");
    assert_eq!(ids.len(), 1_500);

    // With $expand, Graph caps a page at 100 whatever $top says (a known issue).
    let path = "/v1.0/users?$select=id&$expand=manager($select=id,mail)&$top=999";
    let (expanded, next) = page(&fake, &token, path).await;
    assert_eq!(expanded.len(), 100);
    let next = next.expect("a nextLink");
    assert!(
        next.contains("$expand=manager($select=id,mail)&$top=999&$skiptoken="),
        "{next}"
    );
    assert_eq!(all_pages(&fake, &token, path).await.len(), 1_500);

    // Without $top: pages of 100.
    let (default_page, next) = page(&fake, &token, "/v1.0/users").await;
    assert_eq!(default_page.len(), 100);
    assert!(next.is_some());

    for top in ["1000", "0"] {
        let (status, body, _) = get(&fake, Some(&token), &format!("/v1.0/users?$top={top}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_graph_error(&body, "Request_UnsupportedQuery");
        assert_eq!(
            body["error"]["message"],
            format!("Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.")
        );
    }
    let (status, body, _) = get(&fake, Some(&token), "/v1.0/users?$skip=10").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A skip token is tied to its collection, and must arrive decoded once.
    let token_part = next
        .as_deref()
        .and_then(|n| n.split_once("$skiptoken="))
        .expect("a token")
        .1;
    let (status, body, _) = get(
        &fake,
        Some(&token),
        &format!("/v1.0/groups?$skiptoken={token_part}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let double = token_part.replace('%', "%25");
    let (status, _, _) = get(
        &fake,
        Some(&token),
        &format!("/v1.0/users?$skiptoken={double}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn select_returns_only_the_selected_properties_and_the_default_set_lacks_account_enabled() {
    let fake = fake().await;
    fake.add_user(
        EntraSeedUser::new("alice.doe@example.com")
            .department("R&D")
            .job_title("Engineer"),
    );
    let token = token(&fake).await;

    let (users, _) = page(
        &fake,
        &token,
        "/v1.0/users?$select=displayName,accountEnabled",
    )
    .await;
    assert_eq!(
        keys(&users[0]),
        BTreeSet::from(["id", "displayName", "accountEnabled"])
    );
    assert_eq!(users[0]["displayName"], "Alice Doe");
    assert_eq!(users[0]["accountEnabled"], true);

    let (users, _) = page(&fake, &token, "/v1.0/users").await;
    let user = &users[0];
    assert!(user.get("accountEnabled").is_none(), "{user}");
    assert!(user.get("department").is_none(), "{user}");
    for key in [
        "id",
        "displayName",
        "givenName",
        "surname",
        "mail",
        "userPrincipalName",
        "jobTitle",
        "businessPhones",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
    ] {
        assert!(user.get(key).is_some(), "{key} in {user}");
    }
    assert_eq!(user["givenName"], "Alice");
    assert_eq!(user["surname"], "Doe");
    assert_eq!(user["jobTitle"], "Engineer");

    let (users, _) = page(
        &fake,
        &token,
        "/v1.0/users?$select=department,employeeId,companyName,usageLocation",
    )
    .await;
    assert_eq!(users[0]["department"], "R&D");
    assert_eq!(users[0]["companyName"], Value::Null);

    let (status, body, _) = get(&fake, Some(&token), "/v1.0/users?$select=nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn filter_on_account_enabled_and_display_name() {
    let fake = fake().await;
    fake.add_user(EntraSeedUser::new("on@example.com"));
    fake.add_user(EntraSeedUser::new("off@example.com").disabled());
    fake.add_user(EntraSeedUser::new("later@example.com").display_name("O'Brien, Pat"));
    fake.set_enabled("later@example.com", false);
    let token = token(&fake).await;

    let path = "/v1.0/users?$select=mail,accountEnabled&$filter=accountEnabled eq false";
    let users = all_pages(&fake, &token, path).await;
    assert_eq!(
        field_set(&users, "mail"),
        BTreeSet::from(["off@example.com".into(), "later@example.com".into()])
    );
    let users = all_pages(&fake, &token, "/v1.0/users?$filter=accountEnabled eq true").await;
    assert_eq!(
        field_set(&users, "mail"),
        BTreeSet::from(["on@example.com".into()])
    );

    let path = "/v1.0/users?$filter=displayName eq 'o''brien, pat'";
    let users = all_pages(&fake, &token, path).await;
    assert_eq!(
        field_set(&users, "mail"),
        BTreeSet::from(["later@example.com".into()])
    );

    // The filter is carried over to the nextLink.
    let (users, next) = page(
        &fake,
        &token,
        "/v1.0/users?$filter=accountEnabled eq false&$top=1",
    )
    .await;
    assert_eq!(users.len(), 1);
    let next = next.expect("a second page");
    assert!(
        next.contains("$filter=accountEnabled%20eq%20false&$top=1&$skiptoken="),
        "{next}"
    );

    let (status, body, _) = get(
        &fake,
        Some(&token),
        "/v1.0/users?$filter=startswith(mail,'o')",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn groups_list_filter_and_page() {
    let fake = fake().await;
    fake.add_group("Engineering", &[]);
    fake.add_group("Sales", &[]);
    fake.add_group("Everyone", &[]);
    fake.set_group_property("Everyone", "securityEnabled", json!(false));
    fake.set_group_property("Everyone", "groupTypes", json!(["Unified"]));
    let token = token(&fake).await;

    let groups = all_pages(&fake, &token, "/v1.0/groups?$top=2").await;
    assert_eq!(groups.len(), 3);
    let group = &groups[0];
    for key in [
        "id",
        "displayName",
        "description",
        "mailEnabled",
        "securityEnabled",
        "groupTypes",
    ] {
        assert!(group.get(key).is_some(), "{key} in {group}");
    }

    let groups = all_pages(&fake, &token, "/v1.0/groups?$filter=displayName eq 'sales'").await;
    assert_eq!(
        field_set(&groups, "displayName"),
        BTreeSet::from(["Sales".into()])
    );

    let path = "/v1.0/groups?$filter=securityEnabled eq true&$select=id,displayName";
    let groups = all_pages(&fake, &token, path).await;
    assert_eq!(
        field_set(&groups, "displayName"),
        BTreeSet::from(["Engineering".into(), "Sales".into()])
    );
    assert_eq!(keys(&groups[0]), BTreeSet::from(["id", "displayName"]));

    let (status, body, _) = get(&fake, Some(&token), "/v1.0/groups?$top=1000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// Outer = {a, b, Inner}, Inner = {b, c}.
async fn nested_groups(fake: &FakeEntra) -> (String, String) {
    for mail in ["a@example.com", "b@example.com", "c@example.com"] {
        fake.add_user(EntraSeedUser::new(mail));
    }
    let inner = fake.add_group("Inner", &["b@example.com", "c@example.com"]);
    let outer = fake.add_group("Outer", &["a@example.com", "b@example.com", "group:Inner"]);
    (outer, inner)
}

#[tokio::test]
async fn members_are_direct_and_transitive_members_are_flattened() {
    let fake = fake().await;
    let (outer, inner) = nested_groups(&fake).await;
    let token = token(&fake).await;

    let members = all_pages(&fake, &token, &format!("/v1.0/groups/{outer}/members")).await;
    assert_eq!(members.len(), 3);
    let users: Vec<Value> = members
        .iter()
        .filter(|m| m["@odata.type"] == "#microsoft.graph.user")
        .cloned()
        .collect();
    assert_eq!(
        field_set(&users, "mail"),
        BTreeSet::from(["a@example.com".into(), "b@example.com".into()])
    );
    let groups: Vec<&Value> = members
        .iter()
        .filter(|m| m["@odata.type"] == "#microsoft.graph.group")
        .collect();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["id"], inner.as_str());

    // One per page, to page through nextLinks too; b is reachable twice but listed once.
    let path = format!("/v1.0/groups/{outer}/transitiveMembers?$select=id,mail&$top=1");
    let members = all_pages(&fake, &token, &path).await;
    assert_eq!(members.len(), 4, "{members:?}");
    let users: Vec<Value> = members
        .iter()
        .filter(|m| m["@odata.type"] == "#microsoft.graph.user")
        .cloned()
        .collect();
    assert_eq!(users.len(), 3);
    assert_eq!(
        field_set(&users, "mail"),
        BTreeSet::from([
            "a@example.com".into(),
            "b@example.com".into(),
            "c@example.com".into()
        ])
    );
    assert_eq!(
        keys(&users[0]),
        BTreeSet::from(["@odata.type", "id", "mail"])
    );

    let (status, body, _) = get(&fake, Some(&token), "/v1.0/groups/no-such-group/members").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_graph_error(&body, "Request_ResourceNotFound");
    assert_eq!(
        body["error"]["message"],
        "Resource 'no-such-group' does not exist or one of its queried reference-property \
         objects are not present."
    );
}

#[tokio::test]
async fn an_odata_cast_lists_users_only() {
    let fake = fake().await;
    let (outer, _) = nested_groups(&fake).await;
    let token = token(&fake).await;

    let path = format!(
        "/v1.0/groups/{outer}/transitiveMembers/microsoft.graph.user?$select=id,userPrincipalName"
    );
    let users = all_pages(&fake, &token, &path).await;
    assert_eq!(users.len(), 3);
    assert!(users
        .iter()
        .all(|u| u["@odata.type"] == "#microsoft.graph.user"));
    assert_eq!(
        field_set(&users, "userPrincipalName"),
        BTreeSet::from([
            "a@example.com".into(),
            "b@example.com".into(),
            "c@example.com".into()
        ])
    );

    let path = format!("/v1.0/groups/{outer}/members/microsoft.graph.user");
    let users = all_pages(&fake, &token, &path).await;
    assert_eq!(
        field_set(&users, "mail"),
        BTreeSet::from(["a@example.com".into(), "b@example.com".into()])
    );
}

#[tokio::test]
async fn the_manager_is_404_until_set_and_can_be_expanded() {
    let fake = fake().await;
    let alice = fake.add_user(EntraSeedUser::new("alice@example.com"));
    fake.add_user(EntraSeedUser::new("boss@example.com"));
    let token = token(&fake).await;

    let (status, body, _) = get(&fake, Some(&token), &format!("/v1.0/users/{alice}/manager")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_graph_error(&body, "Request_ResourceNotFound");
    assert_eq!(
        body["error"]["message"],
        "Resource 'manager' does not exist or one of its queried reference-property objects \
         are not present."
    );

    fake.set_manager("alice@example.com", "boss@example.com");
    let (status, body, _) = get(&fake, Some(&token), &format!("/v1.0/users/{alice}/manager")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mail"], "boss@example.com");

    let path = "/v1.0/users?$select=id,mail&$expand=manager($select=id,mail,userPrincipalName)";
    let users = all_pages(&fake, &token, path).await;
    let alice_row = users
        .iter()
        .find(|u| u["mail"] == "alice@example.com")
        .expect("alice");
    assert_eq!(alice_row["manager"]["mail"], "boss@example.com");
    assert_eq!(
        alice_row["manager"]["userPrincipalName"],
        "boss@example.com"
    );
    assert_eq!(
        keys(&alice_row["manager"]),
        BTreeSet::from(["@odata.type", "id", "mail", "userPrincipalName"])
    );
    let boss_row = users
        .iter()
        .find(|u| u["mail"] == "boss@example.com")
        .expect("boss");
    assert!(boss_row.get("manager").is_none(), "{boss_row}");

    // The two /users/{id}/manager calls are per-user calls; the list is not.
    assert_eq!(fake.per_user_calls(), 2);
    let (status, _, _) = get(
        &fake,
        Some(&token),
        &format!("/v1.0/users/{alice}/memberOf"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get(
        &fake,
        Some(&token),
        &format!("/v1.0/users/{alice}/transitiveMemberOf"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.per_user_calls(), 4);
}

#[tokio::test]
async fn every_nth_request_is_throttled_with_retry_after() {
    let fake = fake().await;
    let token = token(&fake).await;
    fake.set_throttle_every(Some(2), 7);
    let (status, _, _) = get(&fake, Some(&token), "/v1.0/users").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, headers) = get(&fake, Some(&token), "/v1.0/users").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "7");
    assert_graph_error(&body, "TooManyRequests");
    assert_eq!(body["error"]["message"], "Too many requests");
    let (status, _, _) = get(&fake, Some(&token), "/v1.0/users").await;
    assert_eq!(status, StatusCode::OK);
    fake.set_throttle_every(None, 0);
    for _ in 0..3 {
        let (status, _, _) = get(&fake, Some(&token), "/v1.0/users").await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn the_shared_fault_layer_answers_in_the_graph_error_shape() {
    let fake = fake().await;
    let token = token(&fake).await;
    fake.set_faults(Faults {
        throttle_next: 1,
        retry_after_secs: 3,
        ..Faults::default()
    });
    let (status, body, headers) = get(&fake, Some(&token), "/v1.0/users").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "3");
    assert_graph_error(&body, "TooManyRequests");

    fake.set_faults(Faults {
        error_every: Some(1),
        ..Faults::default()
    });
    let (status, body, _) = get(&fake, Some(&token), "/v1.0/users").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_graph_error(&body, "InternalServerError");
    fake.set_faults(Faults::default());
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 429, 500]);
}

#[tokio::test]
async fn beta_serves_the_same_data_and_changes_are_seen() {
    let fake = fake().await;
    let id = fake.add_user(EntraSeedUser::new("old@example.com"));
    fake.add_user(EntraSeedUser::new("gone@example.com"));
    fake.add_group("Team", &["old@example.com", "gone@example.com"]);
    let token = token(&fake).await;

    fake.set_mail(&id, "new@example.com");
    fake.delete_user("gone@example.com");
    let users = all_pages(
        &fake,
        &token,
        "/beta/users?$select=id,mail,userPrincipalName",
    )
    .await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["id"], id.as_str());
    assert_eq!(users[0]["mail"], "new@example.com");
    assert_eq!(users[0]["userPrincipalName"], "new@example.com");
    let team = fake.group_id("Team").expect("the group");
    let members = all_pages(&fake, &token, &format!("/v1.0/groups/{team}/members")).await;
    assert_eq!(field_set(&members, "id"), BTreeSet::from([id.clone()]));
    assert_eq!(
        fake.graph_versions(),
        BTreeSet::from(["beta".into(), "v1.0".into()])
    );
    assert_eq!(fake.per_user_calls(), 0);

    let (status, body, _) = get(&fake, Some(&token), "/v2.0/users").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn members_of_other_types_are_typed_with_their_own_properties_and_names_may_repeat() {
    let fake = fake().await;
    fake.add_user(EntraSeedUser::new("a@example.com"));
    let group = fake.add_group("Eng", &["a@example.com"]);
    let spn = fake.add_other("servicePrincipal", "CI bot");
    let device = fake.add_other("device", "Kiosk");
    fake.add_member("Eng", &format!("object:{spn}"));
    fake.add_member(&group, &format!("object:{device}"));
    let twin = fake.add_group_sharing_name("Eng", &[]);
    let token = token(&fake).await;

    let path = format!("/v1.0/groups/{group}/transitiveMembers?$select=id,displayName,mail");
    let members = all_pages(&fake, &token, &path).await;
    let types: Vec<&str> = members
        .iter()
        .map(|m| m["@odata.type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "#microsoft.graph.user",
            "#microsoft.graph.servicePrincipal",
            "#microsoft.graph.device"
        ]
    );
    assert_eq!(members[1]["displayName"], "CI bot");
    assert_eq!(
        keys(&members[2]),
        BTreeSet::from(["@odata.type", "id", "displayName"]),
        "a device has no mail: the property is left out, not null"
    );
    // A cast to users leaves the others out.
    let path = format!("/v1.0/groups/{group}/members/microsoft.graph.user?$select=id");
    assert_eq!(all_pages(&fake, &token, &path).await.len(), 1);

    // Display names repeat: a filter by name finds both groups.
    let path = "/v1.0/groups?$filter=displayName%20eq%20'Eng'&$select=id,displayName";
    let found = all_pages(&fake, &token, path).await;
    let ids: BTreeSet<String> = found
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, BTreeSet::from([group, twin]));
}

/// `$batch` as Graph documents it: at most 20 requests with unique ids, each answered on its own
/// (status, headers, body), in another order than asked; relative URLs only; nested batches and
/// absolute URLs refused per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_each_request_on_its_own() {
    let fake = FakeEntra::start(FakeEntraConfig::default()).await;
    let group = fake.add_group("Team", &[]);
    let token = batch_token(&fake).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1.0/$batch", fake.graph_url());
    let post = |body: serde_json::Value| http.post(&url).bearer_auth(&token).json(&body).send();
    let reply = post(serde_json::json!({"requests": [
        {"id": "a", "method": "GET", "url": format!("/groups/{group}/members?$select=id")},
        {"id": "b", "method": "GET", "url": "/groups/nope/members"},
        {"id": "c", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"},
        {"id": "d", "method": "GET", "url": "/$batch"},
        {"id": "e", "method": "GET", "url": "/groups/$count", "headers": {"ConsistencyLevel": "eventual"}},
    ]}))
    .await
    .unwrap();
    assert_eq!(reply.status(), 200);
    let v: serde_json::Value = reply.json().await.unwrap();
    let responses = v["responses"].as_array().unwrap();
    let ids: Vec<&str> = responses
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5);
    assert_ne!(ids, ["a", "b", "c", "d", "e"], "not in the order asked");
    let status = |id: &str| {
        responses
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["status"].as_u64().unwrap())
            .unwrap()
    };
    assert_eq!(status("a"), 200);
    assert_eq!(status("b"), 404);
    assert_eq!((status("c"), status("d")), (400, 400));
    let a = responses.iter().find(|r| r["id"] == "a").unwrap();
    assert!(a["body"]["value"].is_array(), "{a}");

    let many: Vec<serde_json::Value> = (0..21)
        .map(|i| serde_json::json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    assert_eq!(
        post(serde_json::json!({"requests": many}))
            .await
            .unwrap()
            .status(),
        400
    );
    let twice = serde_json::json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users"},
        {"id": "1", "method": "GET", "url": "/groups"},
    ]});
    assert_eq!(post(twice).await.unwrap().status(), 400);

    // Throttling applies to each request of a batch on its own, with its own Retry-After.
    fake.set_throttle_every(Some(2), 7);
    let reply = post(serde_json::json!({"requests": [
        {"id": "x", "method": "GET", "url": "/users"},
        {"id": "y", "method": "GET", "url": "/users"},
    ]}))
    .await
    .unwrap();
    assert_eq!(
        reply.status(),
        200,
        "the batch itself was the first request"
    );
    let v: serde_json::Value = reply.json().await.unwrap();
    let throttled: Vec<&serde_json::Value> = v["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 429)
        .collect();
    assert_eq!(throttled.len(), 1, "{v}");
    assert_eq!(throttled[0]["headers"]["retry-after"], "7");
}

async fn batch_token(fake: &FakeEntra) -> String {
    let reply = reqwest::Client::new()
        .post(fake.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", fake.config.client_id.as_str()),
            ("client_secret", fake.config.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = reply.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}
