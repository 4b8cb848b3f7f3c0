//! `type: scim` in the config file: the connector's settings and their checks.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::validate::{check_credential, check_page_size, check_url};
use crate::config::{Diagnostic, KeyPath};

use crate::config::default_page_size;

/// A SCIM 2.0 service provider read as an identity provider.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimSourceConfig {
    /// Names this source; its groups are referred to as `NAME:Group` in mappings.
    pub name: String,
    /// The SCIM base URL (the one `/Users` and `/Groups` hang off).
    pub base_url: String,
    /// Bearer token, e.g. `${IDP_SCIM_TOKEN}`; or use `token_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A file holding the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Users and groups per page (servers may return fewer).
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    #[serde(default)]
    pub http: crate::http::HttpSettings,
}

/// The checks a schema cannot express; every problem is added to `diags`.
pub(crate) fn check(s: &ScimSourceConfig, path: &KeyPath, diags: &mut Vec<Diagnostic>) {
    check_url(path.key("base_url"), &s.base_url, diags);
    check_credential(
        path,
        "token",
        s.token.as_ref(),
        s.token_file.as_ref(),
        diags,
    );
    check_page_size(path.key("page_size"), s.page_size, diags);
}
