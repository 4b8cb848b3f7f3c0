//! `type: google` in the config file: the connector's settings and their checks.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::validate::{check_credential, check_url};
use crate::config::{Diagnostic, KeyPath};

use crate::config::default_true;

/// Google Workspace: a service account with domain-wide delegation, impersonating an admin.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleSourceConfig {
    /// Names this source; its groups are referred to as `NAME:group-email@example.com` in mappings.
    pub name: String,
    /// The Workspace admin the service account impersonates (the Directory API needs an admin).
    pub admin_email: String,
    /// The service account's JSON key, e.g. `${GOOGLE_SERVICE_ACCOUNT_KEY}`; or the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_key: Option<String>,
    /// A file holding the service account's JSON key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_key_file: Option<PathBuf>,
    /// The customer (`my_customer` by default), or set `domain` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// Read one domain instead of the whole customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Members of nested groups count as members (Atlassian has no nested groups).
    #[serde(default = "default_true")]
    pub include_derived_membership: bool,
    /// Only these groups are read, each by email or by immutable id as `id:ID`; empty: every
    /// group. A named group Google lacks is an error.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Overrides `https://admin.googleapis.com` (proxies, tests).
    #[serde(default = "google_api")]
    pub base_url: String,
    /// Overrides the key's `token_uri` (proxies, tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default)]
    pub http: crate::http::HttpSettings,
}

fn google_api() -> String {
    "https://admin.googleapis.com".into()
}

/// The checks a schema cannot express; every problem is added to `diags`.
pub(crate) fn check(g: &GoogleSourceConfig, path: &KeyPath, diags: &mut Vec<Diagnostic>) {
    check_url(path.key("base_url"), &g.base_url, diags);
    if let Some(t) = &g.token_url {
        check_url(path.key("token_url"), t, diags);
    }
    if g.customer.is_some() && g.domain.is_some() {
        diags.push(
            Diagnostic::new(path.key("domain"), "both `customer` and `domain` are set")
                .hint("keep one"),
        );
    }
    check_credential(
        path,
        "service_account_key",
        g.service_account_key.as_ref(),
        g.service_account_key_file.as_ref(),
        diags,
    );
}
