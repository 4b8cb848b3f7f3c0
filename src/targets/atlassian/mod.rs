//! `type: atlassian`: an Atlassian Cloud organization. The SCIM directory holds users and groups; the
//! optional organization admin API adds last-active dates (for `grace_days`), the accounts that exist
//! outside the directory (JIT-provisioned: linked by creating them through SCIM with the same email),
//! admin roles (for `skip_admins`), and API-token revocation on deactivation.

mod policy;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use super::{ActionError, Target, TargetError};
use crate::http::{paginate, wire, Auth, HttpClient, HttpError, HttpSettings};
use crate::model::{key_of, People, Snapshot, User};
use crate::plan::Action;
use crate::scim::ScimDirectory;

pub use policy::{is_product_access_group, reserved_group, PRODUCT_ACCESS_GROUPS};

/// Platform roles whose holders count as admins for `skip_admins`. The v2 user search takes
/// namespaced role ids (the `platformRole` and `multiDirectoryUserSearchRequest` models of
/// Atlassian's organization API); bare `org-admin` is not one of them, and whether an unknown id is
/// ignored (finding nobody) or refused (400) is undocumented.
const ADMIN_ROLES: &[&str] = &["atlassian/org-admin", "atlassian/site-admin"];

/// The v2 user search's documented default (and idsync's) page size.
const SEARCH_PAGE: u64 = 50;

/// Atlassian documents that last-active dates can lag by up to 24 hours.
const LAST_ACTIVE_LAG_HOURS: i64 = 24;

/// What a 401 or 403 from the admin API means for the key, said once for every call.
const KEY_HINT: &str = "the organization API key (target.admin) is refused: reads (accounts, domains, admin search, API-token inventory) need an organization admin's key with at least the scopes read:accounts:admin and read:domains:admin (and read:tokens:admin with revoke_api_tokens), or one without scopes; revoking API tokens through the user-management API needs a key created without scopes (a scoped key gets 403)";

/// The organization admin API and the user-management API (same key, same host).
#[derive(Debug)]
pub struct AdminApi {
    http: HttpClient,
    org_id: String,
}

/// An organization account as the admin API lists it.
#[derive(Debug)]
struct OrgAccount {
    account_id: String,
    email: Option<String>,
    name: Option<String>,
    status: String,
    last_active: Option<DateTime<Utc>>,
}

/// One account of the org users listing; `None` without an `account_id`. A `null` reads like a
/// missing field: no email (never linked), no name, never active (`last_active`). A missing or
/// `null` `account_status` is `active`: Atlassian documents it as always present, and here it only
/// decides whether an account the directory lacks is offered for linking.
fn org_account(a: &Value) -> Option<OrgAccount> {
    let w: WireAccount = wire::decode(a);
    Some(OrgAccount {
        account_id: w.account_id?,
        email: w.email,
        name: w.name,
        status: w.account_status.unwrap_or_else(|| "active".into()),
        last_active: w.last_active.as_deref().and_then(parse_when),
    })
}

/// An account of `GET /admin/v1/orgs/{org}/users`. Strings as sent; anything else is absent.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WireAccount {
    #[serde(deserialize_with = "wire::string")]
    account_id: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    email: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    name: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    account_status: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    last_active: Option<String>,
}

/// An account the v2 user search finds: its `accountId`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WireFound {
    #[serde(rename = "accountId", deserialize_with = "wire::string")]
    account_id: Option<String>,
}

/// A domain of `GET /admin/v1/orgs/{org}/domains`: `attributes.name` and `attributes.claim.status`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WireDomain {
    #[serde(deserialize_with = "wire::object")]
    attributes: WireDomainAttributes,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WireDomainAttributes {
    #[serde(deserialize_with = "wire::string")]
    name: Option<String>,
    #[serde(deserialize_with = "wire::object")]
    claim: WireClaim,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WireClaim {
    #[serde(deserialize_with = "wire::string")]
    status: Option<String>,
}

/// A directory of `GET /admin/v2/orgs/{org}/directories`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WireDirectory {
    #[serde(rename = "directoryId", deserialize_with = "wire::string")]
    directory_id: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    name: Option<String>,
}

