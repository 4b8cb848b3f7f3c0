//! `type: keycloak`: users, the group tree and group members, through the Keycloak Admin REST API.
//!
//! Requests: a client-credentials token from the realm's token endpoint (the old `/auth` prefix is
//! just part of `base_url`), `GET …/users` (offset paging), `GET …/groups` (top-level groups only since
//! Keycloak 23) and `GET …/groups/{id}/children` with an explicit `max` (its default is 10) down the
//! tree, then `GET …/groups/{id}/members` per group, a few at a time. No per-user calls. Groups are
//! named by path (`/Engineering/SRE`), so mappings read `keycloak:/Engineering/SRE`.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;

use super::{present, Source, SourceError};
use crate::config::secret::Secret;
use crate::http::{oauth, paginate, Auth, HttpClient, HttpError, HttpSettings, TokenSource};
use crate::model::{LeftOut, Snapshot, User};

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

    /// Every group, top level first, then each level's children (fetched a few parents at a time).
    async fn tree(&self, http: &HttpClient) -> Result<Vec<Value>, HttpError> {
        let brief = [("briefRepresentation", "true".to_string())];
        let mut all = paginate::offset_all(http, "groups", &brief, self.page_size).await?;
        let mut level: Vec<Value> = all.clone();
        while !level.is_empty() {
            let parents: Vec<String> = level
                .iter()
                .filter(|g| g.get("subGroupCount").and_then(Value::as_u64).unwrap_or(0) > 0)
                .filter_map(|g| g.get("id").and_then(Value::as_str).map(String::from))
                .collect();
            let brief = &brief;
            let children: Vec<Vec<Value>> = stream::iter(parents.into_iter().map(|id| {
                let path = format!("groups/{id}/children");
                async move { paginate::offset_all(http, &path, brief, self.page_size).await }
            }))
            .buffered(http.concurrency())
            .try_collect()
            .await?;
            level = children.into_iter().flatten().collect();
            all.extend(level.iter().cloned());
        }
        Ok(all)
    }
}

/// A Keycloak user as the model: the first value of each attribute is usable in templates. Keycloak
/// allows users without an email: such a user (unless its username is an email) is left out,
/// named, with the reason.
fn user_from_keycloak(v: &Value) -> Result<User, Box<LeftOut>> {
    let s = |k: &str| present(v.get(k)).map(String::from);
    let username = s("username");
    let Some(email) = s("email").or_else(|| username.clone().filter(|u| u.contains('@'))) else {
        let id = s("id");
        let name = username.or_else(|| id.clone()).unwrap_or_default();
        return Err(Box::new(LeftOut::user(id, &name, None, "no email")));
    };
    let mut u = User::new(&email);
    u.id = s("id");
    u.user_name = username;
    u.given_name = s("firstName");
    u.family_name = s("lastName");
    u.active = v.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    if let Some(attrs) = v.get("attributes").and_then(Value::as_object) {
        for (k, vals) in attrs {
            let first = match vals {
                Value::Array(a) => a.iter().find_map(|x| present(Some(x))),
                other => present(Some(other)),
            };
            if let Some(val) = first {
                u.attributes.insert(k.clone(), val.to_string());
            }
        }
    }
    Ok(u)
}

#[async_trait]
impl Source for KeycloakSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn snapshot(&self) -> Result<Snapshot, SourceError> {
        let http = self.client().await?;
        let full = [("briefRepresentation", "false".to_string())];
        let users = paginate::offset_all(&http, "users", &full, self.page_size);
        // Members are read as soon as the group tree is known, alongside the users.
        let groups = async {
            let tree = self.tree(&http).await?;
            let mut listed: Vec<(String, String)> = tree
                .iter()
                .filter_map(|g| {
                    let id = g.get("id")?.as_str()?.to_string();
                    let path = g.get("path").and_then(Value::as_str).map_or_else(
                        || format!("/{}", g.get("name").and_then(Value::as_str).unwrap_or("")),
                        String::from,
                    );
                    Some((id, path))
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
            let ids = listed.iter().map(|(id, _)| id.clone()).collect();
            let brief = [("briefRepresentation", "true".to_string())];
            let members = super::member_listings(ids, http.concurrency(), |id| {
                let path = format!("groups/{id}/members");
                let http = &http;
                let brief = &brief;
                async move { paginate::offset_all(http, &path, brief, self.page_size).await }
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
    }
}
