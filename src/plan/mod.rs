//! The plan: a versioned data contract that every rendering draws and `apply` executes.

pub mod action;
mod canonical;
pub mod guard;
pub mod scope;
pub mod stale;
pub mod verify;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use action::{
    Action, ActionError, DeactivateCause, FieldChange, Kind, Member, ReasonCode, UserFields,
};
pub use guard::{Guard, Limit, LimitKind, Overrides};
pub use stale::{GroupState, Preconditions, UserState};

/// Version of the saved-plan format, `MAJOR.MINOR`.
///
/// The rule: a change a reader may ignore (a new field, a new reason code) bumps the minor version; any
/// other change (a field removed, renamed or given another meaning, a new kind of action, cause or
/// guard, a new precondition `apply` must check) bumps the major version and resets the minor. A
/// reader accepts every plan of a major version it knows, whatever the minor, and ignores fields it
/// does not know (the digest still covers them); it refuses a plan of another major version, saying
/// which idsync reads it.
///
/// - 2: per-action preconditions instead of whole-record fingerprints, a content digest and an
///   optional signature.
/// - 2.1: `created_at`, `sources` (what was read), and a `reason_code` next to every `reason`; the
///   digest covers the plan as a JSON value, with object keys sorted.
/// - 2.2: `scope`, which marks a partial plan (`plan --only-user`/`--only-group`, `sync-user`), and
///   the reason code `email_contested`.
pub const FORMAT_VERSION: &str = "2.2";

/// The major version of [`FORMAT_VERSION`]: the plans this idsync reads.
pub const FORMAT_MAJOR: u64 = 2;

/// The minor version of [`FORMAT_VERSION`].
pub const FORMAT_MINOR: u64 = 2;

/// A `format_version` as `(major, minor)`: `"2"` is 2.0. `None` when it is not `N` or `N.N`.
#[must_use]
pub fn parse_format_version(v: &str) -> Option<(u64, u64)> {
    let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some((num(major)?, num(minor)?))
}

/// A reviewable set of changes to one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "idsync plan")]
pub struct Plan {
    /// Saved-plan format version, `MAJOR.MINOR` (`2` reads as 2.0). A change a reader may ignore (a
    /// new field, a new reason code) bumps the minor version; any other change bumps the major. A
    /// reader accepts every plan of a major version it knows and ignores the fields it does not know;
    /// it refuses a plan of another major version, saying which idsync made it.
    pub format_version: String,
    /// The idsync that made the plan.
    pub idsync_version: String,
    /// When the plan was made (RFC 3339, UTC): the moment grace periods were measured from,
    /// `IDSYNC_NOW` when set. Absent in plans of format 2.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// SHA-256 of the config file the plan was made from; apply refuses a plan whose config changed.
    pub config_hash: String,
    /// The target the plan changes.
    pub target: String,
    /// The sources read, in the config's order, with what each held. Absent in plans of format 2.0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceRead>,
    /// Present only in a partial plan: what it was cut to (`plan --only-user`/`--only-group`,
    /// `sync-user`) and what it leaves out. Such a plan changes only what touches those users and
    /// groups, and "no changes" in it does not mean the target has no drift. Format 2.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<scope::Scope>,
    pub summary: Summary,
    pub guard: Guard,
    /// The further guards (`max_updates`, `max_membership_removals`, per group): the plan-wide
    /// readings, and a per-group reading for each group that trips its limit.
    #[serde(default)]
    pub guards: Vec<Limit>,
    /// In application order: kind, then user key or group name, then batch.
    pub actions: Vec<Action>,
    /// Things a reviewer should know that change nothing (conflicts between sources, big groups, …).
    pub warnings: Vec<String>,
    /// Problems that stop the plan from being applied (a group above `limits.max_group_size`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocking: Vec<String>,
    /// Users a rule kept from being changed, with the rule and what would have happened.
    pub skipped: Vec<Skipped>,
    /// What each action relies on in the target, as it was when the plan was made: the identity it
    /// matched and the fields it changes; memberships and the groups' existence; the last-active date of
    /// a deactivation decided by `cleanup.grace_days`. `apply` checks exactly these, and refuses a plan
    /// with an action whose preconditions are not recorded.
    pub preconditions: Preconditions,
    /// What applying the plan costs in requests and time; absent for a target that makes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// SHA-256 of the plan's content (everything but `digest` and `signature`, serialized compactly);
    /// `apply` refuses a plan that does not hash to it. It catches accidental edits; the signature and
    /// the checks against a fresh plan catch deliberate ones.
    #[serde(default)]
    pub digest: String,
    /// `hmac-sha256:HEX`, an HMAC-SHA256 of the same content keyed with `IDSYNC_PLAN_KEY`, when that
    /// was set when the plan was made; with the key set, `apply` accepts only plans signed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Why a saved plan's seal does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("its content does not match its digest: it was edited after it was made")]
    Digest,
    #[error(
        "it is not signed, and IDSYNC_PLAN_KEY is set: only plans signed with that key are applied"
    )]
    Unsigned,
    #[error(
        "its signature does not match IDSYNC_PLAN_KEY: it was made with another key, or edited"
    )]
    BadSignature,
}

