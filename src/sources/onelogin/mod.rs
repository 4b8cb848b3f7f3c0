//! `type: onelogin`: users, groups and, with `roles_as_groups`, roles, through the OneLogin API.
//!
//! Requests: a client-credentials token (`POST /auth/oauth2/v2/token`), sent as `bearer` and
//! renewed as it expires (OneLogin hands out the same token until that expires, so a run may start
//! with little of it left: it is asked for again once it has run out, or OneLogin refuses it); `GET /api/1/groups` (groups exist
//! only in v1; `after_cursor` paging); with roles, `GET /api/2/roles` and `GET /api/2/roles/{id}/users`
//! per role, a few at a time; `GET /api/2/users`, 50 per page, following the `After-Cursor` header.
//! A user's one group is its `group_id`, so groups cost no member listings. The full read makes no
//! per-user calls (`snapshot_people` does).
//!
//! The account's hourly budget (`X-RateLimit-Remaining`, `X-RateLimit-Reset` in seconds) is shared
//! by every integration. Once the first pages say how big the read is, a read that would not fit in
//! what remains (less `budget_reserve`) is refused before it spends the rest; if the window resets
//! within a minute, it waits for the reset instead.

pub mod config;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use self::config::OneLoginSourceConfig;
use super::{id_text, Source, SourceError};
use crate::config::secret::Secret;
use self::config::OneLoginRegion;
use crate::http::{oauth, paginate, wire, Auth, HttpClient, HttpError, HttpSettings, TokenSource};
use crate::model::{Group, LeftOut, People, Snapshot, User};

/// Items per page: the most OneLogin's users and role-users listings return.
const PAGE: usize = 50;
const TOKEN_PATH: &str = "auth/oauth2/v2/token";
const USERS: &str = "api/2/users";
const GROUPS: &str = "api/1/groups";
const ROLES: &str = "api/2/roles";
/// The longest wait for the rate window to reset before a read that does not fit is refused.
const LONGEST_RESET_WAIT: Duration = Duration::from_secs(60);

/// A OneLogin account.
#[derive(Debug)]
pub struct OneLoginSource {
    pub name: String,
    pub base_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub roles_as_groups: bool,
    pub groups: Vec<String>,
    pub inactive_statuses: Vec<i64>,
    pub budget_reserve: u64,
    pub settings: HttpSettings,
}

/// The API host a config names: `base_url`, else `https://{subdomain}.onelogin.com`, else the
/// regional host.
#[must_use]
pub fn base_url(c: &OneLoginSourceConfig) -> Option<String> {
    if let Some(u) = &c.base_url {
        return Some(u.trim_end_matches('/').to_string());
    }
    if let Some(s) = &c.subdomain {
        return Some(format!("https://{s}.onelogin.com"));
    }
    c.region.map(|r| {
        let r = match r {
            OneLoginRegion::Us => "us",
            OneLoginRegion::Eu => "eu",
        };
        format!("https://api.{r}.onelogin.com")
    })
}

/// One run's connection: the resource client, whose token renews itself.
struct Session {
    http: HttpClient,
}

impl Session {
    async fn open(source: &OneLoginSource) -> Result<Session, SourceError> {
        let endpoint = HttpClient::new(
            "OneLogin token endpoint",
            &source.base_url,
            Auth::None,
            &source.settings,
        );
        let (client_id, secret) = (source.client_id.clone(), source.client_secret.clone());
        let grant = oauth::FormGrant::new(endpoint, TOKEN_PATH, move || {
            Ok(vec![
                ("grant_type", "client_credentials".to_string()),
                ("client_id", client_id.clone()),
                ("client_secret", secret.expose().to_string()),
            ])
        })
        .map_err(SourceError::Invalid)?;
        let tokens = TokenSource::start("bearer", grant).await?;
        let http = HttpClient::new(
            "OneLogin",
            &source.base_url,
            Auth::Token(Arc::new(tokens)),
            &source.settings,
        );
        Ok(Session { http })
    }

