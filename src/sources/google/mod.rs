//! `type: google`: Google Workspace users, groups and members, through the Admin SDK Directory API.
//!
//! Auth: a service account with domain-wide delegation signs an RS256 JWT bearer grant impersonating a
//! Workspace admin, with read-only directory scopes. Requests: `users.list` for the customer (500 per
//! page), `groups.list` (200 per page), and `members.list` per group (200 per page, with
//! `includeDerivedMembership` for nested groups), a few groups at a time; all follow `nextPageToken`.
//! Quota errors (403 `userRateLimitExceeded` / `quotaExceeded`, and 429) are retried with backoff.

pub mod config;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use self::config::GoogleSourceConfig;
use super::{present, Source, SourceError};
use crate::config::secret::Secret;
use crate::http::{oauth, paginate, Auth, HttpClient, HttpError, HttpSettings, TokenSource};
use crate::model::{LeftOut, Snapshot, User};

/// Read-only scopes the Directory API needs.
pub const SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

/// A Google Workspace customer.
#[derive(Debug)]
pub struct GoogleSource {
    pub name: String,
    pub base_url: String,
    /// `my_customer`, a customer id, or `None` with `domain`.
    pub customer: Option<String>,
    pub domain: Option<String>,
    pub admin_email: String,
    pub client_email: String,
    pub private_key: Secret,
    pub token_url: String,
    pub derived_membership: bool,
    pub groups: Vec<String>,
    pub settings: HttpSettings,
}

#[derive(Serialize)]
struct Grant<'a> {
    iss: &'a str,
    scope: String,
    aud: &'a str,
    sub: &'a str,
    iat: u64,
    exp: u64,
}

/// The fields of a service-account key file idsync uses.
///
/// # Errors
/// The key is not a service-account JSON key.
pub fn parse_key(json: &Secret) -> Result<(String, Secret, Option<String>), String> {
    let v: Value = serde_json::from_str(json.expose())
        .map_err(|_| "the service-account key is not JSON".to_string())?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let email = s("client_email").ok_or("the service-account key has no client_email")?;
    let key = s("private_key").ok_or("the service-account key has no private_key")?;
    Ok((email, Secret::new(key), s("token_uri")))
}

impl GoogleSource {
    async fn client(&self) -> Result<HttpClient, SourceError> {
        let endpoint = HttpClient::new(
            "Google token endpoint",
            &self.token_url,
            Auth::None,
            &self.settings,
        );
        let (client_email, admin_email, audience) = (
            self.client_email.clone(),
            self.admin_email.clone(),
            self.token_url.clone(),
        );
        let private_key = self.private_key.clone();
        // Each token request signs a fresh grant (they may live an hour at most).
        let grant = oauth::FormGrant::new(endpoint, &self.token_url, move || {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let grant = Grant {
                iss: &client_email,
                scope: SCOPES.join(" "),
                aud: &audience,
                sub: &admin_email,
                iat: now,
                exp: now + 3600,
            };
            let key = EncodingKey::from_rsa_pem(private_key.expose().as_bytes()).map_err(|e| {
                format!("the service-account private key is not an RSA PEM key ({e})")
            })?;
            let assertion = encode(&Header::new(Algorithm::RS256), &grant, &key)
                .map_err(|e| format!("signing the token request failed ({e})"))?;
            Ok(vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string(),
                ),
                ("assertion", assertion),
            ])
        })
        .map_err(SourceError::Invalid)?;
        let tokens = TokenSource::start("Bearer", grant).await?;
        let base = format!("{}/admin/directory/v1", self.base_url.trim_end_matches('/'));
        Ok(HttpClient::new(
            "Google Directory",
            &base,
            Auth::Token(Arc::new(tokens)),
            &self.settings,
        ))
    }

    fn scope(&self) -> (&'static str, String) {
        match (&self.customer, &self.domain) {
            (_, Some(d)) => ("domain", d.clone()),
            (Some(c), None) => ("customer", c.clone()),
            (None, None) => ("customer", "my_customer".into()),
        }
    }
}

