//! Progress of long work, on stderr: a live bar per phase on a terminal (indicatif), a plain line
//! every ~10 s otherwise (so that CI logs show life), nothing with `--quiet`.
//!
//! The code doing the work reports into a [`Phase`] without knowing where it goes: the HTTP client
//! counts the pages and objects it reads into the phase its task runs in ([`Phase::scope`], a
//! task-local, so that the many clones of a client need no handle), the apply executor counts its
//! actions. Waits (throttling, retries) are said through [`wait`]: with `-v` always, and without it
//! whenever a wait is long enough to be noticed.
//!
//! Everything printed passes through the [`Printer`] (redacted); while bars are drawn, the
//! printer's other lines are written above them ([`eprint`]), so that neither garbles the other.
#![allow(clippy::print_stderr)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::secret::redact;
use crate::output::Printer;

/// A wait at least this long is said even without `-v` (in seconds, as the server asked for it
/// or as the backoff chose, before `IDSYNC_RETRY_DELAY_SCALE`).
pub const LOUD_WAIT_SECS: f64 = 3.0;

/// How often a plain progress line is written without a terminal.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The environment variable that sets the plain-line interval, in milliseconds (tests use a small
/// one to see lines without waiting).
pub const INTERVAL_ENV: &str = "IDSYNC_PROGRESS_INTERVAL_MS";

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Nothing (`--quiet`).
    Off,
    /// Live bars: stderr is a terminal and colour (escape codes) is allowed.
    Bars,
    /// A plain line per phase every interval: no terminal, or `--color never` / `NO_COLOR`.
    Lines,
}

