//! `type: keycloak`: users, the group tree and group members, through the Keycloak Admin REST API.
//!
//! Requests: a client-credentials token from the realm's token endpoint (the old `/auth` prefix is
//! just part of `base_url`), `GET …/users/count` then `GET …/users` (offset paging until the count is
//! read), `GET …/groups/count?top=true` then `GET …/groups` (top-level groups only since Keycloak 23;
//! the whole tree in `subGroups` before) and, on 23+, `GET …/groups/{id}/children` with an explicit
//! `max` (its default is 10) down the tree until each `subGroupCount` is read, then
//! `GET …/groups/{id}/members` per group, a few at a time. A counted listing ends when the count is
//! read (its last page asked for one item more than remains, which shows a count that was too low);
//! a member listing, which has no count, ends on a short page once the read has seen the server
//! fill pages of `max` (and cap none), else on an empty page ([`paginate::OffsetEvidence`]). No
//! per-user calls. Groups are named by path (`/Engineering/SRE`), so mappings read
//! `keycloak:/Engineering/SRE`.

pub mod config;

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;

use self::config::KeycloakSourceConfig;
use super::{present, Source, SourceError};
use crate::config::secret::Secret;
use crate::http::{oauth, paginate, wire, Auth, HttpClient, HttpError, HttpSettings, TokenSource};
use crate::model::{LeftOut, People, Snapshot, User};

/// A Keycloak realm.
#[derive(Debug)]
pub struct KeycloakSource {
    pub name: String,
    /// The server URL, with `/auth` for legacy (WildFly or `--http-relative-path=/auth`) servers.
    pub base_url: String,
    pub realm: String,
    pub token_realm: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub groups: Vec<String>,
    pub page_size: usize,
    pub settings: HttpSettings,
}

impl KeycloakSource {
    async fn client(&self) -> Result<HttpClient, SourceError> {
        let base = self.base_url.trim_end_matches('/');
        let token_url = format!(
            "{base}/realms/{}/protocol/openid-connect/token",
            self.token_realm
        );
        let endpoint = HttpClient::new("Keycloak token endpoint", base, Auth::None, &self.settings);
        let (client_id, secret) = (self.client_id.clone(), self.client_secret.clone());
        let grant = oauth::FormGrant::new(endpoint, &token_url, move || {
            Ok(vec![
                ("grant_type", "client_credentials".to_string()),
                ("client_id", client_id.clone()),
                ("client_secret", secret.expose().to_string()),
            ])
        })
        .map_err(SourceError::Invalid)?;
        // Keycloak's access tokens last five minutes unless the realm says otherwise.
        let tokens = TokenSource::start("Bearer", grant).await?;
        let admin = format!("{base}/admin/realms/{}", self.realm);
        Ok(HttpClient::new(
            "Keycloak",
            &admin,
            Auth::Token(Arc::new(tokens)),
            &self.settings,
        ))
    }

    /// A count endpoint's number: a bare integer (`/users/count`) or `{"count": n}` (`/groups/count`).
    async fn count(
        http: &HttpClient,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<usize, HttpError> {
        let v = http.get_json(path, query).await?;
        v.as_u64()
            .or_else(|| v.get("count").and_then(Value::as_u64))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| http.malformed(path, "a count that is not a number"))
    }

    /// A listing whose size a count endpoint announces: read until that many came (no extra empty
    /// page when the last page is short); a listing that still disagrees with a second count (the
    /// realm may have changed meanwhile) is an error.
    async fn counted(
        &self,
        http: &HttpClient,
        path: &str,
        query: &[(&str, String)],
        count_path: &str,
        count_query: &[(&str, String)],
        seen: &paginate::OffsetEvidence,
    ) -> Result<Vec<Value>, HttpError> {
        let what = format!("GET {count_path}");
        let announced = Self::count(http, count_path, count_query).await?;
        let items =
            paginate::offset_counted(http, path, query, self.page_size, announced, &what, seen)
                .await?;
        if items.len() != announced {
            let again = Self::count(http, count_path, count_query).await?;
            if items.len() != again {
                return Err(http.malformed(
                    path,
                    &format!(
                        "{what} announced {announced} (then {again}), but the pages held {}: the listing is incomplete or inconsistent",
                        items.len()
                    ),
                ));
            }
        }
        Ok(items)
    }