    /// A GET, with its response headers.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(Value, HeaderMap), HttpError> {
        self.http.get_json_with_headers(path, query).await
    }

    /// The rest of a v2 listing (bare JSON arrays) after its first page. With a `Total-Count`, the
    /// other pages are fetched by number, a few at a time (OneLogin's cursors are page numbers
    /// too); when they do not add up, or there is no count, the `After-Cursor` chain is walked
    /// instead. A listing that ends short of the count its first page announced is an error, never
    /// taken for a smaller directory.
    async fn v2_rest(
        &self,
        path: &str,
        first: Value,
        headers: &HeaderMap,
    ) -> Result<Vec<Value>, HttpError> {
        let first = self.array(path, first)?;
        let total = header_u64(headers, "total-count").and_then(|t| usize::try_from(t).ok());
        let out = match total {
            // A first page that holds the whole count yet links on: the count is too low.
            Some(total)
                if !first.is_empty()
                    && (total > first.len() || after_cursor(headers).is_none()) =>
            {
                match self.numbered(path, &first, total).await? {
                    Some(rest) => [first, rest].concat(),
                    None => self.walk(path, first, headers).await?,
                }
            }
            _ => self.walk(path, first, headers).await?,
        };
        // Pages that overlap (the directory changed while it was read) may have lost others: the
        // same check as every other listing, rather than dropping the repeats.
        paginate::check_unique(&self.http, path, &out)?;
        if let Some(t) = total.filter(|t| out.len() != *t) {
            return Err(self.http.malformed(
                path,
                &format!(
                    "the listing announced {t} items (Total-Count) but its pages held {}: it is incomplete or inconsistent",
                    out.len()
                ),
            ));
        }
        Ok(out)
    }

    /// Pages 2.. of a listing whose first page held `first` of `total` items, by number; `None`
    /// when a page does not hold what the count implies.
    async fn numbered(
        &self,
        path: &str,
        first: &[Value],
        total: usize,
    ) -> Result<Option<Vec<Value>>, HttpError> {
        let page = |n: usize| vec![("limit", PAGE.to_string()), ("page", n.to_string())];
        paginate::numbered(&self.http, path, first.len(), total, page, |h| {
            after_cursor(h).is_some()
        })
        .await
    }

    /// The rest of a listing by its `After-Cursor` chain, one page after another.
    async fn walk(
        &self,
        path: &str,
        first: Vec<Value>,
        headers: &HeaderMap,
    ) -> Result<Vec<Value>, HttpError> {
        let style = paginate::Style {
            items: paginate::Items::Body,
            next: paginate::Next::Header {
                name: "after-cursor",
                param: "cursor",
            },
            keep_query: false,
            full_pages: false,
            empty_pages: false,
            total: None,
            unique: false,
            noun: "items",
            rereads: 0,
        };
        paginate::Pager::new(&self.http, path, Vec::new(), style)
            .rest(Value::Array(first), headers)
            .await
    }

    fn array(&self, path: &str, page: Value) -> Result<Vec<Value>, HttpError> {
        match page {
            Value::Array(items) => Ok(items),
            _ => Err(self
                .http
                .malformed(path, "a listing that is not a JSON array")),
        }
    }

    /// Every item of a v2 listing.
    async fn v2_all(&self, path: &str) -> Result<Vec<Value>, HttpError> {
        let (first, headers) = self.get(path, &[("limit", PAGE.to_string())]).await?;
        self.v2_rest(path, first, &headers).await
    }

    /// The rest of the groups after their first v1 page (`data`, `pagination.after_cursor`).
    async fn groups_rest(&self, first: Value) -> Result<Vec<Value>, HttpError> {
        let style = paginate::Style {
            items: paginate::Items::Field {
                pointer: "/data",
                missing: Some("a v1 page without `data`"),
            },
            next: paginate::Next::Field {
                pointer: "/pagination/after_cursor",
                param: "after_cursor",
            },
            keep_query: false,
            full_pages: false,
            empty_pages: false,
            total: None,
            unique: true,
            noun: "items",
            rereads: 0,
        };
        paginate::Pager::new(&self.http, GROUPS, Vec::new(), style)
            .rest(first, &HeaderMap::new())
            .await
    }
}

fn v1_after_cursor(page: &Value) -> Option<String> {
    page.pointer("/pagination/after_cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(String::from)
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    header_str(headers, name).and_then(|v| v.parse().ok())
}

fn after_cursor(headers: &HeaderMap) -> Option<String> {
    header_str(headers, "after-cursor").filter(|c| !c.is_empty())
}

/// The account's API budget as a response stated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Budget {
    limit: Option<u64>,
    remaining: u64,
    /// Seconds until the window resets.
    reset: u64,
}

