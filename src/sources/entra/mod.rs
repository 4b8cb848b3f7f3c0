//! `type: entra`: Microsoft Entra ID through Microsoft Graph.
//!
//! Requests: a client-credentials token (client secret or certificate), `GET /users` with `$select` of
//! only the fields idsync needs and `$top=999`, `GET /groups` (or one `$filter` per configured group),
//! and per group `transitiveMembers` (or `members` when `transitive: false`), the first page of
//! twenty groups' member listings in one JSON batch (`POST /$batch`; a request throttled or failing
//! inside a batch is sent again in a later one); every listing follows `@odata.nextLink` and, but for
//! users with their manager, asks `$count=true` (with `ConsistencyLevel: eventual`) to check it got
//! every object. The full read makes no per-user calls (`snapshot_people` does): the manager comes with the user listing
//! (`$expand`), membership with the group listings. 429s are retried after `Retry-After`.

mod batch;
pub mod config;

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::Value;

use self::config::EntraSourceConfig;
use super::{Source, SourceError};
use crate::config::secret::Secret;
use crate::config::GraphVersion;
use crate::http::{oauth, paginate, wire, Auth, HttpClient, HttpError, HttpSettings, TokenSource};
use crate::model::{LeftOut, People, Snapshot, User};

/// User properties read (`$select`).
const USER_FIELDS: &str =
    "id,userPrincipalName,mail,givenName,surname,displayName,accountEnabled,jobTitle,department,employeeId,companyName,officeLocation";

/// How the app proves who it is.
#[derive(Clone, Debug)]
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
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &der)))
}

impl EntraSource {
    async fn client(&self) -> Result<HttpClient, SourceError> {
        let authority = self.authority.trim_end_matches('/');
        let token_url = format!("{authority}/{}/oauth2/v2.0/token", self.tenant_id);
        let endpoint = HttpClient::new(
            "Entra token endpoint",
            authority,
            Auth::None,
            &self.settings,
        );
        let client_id = self.client_id.clone();
        let credential = self.credential.clone();
        let audience = token_url.clone();
        // Each token request gets a fresh client assertion (they live five minutes).
        let grant = oauth::FormGrant::new(endpoint, &token_url, move || {
            let mut form = vec![
                ("grant_type", "client_credentials".to_string()),
                ("client_id", client_id.clone()),
                ("scope", "https://graph.microsoft.com/.default".to_string()),
            ];
            match &credential {
                EntraCredential::Secret(s) => form.push(("client_secret", s.expose().to_string())),
                EntraCredential::Certificate { key, thumbprint } => {
                    let header = jsonwebtoken::Header {
                        x5t_s256: Some(thumbprint.clone()),
                        ..jsonwebtoken::Header::default()
                    };
                    let assertion = oauth::client_assertion(&client_id, &audience, key, header)
                        .map_err(|e| format!("certificate: {e}"))?;
                    form.push(("client_assertion_type", oauth::JWT_BEARER.to_string()));
                    form.push(("client_assertion", assertion.expose().to_string()));
                }
            }
            Ok(form)
        })
        .map_err(SourceError::Invalid)?;
        let tokens = TokenSource::start("Bearer", grant).await?;
        let base = format!(
            "{}/{}",
            self.graph.trim_end_matches('/'),
            self.version.as_str()
        );
        // `$count` (an advanced query) needs it; results are then eventually consistent.
        Ok(HttpClient::new(
            "Microsoft Graph",
            &base,
            Auth::Token(Arc::new(tokens)),
            &self.settings,
        )
        .with_header("consistencylevel", "eventual"))
    }

    /// Every object of a listing, following `@odata.nextLink` as given (on the configured origin
    /// only, and never back to a page already read). Graph may return short or even empty pages
    /// before the last, so pages are not judged one by one: a listing asked with `$count=true`
    /// must hold its `@odata.count`; one that does not is read once more (the directory may have
    /// changed meanwhile), then fails.
    async fn all(
        http: &HttpClient,
        path: &str,
        query: Vec<(&str, String)>,
    ) -> Result<Vec<Value>, HttpError> {
        paginate::Pager::new(http, path, query, GRAPH).all().await
    }

    /// As [`EntraSource::all`], from a first page already read (in a batch).
    async fn all_from(
        http: &HttpClient,
        path: &str,
        query: Vec<(&str, String)>,
        first: Value,
    ) -> Result<Vec<Value>, HttpError> {
        paginate::Pager::new(http, path, query, GRAPH)
            .rest(first, &reqwest::header::HeaderMap::new())
            .await
    }

