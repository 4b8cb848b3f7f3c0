//! The engine: the one pipeline `plan` and `apply` share. Every source and the target are read at
//! once, the desired state is derived, diffed against the target, and sealed into a [`Plan`]; a
//! saved plan is read back and checked here too. The commands only turn options into calls of the
//! engine and its results into output and an exit status.

pub mod saved;
pub mod saved_file;

use chrono::{DateTime, Utc};

use crate::config::Loaded;
use crate::desired::{self, SourceData};
use crate::diff::{self, Context};
use crate::error::Error;
use crate::model::{GroupNames, Indexed, People};
use crate::output::Printer;
use crate::plan::scope::Scope;
use crate::plan::{Overrides, Plan};
use crate::progress::Phase;
use crate::sources;
use crate::targets::{self, Target};

/// Reads a saved plan of a format this idsync reads (see [`crate::plan::FORMAT_VERSION`]).
///
/// # Errors
/// The file cannot be read, is not a plan, or is of a major format version this idsync does not read.
pub(crate) fn read_plan(path: &std::path::Path) -> Result<crate::engine::saved_file::Saved, Error> {
    use crate::engine::saved_file::ReadError;
    crate::engine::saved_file::read(path).map_err(|e| match e {
        ReadError::OtherMajor {
            found,
            made_by,
            newer,
        } => Error::PlanFormat {
            path: path.to_path_buf(),
            found,
            made_by,
            newer,
        },
        other => Error::PlanFile {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })
}

/// The moment plans measure grace periods from: `IDSYNC_NOW` (RFC 3339) when set, for reproducible
/// plans, else the clock.
///
/// # Errors
/// `IDSYNC_NOW` is set but is not an RFC 3339 moment.
pub(crate) fn now() -> Result<DateTime<Utc>, Error> {
    match std::env::var("IDSYNC_NOW") {
        Err(std::env::VarError::NotPresent) => Ok(Utc::now()),
        Ok(s) if s.trim().is_empty() => Ok(Utc::now()),
        Ok(s) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| Error::BadEnv {
                name: "IDSYNC_NOW",
                reason: format!("{s:?} is not an RFC 3339 moment ({e})"),
                hint: "e.g. IDSYNC_NOW=2026-10-01T12:00:00Z, or unset it to use the clock",
            }),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::BadEnv {
            name: "IDSYNC_NOW",
            reason: "it is not valid UTF-8".into(),
            hint: "e.g. IDSYNC_NOW=2026-10-01T12:00:00Z, or unset it to use the clock",
        }),
    }
}

/// The key plans are signed with (`IDSYNC_PLAN_KEY`), if any.
///
/// # Errors
/// The key is set but unusable.
pub(crate) fn plan_key() -> Result<Option<Vec<u8>>, Error> {
    crate::engine::saved_file::key_from_env().map_err(Error::PlanKey)
}

/// A plan and the target it was made against.
pub struct Planned {
    pub plan: Plan,
    pub target: Box<dyn Target>,
    pub target_users: usize,
    /// The target as it was read for the plan.
    pub snapshot: Indexed,
}

/// Reads every source and the target, and computes the plan as of `now`.
///
/// # Errors
/// A source or the target could not be read completely, or holds duplicates.
pub async fn make_plan(
    loaded: &Loaded,
    printer: &Printer,
    now: DateTime<Utc>,
    overrides: Overrides,
) -> Result<Planned, Error> {
    make_plan_scoped(loaded, printer, now, overrides, None).await
}

/// As [`make_plan`], cut to a scope when one is given (a partial plan: `plan --only-user`).
///
/// # Errors
/// As [`make_plan`]; and a scope pattern or group that matches nothing.
pub async fn make_plan_scoped(
    loaded: &Loaded,
    printer: &Printer,
    now: DateTime<Utc>,
    overrides: Overrides,
    scope: Option<&Scope>,
) -> Result<Planned, Error> {
    make(loaded, printer, now, overrides, scope, Sealing::Now).await
}