    /// Every group, top level first, then each level's subgroups. Keycloak 23 and later list only
    /// the top level, each group with a `subGroupCount`, and subgroups through
    /// `/groups/{id}/children` (fetched a few parents at a time, each until its count is read);
    /// older servers (Red Hat SSO 7.x is Keycloak 18) have no `/children` and return the whole tree
    /// in each group's `subGroups`. Which applies is decided per group from what the server sent; a
    /// group with neither is an error, never a level dropped.
    async fn tree(
        &self,
        http: &HttpClient,
        seen: &paginate::OffsetEvidence,
    ) -> Result<Vec<Value>, HttpError> {
        let brief = [("briefRepresentation", "true".to_string())];
        let top = [("top", "true".to_string())];
        let mut level = self
            .counted(http, "groups", &brief, "groups/count", &top, seen)
            .await?;
        let mut all = Vec::new();
        while !level.is_empty() {
            let mut walk: Vec<(String, usize)> = Vec::new();
            let mut next: Vec<Value> = Vec::new();
            for g in &level {
                let g: WireGroup = wire::decode(g);
                let id = g.id.unwrap_or_default();
                match (g.sub_group_count, g.sub_groups) {
                    (Some(n), _) => {
                        if n > 0 {
                            walk.push((id, usize::try_from(n).unwrap_or(usize::MAX)));
                        }
                    }
                    (None, Some(Value::Array(subs))) => next.extend(subs),
                    _ => {
                        let path = g.path.unwrap_or(id);
                        return Err(http.malformed(
                            "groups",
                            &format!("the group {path} came with neither `subGroupCount` (Keycloak 23+) nor `subGroups` (older servers), so its subgroups cannot be read"),
                        ));
                    }
                }
            }
            let brief = &brief;
            let children: Vec<Vec<Value>> = stream::iter(walk.into_iter().map(|(id, n)| {
                let path = format!("groups/{id}/children");
                async move {
                    let kids = paginate::offset_counted(
                        http,
                        &path,
                        brief,
                        self.page_size,
                        n,
                        "the parent's subGroupCount",
                        seen,
                    )
                    .await?;
                    if kids.len() == n {
                        Ok(kids)
                    } else {
                        Err(http.malformed(
                            &path,
                            &format!(
                                "the parent's subGroupCount announced {n} subgroups, but the pages held {}: the tree is incomplete",
                                kids.len()
                            ),
                        ))
                    }
                }
            }))
            .buffered(http.concurrency())
            .try_collect()
            .await?;
            all.append(&mut level);
            next.extend(children.into_iter().flatten());
            level = next;
        }
        Ok(all)
    }
}

impl KeycloakSource {
    /// `(id, path)` of the groups to read: the whole tree, or the configured groups.
    async fn listed(
        &self,
        http: &HttpClient,
        seen: &paginate::OffsetEvidence,
    ) -> Result<Vec<(String, String)>, SourceError> {
        let tree = self.tree(http, seen).await?;
        let mut listed: Vec<(String, String)> = tree
            .iter()
            .filter_map(|g| {
                let g: WireGroup = wire::decode(g);
                let path = g
                    .path
                    .unwrap_or_else(|| format!("/{}", g.name.unwrap_or_default()));
                Some((g.id?, path))
            })
            .collect();
        super::keep_configured(
            &mut listed,
            &self.groups,
            false,
            &format!(
                "in realm {} (groups are named by path, e.g. /Engineering/SRE)",
                self.realm
            ),
        )?;
        Ok(listed)
    }
}

/// A Keycloak user as the model: the first value of each attribute is usable in templates. Keycloak
/// allows users without an email: such a user (unless its username is an email) is left out,
/// named, with the reason. Keycloak omits unset fields, but a `null` (a proxy, an older server, an
/// extension) reads exactly like a missing field: `email`, names, `attributes`, an attribute's
/// values. `enabled` missing or `null` is enabled: only an explicit `false` deactivates.
fn user_from_keycloak(v: &Value) -> Result<User, Box<LeftOut>> {
    let w: WireUser = wire::decode(v);
    let username = w.username;
    let Some(email) = w.email.or_else(|| username.clone().filter(|u| u.contains('@'))) else {
        let name = username.or_else(|| w.id.clone()).unwrap_or_default();
        return Err(Box::new(LeftOut::user(w.id, &name, None, "no email")));
    };
    let mut u = User::new(&email);
    u.id = w.id;
    u.user_name = username;
    u.given_name = w.first_name;
    u.family_name = w.last_name;
    u.active = w.enabled.unwrap_or(true);
    for (k, vals) in w.attributes {
        let first = match &vals {
            Value::Array(a) => a.iter().find_map(|x| present(Some(x))),
            other => present(Some(other)),
        };
        if let Some(val) = first {
            u.attributes.insert(k, val.to_string());
        }
    }
    Ok(u)
}