impl Budget {
    fn from_headers(headers: &HeaderMap) -> Option<Budget> {
        Some(Budget {
            limit: header_u64(headers, "x-ratelimit-limit"),
            remaining: header_u64(headers, "x-ratelimit-remaining")?,
            reset: header_u64(headers, "x-ratelimit-reset").unwrap_or(0),
        })
    }
}

/// What to do about a read of `needed` more calls, given the budget and the calls to leave.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Go,
    /// Wait for the window to reset, then go.
    Wait(Duration),
    Refuse(String),
}

fn judge(needed: u64, budget: Budget, reserve: u64) -> Verdict {
    let available = budget.remaining.saturating_sub(reserve);
    if needed <= available {
        return Verdict::Go;
    }
    let reset = Duration::from_secs(budget.reset);
    let fits_after_reset = budget
        .limit
        .is_none_or(|l| needed <= l.saturating_sub(reserve));
    if fits_after_reset && reset <= LONGEST_RESET_WAIT {
        return Verdict::Wait(reset);
    }
    let limit = budget.limit.map_or_else(
        || "the hourly budget".to_string(),
        |l| format!("the hourly {l}"),
    );
    let when = if reset.as_secs() >= 120 {
        format!("{} min", reset.as_secs().div_ceil(60))
    } else {
        format!("{} s", reset.as_secs())
    };
    let reserve = if reserve > 0 {
        format!(", {reserve} of them kept back by `budget_reserve`")
    } else {
        String::new()
    };
    Verdict::Refuse(format!(
        "OneLogin's API budget is too low for this read: it needs about {needed} more calls, and {} of {limit} remain{reserve} (the window resets in {when}). Nothing was read into a plan; run again after the reset, or read fewer roles with `groups:`",
        budget.remaining
    ))
}

/// A OneLogin user as the model. Top-level strings and custom attributes are usable in templates;
/// OneLogin sends unset fields as `null`, and null, missing and blank are all absent. A user
/// without an email is left out, named, with the reason.
fn user_from_onelogin(v: &Value, inactive: &[i64]) -> Result<User, Box<LeftOut>> {
    let w: WireUser = wire::decode(v);
    let Some(email) = w.email else {
        let name = w.username.or_else(|| w.id.clone()).unwrap_or_default();
        return Err(Box::new(LeftOut::user(w.id, &name, None, "no email")));
    };
    let mut u = User::new(&email);
    u.id = w.id;
    u.user_name = w.username;
    u.given_name = w.firstname;
    u.family_name = w.lastname;
    let status = w.status.unwrap_or(1);
    u.active = !inactive.contains(&status);
    // Every string of the record, then of its custom attributes, is an attribute.
    let record: serde_json::Map<String, Value> = wire::decode(v);
    for (k, text) in wire::strings(&record).chain(wire::strings(&w.custom_attributes)) {
        u.attributes.insert(k.clone(), text.to_string());
    }
    u.attributes.insert("status".into(), status.to_string());
    Ok(u)
}

/// A user as `GET /api/2/users` sends it (every other string of the record is read as an
/// attribute).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireUser {
    #[serde(deserialize_with = "wire::id")]
    id: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    email: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    username: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    firstname: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    lastname: Option<String>,
    #[serde(deserialize_with = "wire::int")]
    status: Option<i64>,
    /// The user's one group.
    #[serde(deserialize_with = "wire::id")]
    group_id: Option<String>,
    #[serde(deserialize_with = "wire::map")]
    custom_attributes: serde_json::Map<String, Value>,
}

/// A group (v1) or a role (v2) as listed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireNamed {
    #[serde(deserialize_with = "wire::id")]
    id: Option<String>,
    #[serde(deserialize_with = "wire::text")]
    name: Option<String>,
}

/// A role's id in the model: `role:ID`, apart from group ids (both are numbers in OneLogin).
fn role_id(id: &str) -> String {
    format!("role:{id}")
}

