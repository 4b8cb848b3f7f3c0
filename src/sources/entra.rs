//! `type: entra`: Microsoft Entra ID through Microsoft Graph.
//!
//! Requests: a client-credentials token (client secret or certificate), `GET /users` with `$select` of
//! only the fields idsync needs and `$top=999`, `GET /groups` (or one `$filter` per configured group),
//! and per group `transitiveMembers/microsoft.graph.user` (or `members/…` when `transitive: false`);
//! every listing follows `@odata.nextLink` and, but for users with their manager, asks `$count=true`
//! (with `ConsistencyLevel: eventual`) to check it got every object. No per-user calls: the manager comes with the user listing
//! (`$expand`), membership with the group listings. 429s are retried after `Retry-After`.

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Source, SourceError};
use crate::config::secret::Secret;
use crate::config::GraphVersion;
use crate::http::{oauth, paginate, Auth, HttpClient, HttpError, HttpSettings};
use crate::model::{Snapshot, User};

/// User properties read (`$select`).
const USER_FIELDS: &str =
    "id,userPrincipalName,mail,givenName,surname,displayName,accountEnabled,jobTitle,department,employeeId,companyName,officeLocation";

/// How the app proves who it is.
#[derive(Debug)]
pub enum EntraCredential {
    Secret(Secret),
    /// An RSA private key (PEM) and the `x5t#S256` thumbprint of its certificate.
    Certificate {
        key: Secret,
        thumbprint: String,
    },
}

/// The settings of an Entra source.
#[derive(Debug)]
pub struct EntraSource {
    pub name: String,
    pub tenant_id: String,
    pub client_id: String,
    pub credential: EntraCredential,
    pub authority: String,
    pub graph: String,
    pub version: GraphVersion,
    pub transitive: bool,
    pub manager: bool,
    pub groups: Vec<String>,
    pub page_size: usize,
    pub settings: HttpSettings,
}

/// The `x5t#S256` of a PEM certificate: base64url of the SHA-256 of its DER form.
///
/// # Errors
/// The text holds no PEM certificate.
pub fn thumbprint(cert_pem: &str) -> Result<String, String> {
    let body: String = cert_pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE"))
        .collect();
    if body.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) found".into());
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|e| format!("the certificate is not valid base64 ({e})"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&der)))
}

impl EntraSource {
    async fn client(&self) -> Result<HttpClient, SourceError> {
        let authority = self.authority.trim_end_matches('/');
        let token_url = format!("{authority}/{}/oauth2/v2.0/token", self.tenant_id);
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.client_id.clone()),
            ("scope", "https://graph.microsoft.com/.default".to_string()),
        ];
        match &self.credential {
            EntraCredential::Secret(s) => form.push(("client_secret", s.expose().to_string())),
            EntraCredential::Certificate { key, thumbprint } => {
                let header = jsonwebtoken::Header {
                    x5t_s256: Some(thumbprint.clone()),
                    ..jsonwebtoken::Header::default()
                };
                let assertion = oauth::client_assertion(&self.client_id, &token_url, key, header)
                    .map_err(|e| SourceError::Invalid(format!("certificate: {e}")))?;
                form.push(("client_assertion_type", oauth::JWT_BEARER.to_string()));
                form.push(("client_assertion", assertion.expose().to_string()));
            }
        }
        let endpoint = HttpClient::new(
            "Entra token endpoint",
            authority,
            Auth::None,
            &self.settings,
        );
        let token = oauth::token(&endpoint, &token_url, &form).await?;
        let base = format!(
            "{}/{}",
            self.graph.trim_end_matches('/'),
            self.version.as_str()
        );
        // `$count` (an advanced query) needs it; results are then eventually consistent.
        Ok(HttpClient::new(
            "Microsoft Graph",
            &base,
            Auth::Bearer(token),
            &self.settings,
        )
        .with_header("consistencylevel", "eventual"))
    }

    /// Every object of a listing, following `@odata.nextLink` as given (on the configured origin
    /// only, and never back to a page already read). Graph may return short or even empty pages
    /// before the last, so pages are not judged one by one: a listing asked with `$count=true`
    /// must hold the `@odata.count` of its first page; one that does not is read once more (the
    /// directory may have changed meanwhile), then fails.
    async fn all(
        http: &HttpClient,
        path: &str,
        query: Vec<(&str, String)>,
    ) -> Result<Vec<Value>, HttpError> {
        let mut tries = 1;
        loop {
            let (out, count) = Self::read(http, path, &query).await?;
            match count {
                Some(n) if n != out.len() => {
                    if tries > 1 {
                        return Err(http.malformed(
                            path,
                            &format!(
                                "@odata.count announced {n} objects, but the pages held {}: the listing is incomplete or inconsistent",
                                out.len()
                            ),
                        ));
                    }
                    http.pause(tries).await;
                    tries += 1;
                }
                _ => return Ok(out),
            }
        }
    }

    /// One read of a listing: its objects and the `@odata.count` of its first page, if any.
    async fn read(
        http: &HttpClient,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(Vec<Value>, Option<usize>), HttpError> {
        let mut out = Vec::new();
        let mut trail = paginate::Trail::new();
        let mut page = http.get_json(path, query).await?;
        let count = page
            .get("@odata.count")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok());
        loop {
            match page.get_mut("value").map(Value::take) {
                Some(Value::Array(items)) => out.extend(items),
                _ => return Err(http.malformed(path, "a page without `value`")),
            }
            let Some(next) = page.get("@odata.nextLink").and_then(Value::as_str) else {
                break;
            };
            trail.follow(http, path, next)?;
            page = http.get_json(next, &[]).await?;
        }
        paginate::check_unique(http, path, &out)?;
        Ok((out, count))
    }
}