/// A user as `GET /users` sends it (`briefRepresentation=false`): absent, `null` and blank read
/// alike; `attributes` maps a name to its values (a list, or one value).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireUser {
    #[serde(deserialize_with = "wire::text")]
    id: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    username: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    email: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    first_name: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    last_name: Option<String>,
    #[serde(deserialize_with = "wire::opt_flag")]
    enabled: Option<bool>,
    #[serde(deserialize_with = "wire::map")]
    attributes: serde_json::Map<String, Value>,
}

/// A group as `GET /groups` (and `/groups/{id}/children`) sends it: Keycloak 23+ with a
/// `subGroupCount`, older servers with the whole tree in `subGroups` (kept as sent: only a list
/// holds subgroups).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireGroup {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    name: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    path: Option<String>,
    #[serde(deserialize_with = "wire::unsigned")]
    sub_group_count: Option<u64>,
    sub_groups: Option<Value>,
}

/// A user's id, as the targeted read's lookups return it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WireId {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
}

#[async_trait]
impl Source for KeycloakSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn snapshot(&self) -> Result<Snapshot, SourceError> {
        let http = self.client().await?;
        let full = [("briefRepresentation", "false".to_string())];
        // What the server does with `max`, learnt from the counted listings (and full member
        // pages): it lets a member listing end on a short page.
        // Led by the users listing, whose first page the member listings wait for.
        let seen = paginate::OffsetEvidence::led_by("users");
        let seen = &seen;
        let users = async {
            let users = self
                .counted(&http, "users", &full, "users/count", &[], seen)
                .await;
            seen.settle();
            users
        };
        // Members are read as soon as the group tree is known, alongside the users.
        let groups = async {
            let listed = self.listed(&http, seen).await?;
            let ids = listed.iter().map(|(id, _)| id.clone()).collect();
            let brief = [("briefRepresentation", "true".to_string())];
            seen.settled().await;
            let members = super::member_listings(ids, http.concurrency(), |id| {
                let path = format!("groups/{id}/members");
                let http = &http;
                let brief = &brief;
                async move { paginate::offset_all(http, &path, brief, self.page_size, seen).await }
            })
            .await?;
            Ok((listed, members))
        };
        let users = async { Ok::<_, SourceError>(users.await?) };
        let (users, (listed, members)) = tokio::try_join!(users, groups)?;
        let mut skipped = Vec::new();
        let users: Vec<User> = users
            .iter()
            .filter_map(|v| user_from_keycloak(v).map_err(|l| skipped.push(*l)).ok())
            .collect();
        let groups = super::groups_from_listings(
            &users,
            listed,
            members,
            "not among the realm's users (a service account, or a user created during the read)",
            &mut skipped,
        );
        Ok(Snapshot {
            users,
            groups,
            verified_domains: None,
            skipped,
        })
    }

    /// Per person: `GET …/users?email=E&exact=true` and `…?username=E&exact=true` per email (a
    /// user without an email stands for one by an email-shaped username, as in the full read),
    /// `GET …/users/{id}` per id (404 is absence), then `GET …/users/{id}/groups` (direct groups,
    /// as the full read's `/groups/{id}/members` are direct members) per person found, kept to the
    /// groups the full read lists (the tree is walked as in the full read, without members).
    async fn snapshot_people(&self, people: &People) -> Result<Snapshot, SourceError> {
        let http = self.client().await?;
        let width = http.concurrency().max(1);
        let lookups: Vec<(bool, String)> = people
            .emails
            .iter()
            .flat_map(|e| [(true, e.clone()), (false, e.clone())])
            .collect();
        let by_email = stream::iter(lookups)
            .map(|(by_email, e)| {
                let http = &http;
                async move {
                    let attr = if by_email { "email" } else { "username" };
                    let q = [
                        (attr, e),
                        ("exact", "true".to_string()),
                        ("briefRepresentation", "false".to_string()),
                    ];
                    paginate::offset_all(http, "users", &q, self.page_size, &paginate::OffsetEvidence::led_by("users")).await
                }
            })
            .buffered(width)
            .try_collect::<Vec<Vec<Value>>>();
        let by_id = super::found_by_key(people.ids.iter().cloned(), width, |id| {
            let http = &http;
            async move { http.get_json(&format!("users/{}", super::seg(&id)), &[]).await }
        });
        // No users listing leads here: the group tree's counted listings are the evidence.
        let seen = paginate::OffsetEvidence::led_by("groups");
        let groups = self.listed(&http, &seen);
        let by_email = async { Ok::<_, SourceError>(by_email.await?) };
        let by_id = async { Ok::<_, SourceError>(by_id.await?) };
        let (by_email, by_id, listed) = tokio::try_join!(by_email, by_id, groups)?;
        let mut seen = std::collections::HashSet::new();
        let found: Vec<Value> = by_email
            .into_iter()
            .flatten()
            .chain(by_id)
            // An exact filter that still returns someone else is not this person.
            .filter(|u| wire::decode::<WireId>(u).id.is_none_or(|id| seen.insert(id)))
            .collect();
        let ids: Vec<String> = found
            .iter()
            .filter_map(|u| wire::decode::<WireId>(u).id)
            .collect();
        let brief = [("briefRepresentation", "true".to_string())];
        let memberships: Vec<(String, Vec<Value>)> = stream::iter(ids)
            .map(|id| {
                let (http, brief) = (&http, &brief);
                async move {
                    let path = format!("users/{}/groups", super::seg(&id));
                    let gs = paginate::offset_all(http, &path, brief, self.page_size, &paginate::OffsetEvidence::led_by("users")).await?;
                    Ok::<_, HttpError>((id, gs))
                }
            })
            .buffered(width)
            .try_collect()
            .await?;
        let members = super::member_objects(&listed, &memberships);
        Ok(super::people_snapshot(
            &found,
            user_from_keycloak,
            listed,
            members,
            "not among the realm's users (a service account, or a user created during the read)",
            Vec::new(),
            people,
        ))
    }
}