/// `(id, name)` of each listed group or role; one without an id or a name is left out.
fn id_names(items: &[Value], what: &str, skipped: &mut Vec<LeftOut>) -> Vec<(String, String)> {
    items
        .iter()
        .map(wire::decode::<WireNamed>)
        .filter_map(|g| {
            match (g.id, g.name) {
                (Some(id), Some(name)) => Some((id, name)),
                (id, _) => {
                    let name = id.clone().unwrap_or_default();
                    skipped.push(LeftOut::group(
                        id,
                        &name,
                        &format!("a {what} without an id or a name"),
                    ));
                    None
                }
            }
        })
        .collect()
}

/// Narrows groups and roles to the configured ones: a name reads the group and the role of that
/// name (one group in the model), `id:ID` a group, `id:role:ID` a role.
fn keep_configured(
    groups: &mut Vec<(String, String)>,
    roles: &mut Vec<(String, String)>,
    wanted: &[String],
    roles_as_groups: bool,
) -> Result<(), SourceError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let mut keep_g = vec![false; groups.len()];
    let mut keep_r = vec![false; roles.len()];
    for w in wanted {
        let (hits_g, hits_r): (Vec<usize>, Vec<usize>) = match super::GroupRef::parse(w) {
            super::GroupRef::Id(id) => match id.strip_prefix("role:") {
                Some(rid) => (
                    Vec::new(),
                    (0..roles.len()).filter(|&i| roles[i].0 == rid).collect(),
                ),
                None => (
                    (0..groups.len()).filter(|&i| groups[i].0 == id).collect(),
                    Vec::new(),
                ),
            },
            super::GroupRef::Name(n) => (
                (0..groups.len()).filter(|&i| groups[i].1 == n).collect(),
                (0..roles.len()).filter(|&i| roles[i].1 == n).collect(),
            ),
        };
        if hits_g.is_empty() && hits_r.is_empty() {
            let hint = if roles_as_groups {
                ""
            } else {
                " (to read a role, set `roles_as_groups: true`)"
            };
            return Err(SourceError::Invalid(format!(
                "the configured group {w:?} is neither a group nor a role in OneLogin{hint}"
            )));
        }
        if hits_g.len() > 1 || hits_r.len() > 1 {
            let named: Vec<(String, &str)> = hits_g
                .iter()
                .map(|&i| (groups[i].0.clone(), groups[i].1.as_str()))
                .chain(
                    hits_r
                        .iter()
                        .map(|&i| (role_id(&roles[i].0), roles[i].1.as_str())),
                )
                .collect();
            let named: Vec<(&str, &str)> = named.iter().map(|(i, n)| (i.as_str(), *n)).collect();
            return Err(SourceError::Invalid(super::ambiguous_configured(
                w,
                &named,
                "in OneLogin",
            )));
        }
        for i in hits_g {
            keep_g[i] = true;
        }
        for i in hits_r {
            keep_r[i] = true;
        }
    }
    let mut i = 0;
    groups.retain(|_| {
        i += 1;
        keep_g[i - 1]
    });
    let mut i = 0;
    roles.retain(|_| {
        i += 1;
        keep_r[i - 1]
    });
    Ok(())
}

