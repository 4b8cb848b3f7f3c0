//! `type: scim` as a source, through the shared SCIM client in [`crate::scim`].

pub mod config;

use async_trait::async_trait;

use self::config::ScimSourceConfig;
use super::{Source, SourceError};
use crate::model::{LeftOut, Snapshot};

/// `type: scim` as a source: users and groups of any SCIM 2.0 service provider, read with the same
/// client as the SCIM target (pages of `page_size`, members from the group listing). The SCIM `id` is
/// the user's immutable id, carried to Atlassian as `externalId`; `active: false` is inactive.
/// A targeted read (`snapshot_people`) keeps the trait's default (the full read, cut down): a person
/// is looked up here by their SCIM `id`, which generic SCIM filters do not all support.
#[derive(Debug)]
pub struct ScimSource {
    name: String,
    dir: crate::scim::ScimDirectory,
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

/// Builds the connector its config describes, resolving its credentials.
///
/// # Errors
/// A credential that cannot be read, or settings that name no server.
pub(crate) fn build(
    s: &ScimSourceConfig,
    config_dir: &std::path::Path,
) -> Result<Box<dyn Source>, SourceError> {
    let read = |key: &str, inline: Option<&String>, file: Option<&std::path::PathBuf>| {
        super::read_secret(key, inline, file, config_dir)
    };
    Ok({
        let auth =
            crate::http::Auth::Bearer(read("token", s.token.as_ref(), s.token_file.as_ref())?);
        let dir = crate::scim::ScimDirectory::new(
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
    })
}