/// An API token: of the organization's inventory (`status`, `user.id`), or of an account
/// (`id`, from the user-management API).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WireToken {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    status: Option<String>,
    #[serde(deserialize_with = "wire::object")]
    user: WireTokenUser,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WireTokenUser {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
}

/// What the admin API adds to a SCIM snapshot.
#[derive(Debug, Default)]
struct OrgFacts {
    /// Account ids holding an admin role.
    admins: Vec<String>,
    /// Live API tokens per account id, from the token inventory (read only with
    /// `revoke_api_tokens`; `None` when not read).
    tokens: Option<HashMap<String, usize>>,
    /// Accounts held by the organization's other identity-provider directories: account id ->
    /// directory name.
    elsewhere: HashMap<String, String>,
}

/// Adds the key hint to a refusal (401/403) of the admin API.
fn hint(e: HttpError) -> HttpError {
    match e {
        HttpError::Status {
            api,
            method,
            url,
            status: status @ (401 | 403),
            detail,
        } => HttpError::Status {
            api,
            method,
            url,
            status,
            detail: format!("{detail}; {KEY_HINT}"),
        },
        other => other,
    }
}

impl AdminApi {
    #[must_use]
    pub fn new(base_url: &str, org_id: &str, auth: Auth, settings: &HttpSettings) -> AdminApi {
        AdminApi {
            http: HttpClient::new("Atlassian admin API", base_url, auth, settings),
            org_id: org_id.to_string(),
        }
    }

    /// Every managed account, following `links.next` cursors (pages of about 50). This listing
    /// can only be read one page after another: each page's cursor comes from the one before, the
    /// API takes no offset, and it ignores a larger `limit` (API-NOTES §2.1); it is the only one
    /// that carries `last_active`. It runs alongside every other read of the plan.
    async fn accounts(&self) -> Result<Vec<OrgAccount>, HttpError> {
        let path = format!("admin/v1/orgs/{}/users", self.org_id);
        let data = paginate::cursor_all(&self.http, &path)
            .await
            .map_err(hint)?;
        Ok(data.iter().filter_map(org_account).collect())
    }