/// Every item of a listing under `field`, following `nextPageToken` (never one already used).
/// Google announces no total; a page that is empty, or shorter than the first, yet has a
/// `nextPageToken` has lost items: it is asked for again, then fails the listing. Quota errors
/// (403 with `userRateLimitExceeded` or `quotaExceeded`) are retried with backoff like 429s.
async fn all(
    http: &HttpClient,
    path: &str,
    field: &str,
    query: Vec<(&str, String)>,
) -> Result<Vec<Value>, HttpError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut trail = paginate::Trail::new();
    let mut full: Option<usize> = None;
    loop {
        let mut q = query.clone();
        if let Some(t) = &token {
            q.push(("pageToken", t.clone()));
        }
        let (items, next) = paginate::checked_page(http, path, &q, full, || {
            let q = &q;
            async move {
                let page = get_with_quota_retries(http, path, q).await?;
                let items = page
                    .get(field)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let next = page
                    .get("nextPageToken")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .map(String::from);
                Ok((items, next))
            }
        })
        .await?;
        full = full.or(Some(items.len()));
        out.extend(items);
        let Some(next) = next else { break };
        trail.follow(http, path, &next)?;
        token = Some(next);
    }
    Ok(out)
}

async fn get_with_quota_retries(
    http: &HttpClient,
    path: &str,
    query: &[(&str, String)],
) -> Result<Value, HttpError> {
    let policy = http.retry_policy().clone();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let reply = http.send(Method::GET, path, query, None).await?;
        if reply.status.is_success() {
            // A body cut off in transit is asked for again, never taken for a short page.
            match reply.json("Google Directory") {
                Err(_) if attempt < policy.max_attempts => {
                    tokio::time::sleep(policy.backoff(attempt)).await;
                    continue;
                }
                parsed => return parsed,
            }
        }
        let quota = reply.status.as_u16() == 403 && {
            let body = String::from_utf8_lossy(&reply.body);
            body.contains("userRateLimitExceeded")
                || body.contains("quotaExceeded")
                || body.contains("rateLimitExceeded")
        };
        if !quota || attempt >= policy.max_attempts {
            return Err(http.status_error(&reply));
        }
        tokio::time::sleep(policy.backoff(attempt)).await;
    }
}

/// A Workspace user as the model: suspended or archived is inactive. Null, missing and blank
/// values are all absent, at every level (`name`, `organizations`, an organization's fields).
/// `suspended` and `archived` missing or `null` are false: only an explicit `true` deactivates.
fn user_from_google(v: &Value) -> Result<User, Box<LeftOut>> {
    let s = |p: &str| present(v.pointer(p)).map(String::from);
    let Some(email) = s("/primaryEmail") else {
        let id = s("/id");
        let name = s("/name/fullName")
            .or_else(|| id.clone())
            .unwrap_or_default();
        return Err(Box::new(LeftOut::user(id, &name, None, "no primaryEmail")));
    };
    let mut u = User::new(&email);
    u.id = s("/id");
    u.given_name = s("/name/givenName");
    u.family_name = s("/name/familyName");
    u.display_name = s("/name/fullName");
    let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    u.active = !(flag("suspended") || flag("archived"));
    if let Some(orgs) = v.get("organizations").and_then(Value::as_array) {
        let primary = orgs
            .iter()
            .find(|o| o.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| orgs.first());
        for k in ["title", "department", "costCenter", "description", "name"] {
            if let Some(val) = present(primary.and_then(|o| o.get(k))) {
                u.attributes.insert(
                    if k == "name" {
                        "organization".into()
                    } else {
                        k.to_string()
                    },
                    val.to_string(),
                );
            }
        }
    }
    if let Some(ou) = s("/orgUnitPath") {
        u.attributes.insert("orgUnitPath".into(), ou);
    }
    Ok(u)
}

