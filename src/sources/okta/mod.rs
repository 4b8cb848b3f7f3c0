//! `type: okta`: users of every status, groups and group members, through the Okta Management API.
//!
//! Requests: `GET /api/v1/users?search=status pr` (without `search`, Okta leaves DEPROVISIONED users
//! out), `GET /api/v1/groups` (or one search per configured group), and `GET /api/v1/groups/{id}/users`
//! per group, a few at a time; every listing follows `Link: rel="next"`. The full read makes no per-user calls (`snapshot_people` does: see there). Rate-limit
//! headers pace the requests before a 429 happens.

pub mod config;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use self::config::OktaSourceConfig;
use super::{present, Source, SourceError};
use crate::config::secret::Secret;
use crate::http::{oauth, paginate, wire, Auth, HttpClient, HttpError, HttpSettings, TokenSource};
use crate::model::{LeftOut, People, Snapshot, User};

/// How the connector authenticates.
#[derive(Debug)]
pub enum OktaAuth {
    /// An API token, sent as `SSWS`.
    ApiToken(Secret),
    /// An OAuth service app: client id, RSA key (PEM), key id, scopes.
    OAuth {
        client_id: String,
        key: Secret,
        key_id: Option<String>,
        scopes: Vec<String>,
    },
}

/// An Okta org.
#[derive(Debug)]
pub struct OktaSource {
    name: String,
    base_url: String,
    auth: OktaAuth,
    groups: Vec<String>,
    page_size: usize,
    settings: HttpSettings,
}

impl OktaSource {
    #[must_use]
    pub fn new(
        name: &str,
        base_url: &str,
        auth: OktaAuth,
        groups: Vec<String>,
        page_size: usize,
        settings: HttpSettings,
    ) -> Self {
        OktaSource {
            name: name.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            auth,
            groups,
            page_size: page_size.clamp(1, 200),
            settings,
        }
    }

    /// A client for the Management API, fetching an OAuth access token first when so configured
    /// (renewed as it expires; an API token does not).
    async fn client(&self) -> Result<HttpClient, SourceError> {
        let auth = match &self.auth {
            OktaAuth::ApiToken(t) => Auth::Scheme("SSWS", t.clone()),
            OktaAuth::OAuth {
                client_id,
                key,
                key_id,
                scopes,
            } => {
                let token_url = format!("{}/oauth2/v1/token", self.base_url);
                let endpoint = HttpClient::new(
                    "Okta token endpoint",
                    &self.base_url,
                    Auth::None,
                    &self.settings,
                );
                let (client_id, key, key_id) = (client_id.clone(), key.clone(), key_id.clone());
                let scope = scopes.join(" ");
                let audience = token_url.clone();
                // Each token request gets a fresh client assertion: Okta refuses a `jti` twice.
                let grant = oauth::FormGrant::new(endpoint, &token_url, move || {
                    let header = jsonwebtoken::Header {
                        kid: key_id.clone(),
                        ..jsonwebtoken::Header::default()
                    };
                    let assertion = oauth::client_assertion(&client_id, &audience, &key, header)
                        .map_err(|e| format!("oauth: {e}"))?;
                    Ok(vec![
                        ("grant_type", "client_credentials".to_string()),
                        ("scope", scope.clone()),
                        ("client_assertion_type", oauth::JWT_BEARER.to_string()),
                        ("client_assertion", assertion.expose().to_string()),
                    ])
                })
                .map_err(SourceError::Invalid)?;
                Auth::Token(Arc::new(TokenSource::start("Bearer", grant).await?))
            }
        };
        Ok(HttpClient::new(
            "Okta",
            &self.base_url,
            auth,
            &self.settings,
        ))
    }

    /// Every item of a listing, following `Link: rel="next"` as given (on the configured origin
    /// only, and never back to a page already read). Okta announces no total, but it fills every
    /// page that links to a next one: a page that is empty, or shorter than the first, and still
    /// links on has lost items; it is asked for again, then fails the listing.
    async fn all(
        &self,
        http: &HttpClient,
        path: &str,
        query: Vec<(&str, String)>,
    ) -> Result<Vec<Value>, HttpError> {
        paginate::Pager::new(http, path, query, paginate::LINK_HEADER)
            .all()
            .await
    }