    /// The organization's verified domains.
    async fn domains(&self) -> Result<Vec<String>, HttpError> {
        let path = format!("admin/v1/orgs/{}/domains", self.org_id);
        let data = paginate::cursor_all(&self.http, &path)
            .await
            .map_err(hint)?;
        Ok(data
            .iter()
            .map(wire::decode::<WireDomain>)
            .filter(|d| {
                d.attributes
                    .claim
                    .status
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("verified"))
            })
            .filter_map(|d| d.attributes.name.as_deref().map(str::to_lowercase))
            .collect())
    }

    /// Every account a v2 user search in `directory` (`-`: all of them) finds, with `extra` in the
    /// body, page by page (the documented default of 50 a page).
    async fn search(&self, directory: &str, extra: &Value) -> Result<Vec<Value>, HttpError> {
        let path = format!(
            "admin/v2/orgs/{}/directories/{directory}/users/search",
            self.org_id
        );
        // The pager hands back the next link as given (a URL) or the bare cursor as `cursor`:
        // either way the search carries the cursor in its body, to the search's own path.
        let http = &self.http;
        let search = &path;
        paginate::Pager::new(http, &path, Vec::new(), paginate::ATLASSIAN_CURSOR)
            .all_with(|url, query| async move {
                let mut body = extra.clone();
                body["limit"] = json!(SEARCH_PAGE);
                let cursor = match query.iter().find(|(k, _)| *k == "cursor") {
                    Some((_, c)) => Some(c.clone()),
                    None => paginate::next_cursor(&json!({"links": {"next": url}}))
                        .filter(|_| url != *search),
                };
                if let Some(c) = cursor {
                    body["cursor"] = json!(c);
                }
                let reply = http
                    .success(Method::POST, search, &[], Some(&body))
                    .await
                    .map_err(hint)?;
                let page = reply.json("Atlassian admin API")?;
                crate::progress::page(crate::progress::listed(&page));
                Ok((page, reply.headers))
            })
            .await
    }

    /// Account ids holding an org or site admin role, as the search's role filter finds them. The
    /// answer is trusted as it comes: a client-side check of `platformRoles` in a shape idsync
    /// misreads would drop real admins, and over-protecting is the safe side.
    async fn admins(&self) -> Result<Vec<String>, HttpError> {
        let found = self.search("-", &json!({"roleIds": ADMIN_ROLES})).await?;
        Ok(found
            .iter()
            .filter_map(|a| wire::decode::<WireFound>(a).account_id)
            .collect())
    }

    /// Live API tokens per account, from the organization's token inventory (the API Access API);
    /// `None` when the organization or key has no inventory (403 or 404: it may need the
    /// `read:tokens:admin` scope, or an Atlassian Guard subscription).
    async fn token_inventory(&self) -> Result<Option<HashMap<String, usize>>, HttpError> {
        let path = format!("admin/api-access/v1/orgs/{}/api-tokens", self.org_id);
        let data = match paginate::cursor_all(&self.http, &path).await {
            Ok(data) => data,
            Err(e) if matches!(e.status(), Some(403 | 404)) => return Ok(None),
            Err(e) => return Err(hint(e)),
        };
        let mut out: HashMap<String, usize> = HashMap::new();
        for t in &data {
            let t: WireToken = wire::decode(t);
            // A token without a status (missing or `null`) counts as live: revoking one too many
            // is safer than leaving one.
            let live = t
                .status
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("active"));
            if let (true, Some(user)) = (live, t.user.id) {
                *out.entry(user).or_default() += 1;
            }
        }
        Ok(Some(out))
    }

    /// Accounts held by the organization's identity-provider directories other than `ours`:
    /// account id -> directory name. Creating such an account through our directory would link an
    /// account another directory owns.
    /// `None` when the key may not list directories (403/404: `read:directories:admin`).
    async fn held_elsewhere(
        &self,
        ours: &str,
    ) -> Result<Option<HashMap<String, String>>, HttpError> {
        let path = format!("admin/v2/orgs/{}/directories", self.org_id);
        let dirs = match paginate::cursor_all(&self.http, &path).await {
            Ok(dirs) => dirs,
            Err(e) if matches!(e.status(), Some(403 | 404)) => return Ok(None),
            Err(e) => return Err(hint(e)),
        };
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let others: Vec<(String, String)> = dirs
            .iter()
            .filter_map(|d| {
                let d: WireDirectory = wire::decode(d);
                let id = d.directory_id?;
                let name = d.name.unwrap_or_else(|| id.clone());
                (id != ours).then_some((id, name))
            })
            .collect();
        // Each directory's search is a cursor of its own: the directories are read side by side.
        let found: Vec<(String, Vec<Value>)> =
            stream::iter(others.into_iter().map(|(id, name)| async move {
                Ok::<_, HttpError>((name, self.search(&id, &json!({})).await?))
            }))
            .buffered(self.http.concurrency())
            .try_collect()
            .await?;
        let mut out = HashMap::new();
        for (name, accounts) in found {
            for a in accounts {
                if let Some(acc) = wire::decode::<WireFound>(&a).account_id {
                    out.entry(acc).or_insert_with(|| name.clone());
                }
            }
        }
        Ok(Some(out))
    }

    /// The ids of an account's API tokens (user-management API: needs a key without scopes).
    async fn token_ids(&self, account_id: &str) -> Result<Vec<String>, HttpError> {
        let path = format!("users/{account_id}/manage/api-tokens");
        let tokens = self.http.get_json(&path, &[]).await.map_err(hint)?;
        Ok(tokens
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|x| wire::decode::<WireToken>(x).id)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Revokes every API token of an account; returns how many it revoked.
    async fn revoke_tokens(&self, account_id: &str) -> Result<usize, HttpError> {
        let path = format!("users/{account_id}/manage/api-tokens");
        let ids = self.token_ids(account_id).await?;
        for id in &ids {
            let reply = self
                .http
                .send(Method::DELETE, &format!("{path}/{id}"), &[], None)
                .await?;
            // Already gone (a retried revocation) is what we wanted.
            if !reply.status.is_success() && reply.status.as_u16() != 404 {
                return Err(hint(self.http.status_error(&reply)));
            }
        }
        Ok(ids.len())
    }
}