/// The environment variable holding the key plans are signed with.
pub const KEY_VAR: &str = "IDSYNC_PLAN_KEY";

/// The requests `apply` will make (before retries) and how long they should take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Cost {
    pub requests: u64,
    /// Requests in flight at once (`http.max_concurrency`).
    pub concurrency: usize,
    /// The expected duration: the larger of the time at about 250 ms per request, `concurrency`
    /// at a time, and the least time the rate budget in `bound_by` allows.
    pub expected_seconds: u64,
    /// The documented rate budget that bounds the time, when one needs more time than the
    /// requests' latency: of the budgets apply spends (the target's writes, and the sources'
    /// reads, which `apply` makes again to check the plan still holds), the one that needs most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_by: Option<crate::model::RateBudget>,
}

/// Typical latency of one write to a cloud API, for the estimate.
const TYPICAL_REQUEST_MS: u64 = 250;

impl Cost {
    #[must_use]
    pub fn estimate(requests: u64, concurrency: usize) -> Cost {
        Cost::bounded(requests, concurrency, Vec::new())
    }

    /// The estimate with the rate budgets it spends: the larger of the latency-bound time and
    /// the time the slowest budget needs (each budget is spent side by side with the others).
    #[must_use]
    pub fn bounded(
        requests: u64,
        concurrency: usize,
        budgets: Vec<crate::model::RateBudget>,
    ) -> Cost {
        let mut cost = Cost {
            requests,
            concurrency,
            expected_seconds: 0,
            bound_by: None,
        };
        let latency = cost.latency_seconds();
        cost.bound_by = budgets
            .into_iter()
            .max_by_key(crate::model::RateBudget::min_seconds)
            .filter(|b| b.min_seconds() > latency);
        cost.expected_seconds = cost
            .bound_by
            .as_ref()
            .map_or(latency, crate::model::RateBudget::min_seconds);
        cost
    }

    /// The time at about 250 ms per request, `concurrency` at a time.
    #[must_use]
    pub fn latency_seconds(&self) -> u64 {
        let width = self.concurrency.max(1) as u64;
        (self.requests * TYPICAL_REQUEST_MS).div_ceil(width * 1000)
    }
}

/// A user left alone by a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Skipped {
    pub key: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
    pub reason_code: ReasonCode,
}

/// One source as it was read for the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SourceRead {
    /// The source's name in the config.
    pub name: String,
    /// Its connector type (`okta`, `entra`, `google`, `keycloak`, `onelogin`, `scim`, `file`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Users read.
    pub users: usize,
    /// Groups read.
    pub groups: usize,
    /// Records the source holds but left out (users without an email, group members that are not
    /// users, …); the plan's warnings name them.
    pub left_out: usize,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Counts of what the plan does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub create_user: usize,
    pub link_user: usize,
    pub update_user: usize,
    pub reactivate_user: usize,
    pub deactivate_user: usize,
    pub create_group: usize,
    pub members_added: usize,
    pub members_removed: usize,
    /// Accounts whose API tokens are revoked.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revoke_api_tokens: usize,
    /// Users changed + groups created + memberships changed.
    pub total_changes: usize,
    /// Membership actions (batches).
    pub membership_batches: usize,
}