    /// The groups to read (every group, or the configured ones), as Okta lists them, without
    /// members. Shared by the full and the targeted read.
    async fn group_listing(&self, http: &HttpClient, limit: &str) -> Result<Vec<Value>, HttpError> {
        let limit = limit.to_string();
        if self.groups.is_empty() {
            return self
                .all(http, "api/v1/groups", vec![("limit", limit.clone())])
                .await;
        }
        let mut found = Vec::new();
        for wanted in &self.groups {
            if let super::GroupRef::Id(id) = super::GroupRef::parse(wanted) {
                match http.get_json(&format!("api/v1/groups/{id}"), &[]).await {
                    Ok(g) => {
                        found.push(g);
                        continue;
                    }
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => return Err(e),
                }
            }
            let search = format!("profile.name eq \"{}\"", wanted.replace('"', "\\\""));
            let hits = self
                .all(
                    http,
                    "api/v1/groups",
                    vec![("search", search), ("limit", limit.clone())],
                )
                .await?;
            let exact: Vec<Value> = hits
                .into_iter()
                .filter(|g| wire::decode::<WireGroup>(g).profile.name.as_deref() == Some(wanted))
                .collect();
            match exact.len() {
                0 => {
                    return Err(http.malformed(
                        "api/v1/groups",
                        &format!("the configured group {wanted:?} does not exist in Okta"),
                    ))
                }
                1 => found.extend(exact),
                _ => {
                    let groups: Vec<WireGroup> = exact.iter().map(wire::decode).collect();
                    let named: Vec<(&str, String)> = groups
                        .iter()
                        .map(|g| {
                            let kind = g.kind.as_deref().unwrap_or("");
                            (g.id.as_deref().unwrap_or(""), format!("{wanted} ({kind})"))
                        })
                        .collect();
                    let named: Vec<(&str, &str)> =
                        named.iter().map(|(id, n)| (*id, n.as_str())).collect();
                    return Err(http.malformed(
                        "api/v1/groups",
                        &super::ambiguous_configured(wanted, &named, "in Okta"),
                    ));
                }
            }
        }
        Ok(found)
    }
}

/// `(id, name)` of each listed group; one without either is left out, named.
fn listed_groups(groups: &[Value], skipped: &mut Vec<LeftOut>) -> Vec<(String, String)> {
    groups
        .iter()
        .map(wire::decode::<WireGroup>)
        .filter_map(|g| {
            let name = g.profile.name.filter(|n| !n.trim().is_empty());
            match (g.id, name) {
                (Some(id), Some(name)) => Some((id, name)),
                (id, _) => {
                    let name = id.clone().unwrap_or_default();
                    skipped.push(LeftOut::group(id, &name, "no id or no name"));
                    None
                }
            }
        })
        .collect()
}

/// Okta statuses that mean the person can work: everything but SUSPENDED and DEPROVISIONED.
fn is_active(status: &str) -> bool {
    !matches!(status, "SUSPENDED" | "DEPROVISIONED")
}

/// An Okta user as the model: profile strings become attributes (usable in templates). Null,
/// missing and blank values are all absent. The email is `profile.email`, else an email-shaped
/// `login`; a user with neither is left out, named, with the reason.
fn user_from_okta(v: &Value) -> Result<User, Box<LeftOut>> {
    let w: WireUser = wire::decode(v);
    let s = |k: &str| present(w.profile.as_ref().and_then(|p| p.get(k))).map(String::from);
    let login = s("login");
    let Some(email) = s("email").or_else(|| login.clone().filter(|l| l.contains('@'))) else {
        let name = login.or_else(|| w.id.clone()).unwrap_or_default();
        let reason = if w.profile.is_none() {
            "no profile"
        } else {
            "no email"
        };
        return Err(Box::new(LeftOut::user(w.id, &name, None, reason)));
    };
    let mut u = User::new(&email);
    u.user_name = login;
    u.given_name = s("firstName");
    u.family_name = s("lastName");
    u.display_name = s("displayName");
    u.id = w.id;
    let status = w.status.as_deref().unwrap_or("ACTIVE");
    u.active = is_active(status);
    for (k, text) in w.profile.iter().flat_map(wire::strings) {
        u.attributes.insert(k.clone(), text.to_string());
    }
    u.attributes.insert("status".into(), status.to_string());
    Ok(u)
}

/// A user as `GET /api/v1/users` sends it: the profile is an open map (custom attributes become
/// attributes).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireUser {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    status: Option<String>,
    #[serde(deserialize_with = "wire::opt_map")]
    profile: Option<serde_json::Map<String, Value>>,
}

