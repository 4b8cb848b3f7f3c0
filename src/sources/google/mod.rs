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
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::config::GoogleSourceConfig;
use super::{Source, SourceError};
use crate::config::secret::Secret;
use crate::http::{
    oauth, paginate, wire, Auth, HttpClient, HttpError, HttpSettings, Retry, TokenSource,
};
use crate::model::{LeftOut, People, Snapshot, User};

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
        )
        .with_classifier(quota))
    }

    /// `(id, email)` of the groups to read (every group, or the configured ones); a group
    /// without either is left out, named.
    fn listed(
        &self,
        groups: &[Value],
        skipped: &mut Vec<LeftOut>,
    ) -> Result<Vec<(String, String)>, SourceError> {
        let mut listed: Vec<(String, String)> = groups
            .iter()
            .map(wire::decode::<WireGroup>)
            .filter_map(|g| match (g.id, g.email) {
                (Some(id), Some(email)) => Some((id, email.to_lowercase())),
                (id, _) => {
                    let name = g.name.unwrap_or_else(|| id.clone().unwrap_or_default());
                    skipped.push(LeftOut::group(id, &name, "no id or no email"));
                    None
                }
            })
            .collect();
        super::keep_configured(
            &mut listed,
            &self.groups,
            true,
            "in Google Workspace (groups are named by email)",
        )?;
        Ok(listed)
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
    items: &'static str,
    query: Vec<(&str, String)>,
) -> Result<Vec<Value>, HttpError> {
    let style = paginate::Style {
        items: paginate::Items::Field {
            pointer: items,
            missing: None,
        },
        next: paginate::Next::Field {
            pointer: "/nextPageToken",
            param: "pageToken",
        },
        keep_query: true,
        full_pages: true,
        empty_pages: false,
        total: None,
        unique: false,
        noun: "items",
        rereads: 0,
    };
    paginate::Pager::new(http, path, query, style).all().await
}

/// Google's quota errors (403 with `userRateLimitExceeded`, `rateLimitExceeded` or
/// `quotaExceeded`) are throttling: the client's loop retries them like 429s.
fn quota(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Option<Retry> {
    if status != StatusCode::FORBIDDEN {
        return None;
    }
    let body = String::from_utf8_lossy(body);
    let over = body.contains("userRateLimitExceeded")
        || body.contains("quotaExceeded")
        || body.contains("rateLimitExceeded");
    over.then(|| crate::http::retry::asked(headers).map_or(Retry::Backoff, Retry::After))
}

/// A Workspace user as `users.list` sends it (the fields idsync reads).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireUser {
    #[serde(deserialize_with = "wire::text")]
    id: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    primary_email: Option<String>,
    #[serde(deserialize_with = "wire::object")]
    name: WireName,
    #[serde(deserialize_with = "wire::flag")]
    suspended: bool,
    #[serde(deserialize_with = "wire::flag")]
    archived: bool,
    #[serde(deserialize_with = "wire::list")]
    organizations: Vec<WireOrganization>,
    #[serde(deserialize_with = "wire::text")]
    org_unit_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireName {
    #[serde(deserialize_with = "wire::text")]
    given_name: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    family_name: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    full_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireOrganization {
    #[serde(deserialize_with = "wire::opt_flag")]
    primary: Option<bool>,
    #[serde(deserialize_with = "wire::text")]
    title: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    department: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    cost_center: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    description: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    name: Option<String>,
}

/// A group as `groups.list` sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireGroup {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    email: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    name: Option<String>,
}

/// A member as `members.list` sends it (the rest is read by the shared member checks).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireMember {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
    /// `USER`, `GROUP` or `CUSTOMER`; absent is a user.
    #[serde(rename = "type", deserialize_with = "wire::string")]
    kind: Option<String>,
}

/// A Workspace user as the model: suspended or archived is inactive. Null, missing and blank
/// values are all absent, at every level (`name`, `organizations`, an organization's fields).
/// `suspended` and `archived` missing or `null` are false: only an explicit `true` deactivates.
fn user_from_google(v: &Value) -> Result<User, Box<LeftOut>> {
    let w: WireUser = wire::decode(v);
    let Some(email) = w.primary_email else {
        let name = w.name.full_name.or_else(|| w.id.clone()).unwrap_or_default();
        return Err(Box::new(LeftOut::user(w.id, &name, None, "no primaryEmail")));
    };
    let mut u = User::new(&email);
    u.id = w.id;
    u.given_name = w.name.given_name;
    u.family_name = w.name.family_name;
    u.display_name = w.name.full_name;
    u.active = !(w.suspended || w.archived);
    let primary = w
        .organizations
        .iter()
        .find(|o| o.primary == Some(true))
        .or_else(|| w.organizations.first());
    if let Some(o) = primary {
        for (k, val) in [
            ("title", &o.title),
            ("department", &o.department),
            ("costCenter", &o.cost_center),
            ("description", &o.description),
            ("organization", &o.name),
        ] {
            if let Some(val) = val {
                u.attributes.insert(k.to_string(), val.clone());
            }
        }
    }
    if let Some(ou) = w.org_unit_path {
        u.attributes.insert("orgUnitPath".into(), ou);
    }
    Ok(u)
}