impl Summary {
    #[must_use]
    pub fn of(actions: &[Action]) -> Summary {
        let mut s = Summary::default();
        for a in actions {
            match a {
                Action::CreateUser { .. } => s.create_user += 1,
                Action::LinkUser { .. } => s.link_user += 1,
                Action::UpdateUser { .. } => s.update_user += 1,
                Action::ReactivateUser { .. } => s.reactivate_user += 1,
                Action::DeactivateUser { .. } => s.deactivate_user += 1,
                Action::CreateGroup { .. } => s.create_group += 1,
                Action::AddMembers { members, .. } => {
                    s.members_added += members.len();
                    s.membership_batches += 1;
                }
                Action::RemoveMembers { members, .. } => {
                    s.members_removed += members.len();
                    s.membership_batches += 1;
                }
                Action::RevokeApiTokens { .. } => s.revoke_api_tokens += 1,
            }
        }
        s.total_changes = s.create_user
            + s.link_user
            + s.update_user
            + s.reactivate_user
            + s.deactivate_user
            + s.create_group
            + s.members_added
            + s.members_removed
            + s.revoke_api_tokens;
        s
    }

    /// The count for one kind (members for membership kinds).
    #[must_use]
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::CreateUser => self.create_user,
            Kind::LinkUser => self.link_user,
            Kind::CreateGroup => self.create_group,
            Kind::AddMembers => self.members_added,
            Kind::UpdateUser => self.update_user,
            Kind::ReactivateUser => self.reactivate_user,
            Kind::RemoveMembers => self.members_removed,
            Kind::DeactivateUser => self.deactivate_user,
            Kind::RevokeApiTokens => self.revoke_api_tokens,
        }
    }
}

impl Plan {
    /// Whether the plan is partial (cut to `scope`).
    #[must_use]
    pub fn is_partial(&self) -> bool {
        self.scope.is_some()
    }

    /// The further guards that stop the plan (tripped and not overridden).
    pub fn blocking_limits(&self) -> impl Iterator<Item = &Limit> {
        self.guards.iter().filter(|l| l.blocks())
    }

    /// Whether the plan changes anything.
    #[must_use]
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
    }

    /// The JSON Schema of a saved plan.
    #[must_use]
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Plan)).expect("schema serializes")
    }

    /// Sorts actions into application order and recomputes the summary. The plan still needs its
    /// [`seal`](Plan::seal).
    pub fn finish(&mut self) {
        self.actions.sort_by(|a, b| {
            (a.kind(), a.subject(), a.batch()).cmp(&(b.kind(), b.subject(), b.batch()))
        });
        self.summary = Summary::of(&self.actions);
    }

    /// Whether the plan is of format 2.0, sealed over its typed form (see [`Plan::content`]).
    fn sealed_as_2_0(&self) -> bool {
        parse_format_version(&self.format_version) == Some((2, 0))
    }

    /// The canonical content the digest and the signature cover: the plan without them, as compact
    /// JSON with the object keys sorted at every level (see [`canonical_content`]). A plan of format
    /// 2.0 was sealed over its typed form instead (field order is the types'); that is kept for it.
    fn content(&mut self) -> Vec<u8> {
        if self.sealed_as_2_0() {
            let digest = std::mem::take(&mut self.digest);
            let signature = self.signature.take();
            let content = serde_json::to_vec(&*self).expect("plans serialize");
            self.digest = digest;
            self.signature = signature;
            return content;
        }
        let mut out = Vec::new();
        canonical::write(&*self, &["digest", "signature"], &mut out).expect("plans serialize");
        out
    }

    /// Records the digest and, with a key, the signature.
    pub fn seal(&mut self, key: Option<&[u8]>) {
        let seal = self.seal_of(key);
        self.set_seal(seal);
    }

    /// The digest and, with a key, the signature this plan is sealed with, computed without changing
    /// it (so that another thread may write the plan out meanwhile, see
    /// [`Plan::with_seal_placeholders`]).
    #[must_use]
    pub fn seal_of(&self, key: Option<&[u8]>) -> Seal {
        if self.sealed_as_2_0() {
            let content = self.clone().content();
            return Seal {
                digest: crate::digest::sha256_hex(&content),
                signature: key.map(|k| sign(k, &content)),
            };
        }
        // Streamed into the digest (and the signature): at scale the content is hundreds of MB.
        let mut sealer = Sealer {
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            mac: key.map(|k| {
                ring::hmac::Context::with_key(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k))
            }),
        };
        let mut buffered = std::io::BufWriter::with_capacity(1 << 16, &mut sealer);
        canonical::write(self, &["digest", "signature"], &mut buffered).expect("plans serialize");
        buffered
            .into_inner()
            .map_err(|_| ())
            .expect("hashing does not fail");
        Seal {
            digest: crate::digest::hex(sealer.digest.finish().as_ref()),
            signature: sealer
                .mac
                .map(|m| format!("hmac-sha256:{}", crate::digest::hex(m.sign().as_ref()))),
        }
    }

    /// Puts a seal in place.
    pub fn set_seal(&mut self, seal: Seal) {
        self.digest = seal.digest;
        self.signature = seal.signature;
    }

    /// Puts placeholders where the seal goes, of the seal's length (`signed`: a signature too), for
    /// writing the plan out while the seal is computed: the seal covers neither field, and once known
    /// it takes the placeholders' place byte for byte.
    pub fn with_seal_placeholders(&mut self, signed: bool) {
        self.set_seal(Seal::placeholder(signed));
    }

    /// Checks the digest and, with a key, the signature, over this value. A plan read from a file is
    /// checked over the file's JSON instead ([`crate::engine::saved_file::Saved::verify_seal`]), which may hold fields
    /// this idsync does not know.
    ///
    /// # Errors
    /// The content does not match the digest, or a key is given and the plan is unsigned or signed
    /// with another key.
    pub fn verify_seal(&self, key: Option<&[u8]>) -> Result<(), SealError> {
        let content = if self.sealed_as_2_0() {
            self.clone().content()
        } else {
            let mut out = Vec::new();
            canonical::write(self, &["digest", "signature"], &mut out).expect("plans serialize");
            out
        };
        check_seal(&content, &self.digest, self.signature.as_deref(), key)
    }
}