/// As [`make_plan_scoped`], the plan not yet sealed: the caller seals it ([`Plan::seal`], or
/// [`Plan::seal_of`] while it writes the plan out).
///
/// # Errors
/// As [`make_plan_scoped`].
pub(crate) async fn make_plan_unsealed(
    loaded: &Loaded,
    printer: &Printer,
    now: DateTime<Utc>,
    overrides: Overrides,
    scope: Option<&Scope>,
) -> Result<Planned, Error> {
    make(loaded, printer, now, overrides, scope, Sealing::ByCaller).await
}

/// Whether the engine seals the plan it makes, or leaves that to its caller (which seals it before
/// it is saved or shown, or never, for a plan that is only explained).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sealing {
    Now,
    ByCaller,
}

async fn make(
    loaded: &Loaded,
    printer: &Printer,
    now: DateTime<Utc>,
    overrides: Overrides,
    scope: Option<&Scope>,
    sealing: Sealing,
) -> Result<Planned, Error> {
    let clock = std::time::Instant::now();
    // Every source and the target are read and indexed at once: over HTTP the waits overlap, and
    // parsing large snapshot files uses every core.
    let (sources, target) = tokio::try_join!(
        read_sources(loaded, printer, clock, None),
        read_target(loaded, printer, clock, None)
    )?;
    let (planned, _) = plan_from_keeping(
        loaded,
        printer,
        clock,
        Inputs { sources, target },
        now,
        overrides,
        scope,
        false,
        sealing,
    )?;
    Ok(planned)
}

/// What a plan is made from: every source and the target, as read (wholly, or for some people).
pub(crate) struct Inputs {
    pub(crate) sources: Vec<SourceInput>,
    pub(crate) target: TargetInput,
}

/// One source as read.
pub(crate) struct SourceInput {
    pub(crate) data: SourceData,
    /// The documented rate budgets such a read spends (see `Source::rate_budgets`).
    pub(crate) budgets: Vec<crate::model::RateBudget>,
}

/// The target as read.
pub(crate) struct TargetInput {
    pub(crate) target: Box<dyn Target>,
    pub(crate) indexed: Indexed,
}

/// Prints a phase's timing with `-v`.
fn lap(printer: &Printer, clock: std::time::Instant, what: &str) {
    printer.detail(&format!(
        "{:>8.1} ms  {what}",
        clock.elapsed().as_secs_f64() * 1000.0
    ));
}

/// Reads and indexes every source, at once: wholly, or only what concerns `people`.
///
/// # Errors
/// A source could not be read completely, or holds duplicates.
pub(crate) async fn read_sources(
    loaded: &Loaded,
    printer: &Printer,
    clock: std::time::Instant,
    people: Option<&People>,
) -> Result<Vec<SourceInput>, Error> {
    let reads = loaded.config.sources.iter().map(|sc| async {
        let name = sc.name().to_string();
        let source = sources::build(sc, &loaded.dir).map_err(|e| Error::Source {
            name: name.clone(),
            source: e,
        })?;
        printer.progress(&format!("reading source {name}…"));
        let phase = Phase::reading(&format!("reading source {name}"));
        let read = async {
            match people {
                None => source.snapshot_resolving().await,
                Some(p) => Ok(crate::model::Resolving::of(
                    source.snapshot_people(p).await?,
                )),
            }
        };
        let snap = phase.scope(read).await.map_err(|e| Error::Source {
            name: name.clone(),
            source: e,
        })?;
        phase.finish();
        lap(printer, clock, &format!("read source {name}"));
        let indexed = index(snap, GroupNames::MayRepeat)
            .await
            .map_err(|e| Error::SourceData {
                name: name.clone(),
                source: e,
            })?;
        let budgets = source.rate_budgets(&indexed);
        lap(
            printer,
            clock,
            &format!(
                "indexed source {name}: {} users, {} groups",
                indexed.keys.len(),
                indexed.snapshot.groups.len()
            ),
        );
        Ok::<_, Error>(SourceInput {
            data: SourceData {
                name,
                data: indexed,
            },
            budgets,
        })
    });
    futures_util::future::try_join_all(reads).await
}