/// Why a member is not a person to sync; `None` for users, and for groups (nested groups are
/// flattened by `includeDerivedMembership`, or left alone on purpose without it).
fn not_a_person(member: &Value) -> Option<&'static str> {
    match member.get("type").and_then(Value::as_str).unwrap_or("USER") {
        "USER" | "GROUP" => None,
        "CUSTOMER" => Some("the whole account (a CUSTOMER member), not a user"),
        _ => Some("not a user"),
    }
}

#[async_trait]
impl Source for GoogleSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// The Admin SDK's default quota, 2,400 queries a minute per user per Cloud project
    /// (developers.google.com/admin-sdk/directory/v1/limits), spent by `users.list` (500 a page),
    /// `groups.list` and `members.list` (200 a page).
    fn rate_budgets(&self, snapshot: &Snapshot) -> Vec<crate::model::RateBudget> {
        let requests = super::pages(snapshot.users.len(), 500)
            + super::pages(snapshot.groups.len(), 200)
            + super::member_pages(snapshot, 200);
        vec![crate::model::RateBudget {
            what: format!(
                "source {}: the Admin SDK's default quota of 2,400 queries a minute",
                self.name
            ),
            requests,
            per: 2_400,
            window_secs: 60,
        }]
    }

    async fn snapshot(&self) -> Result<Snapshot, SourceError> {
        let http = self.client().await?;
        let scope = self.scope();
        let users = all(
            &http,
            "users",
            "users",
            vec![
                scope.clone(),
                ("maxResults", "500".into()),
                ("projection", "full".into()),
            ],
        );
        let groups = all(
            &http,
            "groups",
            "groups",
            vec![scope, ("maxResults", "200".into())],
        );
        // Members are read as soon as the groups are known, alongside the users.
        let groups = async {
            let mut skipped = Vec::new();
            let mut listed: Vec<(String, String)> = groups
                .await?
                .iter()
                .filter_map(|g| {
                    let id = g.get("id").and_then(Value::as_str).map(String::from);
                    match (id, present(g.get("email"))) {
                        (Some(id), Some(email)) => Some((id, email.to_lowercase())),
                        (id, _) => {
                            let name = present(g.get("name"))
                                .map_or_else(|| id.clone().unwrap_or_default(), String::from);
                            skipped.push(LeftOut::group(id, &name, "no id or no email"));
                            None
                        }
                    }
                })
                .collect();
            super::keep_configured(
                &mut listed,
                &self.groups,
                true,
                "in Google Workspace (groups are named by email)",
            )?;
            let derived = self.derived_membership.to_string();
            let ids = listed.iter().map(|(id, _)| id.clone()).collect();
            let members = super::member_listings(ids, http.concurrency(), |id| {
                let path = format!("groups/{id}/members");
                let q = vec![
                    ("maxResults", "200".to_string()),
                    ("includeDerivedMembership", derived.clone()),
                ];
                let http = &http;
                async move { all(http, &path, "members", q).await }
            })
            .await?;
            Ok((listed, members, skipped))
        };
        let users = async { Ok::<_, SourceError>(users.await?) };
        let (users, (listed, members, mut skipped)) = tokio::try_join!(users, groups)?;
        let users: Vec<User> = users
            .iter()
            .filter_map(|v| user_from_google(v).map_err(|l| skipped.push(*l)).ok())
            .collect();
        // Only people count (nested groups are flattened by includeDerivedMembership); anything
        // else is named.
        let members = members
            .into_iter()
            .zip(&listed)
            .map(|(ms, (_, group))| {
                ms.into_iter()
                    .filter(|m| match not_a_person(m) {
                        None => m.get("type").and_then(Value::as_str).unwrap_or("USER") == "USER",
                        Some(reason) => {
                            let (name, email) = super::member_label(m);
                            let id = m.get("id").and_then(Value::as_str).map(String::from);
                            skipped.push(LeftOut::member(group, id, &name, email, reason));
                            false
                        }
                    })
                    .collect()
            })
            .collect();
        let groups = super::groups_from_listings(
            &users,
            listed,
            members,
            "not a user of this Workspace (an external member)",
            &mut skipped,
        );
        Ok(Snapshot {
            users,
            groups,
            verified_domains: None,
            skipped,
        })
    }
}