    /// The groups to read (every group, or the configured ones), without members. Shared by the
    /// full and the targeted read.
    async fn group_listing(&self, http: &HttpClient, top: &str) -> Result<Vec<Value>, HttpError> {
        let top = top.to_string();
        let count = ("$count", "true".to_string());
        let select = ("$select", "id,displayName".to_string());
        if self.groups.is_empty() {
            let q = vec![select, ("$top", top.clone()), count.clone()];
            return Self::all(http, "groups", q).await;
        }
        let mut found = Vec::new();
        for wanted in &self.groups {
            if let super::GroupRef::Id(id) = super::GroupRef::parse(wanted) {
                match http
                    .get_json(&format!("groups/{id}"), std::slice::from_ref(&select))
                    .await
                {
                    Ok(g) => {
                        found.push(g);
                        continue;
                    }
                    // Not an id: perhaps a group named `id:…`.
                    Err(e) if matches!(e.status(), Some(400 | 404)) => {}
                    Err(e) => return Err(e),
                }
            }
            let filter = format!("displayName eq '{}'", wanted.replace('\'', "''"));
            let hits = Self::all(http, "groups", vec![select.clone(), ("$filter", filter)]).await?;
            match hits.len() {
                0 => {
                    return Err(http.malformed(
                        "groups",
                        &format!("the configured group {wanted:?} does not exist in Entra ID"),
                    ))
                }
                1 => found.extend(hits),
                _ => {
                    let hits: Vec<WireGroup> = hits.iter().map(wire::decode).collect();
                    let groups: Vec<(&str, &str)> = hits
                        .iter()
                        .map(|g| {
                            let id = g.id.as_deref().unwrap_or("");
                            // The filter matched the name: it is never blank.
                            let name = g.name.as_deref().unwrap_or("");
                            (id, name)
                        })
                        .collect();
                    return Err(http.malformed(
                        "groups",
                        &super::ambiguous_configured(wanted, &groups, "in Entra ID"),
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
        .filter_map(|g| {
            let WireGroup { id, name, .. } = wire::decode(g);
            match (id, name) {
                (Some(id), Some(name)) => Some((id, name)),
                (id, _) => {
                    let name = id.clone().unwrap_or_default();
                    skipped.push(LeftOut::group(id, &name, "no id or no displayName"));
                    None
                }
            }
        })
        .collect()
}

impl EntraSource {
    /// The member listings `paths`: their first pages twenty at a time in JSON batches (a few
    /// batches at a time), then each listing's further pages by its `@odata.nextLink`, checked
    /// against its `@odata.count` as any listing is. Each request holds one of `lanes`' permits
    /// as well as the client's (see [`Lanes`]).
    async fn member_listings(
        http: &HttpClient,
        paths: &[String],
        query: &[(&str, String)],
        lanes: &Lanes,
    ) -> Result<Vec<Vec<Value>>, HttpError> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let urls: Vec<String> = paths
            .iter()
            .map(|p| batch::relative_url(p, query))
            .collect();
        let chunks: Vec<Vec<String>> = urls.chunks(batch::MAX_BATCH).map(<[String]>::to_vec).collect();
        let firsts: Vec<Vec<Value>> = stream::iter(chunks.into_iter().map(|chunk| async move {
            let _lane = lanes.take().await;
            batch::get_all(http, &chunk).await
        }))
        .buffered(http.concurrency())
        .try_collect()
        .await?;
        stream::iter(
            firsts
                .into_iter()
                .flatten()
                .zip(paths.iter().cloned())
                .map(|(first, path)| {
                    let query = query.to_vec();
                    async move {
                        let _lane = lanes.take().await;
                        Self::all_from(http, &path, query, first).await
                    }
                }),
        )
        .buffered(http.concurrency())
        .try_collect()
        .await
    }
}

/// The requests in flight the member listings may use: all the client's but one while the users
/// listing runs. Graph's users listing can only follow `@odata.nextLink`, one page after another,
/// so it is the read's critical path whenever it has more pages than the member batches need
/// rounds; with every lane taken by member batches, each of its pages would wait for a batch to
/// finish before it is even sent. The lane is given back when the users listing ends.
struct Lanes {
    permits: tokio::sync::Semaphore,
    /// Whether a lane is still held back for the users listing.
    reserved: std::sync::atomic::AtomicBool,
}

impl Lanes {
    fn new(concurrency: usize) -> Lanes {
        Lanes {
            permits: tokio::sync::Semaphore::new(concurrency.saturating_sub(1).max(1)),
            reserved: std::sync::atomic::AtomicBool::new(concurrency > 1),
        }
    }

    async fn take(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.permits
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// The users listing has ended: its lane goes to the member listings.
    fn release(&self) {
        if self.reserved.swap(false, std::sync::atomic::Ordering::Relaxed) {
            self.permits.add_permits(1);
        }
    }
}

/// A Graph user as the model. Email: `mail`, else the user principal name; Graph sends unset
/// properties as `null`, and null, missing and blank are all absent, so every fallback applies.
fn user_from_graph(v: &Value) -> Result<User, Box<LeftOut>> {
    let w: WireUser = wire::decode(v);
    let Some(email) = w.mail.clone().or_else(|| w.user_principal_name.clone()) else {
        let name = w.display_name.or_else(|| w.id.clone()).unwrap_or_default();
        return Err(Box::new(LeftOut::user(
            w.id,
            &name,
            None,
            "no mail and no userPrincipalName",
        )));
    };
    let mut u = User::new(&email);
    u.id = w.id;
    u.user_name = w.user_principal_name;
    u.given_name = w.given_name;
    u.family_name = w.surname;
    u.display_name = w.display_name;
    u.active = w.account_enabled.unwrap_or(true);
    for (graph, attr, val) in [
        ("jobTitle", "title", w.job_title),
        ("department", "department", w.department),
        ("employeeId", "employeeNumber", w.employee_id),
        ("companyName", "organization", w.company_name),
        ("officeLocation", "officeLocation", w.office_location),
    ] {
        if let Some(val) = val {
            u.attributes.insert(attr.to_string(), val.clone());
            u.attributes.insert(graph.to_string(), val);
        }
    }
    if let Some(mail) = w.manager.mail.or(w.manager.user_principal_name) {
        u.attributes.insert("manager".into(), mail);
    }
    Ok(u)
}

/// A Graph user as the listing sends it (`$select` of [`USER_FIELDS`], and the manager when
/// `$expand`ed). Graph sends unset properties as `null`: null, absent and blank read alike.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireUser {
    #[serde(deserialize_with = "wire::text")]
    id: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    user_principal_name: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    mail: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    given_name: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    surname: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    display_name: Option<String>,
    #[serde(deserialize_with = "wire::opt_flag")]
    account_enabled: Option<bool>,
    #[serde(deserialize_with = "wire::text")]
    job_title: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    department: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    employee_id: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    company_name: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    office_location: Option<String>,
    #[serde(deserialize_with = "wire::object")]
    manager: WireManager,
}

/// The `$expand`ed manager: `mail`, else `userPrincipalName`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireManager {
    #[serde(deserialize_with = "wire::text")]
    mail: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    user_principal_name: Option<String>,
}

/// A group as the group listings send it (`$select=id,displayName`): `id` as sent, the name
/// when not blank.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WireGroup {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
    #[serde(rename = "displayName", deserialize_with = "wire::text")]
    name: Option<String>,
}

/// A member of a member listing, or a user object read by id: its type (absent: a user) and id.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WireMember {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
    #[serde(rename = "@odata.type", deserialize_with = "wire::string")]
    kind: Option<String>,
}

impl WireMember {
    /// The member's type, `#microsoft.graph.user` when not sent.
    fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or(USER_TYPE)
    }
}

/// Why a member of another type than user is not synced; `None` for users, and for groups (whose
/// members are read through `transitiveMembers`, or deliberately not with `transitive: false`).
fn not_a_user(member: &WireMember) -> Option<String> {
    let short = member.kind().trim_start_matches("#microsoft.graph.");
    match short {
        "user" | "group" => None,
        "servicePrincipal" => Some("a service principal, not a user".into()),
        "device" => Some("a device, not a user".into()),
        "orgContact" => Some("an organizational contact, not a user".into()),
        other => Some(format!("a {other}, not a user")),
    }
}

const USER_TYPE: &str = "#microsoft.graph.user";

/// Microsoft Graph's listings: `{value, @odata.nextLink, @odata.count}` (the count where
/// `$count=true` is asked). Pages may be short or empty before the last, so the count is what
/// shows a loss; a listing that misses it is read once more (the directory may have changed).
const GRAPH: paginate::Style = paginate::Style {
    items: paginate::Items::Field {
        pointer: "/value",
        missing: Some("a page without `value`"),
    },
    next: paginate::Next::Field {
        pointer: "/@odata.nextLink",
        param: "$skiptoken",
    },
    keep_query: false,
    full_pages: false,
    empty_pages: true,
    total: Some("/@odata.count"),
    unique: true,
    noun: "objects",
    rereads: 1,
};

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
        let lanes = Lanes::new(http.concurrency());
        let users = async {
            // Each page is read into the model as it comes, and its JSON freed.
            let users = paginate::Pager::new(&http, "users", users_q, GRAPH)
                .all_as(&|v| user_from_graph(&v))
                .await;
            lanes.release();
            users
        };
        let groups = self.group_listing(&http, &top);
        let relation = if self.transitive {
            "transitiveMembers"
        } else {
            "members"
        };
        // Members are read as soon as the groups are known, alongside the users.
        let groups = async {
            let mut skipped = Vec::new();
            let listed = listed_groups(&groups.await?, &mut skipped);
            // Every member, not only users: service principals, devices and contacts are counted
            // and named rather than filtered out by a cast.
            let q = vec![
                ("$select", "id,displayName,mail".to_string()),
                ("$top", top.clone()),
                count.clone(),
            ];
            let paths: Vec<String> = listed
                .iter()
                .map(|(id, _)| format!("groups/{id}/{relation}"))
                .collect();
            let members = Self::member_listings(&http, &paths, &q, &lanes).await?;
            Ok::<_, HttpError>((listed, members, skipped))
        };
        let (users, (listed, members, mut skipped)) = tokio::try_join!(users, groups)?;
        let users: Vec<User> = users
            .into_iter()
            .filter_map(|u| u.map_err(|l| skipped.push(*l)).ok())
            .collect();
        let members = members
            .into_iter()
            .zip(&listed)
            .map(|(ms, (_, group))| {
                ms.into_iter()
                    .filter(|m| {
                        let w: WireMember = wire::decode(m);
                        match not_a_user(&w) {
                            None => w.kind() == USER_TYPE,
                            Some(reason) => {
                                let (name, email) = super::member_label(m);
                                skipped.push(LeftOut::member(group, w.id, &name, email, &reason));
                                false
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        let groups = super::groups_from_listings(
            &users,
            listed,
            members,
            "not among the users Graph listed",
            &mut skipped,
        );
        Ok(Snapshot {
            users,
            groups,
            verified_domains: None,
            skipped,
        })
    }

    /// Per person: `GET /users?$filter=mail eq 'E'` and `…userPrincipalName eq 'E'` per email (the
    /// full read's email is `mail`, else the UPN), `GET /users/{id}` per id (404 is absence), with
    /// the same `$select` (and manager `$expand`) as the full read; then per person found
    /// `GET /users/{id}/transitiveMemberOf` (or `memberOf` with `transitive: false`, as the full
    /// read's `transitiveMembers`/`members`), kept to the groups the full read lists.
    async fn snapshot_people(&self, people: &People) -> Result<Snapshot, SourceError> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let http = self.client().await?;
        let top = self.page_size.clamp(1, 999).to_string();
        let width = http.concurrency().max(1);
        let mut user_q = vec![("$select", USER_FIELDS.to_string())];
        if self.manager {
            user_q.push((
                "$expand",
                "manager($select=mail,userPrincipalName)".to_string(),
            ));
        }
        let lookups: Vec<(bool, String)> = people
            .emails
            .iter()
            .flat_map(|e| [(true, e.clone()), (false, e.clone())])
            .collect();
        let by_email = stream::iter(lookups)
            .map(|(by_mail, e)| {
                let (http, mut q) = (&http, user_q.clone());
                async move {
                    let attr = if by_mail { "mail" } else { "userPrincipalName" };
                    q.push(("$filter", format!("{attr} eq '{}'", e.replace('\'', "''"))));
                    Self::all(http, "users", q).await
                }
            })
            .buffered(width)
            .try_collect::<Vec<Vec<Value>>>();
        let by_id = super::found_by_key(people.ids.iter().cloned(), width, |id| {
            let (http, q) = (&http, user_q.clone());
            async move {
                http.get_json(&format!("users/{}", super::seg(&id)), &q)
                    .await
            }
        });
        let groups = self.group_listing(&http, &top);
        let (by_email, by_id, groups) = tokio::try_join!(by_email, by_id, groups)?;
        let mut seen = std::collections::HashSet::new();
        let found: Vec<Value> = by_email
            .into_iter()
            .flatten()
            .chain(by_id)
            .filter(|u| {
                wire::decode::<WireMember>(u)
                    .id
                    .is_none_or(|id| seen.insert(id))
            })
            .collect();
        let relation = if self.transitive {
            "transitiveMemberOf"
        } else {
            "memberOf"
        };
        let ids: Vec<String> = found
            .iter()
            .filter_map(|u| wire::decode::<WireMember>(u).id)
            .collect();
        let memberships: Vec<(String, Vec<Value>)> = stream::iter(ids)
            .map(|id| {
                let (http, top) = (&http, top.clone());
                async move {
                    let path = format!("users/{}/{relation}", super::seg(&id));
                    let q = vec![
                        ("$select", "id,displayName".to_string()),
                        ("$top", top),
                        ("$count", "true".to_string()),
                    ];
                    let gs = Self::all(http, &path, q).await?;
                    Ok::<_, HttpError>((id, gs))
                }
            })
            .buffered(width)
            .try_collect()
            .await?;
        let mut skipped = Vec::new();
        let listed = listed_groups(&groups, &mut skipped);
        let members = super::member_objects(&listed, &memberships);
        Ok(super::people_snapshot(
            &found,
            user_from_graph,
            listed,
            members,
            "not among the users Graph listed",
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
    e: &EntraSourceConfig,
    config_dir: &std::path::Path,
) -> Result<Box<dyn Source>, SourceError> {
    let read = |key: &str, inline: Option<&String>, file: Option<&std::path::PathBuf>| {
        super::read_secret(key, inline, file, config_dir)
    };
    Ok({
        let credential = match &e.certificate {
            Some(c) => {
                let key = read(
                    "certificate.private_key_file",
                    None,
                    Some(&c.private_key_file),
                )?;
                let cert = read(
                    "certificate.certificate_file",
                    None,
                    Some(&c.certificate_file),
                )?;
                let thumbprint = thumbprint(cert.expose())
                    .map_err(|m| SourceError::Invalid(format!("certificate: {m}")))?;
                EntraCredential::Certificate { key, thumbprint }
            }
            None => EntraCredential::Secret(read(
                "client_secret",
                e.client_secret.as_ref(),
                e.client_secret_file.as_ref(),
            )?),
        };
        Box::new(EntraSource {
            name: e.name.clone(),
            tenant_id: e.tenant_id.clone(),
            client_id: e.client_id.clone(),
            credential,
            authority: e.authority.clone(),
            graph: e.base_url.clone(),
            version: e.api_version,
            transitive: e.transitive,
            manager: e.manager,
            groups: e.groups.clone(),
            page_size: e.page_size,
            settings: e.http.clone(),
        })
    })
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
        // Graph sends unset properties as null: the manager's mail falls back to the UPN.
        let v = json!({"id": "g2", "userPrincipalName": "cy@corp.com", "mail": " ", "jobTitle": null,
                       "manager": {"mail": null, "userPrincipalName": "boss@corp.onmicrosoft.com"}});
        let u = user_from_graph(&v).unwrap();
        assert_eq!(u.key(), "cy@corp.com", "a blank mail falls back to the UPN");
        assert!(!u.attributes.contains_key("title"));
        assert_eq!(
            u.attributes.get("manager").map(String::as_str),
            Some("boss@corp.onmicrosoft.com")
        );
        let l = user_from_graph(
            &json!({"id": "g3", "mail": null, "userPrincipalName": null, "displayName": "Ghost"}),
        )
        .unwrap_err();
        assert_eq!((l.name.as_str(), l.id.as_deref()), ("Ghost", Some("g3")));
        let member = |v: Value| wire::decode::<WireMember>(&v);
        assert_eq!(
            not_a_user(&member(json!({"@odata.type": "#microsoft.graph.device"}))).as_deref(),
            Some("a device, not a user")
        );
        assert_eq!(
            not_a_user(&member(json!({"@odata.type": "#microsoft.graph.group"}))),
            None
        );
        assert_eq!(not_a_user(&member(json!({"@odata.type": null}))), None, "absent: a user");
        let cert = include_str!("../../../tests/fixtures/test-cert.pem");
        let t = thumbprint(cert).unwrap();
        assert_eq!(t.len(), 43, "base64url of 32 bytes");
        assert!(thumbprint("nothing").is_err());
    }
}