/// Reads and indexes the target: wholly, or only what concerns `people`.
///
/// # Errors
/// The target could not be read completely, or holds duplicates.
pub(crate) async fn read_target(
    loaded: &Loaded,
    printer: &Printer,
    clock: std::time::Instant,
    people: Option<&People>,
) -> Result<TargetInput, Error> {
    let mut target = targets::build(&loaded.config, &loaded.dir).map_err(Error::TargetSetup)?;
    let name = target.name();
    printer.progress(&format!("reading target {name}…"));
    let phase = Phase::reading(&format!("reading target {name}"));
    let read = async {
        match people {
            None => target.snapshot_resolving().await,
            Some(p) => Ok(crate::model::Resolving::of(
                target.snapshot_people(p).await?,
            )),
        }
    };
    let snap = phase.scope(read).await.map_err(|e| Error::Target {
        name: name.clone(),
        source: e,
    })?;
    phase.finish();
    lap(printer, clock, &format!("read target {name}"));
    let indexed = index_target(snap).await.map_err(|e| Error::TargetData {
        name: name.clone(),
        source: e,
    })?;
    lap(
        printer,
        clock,
        &format!(
            "indexed target {name}: {} users, {} groups",
            indexed.keys.len(),
            indexed.snapshot.groups.len()
        ),
    );
    Ok(TargetInput { target, indexed })
}

/// Computes the plan from what was read, cut to `scope` when one is given. Pure but for `-v`
/// timings: plan, apply and sync-user all end here.
///
/// # Errors
/// The config refers to IdP groups it does not name uniquely; a scope pattern or group matches
/// nothing; the signing key is unusable.
pub(crate) fn plan_from(
    loaded: &Loaded,
    printer: &Printer,
    clock: std::time::Instant,
    inputs: Inputs,
    now: DateTime<Utc>,
    overrides: Overrides,
    scope: Option<&Scope>,
) -> Result<Planned, Error> {
    let (planned, _) = plan_from_keeping(
        loaded,
        printer,
        clock,
        inputs,
        now,
        overrides,
        scope,
        false,
        Sealing::Now,
    )?;
    Ok(planned)
}

/// What a plan was computed from, kept for `explain`: each source as read, and the desired state.
pub(crate) struct Kept {
    pub(crate) sources: Vec<SourceData>,
    pub(crate) desired: desired::Desired,
}