/// Builds the connector its config describes, resolving its credentials.
///
/// # Errors
/// A credential that cannot be read, or settings that name no server.
pub(crate) fn build(
    g: &GoogleSourceConfig,
    config_dir: &std::path::Path,
) -> Result<Box<dyn Source>, SourceError> {
    let read = |key: &str, inline: Option<&String>, file: Option<&std::path::PathBuf>| {
        super::read_secret(key, inline, file, config_dir)
    };
    Ok({
        let key = read(
            "service_account_key",
            g.service_account_key.as_ref(),
            g.service_account_key_file.as_ref(),
        )?;
        let (client_email, private_key, token_uri) = parse_key(&key)
            .map_err(|m| SourceError::Invalid(format!("google: {m}")))?;
        Box::new(GoogleSource {
            name: g.name.clone(),
            base_url: g.base_url.clone(),
            customer: g.customer.clone(),
            domain: g.domain.clone(),
            admin_email: g.admin_email.clone(),
            client_email,
            private_key,
            token_url: g
                .token_url
                .clone()
                .or(token_uri)
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
            derived_membership: g.include_derived_membership,
            groups: g.groups.clone(),
            settings: g.http.clone(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn users_and_keys_map() {
        let v = json!({"id": "1", "primaryEmail": "Ana@x.com", "name": {"givenName": "Ana"}, "suspended": false, "archived": true,
                       "organizations": [{"title": "Eng", "department": "R&D", "primary": true}]});
        let u = user_from_google(&v).unwrap();
        assert!(!u.active, "archived is inactive");
        assert!(user_from_google(&json!({"id": "2", "primaryEmail": null})).is_err());
        assert_eq!(
            not_a_person(&json!({"type": "CUSTOMER", "id": "C01"})),
            Some("the whole account (a CUSTOMER member), not a user")
        );
        assert_eq!(
            u.attributes.get("department").map(String::as_str),
            Some("R&D")
        );
        // Null everywhere is the same user as nothing at all, and still active.
        let bare = json!({"id": "3", "primaryEmail": "cy@x.com"});
        let nulls = json!({"id": "3", "primaryEmail": "cy@x.com", "name": {"givenName": null,
            "familyName": null, "fullName": null}, "suspended": null, "archived": null,
            "organizations": null, "relations": null, "customSchemas": null, "orgUnitPath": null});
        let u = user_from_google(&nulls).unwrap();
        assert!(u.active, "a null `suspended` deactivates nobody");
        assert_eq!(u, user_from_google(&bare).unwrap());
        let orgs = json!({"id": "3", "primaryEmail": "cy@x.com", "name": null,
            "organizations": [{"title": null, "primary": null}, {"title": "Eng", "primary": true}]});
        assert_eq!(
            user_from_google(&orgs)
                .unwrap()
                .attributes
                .get("title")
                .map(String::as_str),
            Some("Eng")
        );
        let key = Secret::new(
            r#"{"client_email": "sa@p.iam.gserviceaccount.com", "private_key": "-----BEGIN PRIVATE KEY-----", "token_uri": "https://oauth2.googleapis.com/token"}"#,
        );
        let (email, _, uri) = parse_key(&key).unwrap();
        assert_eq!(email, "sa@p.iam.gserviceaccount.com");
        assert_eq!(uri.as_deref(), Some("https://oauth2.googleapis.com/token"));
        assert!(parse_key(&Secret::new("nope")).is_err());
    }
}
