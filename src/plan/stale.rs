//! Fingerprints of target objects, and the staleness check of a saved plan against a fresh snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};

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

/// Fingerprint of a group: its name, id and members. Members are combined by adding their
/// hashes, so the order a target lists them in does not matter and no sort is needed (a group
/// fingerprint covers up to hundreds of thousands of members).
#[must_use]
pub fn group(g: &Group, members: &[u32], target: &Indexed) -> String {
    let sum = members.iter().fold(0u64, |acc, &m| {
        acc.wrapping_add(word_hash(target.key(m).as_bytes()))
    });
    let mut h = Sha256::new();
    h.update(g.name.as_bytes());
    h.update([0]);
    h.update(g.id.as_deref().unwrap_or("").as_bytes());
    h.update([0]);
    h.update((members.len() as u64).to_le_bytes());
    h.update(sum.to_le_bytes());
    short(&h.finalize())
}

/// A fixed 64-bit hash (FxHash's multiply-rotate, a word at a time, then a final mix), written out
/// here so that fingerprints agree across idsync builds and crate versions.
fn word_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

fn short(digest: &[u8]) -> String {
    crate::config::hex_digest(&digest[..12])
}

/// The target user a fingerprint name's reference (`user:REF`: SCIM id, or key) points at.
fn user_by_reference(target: &Indexed, ids: &HashMap<&str, u32>, reference: &str) -> Option<u32> {
    ids.get(reference)
        .copied()
        .or_else(|| target.find(reference))
}

/// Recomputes, over a fresh target snapshot, every fingerprint a plan recorded.
#[must_use]
pub fn current(recorded: &BTreeMap<String, String>, target: &Indexed) -> BTreeMap<String, String> {
    let groups = target.groups_by_name();
    let ids = ids(target);
    recorded
        .keys()
        .map(|name| {
            let fp = if let Some(reference) = name.strip_prefix("user:") {
                user_by_reference(target, &ids, reference)
                    .map_or_else(|| ABSENT.to_string(), |i| user(target.user(i)))
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

fn ids(target: &Indexed) -> HashMap<&str, u32> {
    target
        .snapshot
        .users
        .iter()
        .enumerate()
        .filter_map(|(i, u)| {
            u.id.as_deref()
                .map(|id| (id, u32::try_from(i).expect("few users")))
        })
        .collect()
}

/// What changed between the recorded and the current fingerprints, one line per object, leaving out
/// the objects in `expected` (those a resumed apply had already started to change).
#[must_use]
pub fn changes(
    recorded: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
    target: &Indexed,
    expected: &HashSet<String>,
) -> Vec<String> {
    let ids = ids(target);
    recorded
        .iter()
        .filter(|(name, _)| !expected.contains(name.as_str()))
        .filter_map(|(name, was)| {
            let now = current.get(name).map_or(ABSENT, String::as_str);
            if now == was {
                return None;
            }
            let (kind, reference) = name.split_once(':').unwrap_or(("object", name));
            // Name users by email where the reference is a SCIM id.
            let id = match user_by_reference(target, &ids, reference).filter(|_| kind == "user") {
                Some(i) if target.key(i) != reference => {
                    format!("{} (id {reference})", target.key(i))
                }
                _ => reference.to_string(),
            };
            Some(match (was.as_str(), now) {
                (ABSENT, _) => {
                    format!("{kind} {id} now exists (it did not when the plan was made)")
                }
                (_, ABSENT) => format!("{kind} {id} no longer exists"),
                _ => format!("{kind} {id} changed"),
            })
        })
        .collect()
}