/// A plan's digest and signature (see [`Plan::seal`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seal {
    pub digest: String,
    pub signature: Option<String>,
}

impl Seal {
    /// Stands in for a seal of the same length while the real one is computed.
    #[must_use]
    pub fn placeholder(signed: bool) -> Seal {
        Seal {
            digest: "0".repeat(64),
            signature: signed.then(|| format!("hmac-sha256:{}", "0".repeat(64))),
        }
    }
}

/// What a plan's seal covers, from the plan as a JSON value: everything but `digest` and `signature`,
/// compact, object keys sorted at every level, so that a field the reader does not know is covered
/// too.
#[must_use]
pub fn canonical_content(plan: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    match plan {
        serde_json::Value::Object(m) => {
            write_object(m, &["digest", "signature"], &mut out);
        }
        other => write_canonical(other, &mut out),
    }
    out
}

fn write_object(m: &serde_json::Map<String, serde_json::Value>, skip: &[&str], out: &mut Vec<u8>) {
    let mut keys: Vec<&String> = m.keys().filter(|k| !skip.contains(&k.as_str())).collect();
    keys.sort();
    out.push(b'{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k).expect("a string serializes");
        out.push(b':');
        write_canonical(&m[k], out);
    }
    out.push(b'}');
}

fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    match v {
        serde_json::Value::Object(m) => write_object(m, &[], out),
        serde_json::Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a JSON value serializes"),
    }
}

/// Feeds the canonical content to the digest and, with a key, the signature.
struct Sealer {
    digest: ring::digest::Context,
    mac: Option<ring::hmac::Context>,
}

impl std::io::Write for Sealer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.digest.update(buf);
        if let Some(m) = &mut self.mac {
            m.update(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `hmac-sha256:HEX` over `content`.
pub(crate) fn sign(key: &[u8], content: &[u8]) -> String {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), content);
    format!("hmac-sha256:{}", crate::digest::hex(tag.as_ref()))
}