/// A group as `GET /api/v1/groups` sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireGroup {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
    #[serde(rename = "type", deserialize_with = "wire::string")]
    kind: Option<String>,
    #[serde(deserialize_with = "wire::object")]
    profile: WireGroupProfile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireGroupProfile {
    #[serde(deserialize_with = "wire::string")]
    name: Option<String>,
}

#[async_trait]
impl Source for OktaSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// Okta's per-minute rate limits, one bucket per endpoint (developer.okta.com
    /// rl-global-mgmt): `GET /api/v1/users` 600, `/api/v1/groups` 600, `/api/v1/groups/{id}` (its
    /// member listings) 1,000 a minute — the highest figures of the paid plans, so that the time
    /// is a lower bound whatever the plan.
    fn rate_budgets(&self, read: &crate::model::Indexed) -> Vec<crate::model::RateBudget> {
        let page = self.page_size;
        let bucket = |what: &str, requests: u64, per: u64| crate::model::RateBudget {
            what: format!("source {}: Okta's {what}", self.name),
            requests,
            per,
            window_secs: 60,
        };
        vec![
            bucket(
                "GET /api/v1/users limit of 600 a minute",
                super::pages(read.keys.len(), page),
                600,
            ),
            bucket(
                "/api/v1/groups limit of 600 a minute",
                super::pages(read.snapshot.groups.len(), page),
                600,
            ),
            bucket(
                "/api/v1/groups/{id} limit of 1,000 a minute",
                super::member_pages(read, page),
                1_000,
            ),
        ]
    }

    async fn snapshot(&self) -> Result<Snapshot, SourceError> {
        let http = self.client().await?;
        let limit = self.page_size.to_string();
        let users_q = vec![
            ("search", "status pr".to_string()),
            ("limit", limit.clone()),
        ];
        let users = self.all(&http, "api/v1/users", users_q);
        let groups = self.group_listing(&http, &limit);
        // Members are read as soon as the groups are known, alongside the users.
        let groups = async {
            let mut skipped = Vec::new();
            let listed = listed_groups(&groups.await?, &mut skipped);
            let ids = listed.iter().map(|(id, _)| id.clone()).collect();
            let members = super::member_listings(ids, http.concurrency(), |id| {
                let q = vec![("limit", limit.clone())];
                let http = &http;
                async move {
                    self.all(http, &format!("api/v1/groups/{id}/users"), q)
                        .await
                }
            })
            .await?;
            Ok::<_, HttpError>((listed, members, skipped))
        };
        let (users, (listed, members, mut skipped)) = tokio::try_join!(users, groups)?;
        let users: Vec<User> = users
            .iter()
            .filter_map(|v| user_from_okta(v).map_err(|l| skipped.push(*l)).ok())
            .collect();
        let groups = super::groups_from_listings(
            &users,
            listed,
            members,
            "not among the users Okta listed",
            &mut skipped,
        );
        Ok(Snapshot {
            users,
            groups,
            verified_domains: None,
            skipped,
        })
    }

    /// Per person: `GET /api/v1/users?search=profile.email eq "E" or profile.login eq "E"` (a search
    /// includes DEPROVISIONED users, as the full read's does) per email, `GET /api/v1/users/{id}`
    /// per id (404 is absence), then `GET /api/v1/users/{id}/groups` per person found, kept to the
    /// groups the full read lists (every group, or the configured ones, listed without members).
    async fn snapshot_people(&self, people: &People) -> Result<Snapshot, SourceError> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let http = self.client().await?;
        let limit = self.page_size.to_string();
        let width = http.concurrency().max(1);
        let by_email = stream::iter(people.emails.iter().cloned())
            .map(|e| {
                let (http, limit) = (&http, limit.clone());
                async move {
                    let quoted = e.replace('"', "\\\"");
                    let search =
                        format!("profile.email eq \"{quoted}\" or profile.login eq \"{quoted}\"");
                    self.all(
                        http,
                        "api/v1/users",
                        vec![("search", search), ("limit", limit)],
                    )
                    .await
                }
            })
            .buffered(width)
            .try_collect::<Vec<Vec<Value>>>();
        let by_id = super::found_by_key(people.ids.iter().cloned(), width, |id| {
            let http = &http;
            async move {
                http.get_json(&format!("api/v1/users/{}", super::seg(&id)), &[])
                    .await
            }
        });
        let groups = self.group_listing(&http, &limit);
        let (by_email, by_id, groups) = tokio::try_join!(by_email, by_id, groups)?;
        let mut seen = std::collections::HashSet::new();
        let found: Vec<Value> = by_email
            .into_iter()
            .flatten()
            .chain(by_id)
            .filter(|u| {
                u.get("id")
                    .and_then(Value::as_str)
                    .is_none_or(|id| seen.insert(id.to_string()))
            })
            .collect();
        let ids: Vec<String> = found
            .iter()
            .filter_map(|u| u.get("id").and_then(Value::as_str).map(String::from))
            .collect();
        let memberships = stream::iter(ids)
            .map(|id| {
                let http = &http;
                async move {
                    let gs = http
                        .get_json(&format!("api/v1/users/{}/groups", super::seg(&id)), &[])
                        .await?;
                    match gs {
                        Value::Array(gs) => Ok((id, gs)),
                        _ => Err(http.malformed(
                            &format!("api/v1/users/{id}/groups"),
                            "a listing that is not a JSON array",
                        )),
                    }
                }
            })
            .buffered(width)
            .try_collect::<Vec<(String, Vec<Value>)>>()
            .await?;
        let mut skipped = Vec::new();
        let listed = listed_groups(&groups, &mut skipped);
        let members = super::member_objects(&listed, &memberships);
        Ok(super::people_snapshot(
            &found,
            user_from_okta,
            listed,
            members,
            "not among the users Okta listed",
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
    o: &OktaSourceConfig,
    config_dir: &std::path::Path,
) -> Result<Box<dyn Source>, SourceError> {
    let read = |key: &str, inline: Option<&String>, file: Option<&std::path::PathBuf>| {
        super::read_secret(key, inline, file, config_dir)
    };
    Ok({
        let base = o
            .base_url
            .clone()
            .or_else(|| {
                o.domain
                    .as_ref()
                    .map(|d| format!("https://{}", d.trim_end_matches('/')))
            })
            .ok_or_else(|| SourceError::Invalid("okta: set `domain` (or `base_url`)".into()))?;
        let auth = match &o.oauth {
            Some(oa) => OktaAuth::OAuth {
                client_id: oa.client_id.clone(),
                key: read(
                    "oauth.private_key",
                    oa.private_key.as_ref(),
                    oa.private_key_file.as_ref(),
                )?,
                key_id: oa.key_id.clone(),
                scopes: oa.scopes.clone(),
            },
            None => OktaAuth::ApiToken(read("token", o.token.as_ref(), o.token_file.as_ref())?),
        };
        Box::new(OktaSource::new(
            &o.name,
            &base,
            auth,
            o.groups.clone(),
            o.page_size,
            o.http.clone(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_and_profiles_map() {
        let v = json!({"id": "00u1", "status": "SUSPENDED", "profile": {"login": "a@x.com", "email": "A@x.com", "firstName": "A", "title": "Eng", "costCenter": null}});
        let u = user_from_okta(&v).unwrap();
        assert!(!u.active);
        assert!(!u.attributes.contains_key("costCenter"), "null is absent");
        let v2 = json!({"id": "00u2", "profile": {"login": "a@x.com", "email": null, "firstName": null}});
        let u2 = user_from_okta(&v2).unwrap();
        assert_eq!(u2.key(), "a@x.com", "a null email falls back to the login");
        assert_eq!(u2.given_name, None);
        let l =
            user_from_okta(&json!({"id": "00u3", "profile": {"login": "svc-bot", "email": null}}))
                .unwrap_err();
        assert_eq!(
            (l.name.as_str(), l.reason.as_str()),
            ("svc-bot", "no email")
        );
        assert_eq!(
            user_from_okta(&json!({"id": "00u4", "profile": null}))
                .unwrap_err()
                .reason,
            "no profile"
        );
        assert_eq!(u.key(), "a@x.com");
        assert_eq!(u.attributes.get("title").map(String::as_str), Some("Eng"));
        for live in [
            "ACTIVE",
            "PROVISIONED",
            "STAGED",
            "RECOVERY",
            "LOCKED_OUT",
            "PASSWORD_EXPIRED",
        ] {
            assert!(is_active(live), "{live}");
        }
        assert!(!is_active("DEPROVISIONED"));
    }
}
