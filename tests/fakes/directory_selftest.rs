//! Tests of the fakes' indexed directory structures (crates/fakes/src/directory.rs).

use super::directory::{KeyIndex, MemberEdit, Memberships, Record, Table};

#[derive(Debug, PartialEq)]
struct Row(&'static str);

impl Record for Row {
    type Id = str;

    fn id(&self) -> &str {
        self.0
    }
}

#[test]
fn a_table_finds_records_by_id_and_keeps_order_through_removals() {
    let mut table = Table::default();
    for id in ["a", "b", "c", "d"] {
        table.push(Row(id));
    }
    assert_eq!(table.position("c"), Some(2));
    assert_eq!(table.remove(1), Row("b"));
    assert_eq!(table.position("b"), None);
    // The records after the removed one moved up, and the index with them.
    assert_eq!(table.position("c"), Some(1));
    assert_eq!(table.get("d"), Some(&Row("d")));
    assert_eq!(
        table.iter().map(|r| r.0).collect::<Vec<_>>(),
        ["a", "c", "d"]
    );
}

#[test]
fn a_key_index_ignores_ascii_case_and_follows_renames() {
    let mut index = KeyIndex::default();
    index.insert("Alice@Example.com", "u1");
    index.insert("alice@example.com", "u2");
    assert_eq!(index.ids("ALICE@example.COM"), ["u1", "u2"]);
    index.rekey("alice@example.com", "alice@new.example", "u1");
    assert_eq!(index.ids("alice@example.com"), ["u2"]);
    assert_eq!(index.ids("Alice@New.Example"), ["u1"]);
    index.remove("alice@example.com", "u2");
    assert!(!index.contains("alice@example.com"));
}

#[test]
fn memberships_keep_both_directions_in_line() {
    let mut m = Memberships::default();
    for user in ["u1", "u2", "u3"] {
        assert!(m.add("g1", user));
    }
    assert!(!m.add("g1", "u2"), "a member is added once");
    m.add("g2", "u2");
    let mut groups: Vec<&str> = m.groups_of("u2").collect();
    groups.sort_unstable();
    assert_eq!(groups, ["g1", "g2"]);
    m.remove_member("u2");
    assert_eq!(m.members("g1").collect::<Vec<_>>(), ["u1", "u3"]);
    assert_eq!(m.count("g2"), 0);
    assert_eq!(m.groups_of("u2").count(), 0);
    m.remove_group("g1");
    assert_eq!(m.groups_of("u1").count(), 0);
}

#[test]
fn a_member_edit_gives_what_the_operations_give_on_a_list() {
    let mut m = Memberships::default();
    for user in ["u1", "u2", "u3"] {
        m.add("g", user);
    }
    // Nothing changes until the edit is applied (a request failing half-way changes nothing).
    let mut edit = MemberEdit::new("g");
    edit.remove(&m, "u1");
    edit.add(&m, "u4");
    edit.add(&m, "u1");
    edit.add(&m, "u2");
    edit.remove(&m, "u4");
    assert_eq!(m.members("g").collect::<Vec<_>>(), ["u1", "u2", "u3"]);
    m.apply(edit);
    // u1 was removed then added again: it goes to the end; u2 was a member already; u4 came and
    // went.
    assert_eq!(m.members("g").collect::<Vec<_>>(), ["u2", "u3", "u1"]);
    assert_eq!(m.groups_of("u4").count(), 0);

    let mut edit = MemberEdit::new("g");
    edit.clear();
    edit.add(&m, "u3");
    m.apply(edit);
    assert_eq!(m.members("g").collect::<Vec<_>>(), ["u3"]);
    assert_eq!(m.groups_of("u1").count(), 0);
    assert!(m.is_member("g", "u3"));
}

mod atlassian_indexes {
    //! The Atlassian fake keeps its indexes in line through renames and deletions, as seen
    //! through its API.

    use reqwest::{Client, Method};
    use serde_json::{json, Value};

    use super::super::atlassian::{FakeAtlassian, FakeConfig, SeedUser};

    async fn scim(fake: &FakeAtlassian, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", fake.scim_base());
        let mut request = Client::new()
            .request(method, url)
            .bearer_auth("scim-secret-token");
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("the fake answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("a JSON body")
        };
        json!({ "status": status.as_u16(), "body": body })
    }

    fn patch(operations: Value) -> Option<Value> {
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        }))
    }

    fn user_body(email: &str) -> Option<Value> {
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": email,
            "emails": [{ "value": email, "type": "work", "primary": true }],
            "active": true,
        }))
    }

    async fn total(fake: &FakeAtlassian, path: &str) -> u64 {
        let answer = scim(fake, Method::GET, path, None).await;
        assert_eq!(answer["status"], 200, "{answer}");
        answer["body"]["totalResults"].as_u64().expect("a total")
    }

    #[tokio::test]
    async fn renames_and_deletions_keep_every_lookup_right() {
        let fake = FakeAtlassian::start(FakeConfig::default()).await;
        let ana = fake.add_user(SeedUser::new("ana@example.com").external_id("e-ana"));
        fake.add_user(SeedUser::new("bo@example.com"));
        let group = fake.add_group("Staff", &["ana@example.com", "bo@example.com"]);
        let by_name = |name: &str| format!("/Users?filter=userName%20eq%20%22{name}%22");

        // A rename: the new userName and email find the user, the old ones nothing.
        let renamed = scim(
            &fake,
            Method::PATCH,
            &format!("/Users/{ana}"),
            patch(json!([{ "op": "replace", "value": {
                "userName": "ana.new@example.com",
                "emails": [{ "value": "ana.new@example.com", "primary": true }],
                "externalId": "e-ana-2",
            }}])),
        )
        .await;
        assert_eq!(renamed["status"], 200, "{renamed}");
        assert_eq!(total(&fake, &by_name("ANA.NEW%40example.com")).await, 1);
        assert_eq!(total(&fake, &by_name("ana%40example.com")).await, 0);
        assert_eq!(
            total(&fake, "/Users?filter=externalId%20eq%20%22e-ana%22").await,
            0
        );
        assert_eq!(
            total(&fake, "/Users?filter=externalId%20eq%20%22e-ana-2%22").await,
            1
        );
        assert_eq!(fake.user("ana.new@example.com").unwrap()["id"], ana);
        assert!(fake.user("ana@example.com").is_none());
        // The org account followed the email.
        let account = fake.account_id("ana.new@example.com").expect("the account");
        assert_eq!(fake.account_id("ana@example.com"), None);

        // The old userName is free again.
        let other = scim(&fake, Method::POST, "/Users", user_body("ana@example.com")).await;
        assert_eq!(other["status"], 201, "{other}");

        // A group rename: found by the new name only; the old name can be taken again.
        let group_path = format!("/Groups/{group}");
        let answer = scim(
            &fake,
            Method::PATCH,
            &group_path,
            patch(json!([{ "op": "replace", "path": "displayName", "value": "Team" }])),
        )
        .await;
        assert_eq!(answer["status"], 204, "{answer}");
        let by_group = |name: &str| format!("/Groups?filter=displayName%20eq%20%22{name}%22");
        assert_eq!(total(&fake, &by_group("staff")).await, 0);
        assert_eq!(total(&fake, &by_group("TEAM")).await, 1);
        let staff = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Staff",
        });
        let answer = scim(&fake, Method::POST, "/Groups", Some(staff)).await;
        assert_eq!(answer["status"], 201, "{answer}");

        // The user lists its group; deleting the user takes it out of the group, and its
        // account, no longer linked, is linked again to a user created with its email.
        let user = scim(&fake, Method::GET, &format!("/Users/{ana}"), None).await;
        assert_eq!(user["body"]["groups"][0]["display"], "Team", "{user}");
        let answer = scim(&fake, Method::DELETE, &format!("/Users/{ana}"), None).await;
        assert_eq!(answer["status"], 204, "{answer}");
        assert_eq!(fake.group_members("Team"), ["bo@example.com"]);
        let gone = scim(&fake, Method::GET, &format!("/Users/{ana}"), None).await;
        assert_eq!(gone["status"], 404, "{gone}");
        let again = scim(
            &fake,
            Method::POST,
            "/Users",
            user_body("ana.new@example.com"),
        )
        .await;
        assert_eq!(again["status"], 201, "{again}");
        assert_eq!(fake.account_id("ana.new@example.com"), Some(account));
        let id = again["body"]["id"].as_str().unwrap();
        let user = scim(&fake, Method::GET, &format!("/Users/{id}"), None).await;
        assert_eq!(user["body"]["groups"], json!([]), "{user}");
    }
}
