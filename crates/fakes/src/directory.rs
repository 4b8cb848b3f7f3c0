//! The indexed structures a fake's directory is kept in, so that no request scans the whole
//! directory to find one record: records in creation order found by id ([`Table`]), secondary keys
//! compared case-insensitively ([`KeyIndex`]: userName, email, externalId, account id), and group
//! members as ordered sets with the reverse index, the groups of each member ([`Memberships`]).
//!
//! A fake keeps its own record types (their fields and JSON are its dialect) and its indexes side
//! by side; it updates an index wherever it changes the key that index holds. Ids are strings
//! for most vendors and numbers for OneLogin ([`Record::Id`]); indexes hold them as strings.

use std::{
    collections::{HashMap, HashSet},
    fmt::{self, Debug, Formatter},
    hash::Hash,
    ops::{Deref, DerefMut},
};

use indexmap::IndexSet;

/// A record with an id that never changes.
pub trait Record {
    /// The id's type: `str` for most vendors, a number where the vendor's ids are numbers.
    type Id: ?Sized + Hash + Eq + ToOwned<Owned: Hash + Eq>;

    fn id(&self) -> &Self::Id;
}

impl<T: Record + ?Sized> Record for &T {
    type Id = T::Id;

    fn id(&self) -> &T::Id {
        (**self).id()
    }
}

/// Records in creation order, found by id without a scan. Reads and in-place changes go through
/// the slice it dereferences to; a record's id must not be changed there.
pub struct Table<T: Record> {
    rows: Vec<T>,
    by_id: HashMap<<T::Id as ToOwned>::Owned, usize>,
}

impl<T: Record> Default for Table<T> {
    fn default() -> Table<T> {
        Table {
            rows: Vec::new(),
            by_id: HashMap::new(),
        }
    }
}

impl<T: Record> Clone for Table<T>
where
    T: Clone,
    <T::Id as ToOwned>::Owned: Clone,
{
    fn clone(&self) -> Table<T> {
        Table {
            rows: self.rows.clone(),
            by_id: self.by_id.clone(),
        }
    }
}

impl<T: Record> Debug for Table<T>
where
    T: Debug,
{
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.rows).finish()
    }
}

impl<T: Record> Table<T> {
    /// Appends a record; returns its position. Panics on a duplicate id (a fake's own bug).
    pub fn push(&mut self, row: T) -> usize {
        let index = self.rows.len();
        let previous = self.by_id.insert(row.id().to_owned(), index);
        assert!(previous.is_none(), "duplicate id in position {index}");
        self.rows.push(row);
        index
    }

    /// The position of the record with this id.
    pub fn position(&self, id: &T::Id) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn get(&self, id: &T::Id) -> Option<&T> {
        self.position(id).map(|i| &self.rows[i])
    }

    pub fn get_mut(&mut self, id: &T::Id) -> Option<&mut T> {
        self.position(id).map(|i| &mut self.rows[i])
    }

    /// Removes the record at this position, keeping the others in order.
    pub fn remove(&mut self, index: usize) -> T {
        let row = self.rows.remove(index);
        self.by_id.remove(row.id());
        for (i, later) in self.rows.iter().enumerate().skip(index) {
            *self
                .by_id
                .get_mut(later.id())
                .expect("every record is indexed") = i;
        }
        row
    }

    /// Puts a new version of the record at this position in its place (same id).
    pub fn replace(&mut self, index: usize, row: T) -> T {
        assert!(self.rows[index].id() == row.id(), "a record keeps its id");
        std::mem::replace(&mut self.rows[index], row)
    }
}

impl<T: Record> Deref for Table<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.rows
    }
}

impl<T: Record> DerefMut for Table<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.rows
    }
}

/// A secondary key (compared ASCII case-insensitively, as `eq_ignore_ascii_case` does) to the ids
/// of the records holding it. Several records may share a key; the fake decides whether that is a
/// conflict.
#[derive(Clone, Debug, Default)]
pub struct KeyIndex {
    map: HashMap<String, Vec<String>>,
}

impl KeyIndex {
    fn fold(key: &str) -> String {
        key.to_ascii_lowercase()
    }

    pub fn insert(&mut self, key: &str, id: &str) {
        let ids = self.map.entry(Self::fold(key)).or_default();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }

    pub fn remove(&mut self, key: &str, id: &str) {
        let folded = Self::fold(key);
        if let Some(ids) = self.map.get_mut(&folded) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.map.remove(&folded);
            }
        }
    }

    /// Moves a record from one key to another (a rename).
    pub fn rekey(&mut self, old: &str, new: &str, id: &str) {
        self.remove(old, id);
        self.insert(new, id);
    }

    /// The ids of the records holding this key, in the order they got it.
    pub fn ids(&self, key: &str) -> &[String] {
        self.map.get(&Self::fold(key)).map_or(&[], Vec::as_slice)
    }

    pub fn contains(&self, key: &str) -> bool {
        !self.ids(key).is_empty()
    }
}