/// Builds the connector its config describes, resolving its credentials.
///
/// # Errors
/// A credential that cannot be read, or settings that name no server.
pub(crate) fn build(
    k: &KeycloakSourceConfig,
    config_dir: &std::path::Path,
) -> Result<Box<dyn Source>, SourceError> {
    let read = |key: &str, inline: Option<&String>, file: Option<&std::path::PathBuf>| {
        super::read_secret(key, inline, file, config_dir)
    };
    Ok(Box::new(KeycloakSource {
        name: k.name.clone(),
        base_url: k.base_url.clone(),
        realm: k.realm.clone(),
        token_realm: k.token_realm.clone().unwrap_or_else(|| k.realm.clone()),
        client_id: k.client_id.clone(),
        client_secret: read(
            "client_secret",
            k.client_secret.as_ref(),
            k.client_secret_file.as_ref(),
        )?,
        groups: k.groups.clone(),
        page_size: k.page_size,
        settings: k.http.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn users_map() {
        let v = json!({"id": "k1", "username": "ana", "email": "Ana@x.com", "enabled": false, "attributes": {"department": ["R&D", "Ops"]}});
        let u = user_from_keycloak(&v).unwrap();
        assert!(!u.active);
        assert_eq!(u.key(), "ana@x.com");
        assert_eq!(
            u.attributes.get("department").map(String::as_str),
            Some("R&D")
        );
        let l = user_from_keycloak(&json!({"id": "k2", "username": "svc-build", "email": null}))
            .unwrap_err();
        assert_eq!(
            (l.name.as_str(), l.reason.as_str()),
            ("svc-build", "no email")
        );
        let v = json!({"id": "k3", "username": "cy@x.com", "firstName": null, "attributes": {"title": [null, "Eng"], "x": null}});
        let u = user_from_keycloak(&v).unwrap();
        assert_eq!(u.key(), "cy@x.com");
        assert_eq!(u.given_name, None);
        assert_eq!(u.attributes.get("title").map(String::as_str), Some("Eng"));
        assert!(!u.attributes.contains_key("x"));
        // Null everywhere is the same user as nothing at all, and still enabled.
        let bare = json!({"id": "k4", "username": "dee", "email": "dee@x.com"});
        let nulls = json!({"id": "k4", "username": "dee", "email": "dee@x.com", "firstName": null,
                           "lastName": null, "enabled": null, "attributes": null});
        let u = user_from_keycloak(&nulls).unwrap();
        assert!(u.active, "a null `enabled` deactivates nobody");
        assert_eq!(u, user_from_keycloak(&bare).unwrap());
        // A null email falls back to an email-shaped username, as a missing one does.
        let u = user_from_keycloak(&json!({"id": "k5", "username": "eve@x.com", "email": null}))
            .unwrap();
        assert_eq!(u.key(), "eve@x.com");
    }
}
