//! `type: entra` in the config file: the connector's settings and their checks.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::validate::{check_credential, check_url};
use crate::config::{Diagnostic, KeyPath};

use crate::config::default_true;

/// Microsoft Entra ID: users, groups and (transitive) group members, through Microsoft Graph.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntraSourceConfig {
    /// Names this source; its groups are referred to as `NAME:Group` in mappings.
    pub name: String,
    /// The directory (tenant) id.
    pub tenant_id: String,
    /// The app registration's application (client) id.
    pub client_id: String,
    /// A client secret, e.g. `${ENTRA_CLIENT_SECRET}`; or `client_secret_file`, or `certificate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A file holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// A certificate credential: the private key and the certificate uploaded to the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<EntraCertificate>,
    /// The token authority.
    #[serde(default = "entra_authority")]
    pub authority: String,
    /// Overrides `https://graph.microsoft.com` (proxies, tests).
    #[serde(default = "entra_graph")]
    pub base_url: String,
    /// Graph version: `v1.0` (supported for production) or `beta`.
    #[serde(default)]
    pub api_version: GraphVersion,
    /// Members of nested groups count as members (Atlassian has no nested groups).
    #[serde(default = "default_true")]
    pub transitive: bool,
    /// Also read each user's manager (the `manager` attribute, an email), for templates.
    #[serde(default)]
    pub manager: bool,
    /// Only these groups are read, each by display name or by object id as `id:ID`; empty: every
    /// group. A named group Entra lacks is an error, and so is a display name several groups share:
    /// name that one by id.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Objects per page (`$top`, 1 to 999).
    #[serde(default = "entra_page_size")]
    pub page_size: usize,
    #[serde(default)]
    pub http: crate::http::HttpSettings,
}

/// A certificate credential of an Entra app registration.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntraCertificate {
    /// The certificate's RSA private key (PEM).
    pub private_key_file: PathBuf,
    /// The certificate (PEM) uploaded to the app registration.
    pub certificate_file: PathBuf,
}

/// A Microsoft Graph version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GraphVersion {
    #[default]
    #[serde(rename = "v1.0")]
    V1,
    #[serde(rename = "beta")]
    Beta,
}

impl GraphVersion {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GraphVersion::V1 => "v1.0",
            GraphVersion::Beta => "beta",
        }
    }
}

fn entra_authority() -> String {
    "https://login.microsoftonline.com".into()
}

fn entra_graph() -> String {
    "https://graph.microsoft.com".into()
}

fn entra_page_size() -> usize {
    999
}

/// The checks a schema cannot express; every problem is added to `diags`.
pub(crate) fn check(e: &EntraSourceConfig, path: &KeyPath, diags: &mut Vec<Diagnostic>) {
    let secret = e.client_secret.is_some() || e.client_secret_file.is_some();
    match (&e.certificate, secret) {
        (Some(_), true) => diags.push(
            Diagnostic::new(
                path.key("certificate"),
                "both a client secret and a certificate are set",
            )
            .hint("keep one"),
        ),
        (Some(_), false) => {}
        (None, _) => check_credential(
            path,
            "client_secret",
            e.client_secret.as_ref(),
            e.client_secret_file.as_ref(),
            diags,
        ),
    }
    check_url(path.key("authority"), &e.authority, diags);
    check_url(path.key("base_url"), &e.base_url, diags);
    if e.page_size == 0 || e.page_size > 999 {
        diags.push(
            Diagnostic::new(
                path.key("page_size"),
                format!("page_size {} is outside 1..=999", e.page_size),
            )
            .hint("Graph accepts $top from 1 to 999"),
        );
    }
}
