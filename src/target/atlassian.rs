//! `type: atlassian`: an Atlassian Cloud organization. The SCIM directory holds users and groups; the
//! optional organization admin API adds last-active dates (for `grace_days`), the accounts that exist
//! outside the directory (JIT-provisioned: linked by creating them through SCIM with the same email),
//! admin roles (for `skip_admins`), and API-token revocation on deactivation.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use super::scim::ScimDirectory;
use super::{ActionError, Target, TargetError};
use crate::http::{paginate, Auth, HttpClient, HttpError, HttpSettings};
use crate::model::{key_of, Snapshot, User};
use crate::plan::Action;

/// Roles whose holders count as admins for `skip_admins`.
const ADMIN_ROLES: &[&str] = &["org-admin", "site-admin"];

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

impl AdminApi {
    #[must_use]
    pub fn new(base_url: &str, org_id: &str, auth: Auth, settings: &HttpSettings) -> AdminApi {
        AdminApi {
            http: HttpClient::new("Atlassian admin API", base_url, auth, settings),
            org_id: org_id.to_string(),
        }
    }

    /// Every managed account, following `links.next` cursors (pages of about 50).
    async fn accounts(&self) -> Result<Vec<OrgAccount>, HttpError> {
        let path = format!("admin/v1/orgs/{}/users", self.org_id);
        let data = paginate::cursor_all(&self.http, &path).await?;
        Ok(data
            .iter()
            .filter_map(|a| {
                let s = |k: &str| a.get(k).and_then(Value::as_str).map(String::from);
                Some(OrgAccount {
                    account_id: s("account_id")?,
                    email: s("email"),
                    name: s("name"),
                    status: s("account_status").unwrap_or_else(|| "active".into()),
                    last_active: s("last_active").as_deref().and_then(parse_when),
                })
            })
            .collect())
    }

    /// The organization's verified domains.
    async fn domains(&self) -> Result<Vec<String>, HttpError> {
        let path = format!("admin/v1/orgs/{}/domains", self.org_id);
        let data = paginate::cursor_all(&self.http, &path).await?;
        Ok(data
            .iter()
            .filter(|d| {
                d.pointer("/attributes/claim/status")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case("verified"))
            })
            .filter_map(|d| d.pointer("/attributes/name").and_then(Value::as_str))
            .map(str::to_lowercase)
            .collect())
    }

    /// Account ids holding an admin role.
    async fn admins(&self) -> Result<Vec<String>, HttpError> {
        let path = format!("admin/v2/orgs/{}/directories/-/users/search", self.org_id);
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        let mut trail = paginate::Trail::new();
        loop {
            let mut body = json!({"roleIds": ADMIN_ROLES, "limit": 100});
            if let Some(c) = &cursor {
                body["cursor"] = json!(c);
            }
            let page = self
                .http
                .success(Method::POST, &path, &[], Some(&body))
                .await?
                .json("Atlassian admin API")?;
            if let Some(data) = page.get("data").and_then(Value::as_array) {
                out.extend(
                    data.iter().filter_map(|a| {
                        a.get("accountId").and_then(Value::as_str).map(String::from)
                    }),
                );
            }
            cursor = paginate::next_cursor(&page);
            match &cursor {
                None => return Ok(out),
                // A cursor that repeats would loop forever.
                Some(c) => trail.follow(&self.http, &path, c)?,
            }
        }
    }

    /// Revokes every API token of an account.
    async fn revoke_tokens(&self, account_id: &str) -> Result<usize, HttpError> {
        let path = format!("users/{account_id}/manage/api-tokens");
        let tokens = self.http.get_json(&path, &[]).await?;
        let ids: Vec<String> = tokens
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.get("id").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for id in &ids {
            let reply = self
                .http
                .send(Method::DELETE, &format!("{path}/{id}"), &[], None)
                .await?;
            // Already gone (a retried revocation) is what we wanted.
            if !reply.status.is_success() && reply.status.as_u16() != 404 {
                return Err(self.http.status_error(&reply));
            }
        }
        Ok(ids.len())
    }
}

/// A date (`2026-10-01`) or a moment (RFC 3339).
fn parse_when(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()?
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc())
        })
}

/// An Atlassian Cloud organization.
#[derive(Debug)]
pub struct AtlassianTarget {
    dir: ScimDirectory,
    admin: Option<AdminApi>,
    revoke_api_tokens: bool,
}

impl AtlassianTarget {
    #[must_use]
    pub fn new(
        dir: ScimDirectory,
        admin: Option<AdminApi>,
        revoke_api_tokens: bool,
    ) -> AtlassianTarget {
        AtlassianTarget {
            dir,
            admin,
            revoke_api_tokens,
        }
    }
}

#[async_trait]
impl Target for AtlassianTarget {
    fn name(&self) -> String {
        format!("atlassian:{}", self.dir.http.url(""))
    }

    fn concurrency(&self) -> usize {
        self.dir.http.concurrency()
    }

    fn requests(&self) -> u64 {
        self.dir.http.requests() + self.admin.as_ref().map_or(0, |a| a.http.requests())
    }

    async fn snapshot(&mut self) -> Result<Snapshot, TargetError> {
        let Some(admin) = &self.admin else {
            return Ok(self.dir.snapshot().await?);
        };
        let (mut snap, accounts, admins, domains) = tokio::try_join!(
            self.dir.snapshot(),
            admin.accounts(),
            admin.admins(),
            admin.domains()
        )?;
        merge_org(&mut snap, &accounts, &admins);
        snap.verified_domains = Some(domains);
        Ok(snap)
    }

    async fn apply(&self, action: &Action) -> Result<(), ActionError> {
        self.dir.apply(action).await?;
        if let (
            Action::DeactivateUser {
                key, account_id, ..
            },
            true,
            Some(admin),
        ) = (action, self.revoke_api_tokens, &self.admin)
        {
            let Some(account) = account_id else {
                return Err(ActionError(format!(
                    "{key} was deactivated, but its API tokens could not be revoked: no Atlassian account id is known"
                )));
            };
            admin.revoke_tokens(account).await.map_err(|e| {
                ActionError(format!(
                    "{key} was deactivated, but revoking its API tokens failed: {e}"
                ))
            })?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), TargetError> {
        Ok(())
    }
}

/// Adds what the admin API knows to the SCIM snapshot: last-active dates and admin roles on directory
/// users, and the active accounts the directory lacks (to be linked).
fn merge_org(snap: &mut Snapshot, accounts: &[OrgAccount], admins: &[String]) {
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
                extra.push(u);
            }
        }
    }
    snap.users.extend(extra);
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
            "2026-10-01T00:00:00+00:00"
        );
        assert!(parse_when("2026-10-01T12:00:00Z").is_some());
        assert!(parse_when("yesterday").is_none());
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
        merge_org(&mut snap, &accounts, &["acc-ana".to_string()]);
        assert_eq!(snap.users.len(), 2);
        assert!(snap.users[0].admin && snap.users[0].last_active.is_some());
        assert!(
            !snap.users[1].in_directory && snap.users[1].account_id.as_deref() == Some("acc-jit")
        );
    }
}