/// Why a member is not a person to sync; `None` for users, and for groups (nested groups are
/// flattened by `includeDerivedMembership`, or left alone on purpose without it).
fn not_a_person(member: &Value) -> Option<&'static str> {
    let m: WireMember = wire::decode(member);
    match m.kind.as_deref().unwrap_or("USER") {
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
    fn rate_budgets(&self, read: &crate::model::Indexed) -> Vec<crate::model::RateBudget> {
        let requests = super::pages(read.keys.len(), 500)
            + super::pages(read.snapshot.groups.len(), 200)
            + super::member_pages(read, 200);
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
            "/users",
            vec![
                scope.clone(),
                ("maxResults", "500".into()),
                ("projection", "full".into()),
            ],
        );
        let groups = all(
            &http,
            "groups",
            "/groups",
            vec![scope, ("maxResults", "200".into())],
        );
        // Members are read as soon as the groups are known, alongside the users.
        let groups = async {
            let mut skipped = Vec::new();
            let listed = self.listed(&groups.await?, &mut skipped)?;
            let derived = self.derived_membership.to_string();
            let ids = listed.iter().map(|(id, _)| id.clone()).collect();
            let members = super::member_listings(ids, http.concurrency(), |id| {
                let path = format!("groups/{id}/members");
                let q = vec![
                    ("maxResults", "200".to_string()),
                    ("includeDerivedMembership", derived.clone()),
                ];
                let http = &http;
                async move { all(http, &path, "/members", q).await }
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
                        None => {
                            wire::decode::<WireMember>(m).kind.as_deref().unwrap_or("USER")
                                == "USER"
                        }
                        Some(reason) => {
                            let (name, email) = super::member_label(m);
                            let id = wire::decode::<WireMember>(m).id;
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

    /// Per person: `users.get` by email and by id (404 is absence), `groups.list` (without
    /// members) as in the full read; then their memberships: with `include_derived_membership`,
    /// `members.hasMember` per listed group (direct or nested, as the full read's derived member
    /// listings), else `groups.list?userKey=ID` (their direct groups, as the full read's direct
    /// member listings), kept to the listed groups.
    async fn snapshot_people(&self, people: &People) -> Result<Snapshot, SourceError> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let http = self.client().await?;
        let width = http.concurrency().max(1);
        let keys: Vec<String> = people.emails.iter().chain(&people.ids).cloned().collect();
        let found = super::found_by_key(keys, width, |k| {
            let http = &http;
            async move {
                let path = format!("users/{}", super::seg(&k));
                let q = [("projection", "full".to_string())];
                http.get_json(&path, &q).await
            }
        });
        let groups = all(
            &http,
            "groups",
            "/groups",
            vec![self.scope(), ("maxResults", "200".into())],
        );
        let (found, groups) = tokio::try_join!(found, groups)?;
        let mut seen = std::collections::HashSet::new();
        let found: Vec<Value> = found
            .into_iter()
            .filter(|u| {
                u.get("id")
                    .and_then(Value::as_str)
                    .is_none_or(|id| seen.insert(id.to_string()))
            })
            .collect();
        let mut skipped = Vec::new();
        let listed = self.listed(&groups, &mut skipped)?;
        let ids: Vec<String> = found
            .iter()
            .filter_map(|u| u.get("id").and_then(Value::as_str).map(String::from))
            .collect();
        let memberships: Vec<(String, Vec<Value>)> = if self.derived_membership {
            let pairs: Vec<(String, String)> = ids
                .iter()
                .flat_map(|u| listed.iter().map(move |(g, _)| (u.clone(), g.clone())))
                .collect();
            let answers: Vec<(String, String, bool)> = stream::iter(pairs)
                .map(|(u, g)| {
                    let http = &http;
                    async move {
                        let path =
                            format!("groups/{}/hasMember/{}", super::seg(&g), super::seg(&u));
                        let v = http.get_json(&path, &[]).await?;
                        match v.get("isMember").and_then(Value::as_bool) {
                            Some(is) => Ok((u, g, is)),
                            None => Err(http.malformed(&path, "an answer without `isMember`")),
                        }
                    }
                })
                .buffered(width)
                .try_collect()
                .await?;
            ids.iter()
                .map(|u| {
                    let gs = answers
                        .iter()
                        .filter(|(au, _, is)| au == u && *is)
                        .map(|(_, g, _)| serde_json::json!({ "id": g }))
                        .collect();
                    (u.clone(), gs)
                })
                .collect()
        } else {
            stream::iter(ids)
                .map(|u| {
                    let http = &http;
                    async move {
                        let q = vec![("userKey", u.clone()), ("maxResults", "200".into())];
                        let gs = all(http, "groups", "/groups", q).await?;
                        Ok::<_, HttpError>((u, gs))
                    }
                })
                .buffered(width)
                .try_collect()
                .await?
        };
        let members = super::member_objects(&listed, &memberships);
        Ok(super::people_snapshot(
            &found,
            user_from_google,
            listed,
            members,
            "not a user of this Workspace (an external member)",
            skipped,
            people,
        ))
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
