//! The config file (`idsync.yaml`): its types, how it is loaded and how it is checked.
//!
//! The types here are the single source of the JSON Schema in `schemas/idsync.schema.json`
//! (`idsync schema` prints it; a test keeps the file equal to it).

mod load;
mod locate;
pub mod secret;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::rules::WithoutLastActive;
pub use crate::scim::MemberRemoval;
pub use crate::sources::entra::config::{EntraCertificate, EntraSourceConfig, GraphVersion};
pub use crate::sources::file::config::FileSourceConfig;
pub use crate::sources::google::config::GoogleSourceConfig;
pub use crate::sources::keycloak::config::KeycloakSourceConfig;
pub use crate::sources::okta::config::{OktaOAuth, OktaSourceConfig};
pub use crate::sources::onelogin::config::{OneLoginRegion, OneLoginSourceConfig};
pub use crate::sources::scim::config::ScimSourceConfig;
pub use crate::sources::SourceConfig;
pub use load::{
    inspect, inspect_str, load, load_str, ConfigError, Diagnostic, Loaded, Located, Options, Report,
};
pub use locate::KeyPath;

/// Connector types this build has, per side (the sources' from the connector list in `sources`).
pub use crate::sources::SOURCE_TYPES;
pub const TARGET_TYPES: &[&str] = &["file", "atlassian", "scim"];

/// The whole desired state: which identity providers to read, how their groups map onto Atlassian
/// groups, and the cleanup rules.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "idsync configuration")]
pub struct Config {
    /// Config format version; must be 1.
    pub version: u32,
    /// One or more identity-provider connectors, merged by primary email; earlier sources take
    /// precedence when they disagree.
    pub sources: Vec<SourceConfig>,
    /// Where users and groups are kept in line: Atlassian (or a snapshot file standing in for it).
    pub target: TargetConfig,
    #[serde(default)]
    pub users: UsersConfig,
    #[serde(default)]
    pub groups: GroupsConfig,
    #[serde(default)]
    pub cleanup: CleanupConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// The system idsync changes.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TargetConfig {
    /// A snapshot file standing in for Atlassian; `apply` rewrites it atomically.
    File(FileTargetConfig),
    /// An Atlassian Cloud organization: its SCIM directory, and optionally the organization admin API.
    Atlassian(AtlassianTargetConfig),
    /// Any SCIM 2.0 service provider (RFC 7643/7644), without Atlassian's extras.
    Scim(ScimTargetConfig),
}

/// The Atlassian target.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AtlassianTargetConfig {
    /// The SCIM directory (user provisioning API).
    pub scim: ScimEndpoint,
    /// The organization admin API: last-active dates, accounts outside the directory (to link),
    /// admin roles, API-token revocation. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminEndpoint>,
    #[serde(default)]
    pub http: crate::http::HttpSettings,
}

/// A SCIM 2.0 service provider as the target.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimTargetConfig {
    /// The SCIM base URL (the one `/Users` and `/Groups` hang off).
    pub base_url: String,
    /// Bearer token, e.g. `${SCIM_TOKEN}`; or use `token_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A file holding the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Users and groups per page (servers may return fewer).
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// How group members are removed (default `filter`, the RFC 7644 form).
    #[serde(default)]
    pub member_removal: MemberRemoval,
    #[serde(default)]
    pub http: crate::http::HttpSettings,
}

/// A SCIM directory endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimEndpoint {
    /// `https://api.atlassian.com/scim/directory/{directoryId}`.
    pub base_url: String,
    /// The directory's API key, e.g. `${ATLASSIAN_SCIM_TOKEN}`; or use `token_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A file holding the directory's API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Users and groups per page (Atlassian returns at most 100).
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// How group members are removed (default `filter`, the RFC 7644 form).
    #[serde(default)]
    pub member_removal: MemberRemoval,
}

/// The organization admin API.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminEndpoint {
    /// The organization id (admin.atlassian.com → Settings → API keys).
    pub org_id: String,
    /// An organization API key, e.g. `${ATLASSIAN_ORG_TOKEN}`; or use `token_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A file holding the organization API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Overrides `https://api.atlassian.com` (proxies, tests).
    #[serde(default = "default_admin_url")]
    pub base_url: String,
}

pub(crate) fn default_page_size() -> usize {
    100
}

fn default_admin_url() -> String {
    "https://api.atlassian.com".into()
}

/// A snapshot file used as the target.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileTargetConfig {
    /// The snapshot file; a relative path is relative to the config file's folder.
    pub path: PathBuf,
}

/// Which users are synced and how their attributes are built.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsersConfig {
    /// Only members of at least one of these IdP groups are synced (empty: everyone). Each is
    /// `SOURCE:NAME`, or `SOURCE:id:ID` for the group with that immutable id; a name several groups
    /// of the source share is an error that lists their ids.
    #[serde(default)]
    pub require_groups: Vec<String>,
    /// Email patterns (`*` and `?` wildcards, case-insensitive) of users never synced.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Target attribute <- template over source attributes, e.g. `displayName: "{givenName} {familyName}"`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// How IdP groups become Atlassian groups.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupsConfig {
    /// IdP group -> Atlassian group. Each IdP group goes through the first mapping that matches it;
    /// unmapped IdP groups are ignored.
    #[serde(default)]
    pub mappings: Vec<Mapping>,
    /// Atlassian groups every synced user is a member of.
    #[serde(default)]
    pub default_groups: Vec<String>,
    /// Also remove members of managed groups whom no source accounts for.
    #[serde(default)]
    pub manage_unmapped_members: bool,
}