/// As [`plan_from`], keeping the sources and the desired state when `keep` (otherwise they are
/// freed before the plan is returned: a large plan needs the memory).
///
/// # Errors
/// As [`plan_from`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_from_keeping(
    loaded: &Loaded,
    printer: &Printer,
    clock: std::time::Instant,
    inputs: Inputs,
    now: DateTime<Utc>,
    overrides: Overrides,
    scope: Option<&Scope>,
    keep: bool,
    sealing: Sealing,
) -> Result<(Planned, Option<Kept>), Error> {
    let Inputs {
        sources: read,
        target: TargetInput { target, indexed },
    } = inputs;
    let read_budgets: Vec<crate::model::RateBudget> = read
        .iter()
        .flat_map(|r| r.budgets.iter().cloned())
        .collect();
    let mut data: Vec<SourceData> = read.into_iter().map(|r| r.data).collect();
    // `explain` reads the sources' records after the plan; desired::build empties them.
    let kept_sources = keep.then(|| data.clone());
    let desired = desired::build(&mut data, &loaded.rules, &|g| target.reserved_group(g))
        .map_err(|problems| Error::GroupReferences { problems })?;
    lap(printer, clock, "desired state");
    let filter = match scope {
        Some(s) => {
            let f = crate::plan::scope::Filter::new(s).map_err(|reason| Error::Scope {
                problems: vec![reason],
            })?;
            let everyone = desired
                .users
                .iter()
                .map(|u| u.key.as_str())
                .chain(indexed.keys.iter().map(String::as_str));
            let mut problems: Vec<String> = f
                .unmatched_users(everyone)
                .into_iter()
                .map(|p| format!("{p:?} matches no user in any source or the target"))
                .collect();
            let managed: Vec<&str> = desired.groups.keys().map(String::as_str).collect();
            problems.extend(
                f.unmatched_groups(&s.groups, &managed)
                    .into_iter()
                    .map(|g| format!("{g:?} is not a group idsync manages (groups.mappings or groups.default_groups)")),
            );
            if !problems.is_empty() {
                return Err(Error::Scope { problems });
            }
            Some((s, f))
        }
        None => None,
    };
    let sources_read = loaded
        .config
        .sources
        .iter()
        .zip(&data)
        .map(|(sc, d)| crate::plan::SourceRead {
            name: d.name.clone(),
            kind: sc.type_name().into(),
            users: d.data.keys.len(),
            groups: d.data.snapshot.groups.len(),
            left_out: d.data.snapshot.skipped.len(),
        })
        .collect();
    // The diff needs only the desired state and the target: the sources' users and groups go now,
    // before the plan is made (at a million users they are a gigabyte).
    free_in_background(data);
    lap(printer, clock, "freed the sources");
    let ctx = Context {
        rules: &loaded.rules,
        cleanup: &loaded.rules.cleanup,
        manage_unmapped_members: loaded.config.groups.manage_unmapped_members,
        now,
        overrides,
        config_hash: loaded.hash.clone(),
        target_name: target.name(),
        target_concurrency: target.request_concurrency(),
        action_requests: &|a| target.requests_for(a),
        write_budget: target.write_budget(),
        read_budgets,
        last_active_lag: target.last_active_lag(),
        target_warnings: target.warnings(),
        sources: sources_read,
    };
    let mut plan = diff::diff_scoped(
        &desired,
        &indexed,
        &ctx,
        filter.as_ref().map(|(s, f)| (*s, f)),
    );
    lap(printer, clock, "diff");
    let kept = match kept_sources {
        Some(sources) => Some(Kept { sources, desired }),
        None => {
            free_in_background(desired);
            lap(printer, clock, "freed the desired state");
            None
        }
    };
    if sealing == Sealing::Now {
        plan.seal(plan_key()?.as_deref());
        lap(printer, clock, "sealed");
    }
    Ok((
        Planned {
            plan,
            target,
            target_users: indexed.keys.len(),
            snapshot: indexed,
        },
        kept,
    ))
}

/// Frees a large value on a thread of its own: at a million users, freeing the sources, the
/// desired state or the target's snapshot takes a tenth of a second or more, which the plan need
/// not wait for. The memory is returned as the thread runs; nothing else happens on it.
pub(crate) fn free_in_background<T: Send + 'static>(value: T) {
    // Should no thread be had, the closure, and the value in it, is freed here instead.
    let _ = std::thread::Builder::new()
        .name("idsync-free".into())
        .spawn(move || drop(value));
}

/// How many times the two sides are asked in turn by [`read_people`] at most: reads of only some
/// people grow the set read until both sides agree on who that is (a renamed person's other email,
/// an account carrying their IdP id); a chain of renames longer than this is read as far as it goes.
const MAX_ROUNDS: usize = 3;