#[async_trait]
impl Source for OneLoginSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// OneLogin's account-wide budget of 5,000 calls an hour (developers.onelogin.com, "Get rate
    /// limit"), spent by the user pages, the group or role pages and the member pages (50 a
    /// page). Other apps of the account spend it too, so the time is a lower bound.
    fn rate_budgets(&self, read: &crate::model::Indexed) -> Vec<crate::model::RateBudget> {
        let requests = super::pages(read.keys.len(), PAGE)
            + super::pages(read.snapshot.groups.len(), PAGE)
            + super::member_pages(read, PAGE);
        vec![crate::model::RateBudget {
            what: format!(
                "source {}: OneLogin's account budget of 5,000 calls an hour",
                self.name
            ),
            requests,
            per: 5_000,
            window_secs: 3_600,
        }]
    }

    async fn snapshot(&self) -> Result<Snapshot, SourceError> {
        let session = Session::open(self).await?;
        // First pages only: they say how big the whole read is, before the budget is spent on it.
        let first = [("limit", PAGE.to_string())];
        let first_roles = async {
            if self.roles_as_groups {
                session.get(ROLES, &first).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let ((users_page, user_headers), (groups_page, group_headers), roles_first) = tokio::try_join!(
            session.get(USERS, &first),
            session.get(GROUPS, &[]),
            first_roles
        )?;

        // Pages still to come: what the first page announced, at the size the server actually used.
        let pages_after_first = |page: &Value, h: &HeaderMap| {
            let per_page = page.as_array().map_or(0, Vec::len).max(1) as u64;
            header_u64(h, "total-count").map_or(0, |t| t.div_ceil(per_page).saturating_sub(1))
        };
        let mut needed = pages_after_first(&users_page, &user_headers)
            + u64::from(v1_after_cursor(&groups_page).is_some());
        let mut budgets = vec![
            Budget::from_headers(&user_headers),
            Budget::from_headers(&group_headers),
        ];
        if let Some((page, h)) = &roles_first {
            // At least one page of members per role read.
            let roles = header_u64(h, "total-count").unwrap_or(0);
            let read = if self.groups.is_empty() {
                roles
            } else {
                roles.min(self.groups.len() as u64)
            };
            needed += pages_after_first(page, h) + read;
            budgets.push(Budget::from_headers(h));
        }
        if let Some(budget) = budgets.into_iter().flatten().min_by_key(|b| b.remaining) {
            match judge(needed, budget, self.budget_reserve) {
                Verdict::Go => {}
                Verdict::Wait(d) => {
                    session.http.hold(d).await;
                }
                Verdict::Refuse(why) => return Err(SourceError::Invalid(why)),
            }
        }

        let roles = async {
            match roles_first {
                Some((page, h)) => session.v2_rest(ROLES, page, &h).await,
                None => Ok(Vec::new()),
            }
        };
        let (groups, roles) = tokio::try_join!(session.groups_rest(groups_page), roles)?;
        let mut skipped = Vec::new();
        let mut groups = id_names(&groups, "group", &mut skipped);
        let mut roles = id_names(&roles, "role", &mut skipped);
        keep_configured(&mut groups, &mut roles, &self.groups, self.roles_as_groups)?;

        let users = session.v2_rest(USERS, users_page, &user_headers);
        let role_ids = roles.iter().map(|(id, _)| id.clone()).collect();
        let role_members = super::member_listings(role_ids, session.http.concurrency(), |id| {
            let session = &session;
            async move { session.v2_all(&format!("{ROLES}/{id}/users")).await }
        });
        let (users, role_members) = tokio::try_join!(users, role_members)?;
        Ok(self.assemble(&users, &groups, roles, role_members, skipped))
    }

    /// Per person: `GET /api/2/users?email=E` per email, `GET /api/2/users/{id}` per id (404 is
    /// absence); the groups (`GET /api/1/groups`) as in the full read; a user's group is its
    /// `group_id`, as in the full read; with `roles_as_groups`, the roles (`GET /api/2/roles`) and
    /// per person found `GET /api/2/users/{id}/roles` (their role ids) instead of each role's
    /// member listing. The budget check of the full read is not needed for these few requests.
    async fn snapshot_people(&self, people: &People) -> Result<Snapshot, SourceError> {
        let session = Session::open(self).await?;
        let width = session.http.concurrency().max(1);
        let by_email = stream::iter(people.emails.iter().cloned())
            .map(|e| {
                let session = &session;
                async move {
                    let q = [("email", e), ("limit", PAGE.to_string())];
                    let (page, headers) = session.get(USERS, &q).await?;
                    session.v2_rest(USERS, page, &headers).await
                }
            })
            .buffered(width)
            .try_collect::<Vec<Vec<Value>>>();
        let by_id = super::found_by_key(people.ids.iter().cloned(), width, |id| {
            let session = &session;
            async move {
                let (u, _) = session
                    .get(&format!("{USERS}/{}", super::seg(&id)), &[])
                    .await?;
                Ok(u)
            }
        });
        let groups = async {
            let (first, _) = session.get(GROUPS, &[]).await?;
            session.groups_rest(first).await
        };
        let roles = async {
            if self.roles_as_groups {
                session.v2_all(ROLES).await
            } else {
                Ok(Vec::new())
            }
        };
        let (by_email, by_id, groups, roles) = tokio::try_join!(by_email, by_id, groups, roles)?;
        let mut seen = std::collections::HashSet::new();
        let found: Vec<Value> = by_email
            .into_iter()
            .flatten()
            .chain(by_id)
            .filter(|u| {
                u.get("id")
                    .and_then(id_text)
                    .is_none_or(|id| seen.insert(id.into_owned()))
            })
            .collect();
        let mut skipped = Vec::new();
        let mut groups = id_names(&groups, "group", &mut skipped);
        let mut roles = id_names(&roles, "role", &mut skipped);
        keep_configured(&mut groups, &mut roles, &self.groups, self.roles_as_groups)?;
        let ids: Vec<String> = if self.roles_as_groups {
            found
                .iter()
                .filter_map(|u| u.get("id").and_then(id_text).map(|c| c.into_owned()))
                .collect()
        } else {
            Vec::new()
        };
        let memberships: Vec<(String, Vec<Value>)> = stream::iter(ids)
            .map(|id| {
                let session = &session;
                async move {
                    let path = format!("{USERS}/{}/roles", super::seg(&id));
                    let (page, headers) = session.get(&path, &[]).await?;
                    let ids = session.array(&path, page)?;
                    if let Some(t) = header_u64(&headers, "total-count")
                        .filter(|t| usize::try_from(*t).ok() != Some(ids.len()))
                    {
                        return Err(session.http.malformed(
                            &path,
                            &format!(
                                "Total-Count announced {t} roles, but the answer held {}",
                                ids.len()
                            ),
                        ));
                    }
                    let roles = ids
                        .into_iter()
                        .map(|r| serde_json::json!({ "id": r }))
                        .collect();
                    Ok::<_, HttpError>((id, roles))
                }
            })
            .buffered(width)
            .try_collect()
            .await?;
        let role_members = super::member_objects(&roles, &memberships);
        Ok(self
            .assemble(&found, &groups, roles, role_members, skipped)
            .restrict_to(people))
    }
}

impl OneLoginSource {
    /// Users, groups (a user's one group is its `group_id`) and roles with their member objects,
    /// as the model: shared by the full and the targeted read.
    fn assemble(
        &self,
        users: &[Value],
        groups: &[(String, String)],
        roles: Vec<(String, String)>,
        role_members: Vec<Vec<Value>>,
        mut skipped: Vec<LeftOut>,
    ) -> Snapshot {
        // A user's one group is its `group_id`.
        let mut members_of: HashMap<String, Vec<String>> = HashMap::new();
        let mut model = Vec::with_capacity(users.len());
        for raw in users {
            let u = match user_from_onelogin(raw, &self.inactive_statuses) {
                Ok(u) => u,
                Err(l) => {
                    skipped.push(*l);
                    continue;
                }
            };
            if let Some(gid) = wire::decode::<WireUser>(raw).group_id {
                members_of
                    .entry(gid)
                    .or_default()
                    .push(u.email.clone());
            }
            model.push(u);
        }
        let users = model;

        // Groups and roles; a role and a group of the same name are one group (when the name is
        // one group's and one role's: names shared more widely stay apart, told apart by id).
        let mut out: Vec<Group> = groups
            .iter()
            .map(|(id, name)| Group {
                name: name.clone(),
                id: Some(id.clone()),
                members: members_of.remove(id).unwrap_or_default(),
            })
            .collect();
        let roles: Vec<(String, String)> = roles
            .into_iter()
            .map(|(id, name)| (role_id(&id), name))
            .collect();
        let role_groups = super::groups_from_listings(
            &users,
            roles,
            role_members,
            "not among the users OneLogin listed",
            &mut skipped,
        );
        // Name -> (groups of that name, the first one's index); name -> roles of that name.
        let mut group_names: HashMap<String, (usize, usize)> = HashMap::new();
        for (i, g) in out.iter().enumerate() {
            group_names.entry(g.name.clone()).or_insert((0, i)).0 += 1;
        }
        let mut role_names: HashMap<&str, usize> = HashMap::new();
        for g in &role_groups {
            *role_names.entry(g.name.as_str()).or_default() += 1;
        }
        let mut extra = Vec::new();
        for g in &role_groups {
            match group_names.get(&g.name) {
                Some(&(1, i)) if role_names[g.name.as_str()] == 1 => {
                    out[i].members.extend(g.members.iter().cloned());
                }
                _ => extra.push(g.clone()),
            }
        }
        out.extend(extra);
        for g in &mut out {
            g.members.sort();
            g.members.dedup();
        }
        out.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Snapshot {
            users,
            groups: out,
            verified_domains: None,
            skipped,
        }
    }
}

/// Builds the connector its config describes, resolving its credentials.
///
/// # Errors
/// A credential that cannot be read, or settings that name no server.
pub(crate) fn build(
    o: &OneLoginSourceConfig,
    config_dir: &std::path::Path,
) -> Result<Box<dyn Source>, SourceError> {
    let read = |key: &str, inline: Option<&String>, file: Option<&std::path::PathBuf>| {
        super::read_secret(key, inline, file, config_dir)
    };
    Ok(Box::new(OneLoginSource {
        name: o.name.clone(),
        base_url: base_url(o).ok_or_else(|| {
            SourceError::Invalid(
                "onelogin: set `subdomain` (or `region`, or `base_url`)".into(),
            )
        })?,
        client_id: o.client_id.clone(),
        client_secret: read(
            "client_secret",
            o.client_secret.as_ref(),
            o.client_secret_file.as_ref(),
        )?,
        roles_as_groups: o.roles_as_groups,
        groups: o.groups.clone(),
        inactive_statuses: o.inactive_statuses.clone(),
        budget_reserve: o.budget_reserve,
        settings: o.http.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn users_map() {
        let v = json!({"id": 41, "email": "Ana@x.com", "username": "ana", "firstname": "Ana", "lastname": "Lee", "status": 2, "group_id": 7, "title": "Eng", "custom_attributes": {"cost_center": "R&D", "level": null}});
        let u = user_from_onelogin(&v, &[2]).unwrap();
        assert!(!u.active);
        assert_eq!(u.key(), "ana@x.com");
        assert_eq!(u.id.as_deref(), Some("41"));
        assert_eq!(u.attributes.get("title").map(String::as_str), Some("Eng"));
        assert_eq!(
            u.attributes.get("cost_center").map(String::as_str),
            Some("R&D")
        );
        assert!(user_from_onelogin(&v, &[]).unwrap().active);
        assert!(!u.attributes.contains_key("level"), "null is absent");
        let l = user_from_onelogin(&json!({"id": 5, "email": null, "username": "kiosk"}), &[2])
            .unwrap_err();
        assert_eq!((l.name.as_str(), l.id.as_deref()), ("kiosk", Some("5")));
    }

    #[test]
    fn the_host_comes_from_base_url_subdomain_or_region() {
        let yaml = |extra: &str| -> OneLoginSourceConfig {
            yaml_serde::from_str(&format!("{{name: ol, client_id: c, {extra}}}")).unwrap()
        };
        assert_eq!(
            base_url(&yaml("subdomain: acme")).as_deref(),
            Some("https://acme.onelogin.com")
        );
        assert_eq!(
            base_url(&yaml("region: eu")).as_deref(),
            Some("https://api.eu.onelogin.com")
        );
        assert_eq!(
            base_url(&yaml("subdomain: acme, base_url: 'http://127.0.0.1:9/'")).as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(base_url(&yaml("client_secret: s")), None);
    }

    #[test]
    fn the_budget_is_judged() {
        let b = |remaining, reset| Budget {
            limit: Some(5000),
            remaining,
            reset,
        };
        assert_eq!(judge(100, b(100, 3000), 0), Verdict::Go);
        assert!(matches!(judge(100, b(150, 3000), 100), Verdict::Refuse(_)));
        assert_eq!(
            judge(100, b(10, 30), 0),
            Verdict::Wait(Duration::from_secs(30))
        );
        // More than a whole window holds: waiting would not help.
        assert!(matches!(judge(6000, b(10, 30), 0), Verdict::Refuse(_)));
        let Verdict::Refuse(why) = judge(400, b(230, 37 * 60), 0) else {
            panic!("refused")
        };
        assert!(why.contains("400 more calls"), "{why}");
        assert!(why.contains("230 of the hourly 5000"), "{why}");
        assert!(why.contains("37 min"), "{why}");
    }
}
