//! Tests of the fakes' indexed directory structures (crates/fakes/src/directory.rs).

use super::directory::{KeyIndex, MemberEdit, Memberships, Record, Table};

#[derive(Debug, PartialEq)]
struct Row(&'static str);

impl Record for Row {
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
