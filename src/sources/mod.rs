//! Identity-provider connectors. Each reads one IdP into a [`Snapshot`]; a source can only read.
//!
//! Adding a connector: a file here with a type implementing [`Source`], a variant of
//! [`SourceConfig`], a fake in tests/fakes/, an example, and an entry in the convergence suite.

mod entra;
mod file;
mod google;
mod keycloak;
mod okta;
mod onelogin;

use std::path::Path;

use async_trait::async_trait;

use crate::config::secret::{self, Secret, SecretError};
use crate::config::SourceConfig;
use crate::http::HttpError;
use crate::model::{LeftOut, People, Resolving, Snapshot};
use crate::snapshot_file::SnapshotFileError;

pub use entra::{thumbprint, EntraCredential, EntraSource};
pub use file::FileSource;
pub use google::GoogleSource;
pub use keycloak::KeycloakSource;
pub use okta::{OktaAuth, OktaSource};
pub use onelogin::OneLoginSource;

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

/// How the config names one IdP group: by its immutable id (`id:ID`) or by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupRef<'a> {
    Id(&'a str),
    Name(&'a str),
}

impl<'a> GroupRef<'a> {
    /// Reads a reference as written after the source name (`id:00g1…`, or a name).
    #[must_use]
    pub fn parse(text: &'a str) -> GroupRef<'a> {
        match text.strip_prefix("id:") {
            Some(id) if !id.is_empty() => GroupRef::Id(id),
            _ => GroupRef::Name(text),
        }
    }
}

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

/// An IdP object id as text: a string, or a number (OneLogin).
#[must_use]
pub fn id_text(v: &serde_json::Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        serde_json::Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        serde_json::Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// `type: scim` as a source: users and groups of any SCIM 2.0 service provider, read with the same
/// client as the SCIM target (pages of `page_size`, members from the group listing). The SCIM `id` is
/// the user's immutable id, carried to Atlassian as `externalId`; `active: false` is inactive.
#[derive(Debug)]
pub struct ScimSource {
    name: String,
    dir: crate::target::ScimDirectory,
}

#[async_trait]
impl Source for ScimSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn snapshot(&self) -> Result<Snapshot, SourceError> {
        let mut snap = self.dir.snapshot().await?;
        for u in &mut snap.users {
            // What the provider says of itself, not of Atlassian.
            u.external_id = None;
            u.account_id = None;
        }
        // A user without an email has only its userName to stand for one: unless that is an
        // email, the user is left out, named.
        let mut gone = std::collections::HashSet::new();
        let mut skipped = Vec::new();
        snap.users.retain(|u| {
            if u.email.contains('@') {
                return true;
            }
            gone.insert(u.email.clone());
            skipped.push(LeftOut::user(u.id.clone(), u.user_name(), None, "no email"));
            false
        });
        if !gone.is_empty() {
            for g in &mut snap.groups {
                g.members.retain(|m| !gone.contains(m));
            }
        }
        snap.skipped.splice(0..0, skipped);
        Ok(snap)
    }
}

/// Builds the connector a source config describes, resolving its credentials.
///
/// # Errors
/// A credential that cannot be read.
pub fn build(config: &SourceConfig, config_dir: &Path) -> Result<Box<dyn Source>, SourceError> {
    let read = |key: &str,
                inline: Option<&String>,
                file: Option<&std::path::PathBuf>|
     -> Result<Secret, SourceError> {
        Ok(secret::resolve(
            key,
            inline.map(String::as_str),
            file.map(std::path::PathBuf::as_path),
            config_dir,
        )?)
    };
    Ok(match config {
        SourceConfig::File(f) => Box::new(FileSource::new(
            &f.name,
            crate::config::resolve_path(config_dir, &f.path),
        )),
        SourceConfig::Google(g) => {
            let key = read(
                "service_account_key",
                g.service_account_key.as_ref(),
                g.service_account_key_file.as_ref(),
            )?;
            let (client_email, private_key, token_uri) = google::parse_key(&key)
                .map_err(|m| SourceError::Invalid(format!("google: {m}")))?;
            Box::new(GoogleSource {
                name: g.name.clone(),
                base_url: g.base_url.clone(),
                customer: g.customer.clone(),
                domain: g.domain.clone(),
                admin_email: g.admin_email.clone(),
                client_email,
                private_key,
                token_url: g
                    .token_url
                    .clone()
                    .or(token_uri)
                    .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
                derived_membership: g.include_derived_membership,
                groups: g.groups.clone(),
                settings: g.http.clone(),
            })
        }
        SourceConfig::Keycloak(k) => Box::new(KeycloakSource {
            name: k.name.clone(),
            base_url: k.base_url.clone(),
            realm: k.realm.clone(),
            token_realm: k.token_realm.clone().unwrap_or_else(|| k.realm.clone()),
            client_id: k.client_id.clone(),
            client_secret: read(
                "client_secret",
                k.client_secret.as_ref(),
                k.client_secret_file.as_ref(),
            )?,
            groups: k.groups.clone(),
            page_size: k.page_size,
            settings: k.http.clone(),
        }),
        SourceConfig::OneLogin(o) => Box::new(OneLoginSource {
            name: o.name.clone(),
            base_url: onelogin::base_url(o).ok_or_else(|| {
                SourceError::Invalid(
                    "onelogin: set `subdomain` (or `region`, or `base_url`)".into(),
                )
            })?,
            client_id: o.client_id.clone(),
            client_secret: read(
                "client_secret",
                o.client_secret.as_ref(),
                o.client_secret_file.as_ref(),
            )?,
            roles_as_groups: o.roles_as_groups,
            groups: o.groups.clone(),
            inactive_statuses: o.inactive_statuses.clone(),
            budget_reserve: o.budget_reserve,
            settings: o.http.clone(),
        }),
        SourceConfig::Scim(s) => {
            let auth =
                crate::http::Auth::Bearer(read("token", s.token.as_ref(), s.token_file.as_ref())?);
            let dir = crate::target::ScimDirectory::new(
                "SCIM source",
                &s.base_url,
                auth,
                s.page_size,
                &s.http,
            );
            Box::new(ScimSource {
                name: s.name.clone(),
                dir,
            })
        }
        SourceConfig::Okta(o) => {
            let base = o
                .base_url
                .clone()
                .or_else(|| {
                    o.domain
                        .as_ref()
                        .map(|d| format!("https://{}", d.trim_end_matches('/')))
                })
                .ok_or_else(|| SourceError::Invalid("okta: set `domain` (or `base_url`)".into()))?;
            let auth = match &o.oauth {
                Some(oa) => OktaAuth::OAuth {
                    client_id: oa.client_id.clone(),
                    key: read(
                        "oauth.private_key",
                        oa.private_key.as_ref(),
                        oa.private_key_file.as_ref(),
                    )?,
                    key_id: oa.key_id.clone(),
                    scopes: oa.scopes.clone(),
                },
                None => OktaAuth::ApiToken(read("token", o.token.as_ref(), o.token_file.as_ref())?),
            };
            Box::new(OktaSource::new(
                &o.name,
                &base,
                auth,
                o.groups.clone(),
                o.page_size,
                o.http.clone(),
            ))
        }
        SourceConfig::Entra(e) => {
            let credential = match &e.certificate {
                Some(c) => {
                    let key = read(
                        "certificate.private_key_file",
                        None,
                        Some(&c.private_key_file),
                    )?;
                    let cert = read(
                        "certificate.certificate_file",
                        None,
                        Some(&c.certificate_file),
                    )?;
                    let thumbprint = thumbprint(cert.expose())
                        .map_err(|m| SourceError::Invalid(format!("certificate: {m}")))?;
                    EntraCredential::Certificate { key, thumbprint }
                }
                None => EntraCredential::Secret(read(
                    "client_secret",
                    e.client_secret.as_ref(),
                    e.client_secret_file.as_ref(),
                )?),
            };
            Box::new(EntraSource {
                name: e.name.clone(),
                tenant_id: e.tenant_id.clone(),
                client_id: e.client_id.clone(),
                credential,
                authority: e.authority.clone(),
                graph: e.base_url.clone(),
                version: e.api_version,
                transitive: e.transitive,
                manager: e.manager,
                groups: e.groups.clone(),
                page_size: e.page_size,
                settings: e.http.clone(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