/// One group mapping: `from` (one IdP group: `SOURCE:NAME`, or `SOURCE:id:ID` by its immutable id;
/// a name several groups of the source share is an error that lists their ids) or `from_regex`
/// (matched against `SOURCE:NAME` of every group; its capture groups are usable in `to` as `$1` or
/// `${name}`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// One IdP group: `SOURCE:NAME`, or `SOURCE:id:ID` by its immutable id (e.g.
    /// `entra:id:6f1c…` for an Entra object id), which tells apart groups sharing a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A regex over `SOURCE:NAME` of every IdP group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_regex: Option<String>,
    /// The Atlassian group.
    pub to: String,
}

/// Who is deactivated, when, and who is never touched.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupConfig {
    /// Deactivate target users no longer wanted (gone from every source, or dropped by a rule).
    #[serde(default = "default_true")]
    pub deactivate_missing: bool,
    /// More than 0: deactivate only users last active more than this many days ago.
    #[serde(default)]
    pub grace_days: u32,
    /// With `grace_days` > 0: what to do with users who have no last-active timestamp.
    #[serde(default)]
    pub without_last_active: WithoutLastActive,
    /// Emails or patterns (`*`, `?`) of accounts never changed, whatever the rules say.
    #[serde(default)]
    pub protect: Vec<String>,
    /// Never change organization or site admins.
    #[serde(default = "default_true")]
    pub skip_admins: bool,
    /// On deactivation, also revoke the user's API tokens (needs a target that can).
    #[serde(default)]
    pub revoke_api_tokens: bool,
    /// Guard: a plan deactivating more than this fails. A number, or a percentage of the target's
    /// active users such as `5%`.
    #[serde(default)]
    pub max_deactivations: MaxDeactivations,
    /// Guard: a plan removing more group memberships than this fails. A number, or a percentage of
    /// the current members of the groups counted (managed groups with at least
    /// `membership_guard_min_group_size` members), such as `10%`.
    #[serde(default = "default_max_removals")]
    pub max_membership_removals: MaxDeactivations,
    /// Guard: a plan removing more members of one group than this fails. A number, or a
    /// percentage of that group's current members, such as `50%`; only groups with at least
    /// `membership_guard_min_group_size` members are counted.
    #[serde(default = "default_max_removals_per_group")]
    pub max_membership_removals_per_group: MaxDeactivations,
    /// Groups with fewer current members than this are left out of both membership-removal guards
    /// (in a small group, one leaver is a large share).
    #[serde(default = "default_guard_min_group_size")]
    pub membership_guard_min_group_size: u32,
    /// Guard: a plan updating more users than this fails. A number, or a percentage of the
    /// target's active users, such as `25%`.
    #[serde(default = "default_max_updates")]
    pub max_updates: MaxDeactivations,
}

fn default_max_removals() -> MaxDeactivations {
    MaxDeactivations::Percent("20%".into())
}
fn default_max_removals_per_group() -> MaxDeactivations {
    MaxDeactivations::Percent("50%".into())
}
fn default_guard_min_group_size() -> u32 {
    5
}
fn default_max_updates() -> MaxDeactivations {
    MaxDeactivations::Percent("50%".into())
}

impl Default for CleanupConfig {
    fn default() -> Self {
        CleanupConfig {
            deactivate_missing: true,
            grace_days: 0,
            without_last_active: WithoutLastActive::Keep,
            protect: Vec::new(),
            skip_admins: true,
            revoke_api_tokens: false,
            max_deactivations: MaxDeactivations::default(),
            max_membership_removals: default_max_removals(),
            max_membership_removals_per_group: default_max_removals_per_group(),
            membership_guard_min_group_size: default_guard_min_group_size(),
            max_updates: default_max_updates(),
        }
    }
}

pub(crate) fn default_true() -> bool {
    true
}

/// A count such as `25`, or a percentage such as `5%` (of what each setting says).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MaxDeactivations {
    Count(u64),
    Percent(#[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?%$"))] String),
}

impl Default for MaxDeactivations {
    fn default() -> Self {
        MaxDeactivations::Percent("10%".into())
    }
}

/// Sizes that keep Atlassian's directory healthy.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Members per group membership change (hard maximum 10,000).
    #[serde(default = "default_batch")]
    pub membership_batch: u32,
    /// Warn in the plan about groups that would pass this many members.
    #[serde(default = "default_group_warn")]
    pub max_group_size_warn: u32,
    /// A plan giving a group more members than this fails (Atlassian suspends the directory's sync;
    /// raise it only once Atlassian has raised your limit).
    #[serde(default = "default_group_max")]
    pub max_group_size: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            membership_batch: default_batch(),
            max_group_size_warn: default_group_warn(),
            max_group_size: default_group_max(),
        }
    }
}

fn default_batch() -> u32 {
    1000
}
fn default_group_warn() -> u32 {
    20_000
}
fn default_group_max() -> u32 {
    35_000
}

impl Config {
    /// The JSON Schema of the config file.
    #[must_use]
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Config)).expect("schema serializes")
    }
}

/// Resolves a path from the config against the config file's folder.
#[must_use]
pub fn resolve_path(config_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        config_dir.join(path)
    }
}
