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
use crate::model::Snapshot;
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
}

/// Model groups from an IdP's group listing and, per group, its member objects (each with the IdP's
/// user `id`): members become the emails of the listed users, each once.
#[must_use]
pub fn groups_from_listings(
    users: &[crate::model::User],
    listed: Vec<(String, String)>,
    members: Vec<Vec<serde_json::Value>>,
) -> Vec<crate::model::Group> {
    let email_of: std::collections::HashMap<&str, &str> = users
        .iter()
        .filter_map(|u| u.id.as_deref().map(|id| (id, u.email.as_str())))
        .collect();
    listed
        .into_iter()
        .zip(members)
        .map(|((id, name), ms)| {
            let mut members: Vec<String> = ms
                .iter()
                .filter_map(|m| m.get("id").and_then(id_text))
                .filter_map(|id| email_of.get(id.as_ref()).map(|e| (*e).to_string()))
                .collect();
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

/// Narrows a group listing (`(id, name)`) to the configured names, when any are configured.
///
/// # Errors
/// The first configured name the listing lacks.
pub fn keep_configured<'w>(
    listed: &mut Vec<(String, String)>,
    wanted: &'w [String],
) -> Result<(), &'w str> {
    if wanted.is_empty() {
        return Ok(());
    }
    if let Some(missing) = wanted.iter().find(|w| !listed.iter().any(|(_, n)| n == *w)) {
        return Err(missing);
    }
    listed.retain(|(_, n)| wanted.contains(n));
    Ok(())
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