/// A Graph user as the model. Email: `mail`, else the user principal name.
fn user_from_graph(v: &Value) -> Option<User> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let upn = s("userPrincipalName");
    let email = s("mail").or_else(|| upn.clone())?;
    let mut u = User::new(&email);
    u.id = s("id");
    u.user_name = upn;
    u.given_name = s("givenName");
    u.family_name = s("surname");
    u.display_name = s("displayName");
    u.active = v
        .get("accountEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    for (graph, attr) in [
        ("jobTitle", "title"),
        ("department", "department"),
        ("employeeId", "employeeNumber"),
        ("companyName", "organization"),
        ("officeLocation", "officeLocation"),
    ] {
        if let Some(val) = s(graph) {
            u.attributes.insert(attr.to_string(), val.clone());
            u.attributes.insert(graph.to_string(), val);
        }
    }
    if let Some(m) = v.get("manager") {
        if let Some(mail) = m
            .get("mail")
            .or_else(|| m.get("userPrincipalName"))
            .and_then(Value::as_str)
        {
            u.attributes.insert("manager".into(), mail.to_string());
        }
    }
    Some(u)
}

#[async_trait]
impl Source for EntraSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn snapshot(&self) -> Result<Snapshot, SourceError> {
        let http = self.client().await?;
        let top = self.page_size.clamp(1, 999).to_string();
        let count = ("$count", "true".to_string());
        let mut users_q = vec![("$select", USER_FIELDS.to_string()), ("$top", top.clone())];
        if self.manager {
            // Graph's advanced queries ($count) do not take `$expand`: this listing goes uncounted.
            users_q.push((
                "$expand",
                "manager($select=mail,userPrincipalName)".to_string(),
            ));
        } else {
            users_q.push(count.clone());
        }
        let users = Self::all(&http, "users", users_q);
        let groups = async {
            let select = ("$select", "id,displayName".to_string());
            if self.groups.is_empty() {
                let q = vec![select, ("$top", top.clone()), count.clone()];
                return Self::all(&http, "groups", q).await;
            }
            let mut found = Vec::new();
            for name in &self.groups {
                let filter = format!("displayName eq '{}'", name.replace('\'', "''"));
                let hits =
                    Self::all(&http, "groups", vec![select.clone(), ("$filter", filter)]).await?;
                match hits.into_iter().next() {
                    Some(g) => found.push(g),
                    None => {
                        return Err(http.malformed(
                            "groups",
                            &format!("the configured group {name:?} does not exist in Entra ID"),
                        ))
                    }
                }
            }
            Ok(found)
        };
        let relation = if self.transitive {
            "transitiveMembers"
        } else {
            "members"
        };
        // Members are read as soon as the groups are known, alongside the users.
        let groups = async {
            let listed: Vec<(String, String)> = groups
                .await?
                .iter()
                .filter_map(|g| {
                    Some((
                        g.get("id")?.as_str()?.to_string(),
                        g.get("displayName")?.as_str()?.to_string(),
                    ))
                })
                .collect();
            let ids = listed.iter().map(|(id, _)| id.clone()).collect();
            let members = super::member_listings(ids, http.concurrency(), |id| {
                let path = format!("groups/{id}/{relation}/microsoft.graph.user");
                let q = vec![
                    ("$select", "id".to_string()),
                    ("$top", top.clone()),
                    count.clone(),
                ];
                let http = &http;
                async move { Self::all(http, &path, q).await }
            })
            .await?;
            Ok::<_, HttpError>((listed, members))
        };
        let (users, (listed, members)) = tokio::try_join!(users, groups)?;
        let users: Vec<User> = users.iter().filter_map(user_from_graph).collect();
        let groups = super::groups_from_listings(&users, listed, members);
        Ok(Snapshot {
            users,
            groups,
            verified_domains: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn users_map_and_thumbprints_compute() {
        let v = json!({"id": "g1", "userPrincipalName": "ana@corp.onmicrosoft.com", "mail": null, "accountEnabled": false, "jobTitle": "Eng", "manager": {"mail": "boss@corp.com"}});
        let u = user_from_graph(&v).unwrap();
        assert_eq!(u.key(), "ana@corp.onmicrosoft.com");
        assert!(!u.active);
        assert_eq!(u.attributes.get("title").map(String::as_str), Some("Eng"));
        assert_eq!(
            u.attributes.get("manager").map(String::as_str),
            Some("boss@corp.com")
        );
        let cert = include_str!("../../tests/fixtures/test-cert.pem");
        let t = thumbprint(cert).unwrap();
        assert_eq!(t.len(), 43, "base64url of 32 bytes");
        assert!(thumbprint("nothing").is_err());
    }
}
