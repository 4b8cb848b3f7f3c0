//! Fingerprints of target objects, and the staleness check of a saved plan against a fresh snapshot.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use crate::model::{Group, Indexed, User};

/// The fingerprint recorded for an object that does not exist.
pub const ABSENT: &str = "absent";

/// Fingerprint of a user record: a short SHA-256 of its normalized form.
#[must_use]
pub fn user(u: &User) -> String {
    let json = serde_json::to_vec(u).expect("users serialize");
    short(&Sha256::digest(&json))
}

/// Fingerprint of a group: its name, id and sorted member keys.
#[must_use]
pub fn group(g: &Group, members: &[u32], target: &Indexed) -> String {
    let mut keys: Vec<&str> = members.iter().map(|&m| target.key(m)).collect();
    keys.sort_unstable();
    let mut h = Sha256::new();
    h.update(g.name.as_bytes());
    h.update([0]);
    h.update(g.id.as_deref().unwrap_or("").as_bytes());
    for k in keys {
        h.update([0]);
        h.update(k.as_bytes());
    }
    short(&h.finalize())
}

fn short(digest: &[u8]) -> String {
    crate::config::hex_digest(&digest[..12])
}

/// Recomputes, over a fresh target snapshot, every fingerprint a plan recorded.
#[must_use]
pub fn current(recorded: &BTreeMap<String, String>, target: &Indexed) -> BTreeMap<String, String> {
    let groups: HashMap<&str, usize> = target
        .snapshot
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.name.as_str(), i))
        .collect();
    recorded
        .keys()
        .map(|name| {
            let fp = if let Some(key) = name.strip_prefix("user:") {
                target
                    .by_key
                    .get(key)
                    .map_or_else(|| ABSENT.to_string(), |&i| user(target.user(i)))
            } else if let Some(g) = name.strip_prefix("group:") {
                groups.get(g).map_or_else(
                    || ABSENT.to_string(),
                    |&i| group(&target.snapshot.groups[i], &target.members[i], target),
                )
            } else {
                ABSENT.to_string()
            };
            (name.clone(), fp)
        })
        .collect()
}

/// What changed between the recorded and the current fingerprints, one line per object.
#[must_use]
pub fn changes(recorded: &BTreeMap<String, String>, current: &BTreeMap<String, String>) -> Vec<String> {
    recorded
        .iter()
        .filter_map(|(name, was)| {
            let now = current.get(name).map_or(ABSENT, String::as_str);
            if now == was {
                return None;
            }
            let (kind, id) = name.split_once(':').unwrap_or(("object", name));
            Some(match (was.as_str(), now) {
                (ABSENT, _) => format!("{kind} {id} now exists (it did not when the plan was made)"),
                (_, ABSENT) => format!("{kind} {id} no longer exists"),
                _ => format!("{kind} {id} changed"),
            })
        })
        .collect()
}