impl Mode {
    /// The mode for a stderr that is (or not) a terminal, with colour allowed (or not) there.
    /// Bars move the cursor with escape codes: without colour, a terminal gets plain lines too.
    #[must_use]
    pub fn choose(quiet: bool, err_tty: bool, color_err: bool) -> Mode {
        if quiet {
            Mode::Off
        } else if err_tty && color_err {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

/// The process's reporter, set once by [`install`].
struct Reporter {
    printer: Printer,
    mode: Mode,
    interval: Duration,
    bars: Option<MultiProgress>,
    /// Phases under way (a phase all of whose handles are gone is over).
    phases: Mutex<Vec<Weak<State>>>,
    ticker: std::sync::Once,
}

static REPORTER: OnceLock<Reporter> = OnceLock::new();

/// Sets up progress reporting for this process, once (later calls are ignored).
pub fn install(printer: Printer) {
    let mode = printer.progress_mode();
    let bars = (mode == Mode::Bars)
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
    let _ = REPORTER.set(Reporter {
        printer,
        mode,
        interval: interval_from_env(std::env::var(INTERVAL_ENV).ok().as_deref()),
        bars,
        phases: Mutex::new(Vec::new()),
        ticker: std::sync::Once::new(),
    });
}

fn interval_from_env(v: Option<&str>) -> Duration {
    v.and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(DEFAULT_INTERVAL, Duration::from_millis)
}

/// Writes a line to stderr: above the bars while they are drawn, else as is. The caller redacts.
pub(crate) fn eprint(line: &str) {
    match REPORTER.get().and_then(|r| r.bars.as_ref()) {
        Some(bars) => bars.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

/// Says that a request waits `secs` (as asked or chosen, unscaled) before it is sent (again):
/// "{api}: {why}; waiting {secs}{then}", with `-v` always, else when the wait is at least
/// [`LOUD_WAIT_SECS`] (not with `-q`).
pub fn wait(api: &str, secs: f64, why: &str, then: &str) {
    let Some(r) = REPORTER.get() else { return };
    let shown = if secs >= 10.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    };
    let line = format!("{api}: {why}; waiting {shown}{then}");
    if secs >= LOUD_WAIT_SECS {
        r.printer.info(&line);
    } else {
        r.printer.detail(&line);
    }
}

/// Counts a page (and the `objects` it listed) read by the current task into its phase, if any.
pub fn page(objects: usize) {
    if let Ok(p) = CURRENT.try_with(Phase::clone) {
        p.inc_pages(1);
        p.inc_objects(objects);
    }
}

tokio::task_local! {
    static CURRENT: Phase;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Reading,
    Apply,
}

#[derive(Debug)]
struct State {
    label: String,
    kind: Kind,
    started: Instant,
    pages: AtomicU64,
    objects: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    total: AtomicU64,
    /// A plain line was written for this phase (so its end is said too).
    reported: AtomicBool,
    /// Said after the counts (e.g. that the run was interrupted).
    note: Mutex<String>,
    bar: Option<ProgressBar>,
}

/// One phase of work (reading a source, reading the target, applying). Cheap to clone; the phase
/// ends when [`Phase::finish`] is called or the last handle is dropped (an error on the way).
#[derive(Clone, Debug)]
pub struct Phase(Arc<State>);

impl Phase {
    /// Reading a source or the target: pages and objects so far.
    #[must_use]
    pub fn reading(label: &str) -> Phase {
        Phase::start(label, Kind::Reading, 0)
    }

    /// Applying `total` actions: done/total, rate, time left.
    #[must_use]
    pub fn apply(label: &str, total: usize) -> Phase {
        Phase::start(label, Kind::Apply, total)
    }

    fn start(label: &str, kind: Kind, total: usize) -> Phase {
        let label = redact(label).into_owned();
        let total = u64::try_from(total).unwrap_or(u64::MAX);
        let reporter = REPORTER.get().filter(|r| r.mode != Mode::Off);
        let bar = reporter.and_then(|r| r.bars.as_ref()).map(|bars| {
            let bar = match kind {
                Kind::Reading => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {prefix}{msg} ({elapsed})")
                        .expect("a valid template"),
                ),
                Kind::Apply => ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{prefix} [{wide_bar}] {pos}/{len} ({per_sec}, {eta} left){msg}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                ),
            };
            let bar = bars.add(bar);
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        let state = Arc::new(State {
            label,
            kind,
            started: Instant::now(),
            pages: AtomicU64::new(0),
            objects: AtomicU64::new(0),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            total: AtomicU64::new(total),
            reported: AtomicBool::new(false),
            note: Mutex::new(String::new()),
            bar,
        });
        if let Some(r) = reporter {
            let mut phases = r.phases.lock().expect("not poisoned");
            phases.retain(|p| p.strong_count() > 0);
            phases.push(Arc::downgrade(&state));
            drop(phases);
            if r.mode == Mode::Lines {
                r.ticker.call_once(|| {
                    let interval = r.interval;
                    std::thread::spawn(move || loop {
                        std::thread::sleep(interval);
                        tick(interval);
                    });
                });
            }
        }
        Phase(state)
    }

    /// Runs `f` with this phase as its task's current phase (what [`page`] counts into).
    pub async fn scope<F: Future>(&self, f: F) -> F::Output {
        CURRENT.scope(self.clone(), f).await
    }

    pub fn inc_pages(&self, n: usize) {
        self.0.pages.fetch_add(as_u64(n), Ordering::Relaxed);
        self.redraw();
    }

    pub fn inc_objects(&self, n: usize) {
        self.0.objects.fetch_add(as_u64(n), Ordering::Relaxed);
        self.redraw();
    }

    /// One action finished (`failed` or not).
    pub fn inc_done(&self, failed: bool) {
        self.0.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.0.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(bar) = &self.0.bar {
            bar.inc(1);
        }
        self.redraw();
    }

    pub fn set_total(&self, n: usize) {
        self.0.total.store(as_u64(n), Ordering::Relaxed);
        if let Some(bar) = &self.0.bar {
            bar.set_length(as_u64(n));
        }
    }

    /// Says `note` after the counts from now on (once: a second note is ignored).
    pub fn note(&self, note: &str) {
        {
            let mut n = self.0.note.lock().expect("not poisoned");
            if !n.is_empty() {
                return;
            }
            *n = format!("; {}", redact(note));
        }
        self.redraw();
    }

    fn redraw(&self) {
        if let Some(bar) = &self.0.bar {
            let counts = self.0.counts();
            bar.set_message(match self.0.kind {
                Kind::Reading if !counts.is_empty() => format!(": {counts}"),
                _ => counts,
            });
        }
    }

    /// Ends the phase: its bar stays with the final counts; a plain line says the end when the
    /// phase had been reported.
    pub fn finish(&self) {
        self.0.end(true);
    }
}

impl State {
    /// The counts as words: pages and objects, or failures of an apply.
    fn counts(&self) -> String {
        let note = self.note.lock().expect("not poisoned").clone();
        let counts = match self.kind {
            // A file is read at once: no pages to count.
            Kind::Reading => match self.pages.load(Ordering::Relaxed) {
                0 => String::new(),
                pages => format!(
                    "{pages} page(s), {} object(s)",
                    self.objects.load(Ordering::Relaxed)
                ),
            },
            Kind::Apply => match self.failed.load(Ordering::Relaxed) {
                0 => String::new(),
                n => format!(", {n} failed"),
            },
        };
        counts + &note
    }

    /// The plain line for this phase now.
    fn line(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64();
        let took = if secs < 10.0 {
            format!("{secs:.1} s")
        } else {
            format!("{secs:.0} s")
        };
        match self.kind {
            Kind::Reading => match self.counts() {
                counts if counts.is_empty() => format!("{}: still reading ({took})", self.label),
                counts => format!("{}: {counts} so far ({took})", self.label),
            },
            Kind::Apply => {
                let done = self.done.load(Ordering::Relaxed);
                let total = self.total.load(Ordering::Relaxed);
                #[allow(clippy::cast_precision_loss)]
                let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
                #[allow(clippy::cast_precision_loss)]
                let left = if rate > 0.0 {
                    format!(
                        ", about {:.0} s left",
                        total.saturating_sub(done) as f64 / rate
                    )
                } else {
                    String::new()
                };
                format!(
                    "{}: {done}/{total} action(s) done{} ({rate:.1}/s{left}, {took})",
                    self.label,
                    self.counts()
                )
            }
        }
    }

    fn end(&self, finished: bool) {
        // Out of the list first, so that no plain line follows the end.
        if let Some(r) = REPORTER.get() {
            let mut phases = r.phases.lock().expect("not poisoned");
            phases.retain(|p| p.upgrade().is_some_and(|p| !std::ptr::eq(&*p, self)));
        }
        // A bar is cleared and taken out when its phase ends, and its last state written as a
        // plain line: bars drawn again later (the apply's) would otherwise move the cursor up
        // over what was written to stdout meanwhile (the plan).
        let had_bar = self.bar.as_ref().is_some_and(|bar| {
            let live = !bar.is_finished();
            bar.finish_and_clear();
            if let Some(bars) = REPORTER.get().and_then(|r| r.bars.as_ref()) {
                bars.remove(bar);
            }
            live
        });
        let reported = self.reported.swap(false, Ordering::SeqCst);
        // A bar that was only glimpsed leaves no line behind.
        let long = self.started.elapsed() >= Duration::from_secs(1);
        if finished && (reported || (had_bar && long)) {
            if let Some(r) = REPORTER.get() {
                let secs = self.started.elapsed().as_secs_f64();
                let what = match self.kind {
                    Kind::Reading => match self.counts() {
                        counts if counts.is_empty() => counts,
                        counts => format!(", {counts}"),
                    },
                    Kind::Apply => format!(
                        ", {}/{} action(s) done{}",
                        self.done.load(Ordering::Relaxed),
                        self.total.load(Ordering::Relaxed),
                        self.counts()
                    ),
                };
                r.printer
                    .info(&format!("{}: finished{what} in {secs:.1} s", self.label));
            }
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // Ended on an error: the bar goes, nothing more is said.
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            if let Some(bars) = REPORTER.get().and_then(|r| r.bars.as_ref()) {
                bars.remove(bar);
            }
        }
    }
}

/// Writes the plain line of every phase that has run for at least `interval`.
fn tick(interval: Duration) {
    let Some(r) = REPORTER.get() else { return };
    // Held while writing, so that a phase that ends meanwhile is not reported after its end.
    let phases = r.phases.lock().expect("not poisoned");
    for p in phases.iter().filter_map(Weak::upgrade) {
        let elapsed = p.started.elapsed();
        if elapsed >= interval {
            p.reported.store(true, Ordering::SeqCst);
            r.printer.info(&p.line(elapsed));
        }
    }
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// How many objects a page of a listing holds, in the shapes the APIs use: a bare array (Okta,
/// Keycloak), SCIM `Resources`, Graph `value`, Atlassian and OneLogin `data`, Google `users`,
/// `groups` or `members`. Anything else (one object read by id) lists none.
#[must_use]
pub fn listed(page: &serde_json::Value) -> usize {
    use serde_json::Value;
    match page {
        Value::Array(items) => items.len(),
        Value::Object(map) => ["Resources", "value", "data", "users", "groups", "members"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_array))
            .map_or(0, Vec::len),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bars_only_on_a_terminal_with_colour_and_nothing_when_quiet() {
        assert_eq!(Mode::choose(false, true, true), Mode::Bars);
        // --color never / NO_COLOR on a terminal: plain lines, no escape codes.
        assert_eq!(Mode::choose(false, true, false), Mode::Lines);
        // No terminal (CI), whatever the colour choice.
        assert_eq!(Mode::choose(false, false, true), Mode::Lines);
        assert_eq!(Mode::choose(false, false, false), Mode::Lines);
        assert_eq!(Mode::choose(true, true, true), Mode::Off);
        assert_eq!(Mode::choose(true, false, false), Mode::Off);
    }

    #[test]
    fn the_interval_comes_from_the_environment_or_is_ten_seconds() {
        assert_eq!(interval_from_env(None), Duration::from_secs(10));
        assert_eq!(interval_from_env(Some("25")), Duration::from_millis(25));
        assert_eq!(interval_from_env(Some("0")), Duration::from_secs(10));
        assert_eq!(interval_from_env(Some("soon")), Duration::from_secs(10));
    }

    #[test]
    fn pages_of_every_api_shape_are_counted() {
        assert_eq!(listed(&json!([{}, {}, {}])), 3);
        assert_eq!(
            listed(&json!({"Resources": [{}, {}], "totalResults": 9})),
            2
        );
        assert_eq!(listed(&json!({"value": [{}], "@odata.nextLink": "x"})), 1);
        assert_eq!(listed(&json!({"data": [{}, {}], "links": {}})), 2);
        assert_eq!(listed(&json!({"users": [{}], "nextPageToken": "t"})), 1);
        assert_eq!(listed(&json!({"kind": "admin#directory#users"})), 0);
        assert_eq!(listed(&json!({"id": "g1", "displayName": "x"})), 0);
    }

    #[test]
    fn lines_say_counts_rate_and_time_left() {
        let p = Phase::reading("reading source okta");
        assert_eq!(
            p.0.line(Duration::from_millis(10_400)),
            "reading source okta: still reading (10 s)"
        );
        p.inc_pages(2);
        p.inc_objects(150);
        assert_eq!(
            p.0.line(Duration::from_secs(12)),
            "reading source okta: 2 page(s), 150 object(s) so far (12 s)"
        );
        let a = Phase::apply("applying to Atlassian", 300);
        for i in 0..100 {
            a.inc_done(i % 50 == 0);
        }
        assert_eq!(
            a.0.line(Duration::from_secs(10)),
            "applying to Atlassian: 100/300 action(s) done, 2 failed (10.0/s, about 20 s left, 10 s)"
        );
        a.set_total(400);
        a.note("interrupted");
        a.note("ignored");
        assert_eq!(
            a.0.line(Duration::from_secs(10)),
            "applying to Atlassian: 100/400 action(s) done, 2 failed; interrupted (10.0/s, about 30 s left, 10 s)"
        );
        // Phases report into the current task's phase only.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(p.scope(async { page(7) }));
        page(1000);
        assert_eq!(p.0.objects.load(Ordering::Relaxed), 157);
        assert_eq!(p.0.pages.load(Ordering::Relaxed), 3);
    }
}