/// Reads only these people (`sync-user`, `explain`): every source by email, then the target by
/// email and by the people's IdP ids (an account a rename left under the old email carries the id
/// as `externalId`). What one side finds that the other was not asked about (an old email, an id) is
/// read on the other side too, for at most [`MAX_ROUNDS`] rounds. `-v` states the requests made.
///
/// # Errors
/// A source or the target could not be read.
pub(crate) async fn read_people(
    loaded: &Loaded,
    printer: &Printer,
    clock: std::time::Instant,
    emails: &[String],
) -> Result<Inputs, Error> {
    let before = crate::http::requests_by_api();
    let mut people = People::by_email(emails.iter().map(String::as_str));
    let mut target_requests = 0;
    let mut rounds = 0;
    let inputs = loop {
        rounds += 1;
        let sources = read_sources(loaded, printer, clock, Some(&people)).await?;
        let mut wider = people.clone();
        for s in &sources {
            for u in &s.data.data.snapshot.users {
                wider.emails.insert(u.key());
                wider.ids.extend(u.id.clone());
            }
        }
        let target = read_target(loaded, printer, clock, Some(&wider)).await?;
        target_requests += target.target.requests();
        let mut widest = wider.clone();
        for u in &target.indexed.snapshot.users {
            widest.emails.insert(u.key());
            widest.ids.extend(u.external_id.clone());
        }
        // The sources were read for `people`: done when the target named nobody beyond what they
        // were asked and answered about.
        if widest == wider || rounds == MAX_ROUNDS {
            break Inputs { sources, target };
        }
        people = widest;
    };
    let after = crate::http::requests_by_api();
    let per_api: Vec<String> = after
        .iter()
        .map(|(api, n)| (api, n - before.get(api).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .map(|(api, n)| format!("{api} {n}"))
        .collect();
    let total: u64 = after.values().sum::<u64>() - before.values().sum::<u64>();
    printer.detail(&format!(
        "targeted read: {total} request(s) in {rounds} round(s), {target_requests} of them to the target; requests per API: {}",
        if per_api.is_empty() {
            "none".to_string()
        } else {
            per_api.join(", ")
        }
    ));
    Ok(inputs)
}

/// Indexes a snapshot on a blocking thread.
async fn index(
    snap: crate::model::Resolving,
    names: GroupNames,
) -> Result<Indexed, crate::model::SnapshotError> {
    tokio::task::spawn_blocking(move || Indexed::resolved(snap, names))
        .await
        .expect("indexing does not panic")
}

/// Indexes a target's snapshot on a blocking thread (groups sharing a name set apart).
async fn index_target(
    snap: crate::model::Resolving,
) -> Result<Indexed, crate::model::SnapshotError> {
    tokio::task::spawn_blocking(move || Indexed::resolved_target(snap))
        .await
        .expect("indexing does not panic")
}

/// Whatever stops a plan from being saved or applied: blocking problems, then the guard.
pub(crate) fn refusal(plan: &Plan) -> Option<Error> {
    if !plan.blocking.is_empty() {
        return Some(Error::Blocked {
            problems: plan.blocking.clone(),
        });
    }
    let tripped: Vec<&crate::plan::Limit> = plan.blocking_limits().collect();
    if tripped.is_empty() {
        return plan.guard.blocks().then(|| guard_error(plan));
    }
    // Every tripped guard at once, so that one run says every flag it needs.
    let mut problems = Vec::new();
    let mut flags = Vec::new();
    if plan.guard.blocks() {
        problems.push(guard_error(plan).to_string());
        flags.push(crate::plan::guard::OVERRIDE_FLAG);
    }
    for l in tripped {
        problems.push(l.describe());
        if !flags.contains(&l.kind.flag()) {
            flags.push(l.kind.flag());
        }
    }
    Some(Error::Limits { problems, flags })
}

/// The guard's verdict as an error.
pub(crate) fn guard_error(plan: &Plan) -> Error {
    let g = &plan.guard;
    Error::Guard {
        deactivations: g.deactivations,
        limit: g.limit,
        setting: g.setting.clone(),
        active: g.active_users,
    }
}