/// A date (`2026-10-01`: the end of that day, UTC, since the account may have been active until
/// then) or a moment (RFC 3339).
fn parse_when(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()?
                .and_hms_opt(23, 59, 59)
                .map(|t| t.and_utc())
        })
}

/// The SCIM directory id in a base URL `…/scim/directory/{id}`.
fn directory_id(base_url: &str) -> Option<String> {
    let (_, rest) = base_url.split_once("/directory/")?;
    rest.split('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// An Atlassian Cloud organization.
#[derive(Debug)]
pub struct AtlassianTarget {
    dir: ScimDirectory,
    admin: Option<AdminApi>,
    revoke_api_tokens: bool,
    skip_admins: bool,
    warnings: Vec<String>,
}

impl AtlassianTarget {
    #[must_use]
    pub fn new(
        dir: ScimDirectory,
        admin: Option<AdminApi>,
        revoke_api_tokens: bool,
        skip_admins: bool,
    ) -> AtlassianTarget {
        AtlassianTarget {
            dir,
            admin,
            revoke_api_tokens,
            skip_admins,
            warnings: Vec::new(),
        }
    }
}

impl AtlassianTarget {
    /// Without the token inventory: lists the tokens of each deactivated user (the ones a plan may
    /// have to revoke again), `max_concurrency` at a time. An active user's tokens stay unknown;
    /// deactivating them plans a revocation that lists them when applied.
    async fn list_tokens_of_deactivated(&mut self, snap: &mut Snapshot) -> Result<(), HttpError> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let Some(admin) = &self.admin else {
            return Ok(());
        };
        let wanted: Vec<(usize, String)> = snap
            .users
            .iter()
            .enumerate()
            .filter(|(_, u)| u.in_directory && !u.active)
            .filter_map(|(i, u)| u.account_id.clone().map(|a| (i, a)))
            .collect();
        self.warnings.push(format!(
            "the organization's API-token inventory is not available to this key (it needs read:tokens:admin, and may need Atlassian Guard): idsync lists each deactivated user's tokens instead ({} request(s))",
            wanted.len()
        ));
        let width = self.dir.http.concurrency().max(1);
        let counts: Vec<(usize, usize)> = stream::iter(wanted)
            .map(|(i, a)| async move { admin.token_ids(&a).await.map(|t| (i, t.len())) })
            .buffer_unordered(width)
            .try_collect()
            .await?;
        for (i, n) in counts {
            snap.users[i].api_tokens = Some(n);
        }
        Ok(())
    }
}

#[async_trait]
impl Target for AtlassianTarget {
    fn name(&self) -> String {
        format!("atlassian:{}", self.dir.http.url(""))
    }

    fn requests_for(&self, action: &Action) -> u64 {
        match action {
            // Listing the account's tokens, then one request per token.
            Action::RevokeApiTokens { tokens, .. } => 1 + tokens.unwrap_or(1) as u64,
            _ => ScimDirectory::requests_for(action),
        }
    }

    fn reserved_group(&self, name: &str) -> Option<&'static str> {
        policy::reserved_group(name)
    }

    fn concurrency(&self) -> usize {
        self.dir.http.concurrency()
    }

    fn requests(&self) -> u64 {
        self.dir.http.requests() + self.admin.as_ref().map_or(0, |a| a.http.requests())
    }

    /// Atlassian says every admin API request is rate-limited but publishes no numbers, and none
    /// for SCIM (API-NOTES §1.9, §2): there is no documented budget to estimate with. Its
    /// `X-RateLimit-*` headers and 429s pace the apply as it runs.
    fn write_budget(&self) -> Option<(String, u64, u64)> {
        None
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn last_active_lag(&self) -> chrono::Duration {
        if self.admin.is_some() {
            chrono::Duration::hours(LAST_ACTIVE_LAG_HOURS)
        } else {
            chrono::Duration::zero()
        }
    }

    async fn snapshot(&mut self) -> Result<Snapshot, TargetError> {
        self.read(None).await
    }

    async fn snapshot_people(&mut self, people: &People) -> Result<Snapshot, TargetError> {
        Ok(self.read(Some(people)).await?.restrict_to(people))
    }

    async fn apply(&self, action: &Action) -> Result<(), ActionError> {
        self.apply_one(action).await
    }

    async fn finish(&mut self) -> Result<(), TargetError> {
        Ok(())
    }
}

impl AtlassianTarget {
    /// The SCIM directory (all of it, or only these people: [`ScimDirectory::snapshot_people`]) and
    /// what the admin API adds. The admin API's facts (accounts, admins, domains, tokens, other
    /// directories) are read whole either way: the targeted read saves the SCIM listing, which is
    /// the bulk of a large organization's read.
    async fn read(&mut self, people: Option<&People>) -> Result<Snapshot, TargetError> {
        self.warnings.clear();
        let dir = async {
            match people {
                Some(p) => self.dir.snapshot_people(p).await,
                None => self.dir.snapshot().await,
            }
        };
        let Some(admin) = &self.admin else {
            return Ok(dir.await?);
        };
        let ours = directory_id(&self.dir.http.url(""));
        let revoke = self.revoke_api_tokens;
        let elsewhere = async {
            match &ours {
                Some(ours) => admin.held_elsewhere(ours).await,
                None => Ok(None),
            }
        };
        let tokens = async {
            if revoke {
                admin.token_inventory().await.map(|t| (true, t))
            } else {
                Ok((false, None))
            }
        };
        let (mut snap, accounts, admins, domains, tokens, elsewhere) = tokio::try_join!(
            dir,
            admin.accounts(),
            admin.admins(),
            admin.domains(),
            tokens,
            elsewhere
        )?;
        if elsewhere.is_none() {
            self.warnings.push(match &ours {
                Some(_) => "the organization's identity-provider directories could not be listed with this key (it needs read:directories:admin): accounts outside this SCIM directory are linked without checking whether another directory holds them".to_string(),
                None => "the SCIM base URL does not name its directory (…/scim/directory/<id>): accounts outside this SCIM directory are linked without checking whether another directory holds them".to_string(),
            });
        }
        if self.skip_admins && admins.is_empty() {
            self.warnings.push(format!(
                "cleanup.skip_admins found no organization or site admin in organization {} (every organization has at least one org admin): check that the admin search works with this API key; until then nobody is treated as an admin",
                admin.org_id
            ));
        }
        let (asked, tokens) = tokens;
        let inventory = tokens.is_some();
        let facts = OrgFacts {
            admins,
            tokens,
            elsewhere: elsewhere.unwrap_or_default(),
        };
        merge_org(&mut snap, &accounts, &facts);
        if asked && !inventory {
            self.list_tokens_of_deactivated(&mut snap).await?;
        }
        snap.verified_domains = Some(domains);
        Ok(snap)
    }

    async fn apply_one(&self, action: &Action) -> Result<(), ActionError> {
        if let Action::RevokeApiTokens {
            key, account_id, ..
        } = action
        {
            let Some(admin) = &self.admin else {
                return Err(ActionError(format!(
                    "{key}: revoking API tokens needs the organization admin API (target.admin)"
                )));
            };
            admin.revoke_tokens(account_id).await.map_err(|e| {
                ActionError(format!(
                    "revoking the API tokens of {key} (deactivated) failed, so they still work; the next plan plans the revocation again: {e}"
                ))
            })?;
            return Ok(());
        }
        self.dir.apply(action).await
    }
}

/// Adds what the admin API knows to the SCIM snapshot: last-active dates and admin roles on directory
/// users, and the active accounts the directory lacks (to be linked).
fn merge_org(snap: &mut Snapshot, accounts: &[OrgAccount], facts: &OrgFacts) {
    let admins = &facts.admins;
    let mut by_account: HashMap<String, usize> = HashMap::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for (i, u) in snap.users.iter().enumerate() {
        if let Some(a) = &u.account_id {
            by_account.insert(a.clone(), i);
        }
        by_key.insert(u.key(), i);
    }
    let mut extra = Vec::new();
    for a in accounts {
        let found = by_account.get(a.account_id.as_str()).copied().or_else(|| {
            a.email
                .as_deref()
                .and_then(|e| by_key.get(&key_of(e)).copied())
        });
        match found {
            Some(i) => {
                let u = &mut snap.users[i];
                u.last_active = a.last_active.or(u.last_active);
                if u.account_id.is_none() {
                    u.account_id = Some(a.account_id.clone());
                }
                u.admin |= admins.contains(&a.account_id);
            }
            None => {
                // Only live accounts with an email can be linked; closed ones are history.
                let Some(email) = a.email.as_deref().filter(|_| a.status == "active") else {
                    continue;
                };
                let mut u = User::new(email);
                u.account_id = Some(a.account_id.clone());
                u.display_name.clone_from(&a.name);
                u.in_directory = false;
                u.last_active = a.last_active;
                u.admin = admins.contains(&a.account_id);
                u.owned_by_directory = facts.elsewhere.get(&a.account_id).cloned();
                extra.push(u);
            }
        }
    }
    snap.users.extend(extra);
    if let Some(tokens) = &facts.tokens {
        for u in &mut snap.users {
            if let Some(a) = &u.account_id {
                u.api_tokens = Some(tokens.get(a).copied().unwrap_or(0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_dates() {
        let next = |n: &str| paginate::next_cursor(&serde_json::json!({"links": {"next": n}}));
        assert_eq!(next("abc").as_deref(), Some("abc"));
        assert_eq!(
            next("https://api.atlassian.com/admin/v1/orgs/o/users?cursor=xyz&x=1").as_deref(),
            Some("xyz")
        );
        assert_eq!(next(""), None);
        assert_eq!(
            parse_when("2026-10-01").unwrap().to_rfc3339(),
            "2026-10-01T23:59:59+00:00"
        );
        assert!(parse_when("2026-10-01T12:00:00Z").is_some());
        assert_eq!(
            directory_id("https://api.atlassian.com/scim/directory/abc-123").as_deref(),
            Some("abc-123")
        );
        assert_eq!(
            directory_id("http://127.0.0.1:1/scim/directory/d/").as_deref(),
            Some("d")
        );
        assert_eq!(directory_id("https://scim.example.net/v2"), None);
        assert!(parse_when("yesterday").is_none());
    }

    #[test]
    fn org_accounts_read_nulls_as_missing() {
        let a = org_account(&serde_json::json!({
            "account_id": "acc-1", "email": null, "name": null, "account_status": null,
            "last_active": null,
        }))
        .unwrap();
        assert_eq!(
            (a.email, a.name, a.status.as_str(), a.last_active),
            (None, None, "active", None)
        );
        assert!(org_account(&serde_json::json!({"account_id": null})).is_none());
    }

    #[test]
    fn org_accounts_fill_in_and_jit_accounts_are_listed() {
        let mut u = User::new("ana@example.com");
        u.account_id = Some("acc-ana".into());
        let mut snap = Snapshot {
            users: vec![u],
            ..Snapshot::default()
        };
        let accounts = vec![
            OrgAccount {
                account_id: "acc-ana".into(),
                email: Some("ana@example.com".into()),
                name: None,
                status: "active".into(),
                last_active: parse_when("2026-01-01"),
            },
            OrgAccount {
                account_id: "acc-jit".into(),
                email: Some("Jit@Example.com".into()),
                name: Some("Jit".into()),
                status: "active".into(),
                last_active: None,
            },
            OrgAccount {
                account_id: "acc-closed".into(),
                email: Some("gone@example.com".into()),
                name: None,
                status: "closed".into(),
                last_active: None,
            },
        ];
        let facts = OrgFacts {
            admins: vec!["acc-ana".to_string()],
            ..OrgFacts::default()
        };
        merge_org(&mut snap, &accounts, &facts);
        assert_eq!(snap.users.len(), 2);
        assert!(snap.users[0].admin && snap.users[0].last_active.is_some());
        assert!(
            !snap.users[1].in_directory && snap.users[1].account_id.as_deref() == Some("acc-jit")
        );
    }
}
