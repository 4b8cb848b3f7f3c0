//! Identity-provider connectors. Each reads one IdP into a [`Snapshot`]; a source can only read.
//!
//! Adding a connector: a folder here (its `config.rs` with the settings and their checks, and a
//! `mod.rs` with a type implementing [`Source`] and its `build`), one line in the connector list
//! below, a fake dialect in crates/fakes and a row in tests/conformance.rs (docs/ARCHITECTURE.md).

use std::path::Path;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::secret::{self, Secret, SecretError};
use crate::config::{Diagnostic, KeyPath};
use crate::http::HttpError;
use crate::model::{LeftOut, People, Resolving, Snapshot};
use crate::snapshot_file::SnapshotFileError;

/// The connector list. Each line names a connector's folder, its config type, its `SourceConfig`
/// variant (whose doc comment the config schema shows) and its `type:` name; the config file's
/// `sources` union, [`SOURCE_TYPES`], [`build`] and the per-connector checks are derived from it.
macro_rules! connectors {
    ($($(#[$attr:meta])* $variant:ident($module:ident::$config:ident) = $type_name:literal,)*) => {
        $(pub mod $module;)*

        /// An identity-provider connector.
        #[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "type", rename_all = "lowercase")]
        pub enum SourceConfig {
            $($(#[$attr])* $variant($module::config::$config),)*
        }

        impl SourceConfig {
            /// The source's name, used to qualify its group names (`name:Group`).
            #[must_use]
            pub fn name(&self) -> &str {
                match self {
                    $(SourceConfig::$variant(c) => &c.name,)*
                }
            }

            /// The connector type, as `type:` spells it in the config.
            #[must_use]
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(SourceConfig::$variant(_) => $type_name,)*
                }
            }

            /// The connector's own checks (URLs, credentials, page sizes…).
            pub(crate) fn check(&self, path: &KeyPath, diags: &mut Vec<Diagnostic>) {
                match self {
                    $(SourceConfig::$variant(c) => $module::config::check(c, path, diags),)*
                }
            }
        }

        /// The `type:` names of the source connectors this build has.
        pub const SOURCE_TYPES: &[&str] = &[$($type_name),*];

        /// Builds the connector a source config describes, resolving its credentials.
        ///
        /// # Errors
        /// A credential that cannot be read.
        pub fn build(config: &SourceConfig, config_dir: &Path) -> Result<Box<dyn Source>, SourceError> {
            match config {
                $(SourceConfig::$variant(c) => $module::build(c, config_dir),)*
            }
        }
    };
}

connectors! {
    /// A snapshot file (YAML or JSON, by extension) standing in for an identity provider.
    File(file::FileSourceConfig) = "file",
    /// Okta, through its Management API.
    Okta(okta::OktaSourceConfig) = "okta",
    /// Microsoft Entra ID (Azure AD), through Microsoft Graph.
    Entra(entra::EntraSourceConfig) = "entra",
    /// Google Workspace, through the Admin SDK Directory API.
    Google(google::GoogleSourceConfig) = "google",
    /// Keycloak, through its Admin REST API.
    Keycloak(keycloak::KeycloakSourceConfig) = "keycloak",
    /// OneLogin, through its API (v2 users and roles, v1 groups).
    #[serde(rename = "onelogin")]
    OneLogin(onelogin::OneLoginSourceConfig) = "onelogin",
    /// Any SCIM 2.0 service provider an IdP exposes (PingFederate and others), read-only.
    Scim(scim::ScimSourceConfig) = "scim",
}

pub use entra::{thumbprint, EntraCredential, EntraSource};
pub use file::FileSource;
pub use google::GoogleSource;
pub use keycloak::KeycloakSource;
pub use okta::{OktaAuth, OktaSource};
pub use onelogin::OneLoginSource;
pub use scim::ScimSource;

/// Why a source could not be read. A failed read aborts the plan: it never means "these users are gone".
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    File(#[from] SnapshotFileError),
    #[error(transparent)]
    Http(Box<HttpError>),
    #[error(transparent)]
    Credential(#[from] SecretError),
    #[error("{0}")]
    Invalid(String),
}

impl From<HttpError> for SourceError {
    fn from(e: HttpError) -> Self {
        SourceError::Http(Box::new(e))
    }
}

/// An identity provider, read-only.
#[async_trait]
pub trait Source: Send + Sync {
    /// The configured name; qualifies the source's group names.
    fn name(&self) -> &str;
    /// Reads every user and group, completely, or fails.
    async fn snapshot(&self) -> Result<Snapshot, SourceError>;
    /// Reads only what concerns these people (see [`Snapshot::restrict_to`] for the shape: their
    /// records, every group with members cut to them). A connector with per-person endpoints
    /// overrides this to avoid a full read; the default reads everything and cuts it down.
    async fn snapshot_people(&self, people: &People) -> Result<Snapshot, SourceError> {
        Ok(self.snapshot().await?.restrict_to(people))
    }
    /// The snapshot as a plan reads it: users indexed and group members resolved to them (see
    /// [`Resolving`]). The default resolves [`Source::snapshot`] once read; a snapshot file
    /// resolves its members as it parses them, never holding a string per membership.
    async fn snapshot_resolving(&self) -> Result<Resolving, SourceError> {
        let snap = self.snapshot().await?;
        Ok(tokio::task::spawn_blocking(move || Resolving::of(snap))
            .await
            .expect("indexing does not panic"))
    }
    /// The documented rate budgets a read like the one that produced `snapshot` spends, with the
    /// requests it sends against each (from the connector's request formula). `apply` reads the
    /// sources again, so the plan's cost estimate includes the time they need. None by default:
    /// an API without a documented budget (Keycloak, Graph's are far above a read, SCIM).
    fn rate_budgets(&self, _read: &crate::model::Indexed) -> Vec<crate::model::RateBudget> {
        Vec::new()
    }
}

/// Pages of `n` items at `page` a page, at least one (the first page is asked even when empty).
#[must_use]
pub(crate) fn pages(n: usize, page: usize) -> u64 {
    n.div_ceil(page.max(1)).max(1) as u64
}

/// Member listing pages of every group of a read, at `page` a page.
#[must_use]
pub(crate) fn member_pages(read: &crate::model::Indexed, page: usize) -> u64 {
    read.members.iter().map(|m| pages(m.len(), page)).sum()
}

/// Model groups from an IdP's group listing and, per group, its member objects (each with the IdP's
/// user `id`): members become the emails of the listed users, each once. A member that is not
/// among the listed users is recorded in `left_out`, never dropped silently.
#[must_use]
pub fn groups_from_listings(
    users: &[crate::model::User],
    listed: Vec<(String, String)>,
    members: Vec<Vec<serde_json::Value>>,
    stranger: &str,
    left_out: &mut Vec<LeftOut>,
) -> Vec<crate::model::Group> {
    let email_of: std::collections::HashMap<&str, &str> = users
        .iter()
        .filter_map(|u| u.id.as_deref().map(|id| (id, u.email.as_str())))
        .collect();
    // Users already left out (no email, …) are named once, as users, not again per group.
    let known_left_out: std::collections::HashSet<String> = left_out
        .iter()
        .filter(|l| l.kind == crate::model::LeftOutKind::User)
        .filter_map(|l| l.id.clone())
        .collect();
    listed
        .into_iter()
        .zip(members)
        .map(|((id, name), ms)| {
            let mut members = Vec::with_capacity(ms.len());
            let mut strangers = std::collections::BTreeSet::new();
            for m in &ms {
                let mid = m.get("id").and_then(id_text);
                match mid.as_deref().and_then(|i| email_of.get(i)) {
                    Some(e) => members.push((*e).to_string()),
                    None if mid.as_deref().is_some_and(|i| known_left_out.contains(i)) => {}
                    None => {
                        let mid = mid.map(std::borrow::Cow::into_owned);
                        if strangers.insert(mid.clone()) {
                            let (label, email) = member_label(m);
                            left_out.push(LeftOut::member(&name, mid, &label, email, stranger));
                        }
                    }
                }
            }
            // A user reachable through two nested groups counts once.
            members.sort();
            members.dedup();
            crate::model::Group {
                name,
                id: Some(id),
                members,
            }
        })
        .collect()
}

/// How a person recognizes a member object, and its email when it has one: Okta nests them in
/// `profile`, Graph has `mail` and `userPrincipalName`, others `email` and `username`.
#[must_use]
pub fn member_label(m: &serde_json::Value) -> (String, Option<String>) {
    let text = |p: &str| present(m.pointer(p)).map(String::from);
    let email = text("/email")
        .or_else(|| text("/profile/email"))
        .or_else(|| text("/mail"));
    let label = email
        .clone()
        .or_else(|| text("/profile/login"))
        .or_else(|| text("/userPrincipalName"))
        .or_else(|| text("/username"))
        .or_else(|| text("/displayName"))
        .or_else(|| text("/name"))
        .or_else(|| {
            m.get("id")
                .and_then(id_text)
                .map(std::borrow::Cow::into_owned)
        })
        .unwrap_or_else(|| "(no name)".into());
    (label, email)
}

/// A JSON value as present text: `null`, a missing key, a non-string and a blank string are all
/// absent, so a fallback applies to each of them alike. Present text is returned as it is.
#[must_use]
pub fn present(v: Option<&serde_json::Value>) -> Option<&str> {
    v.and_then(serde_json::Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

pub use crate::rules::GroupRef;

/// Narrows a group listing (`(id, name)`) to the configured groups, when any are configured. Each
/// configured entry is a name or `id:ID`; with `fold_case`, names compare without regard to case
/// (Google's group emails). `place` says where the groups live and how they are named, for the
/// error.
///
/// # Errors
/// A configured group the listing lacks, or a name that several listed groups share (the error
/// lists them with their ids).
pub fn keep_configured(
    listed: &mut Vec<(String, String)>,
    wanted: &[String],
    fold_case: bool,
    place: &str,
) -> Result<(), SourceError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let same = |a: &str, b: &str| {
        if fold_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let mut keep = vec![false; listed.len()];
    for w in wanted {
        let hits: Vec<usize> = match GroupRef::parse(w) {
            GroupRef::Id(id) => {
                let by_id: Vec<usize> = (0..listed.len()).filter(|&i| listed[i].0 == id).collect();
                if by_id.is_empty() {
                    // A group whose name starts with `id:`.
                    (0..listed.len())
                        .filter(|&i| same(&listed[i].1, w))
                        .collect()
                } else {
                    by_id
                }
            }
            GroupRef::Name(n) => (0..listed.len())
                .filter(|&i| same(&listed[i].1, n))
                .collect(),
        };
        match hits.as_slice() {
            [] => {
                return Err(SourceError::Invalid(format!(
                    "the configured group {w:?} does not exist {place}"
                )))
            }
            [one] => keep[*one] = true,
            many => {
                let groups: Vec<(&str, &str)> = many
                    .iter()
                    .map(|&i| (listed[i].0.as_str(), listed[i].1.as_str()))
                    .collect();
                return Err(SourceError::Invalid(ambiguous_configured(
                    w, &groups, place,
                )));
            }
        }
    }
    let mut i = 0;
    listed.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    Ok(())
}

/// The error for a configured `groups:` name that several groups share.
#[must_use]
pub fn ambiguous_configured(wanted: &str, groups: &[(&str, &str)], place: &str) -> String {
    let list = groups
        .iter()
        .map(|(id, name)| format!("{name:?} (id {id})"))
        .collect::<Vec<_>>()
        .join(", ");
    let first = groups.first().map_or("ID", |(id, _)| id);
    format!(
        "the configured group {wanted:?} names {} groups {place}: {list}; name the one to read by its id in `groups:`, e.g. \"id:{first}\"",
        groups.len()
    )
}

/// Each listed group's members, `concurrency` groups at a time, in the order of `ids`; `fetch`
/// reads one group's members. Connectors start this as soon as their groups are known, alongside
/// the users listing.
///
/// # Errors
/// The first listing that fails.
pub async fn member_listings<F, Fut>(
    ids: Vec<String>,
    concurrency: usize,
    fetch: F,
) -> Result<Vec<Vec<serde_json::Value>>, HttpError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<serde_json::Value>, HttpError>>,
{
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    stream::iter(ids.into_iter().map(fetch))
        .buffered(concurrency)
        .try_collect()
        .await
}

/// The records `fetch` reads one key at a time (a targeted read's people by id or email),
/// `concurrency` at a time, in the order of `keys`. A key the server answers 404 for names nobody
/// there and gives no record: a targeted read asks for people who may not exist on this side.
///
/// # Errors
/// The first read that fails otherwise.
pub(crate) async fn found_by_key<F, Fut>(
    keys: impl IntoIterator<Item = String>,
    concurrency: usize,
    fetch: F,
) -> Result<Vec<serde_json::Value>, HttpError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, HttpError>>,
{
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let found: Vec<Option<serde_json::Value>> = stream::iter(keys.into_iter().map(|k| {
        let read = fetch(k);
        async move {
            match read.await {
                Ok(v) => Ok(Some(v)),
                Err(e) if e.status() == Some(404) => Ok(None),
                Err(e) => Err(e),
            }
        }
    }))
    .buffered(concurrency.max(1))
    .try_collect()
    .await?;
    Ok(found.into_iter().flatten().collect())
}

/// The end of a targeted read (`snapshot_people`): the people found, converted as the full read
/// converts them (a record that cannot be is left out, named), the listed groups with the members
/// the people's own group listings give, and the snapshot cut to the people.
pub(crate) fn people_snapshot(
    found: &[serde_json::Value],
    convert: impl Fn(&serde_json::Value) -> Result<crate::model::User, Box<LeftOut>>,
    listed: Vec<(String, String)>,
    members: Vec<Vec<serde_json::Value>>,
    stranger: &str,
    mut skipped: Vec<LeftOut>,
    people: &People,
) -> Snapshot {
    let users: Vec<crate::model::User> = found
        .iter()
        .filter_map(|v| convert(v).map_err(|l| skipped.push(*l)).ok())
        .collect();
    let groups = groups_from_listings(&users, listed, members, stranger, &mut skipped);
    Snapshot {
        users,
        groups,
        verified_domains: None,
        skipped,
    }
    .restrict_to(people)
}

/// For each listed group, the member objects (`{"id"}`) that the per-person group listings name
/// (person id -> that person's groups): the member listings a full read would have cut to them.
pub fn member_objects(
    listed: &[(String, String)],
    memberships: &[(String, Vec<serde_json::Value>)],
) -> Vec<Vec<serde_json::Value>> {
    listed
        .iter()
        .map(|(gid, _)| {
            memberships
                .iter()
                .filter(|(_, gs)| {
                    gs.iter()
                        .any(|g| g.get("id").and_then(id_text).as_deref() == Some(gid.as_str()))
                })
                .map(|(uid, _)| serde_json::json!({ "id": uid }))
                .collect()
        })
        .collect()
}

/// A path segment, percent-encoded (an id or email in a per-person URL): everything but RFC 3986's
/// unreserved characters.
#[must_use]
pub fn seg(id: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(id, UNRESERVED).to_string()
}

/// An IdP object id as text: a string, or a number (OneLogin).
#[must_use]
pub fn id_text(v: &serde_json::Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        serde_json::Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        serde_json::Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// Reads a credential the config gives inline or as a file.
fn read_secret(
    key: &str,
    inline: Option<&String>,
    file: Option<&std::path::PathBuf>,
    config_dir: &Path,
) -> Result<Secret, SourceError> {
    Ok(secret::resolve(
        key,
        inline.map(String::as_str),
        file.map(std::path::PathBuf::as_path),
        config_dir,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_segment_keeps_only_unreserved_characters() {
        assert_eq!(seg("a.B-c_d~9"), "a.B-c_d~9");
        assert_eq!(seg("ann+1@ex ample.com/x"), "ann%2B1%40ex%20ample.com%2Fx");
        assert_eq!(seg("zoë"), "zo%C3%AB");
    }

    fn listed() -> Vec<(String, String)> {
        [("g1", "Eng"), ("g2", "Eng"), ("g3", "Ops")]
            .iter()
            .map(|(i, n)| ((*i).to_string(), (*n).to_string()))
            .collect()
    }

    #[test]
    fn configured_groups_by_name_or_id() {
        let mut l = listed();
        keep_configured(&mut l, &["id:g2".into(), "ops".into()], true, "here").unwrap();
        assert_eq!(
            l,
            vec![("g2".into(), "Eng".into()), ("g3".into(), "Ops".into())]
        );
        let mut l = listed();
        let e = keep_configured(&mut l, &["Eng".into()], false, "here").unwrap_err();
        assert!(
            e.to_string().contains("\"Eng\" (id g1), \"Eng\" (id g2)"),
            "{e}"
        );
        assert!(e.to_string().contains("\"id:g1\""), "{e}");
        let e = keep_configured(&mut l, &["ops".into()], false, "here").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the configured group \"ops\" does not exist here"
        );
    }

    #[test]
    fn members_that_are_not_listed_users_are_named_once() {
        let mut ana = crate::model::User::new("ana@x.com");
        ana.id = Some("u1".into());
        let mut left_out = vec![LeftOut::user(Some("u7".into()), "kiosk", None, "no email")];
        let members = vec![vec![
            serde_json::json!({"id": "u1"}),
            serde_json::json!({"id": "u7", "username": "kiosk"}),
            serde_json::json!({"id": "x1", "email": "vic@y.com"}),
            serde_json::json!({"id": "x1", "email": "vic@y.com"}),
        ]];
        let groups = groups_from_listings(
            &[ana],
            vec![("g1".into(), "Eng".into())],
            members,
            "a stranger",
            &mut left_out,
        );
        assert_eq!(groups[0].members, vec!["ana@x.com"]);
        assert_eq!(left_out.len(), 2, "u7 is already named as a user; x1 once");
        assert_eq!(left_out[1].label(), "vic@y.com (id x1) in Eng");
        assert_eq!(left_out[1].email.as_deref(), Some("vic@y.com"));
    }
}
