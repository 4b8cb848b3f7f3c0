//! `type: okta` in the config file: the connector's settings and their checks.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::validate::{check_credential, check_url};
use crate::config::{Diagnostic, KeyPath};

/// Okta: users (every status), groups and group members.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OktaSourceConfig {
    /// Names this source; its groups are referred to as `NAME:Group` in mappings.
    pub name: String,
    /// The Okta org, e.g. `example.okta.com` (or a custom domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Overrides `https://{domain}` (proxies, tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// An API token (sent as `SSWS`), e.g. `${OKTA_API_TOKEN}`; or `token_file`, or `oauth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A file holding the API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// An OAuth 2.0 service app (client credentials with a `private_key_jwt` assertion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OktaOAuth>,
    /// Only these groups are read, each by name or by immutable id as `id:ID` (e.g. `id:00g1abc`);
    /// empty: every group. A named group Okta lacks is an error, and so is a name several groups
    /// share (an app group beside an Okta group): name that one by id.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Users, groups and members per page (Okta recommends at most 200).
    #[serde(default = "okta_page_size")]
    pub page_size: usize,
    #[serde(default)]
    pub http: crate::http::HttpSettings,
}

/// An Okta API Services app authenticating with a private key.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OktaOAuth {
    pub client_id: String,
    /// The app's RSA private key (PEM), e.g. `${OKTA_PRIVATE_KEY}`; or `private_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// A file holding the app's RSA private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<PathBuf>,
    /// The key's id (`kid`), when the app has several keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Scopes to ask for.
    #[serde(default = "okta_scopes")]
    pub scopes: Vec<String>,
}

fn okta_page_size() -> usize {
    200
}

fn okta_scopes() -> Vec<String> {
    vec!["okta.users.read".into(), "okta.groups.read".into()]
}

/// The checks a schema cannot express; every problem is added to `diags`.
pub(crate) fn check(o: &OktaSourceConfig, path: &KeyPath, diags: &mut Vec<Diagnostic>) {
    match (&o.domain, &o.base_url) {
        (None, None) => diags.push(
            Diagnostic::new(
                path.clone(),
                "an Okta source needs `domain` (or `base_url`)",
            )
            .hint("e.g. domain: example.okta.com"),
        ),
        (_, Some(u)) => check_url(path.key("base_url"), u, diags),
        (Some(d), None) => check_url(path.key("domain"), &format!("https://{d}"), diags),
    }
    let token = o.token.is_some() || o.token_file.is_some();
    match (&o.oauth, token) {
        (Some(_), true) => diags.push(
            Diagnostic::new(path.key("oauth"), "both an API token and `oauth` are set")
                .hint("keep one: `oauth` (recommended) or `token`"),
        ),
        (Some(oa), false) => check_credential(
            &path.key("oauth"),
            "private_key",
            oa.private_key.as_ref(),
            oa.private_key_file.as_ref(),
            diags,
        ),
        (None, _) => check_credential(
            path,
            "token",
            o.token.as_ref(),
            o.token_file.as_ref(),
            diags,
        ),
    }
    if o.page_size == 0 || o.page_size > 200 {
        diags.push(
            Diagnostic::new(
                path.key("page_size"),
                format!("page_size {} is outside 1..=200", o.page_size),
            )
            .hint("Okta recommends at most 200 per page"),
        );
    }
}
