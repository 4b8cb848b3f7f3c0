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
pub use load::{
    inspect, inspect_str, load, load_str, ConfigError, Diagnostic, Loaded, Located, Options, Report,
};
pub use locate::KeyPath;

/// Connector types this build has, per side.
pub const SOURCE_TYPES: &[&str] = &[
    "file", "okta", "entra", "google", "keycloak", "onelogin", "scim",
];
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

/// An identity-provider connector.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceConfig {
    /// A snapshot file (YAML or JSON, by extension) standing in for an identity provider.
    File(FileSourceConfig),
    /// Okta, through its Management API.
    Okta(OktaSourceConfig),
    /// Microsoft Entra ID (Azure AD), through Microsoft Graph.
    Entra(EntraSourceConfig),
    /// Google Workspace, through the Admin SDK Directory API.
    Google(GoogleSourceConfig),
    /// Keycloak, through its Admin REST API.
    Keycloak(KeycloakSourceConfig),
    /// OneLogin, through its API (v2 users and roles, v1 groups).
    #[serde(rename = "onelogin")]
    OneLogin(OneLoginSourceConfig),
    /// Any SCIM 2.0 service provider an IdP exposes (PingFederate and others), read-only.
    Scim(ScimSourceConfig),
}

impl SourceConfig {
    /// The source's name, used to qualify its group names (`name:Group`).
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::File(f) => &f.name,
            SourceConfig::Okta(o) => &o.name,
            SourceConfig::Entra(e) => &e.name,
            SourceConfig::Scim(s) => &s.name,
            SourceConfig::Keycloak(k) => &k.name,
            SourceConfig::OneLogin(o) => &o.name,
            SourceConfig::Google(g) => &g.name,
        }
    }

    /// The connector type, as `type:` spells it in the config.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceConfig::File(_) => "file",
            SourceConfig::Okta(_) => "okta",
            SourceConfig::Entra(_) => "entra",
            SourceConfig::Google(_) => "google",
            SourceConfig::Keycloak(_) => "keycloak",
            SourceConfig::OneLogin(_) => "onelogin",
            SourceConfig::Scim(_) => "scim",
        }
    }
}

/// A snapshot file read as an identity provider.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Names this source; its groups are referred to as `NAME:Group` in mappings.
    pub name: String,
    /// The snapshot file; a relative path is relative to the config file's folder.
    pub path: PathBuf,
}

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

/// How a group PATCH removes members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRemoval {
    /// RFC 7644 §3.5.2.2: one `{"op":"remove","path":"members[value eq \"ID\"]"}` per member, many
    /// per PATCH. No server can read it as "remove every member".
    #[default]
    Filter,
    /// `{"op":"remove","path":"members","value":[{"value":"ID"},…]}`: Microsoft Entra's habit. Only
    /// for a server that refuses the RFC form: a server that follows the RFC to the letter reads it
    /// as "remove every member" (idsync then reports the loss and fails the action).
    ValueList,
}

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

fn default_page_size() -> usize {
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

fn default_true() -> bool {
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
