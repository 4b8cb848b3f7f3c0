//! `type: onelogin` in the config file: the connector's settings and their checks.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::validate::{check_credential, check_url};
use crate::config::{Diagnostic, KeyPath};

/// A OneLogin account: users, their group (OneLogin gives each user at most one) and, with
/// `roles_as_groups`, roles.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OneLoginSourceConfig {
    /// Names this source; its groups and roles are referred to as `NAME:Group` in mappings.
    pub name: String,
    /// The account's subdomain: `acme` for `https://acme.onelogin.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    /// Instead of `subdomain`: the regional API host of older accounts (`api.us.onelogin.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<OneLoginRegion>,
    /// Overrides the URL derived from `subdomain` or `region` (proxies, tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// An API credential pair with the "Read users" scope ("Read all" to read roles).
    pub client_id: String,
    /// Its secret, e.g. `${ONELOGIN_CLIENT_SECRET}`; or `client_secret_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A file holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// Read roles too, as groups named by the role (OneLogin users have one group but many roles).
    /// A role and a group of the same name are one group.
    #[serde(default)]
    pub roles_as_groups: bool,
    /// Only these groups and roles are read: by name (the group and the role of that name), or by
    /// id as `id:ID` (a group) or `id:role:ID` (a role); empty: all of them. A named one OneLogin
    /// lacks is an error, and so is a name several groups (or several roles) share.
    #[serde(default)]
    pub groups: Vec<String>,
    /// User `status` codes that count as inactive: 2 (suspended) by default. Others: 0
    /// unactivated, 1 active, 3 locked, 4 password expired, 5 awaiting password reset, 7 password
    /// pending, 8 security questions required.
    #[serde(default = "onelogin_inactive")]
    pub inactive_statuses: Vec<i64>,
    /// Calls of the account's hourly API budget to leave for other integrations: a read that
    /// would leave fewer is refused before it starts.
    #[serde(default)]
    pub budget_reserve: u64,
    #[serde(default)]
    pub http: crate::http::HttpSettings,
}

/// A OneLogin API region (accounts that predate per-subdomain API hosts).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OneLoginRegion {
    Us,
    Eu,
}

fn onelogin_inactive() -> Vec<i64> {
    vec![2]
}

/// The checks a schema cannot express; every problem is added to `diags`.
pub(crate) fn check(o: &OneLoginSourceConfig, path: &KeyPath, diags: &mut Vec<Diagnostic>) {
    match (&o.subdomain, o.region, &o.base_url) {
        (_, _, Some(u)) => check_url(path.key("base_url"), u, diags),
        (None, None, None) => diags.push(
            Diagnostic::new(
                path.clone(),
                "a OneLogin source needs `subdomain` (or `region`, or `base_url`)",
            )
            .hint("e.g. subdomain: acme, for https://acme.onelogin.com"),
        ),
        (Some(_), Some(_), None) => diags.push(
            Diagnostic::new(path.key("region"), "both `subdomain` and `region` are set")
                .hint("keep one: `subdomain` (the current API host) or `region`"),
        ),
        (Some(sub), None, None) => {
            let label = sub.split('.').next().unwrap_or_default();
            if sub.is_empty() || !sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                diags.push(
                    Diagnostic::new(
                        path.key("subdomain"),
                        format!("{sub:?} is not a OneLogin subdomain"),
                    )
                    .hint(format!(
                        "give only the first label: subdomain: {label} (for https://{label}.onelogin.com)"
                    )),
                );
            }
        }
        (None, Some(_), None) => {}
    }
    check_credential(
        path,
        "client_secret",
        o.client_secret.as_ref(),
        o.client_secret_file.as_ref(),
        diags,
    );
    for (i, code) in o.inactive_statuses.iter().enumerate() {
        if ![0, 1, 2, 3, 4, 5, 7, 8].contains(code) {
            diags.push(
                Diagnostic::new(
                    path.key("inactive_statuses").index(i),
                    format!("{code} is not a OneLogin user status"),
                )
                .hint("0 unactivated, 1 active, 2 suspended, 3 locked, 4 password expired, 5 awaiting password reset, 7 password pending, 8 security questions required"),
            );
        }
    }
}