/// Group members as sets kept in the order they were added, and the groups of each member.
#[derive(Clone, Debug, Default)]
pub struct Memberships {
    members: HashMap<String, IndexSet<String>>,
    groups_of: HashMap<String, HashSet<String>>,
}

impl Memberships {
    /// The members of a group, in the order they were added.
    pub fn members(&self, group: &str) -> impl Iterator<Item = &str> + '_ {
        self.members
            .get(group)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// How many members a group has.
    pub fn count(&self, group: &str) -> usize {
        self.members.get(group).map_or(0, IndexSet::len)
    }

    pub fn is_member(&self, group: &str, member: &str) -> bool {
        self.members.get(group).is_some_and(|m| m.contains(member))
    }

    /// The groups a member is in (unordered).
    pub fn groups_of(&self, member: &str) -> impl Iterator<Item = &str> + '_ {
        self.groups_of
            .get(member)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Adds a member at the end; false when it was one already.
    pub fn add(&mut self, group: &str, member: &str) -> bool {
        let added = self
            .members
            .entry(group.to_owned())
            .or_default()
            .insert(member.to_owned());
        if added {
            self.groups_of
                .entry(member.to_owned())
                .or_default()
                .insert(group.to_owned());
        }
        added
    }

    /// Removes a member, keeping the others in order; false when it was not one.
    pub fn remove(&mut self, group: &str, member: &str) -> bool {
        let removed = self
            .members
            .get_mut(group)
            .is_some_and(|m| m.shift_remove(member));
        if removed {
            self.forget(member, group);
        }
        removed
    }

    /// Keeps only the members for which `keep` is true.
    pub fn retain(&mut self, group: &str, mut keep: impl FnMut(&str) -> bool) {
        let Some(members) = self.members.get_mut(group) else {
            return;
        };
        let mut dropped = Vec::new();
        members.retain(|m| {
            let k = keep(m);
            if !k {
                dropped.push(m.clone());
            }
            k
        });
        for member in dropped {
            self.forget(&member, group);
        }
    }

    /// Removes every member of a group.
    pub fn clear(&mut self, group: &str) {
        self.retain(group, |_| false);
    }

    /// Forgets a group and its memberships.
    pub fn remove_group(&mut self, group: &str) {
        self.clear(group);
        self.members.remove(group);
    }

    /// Takes a member out of every group it is in.
    pub fn remove_member(&mut self, member: &str) {
        for group in self.groups_of.remove(member).unwrap_or_default() {
            if let Some(members) = self.members.get_mut(&group) {
                members.shift_remove(member);
            }
        }
    }

    fn forget(&mut self, member: &str, group: &str) {
        if let Some(groups) = self.groups_of.get_mut(member) {
            groups.remove(group);
            if groups.is_empty() {
                self.groups_of.remove(member);
            }
        }
    }
}

/// Changes to one group's members, made one operation at a time and applied all at once with
/// [`Memberships::apply`] (a request whose later operation fails changes nothing). The outcome is
/// what the same operations on the member list would give: a member added again after its
/// removal goes to the end.
#[derive(Debug)]
pub struct MemberEdit {
    group: String,
    cleared: bool,
    /// Members to append, in order.
    added: IndexSet<String>,
    /// Members of the group as it was to take out.
    removed: HashSet<String>,
}

impl MemberEdit {
    pub fn new(group: &str) -> MemberEdit {
        MemberEdit {
            group: group.to_owned(),
            cleared: false,
            added: IndexSet::new(),
            removed: HashSet::new(),
        }
    }

    fn in_base(&self, base: &Memberships, member: &str) -> bool {
        !self.cleared && !self.removed.contains(member) && base.is_member(&self.group, member)
    }

    /// Adds a member at the end, unless it is one already.
    pub fn add(&mut self, base: &Memberships, member: &str) {
        if !self.in_base(base, member) {
            self.added.insert(member.to_owned());
        }
    }

    /// Removes a member, if it is one.
    pub fn remove(&mut self, base: &Memberships, member: &str) {
        if !self.added.shift_remove(member) && self.in_base(base, member) {
            self.removed.insert(member.to_owned());
        }
    }

    /// Removes every member.
    pub fn clear(&mut self) {
        self.cleared = true;
        self.added.clear();
        self.removed.clear();
    }
}

impl Memberships {
    /// Applies the changes of a [`MemberEdit`].
    pub fn apply(&mut self, edit: MemberEdit) {
        if edit.cleared {
            self.clear(&edit.group);
        } else {
            for member in &edit.removed {
                self.remove(&edit.group, member);
            }
        }
        for member in &edit.added {
            self.add(&edit.group, member);
        }
    }
}