/// Checks a digest and, with a key, a signature over `content`.
pub(crate) fn check_seal(
    content: &[u8],
    digest: &str,
    signature: Option<&str>,
    key: Option<&[u8]>,
) -> Result<(), SealError> {
    if crate::digest::sha256_hex(content) != digest {
        return Err(SealError::Digest);
    }
    let Some(key) = key else {
        return Ok(());
    };
    let sig = signature.ok_or(SealError::Unsigned)?;
    let tag = sig
        .strip_prefix("hmac-sha256:")
        .and_then(unhex)
        .ok_or(SealError::BadSignature)?;
    ring::hmac::verify(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        content,
        &tag,
    )
    .map_err(|_| SealError::BadSignature)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(requests: u64, per: u64, window_secs: u64) -> crate::model::RateBudget {
        crate::model::RateBudget {
            what: "source g: a quota".into(),
            requests,
            per,
            window_secs,
        }
    }

    #[test]
    fn a_rate_budget_bounds_the_estimate_only_when_it_needs_more_time() {
        // At the budget's steady rate.
        assert_eq!(budget(1_046, 2_400, 60).min_seconds(), 26);
        assert_eq!(budget(10_000, 2_400, 60).min_seconds(), 250);
        assert_eq!(budget(15_000, 5_000, 3_600).min_seconds(), 10_800);
        assert_eq!(budget(5, 0, 60).min_seconds(), 0);
        // 100 writes, 4 at a time: 7 s of latency; a re-read of 10,000 queries at 2,400 a minute
        // needs 250 s, and bounds the estimate.
        let c = Cost::bounded(
            100,
            4,
            vec![budget(10, 2_400, 60), budget(10_000, 2_400, 60)],
        );
        assert_eq!((c.latency_seconds(), c.expected_seconds), (7, 250));
        assert_eq!(c.bound_by.as_ref().map(|b| b.requests), Some(10_000));
        let line = crate::render::cost_text(&c);
        assert!(line.contains("at least 250 s, bound by a rate budget (source g: a quota: 10000 request(s) at 2400 per a minute)"), "{line}");
        assert!(
            line.contains("latency alone would take about 7 s"),
            "{line}"
        );
        // Budgets that fit in latency's time leave the estimate (and the plan) as before.
        let c = Cost::bounded(1_000, 4, vec![budget(1_046, 2_400, 60)]);
        assert_eq!(c, Cost::estimate(1_000, 4));
        assert_eq!(c.bound_by, None);
    }

    #[test]
    fn format_versions_read_as_major_minor() {
        assert_eq!(parse_format_version("2"), Some((2, 0)));
        assert_eq!(parse_format_version("2.1"), Some((2, 1)));
        assert_eq!(parse_format_version("10.23"), Some((10, 23)));
        for bad in ["", "2.", ".1", "2.1.0", "v2", "two", "2.x", "-1", "+2"] {
            assert_eq!(parse_format_version(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_format_version(FORMAT_VERSION),
            Some((FORMAT_MAJOR, FORMAT_MINOR))
        );
    }

    #[test]
    fn the_seal_covers_every_field_but_itself_whatever_the_key_order() {
        let a: serde_json::Value = serde_json::from_str(
            r#"{"b": {"y": [1, {"d": "x", "c": null}], "x": true}, "a": "é\"", "digest": "d", "signature": "s"}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(canonical_content(&a)).unwrap(),
            r#"{"a":"é\"","b":{"x":true,"y":[1,{"c":null,"d":"x"}]}}"#
        );
        let mut unknown = a.clone();
        unknown["new"] = 1.into();
        assert_ne!(canonical_content(&a), canonical_content(&unknown));
    }

    #[test]
    fn reason_codes_are_written_as_named_and_unknown_ones_are_read() {
        for code in ReasonCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
            assert_eq!(
                serde_json::from_value::<ReasonCode>(code.as_str().into()).unwrap(),
                code
            );
        }
        let later: ReasonCode = serde_json::from_str("\"a_code_from_a_later_minor\"").unwrap();
        assert_eq!(later, ReasonCode::Unknown);
        // A member without a code (format 2.0) reads as unknown, and is written back without one.
        let m: Member = serde_json::from_str(r#"{"key": "a@example.com", "reason": "r"}"#).unwrap();
        assert_eq!(m.reason_code, ReasonCode::Unknown);
        assert!(!serde_json::to_string(&m).unwrap().contains("reason_code"));
        let schema = serde_json::to_string(&Plan::json_schema()).unwrap();
        assert!(
            !schema.contains("\"unknown\""),
            "never written, not in the schema"
        );
        for code in ReasonCode::ALL {
            assert!(
                schema.contains(&format!("\"{}\"", code.as_str())),
                "{code:?}"
            );
        }
    }
}
