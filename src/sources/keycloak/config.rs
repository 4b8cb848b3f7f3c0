//! `type: keycloak` in the config file: the connector's settings and their checks.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::validate::{check_credential, check_page_size, check_url};
use crate::config::{Diagnostic, KeyPath};

use crate::config::default_page_size;

/// A Keycloak realm: users, the group tree (named by path) and group members.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeycloakSourceConfig {
    /// Names this source; its groups are referred to as `NAME:/Group/Subgroup` in mappings.
    pub name: String,
    /// The server URL, e.g. `https://sso.example.com` (add `/auth` for servers that still use it).
    pub base_url: String,
    /// The realm whose users are read.
    pub realm: String,
    /// The realm that issues the token, when not `realm` (e.g. `master`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_realm: Option<String>,
    /// A confidential client with service accounts enabled.
    pub client_id: String,
    /// Its secret, e.g. `${KEYCLOAK_CLIENT_SECRET}`; or `client_secret_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A file holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// Only these groups have their members read, each by path (e.g. `/Engineering/SRE`) or by
    /// immutable id as `id:ID`; empty: every group. A named group the realm lacks is an error.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Users, groups and members per page (`max`).
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    #[serde(default)]
    pub http: crate::http::HttpSettings,
}

/// The checks a schema cannot express; every problem is added to `diags`.
pub(crate) fn check(k: &KeycloakSourceConfig, path: &KeyPath, diags: &mut Vec<Diagnostic>) {
    check_url(path.key("base_url"), &k.base_url, diags);
    check_credential(
        path,
        "client_secret",
        k.client_secret.as_ref(),
        k.client_secret_file.as_ref(),
        diags,
    );
    check_page_size(path.key("page_size"), k.page_size, diags);
    for (i, g) in k.groups.iter().enumerate() {
        if !g.starts_with('/') && !g.starts_with("id:") {
            diags.push(
                Diagnostic::new(
                    path.key("groups").index(i),
                    format!("{g:?} is not a group path"),
                )
                .hint(format!(
                    "Keycloak groups are named by path, e.g. \"/{g}\", or by id, \"id:ID\""
                )),
            );
        }
    }
}
