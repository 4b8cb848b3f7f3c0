//! When to retry and how long to wait: `Retry-After`, then `X-RateLimit-Reset` /
//! `X-Rate-Limit-Reset`, else exponential backoff with full jitter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

/// Retry settings.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; doubled on each retry.
    pub base: Duration,
    /// The longest backoff of our own choosing.
    pub cap: Duration,
    /// The longest wait a server may ask for (`Retry-After`, a rate-limit reset); asked for more,
    /// the request fails with [`TooLong`] instead of waiting (`http.max_wait_secs`).
    pub max_wait: Duration,
    /// Multiplies every wait: 1.0 in production. `IDSYNC_RETRY_DELAY_SCALE` sets it (tests use a
    /// small value so that a fake's `Retry-After: 1` costs milliseconds).
    pub scale: f64,
}

/// The default of `http.max_wait_secs`.
pub(super) const DEFAULT_MAX_WAIT_SECS: u64 = 300;

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            max_wait: Duration::from_secs(DEFAULT_MAX_WAIT_SECS),
            scale: std::env::var("IDSYNC_RETRY_DELAY_SCALE")
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .unwrap_or(1.0),
        }
    }
}

/// A server asked to wait longer than the policy's `max_wait`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TooLong {
    /// The wait asked for, in seconds (finite, maybe astronomically large).
    pub asked_secs: f64,
    /// The longest wait allowed.
    pub max: Duration,
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let asked = if self.asked_secs < 1e9 {
            format!("{} s", self.asked_secs.ceil())
        } else {
            format!("{:.1e} s", self.asked_secs)
        };
        write!(
            f,
            "the server asked to wait {asked} before trying again, longer than the {} s idsync waits (http.max_wait_secs)",
            self.max.as_secs()
        )
    }
}

/// Statuses worth another attempt: throttling and server-side failures.
#[must_use]
pub(super) fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

impl RetryPolicy {
    /// Exponential backoff with full jitter for retry number `retry` (1-based).
    #[must_use]
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16));
        let ceiling = exp.min(self.cap);
        let jittered = ceiling.mul_f64(0.5 + fastrand::f64() * 0.5);
        self.scaled(jittered)
    }

    /// The wait a 429 (or 503) asks for, from its headers: `Ok(None)` when it names none (or none
    /// that parses), [`TooLong`] when it asks for more than `max_wait`. Never panics, whatever the
    /// headers say.
    ///
    /// # Errors
    /// The server asked for a wait longer than `max_wait`.
    pub fn requested_wait(&self, headers: &HeaderMap) -> Result<Option<Duration>, TooLong> {
        asked(headers).map(|a| self.clamp(a)).transpose()
    }

    /// The one place a wait a server asked for becomes a wait idsync takes: refused
    /// ([`TooLong`]) past `max_wait`, else as asked, with a little jitter, scaled. `asked.secs` is
    /// finite and not negative when it comes from [`asked`]; anything else (NaN, negative) is
    /// taken as no wait.
    ///
    /// # Errors
    /// The server asked for a wait longer than `max_wait`.
    pub fn clamp(&self, asked: Asked) -> Result<Duration, TooLong> {
        let secs = if asked.secs.is_finite() {
            asked.secs.max(0.0)
        } else if asked.secs == f64::INFINITY {
            f64::MAX
        } else {
            0.0
        };
        if secs > self.max_wait.as_secs_f64() {
            return Err(TooLong {
                asked_secs: secs,
                max: self.max_wait,
            });
        }
        let wait = Duration::try_from_secs_f64(secs).unwrap_or(self.max_wait);
        // A little jitter so that many clients told the same moment do not return together.
        Ok(self.scaled(wait.saturating_add(Duration::from_millis(fastrand::u64(0..250)))))
    }

    /// A wait as it is said to people: before `IDSYNC_RETRY_DELAY_SCALE` (tests wait a fraction
    /// of what the server asked for; messages still state what it asked for).
    #[must_use]
    pub fn unscaled(&self, d: Duration) -> Duration {
        if self.scale > 0.0 {
            Duration::try_from_secs_f64(d.as_secs_f64() / self.scale).unwrap_or(Duration::MAX)
        } else {
            d
        }
    }

    /// A wait as this policy takes it (`IDSYNC_RETRY_DELAY_SCALE` applied).
    #[must_use]
    pub fn scaled(&self, d: Duration) -> Duration {
        Duration::try_from_secs_f64(d.as_secs_f64() * self.scale).unwrap_or(Duration::MAX)
    }
}

/// A wait a server asked for: how long, and which header (or vendor signal) asked, for messages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Asked {
    /// Seconds; finite and not negative when parsed from headers.
    pub secs: f64,
    /// What asked (`Retry-After`, `rate-limit reset`, …).
    pub by: &'static str,
}

/// Whether to send a request again, as a client's loop decides it for an answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Retry {
    /// The answer stands (a success, or an error to report).
    No,
    /// Again after what the server asked for (clamped by the policy's `max_wait`).
    After(Asked),
    /// Again after a backoff of our own choosing.
    Backoff,
}

/// A vendor's retry signals, beyond the statuses every API shares: `Some` decides, `None` leaves
/// the answer to [`classify`] (e.g. Google's 403 `rateLimitExceeded`).
pub type Classifier = fn(StatusCode, &HeaderMap, &[u8]) -> Option<Retry>;

/// The classification every API shares: throttling and 5xx are retried, after what the headers
/// ask for when they ask (parsed once, here), else with backoff.
#[must_use]
pub fn classify(status: StatusCode, headers: &HeaderMap) -> Retry {
    if !retryable(status) {
        return Retry::No;
    }
    asked(headers).map_or(Retry::Backoff, Retry::After)
}

/// The wait the headers ask for and the header that asks: `Retry-After` (seconds or an HTTP
/// date), then `X-RateLimit-Reset` / `X-Rate-Limit-Reset` (epoch or seconds), then the IETF
/// `RateLimit-Reset` (seconds). `None` when no header names a wait that parses.
#[must_use]
pub fn asked(headers: &HeaderMap) -> Option<Asked> {
    asked_at(headers, now_epoch_secs())
}

fn asked_at(headers: &HeaderMap, now: f64) -> Option<Asked> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(secs) = header("retry-after").and_then(|v| retry_after(v, now)) {
        return Some(Asked {
            secs,
            by: "Retry-After",
        });
    }
    if let Some(secs) = header("x-ratelimit-reset")
        .or_else(|| header("x-rate-limit-reset"))
        .and_then(|v| reset_wait(v, now))
    {
        return Some(Asked {
            secs,
            by: "rate-limit reset",
        });
    }
    let secs = header("ratelimit-reset")?.parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then_some(Asked {
        secs,
        by: "RateLimit-Reset",
    })
}

fn now_epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The seconds to wait that the headers ask for ([`asked`]). Always finite and not negative;
/// `None` when no header names a wait.
#[cfg(test)]
fn requested_secs(headers: &HeaderMap, now: f64) -> Option<f64> {
    asked_at(headers, now).map(|a| a.secs)
}

/// `Retry-After`: seconds, or an HTTP date; seconds from `now` (epoch seconds).
fn retry_after(v: &str, now: f64) -> Option<f64> {
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some(secs);
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some(until(epoch_of(&at), now))
}

/// A rate-limit reset: epoch seconds (Okta, Atlassian), seconds remaining (OneLogin), or an ISO-8601
/// moment (some Atlassian platform APIs); seconds from `now` (epoch seconds).
fn reset_wait(v: &str, now: f64) -> Option<f64> {
    if let Ok(n) = v.parse::<f64>() {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        // Anything after 2001 is an epoch; smaller numbers are seconds to wait.
        return Some(if n > 1e9 { until(n, now) } else { n });
    }
    let at = chrono::DateTime::parse_from_rfc3339(v).ok()?;
    Some(until(epoch_of(&at), now))
}

fn epoch_of(at: &chrono::DateTime<chrono::FixedOffset>) -> f64 {
    // Whole seconds as f64 cannot overflow; chrono's range is ±262,000 years.
    #[allow(clippy::cast_precision_loss)]
    let secs = at.timestamp() as f64;
    secs + f64::from(at.timestamp_subsec_millis()) / 1000.0
}

/// Seconds from `now` until `at`, never negative.
fn until(at: f64, now: f64) -> f64 {
    (at - now).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use reqwest::header::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            scale: 1.0,
            ..RetryPolicy::default()
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_seconds_and_reset_headers() {
        let p = policy();
        let w = p
            .requested_wait(&headers(&[("retry-after", "2")]))
            .unwrap()
            .unwrap();
        assert!(
            w >= Duration::from_secs(2) && w < Duration::from_millis(2300),
            "{w:?}"
        );

        let in_3s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3;
        let w = p
            .requested_wait(&headers(&[("x-rate-limit-reset", &in_3s.to_string())]))
            .unwrap()
            .unwrap();
        assert!(
            w > Duration::from_secs(1) && w < Duration::from_millis(3300),
            "{w:?}"
        );

        let h = headers(&[("x-ratelimit-reset", "5")]);
        assert!(p.requested_wait(&h).unwrap().unwrap() >= Duration::from_secs(5));
        assert_eq!(p.requested_wait(&HeaderMap::new()), Ok(None));
        // An unreadable Retry-After falls back on the reset header.
        let h = headers(&[("retry-after", "soon"), ("x-ratelimit-reset", "4")]);
        assert!(p.requested_wait(&h).unwrap().unwrap() >= Duration::from_secs(4));
    }

    #[test]
    fn absurd_waits_are_errors_not_panics() {
        let p = policy();
        for (name, value) in [
            ("retry-after", "1e30"),
            ("retry-after", "1.7976931348623157e308"),
            ("retry-after", "86400"),
            ("x-rate-limit-reset", "1e30"),
            ("x-ratelimit-reset", "99999999999999999999"),
            ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ] {
            let e = p.requested_wait(&headers(&[(name, value)])).unwrap_err();
            assert!(e.asked_secs > 300.0, "{name}: {value}");
            let text = e.to_string();
            assert!(
                text.contains("asked to wait") && text.contains("http.max_wait_secs"),
                "{text}"
            );
        }
        assert_eq!(
            TooLong {
                asked_secs: 1e30,
                max: Duration::from_secs(300)
            }
            .to_string(),
            "the server asked to wait 1.0e30 s before trying again, longer than the 300 s idsync waits (http.max_wait_secs)"
        );
        // Nonsense is no wait at all, and a moment past is no wait.
        for v in [
            "NaN",
            "inf",
            "-5",
            "-inf",
            "",
            "1e",
            "Mon, 01 Jan 2001 00:00:00 GMT",
        ] {
            let got = p.requested_wait(&headers(&[("retry-after", v)])).unwrap();
            assert!(
                !matches!(got, Some(d) if d >= Duration::from_millis(250)),
                "{v}: {got:?}"
            );
        }
        // A huge scale or a huge max_wait cannot overflow either.
        let wild = RetryPolicy {
            scale: 1e300,
            max_wait: Duration::MAX,
            ..policy()
        };
        assert_eq!(
            wild.requested_wait(&headers(&[("retry-after", "1e15")])),
            Ok(Some(Duration::MAX))
        );
        assert_eq!(wild.backoff(40), Duration::MAX);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = policy();
        for retry in 1..=10 {
            let d = p.backoff(retry);
            let ceiling = p.base.saturating_mul(1 << (retry - 1)).min(p.cap);
            assert!(d <= ceiling && d >= ceiling / 2, "retry {retry}: {d:?}");
        }
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS) && retryable(StatusCode::BAD_GATEWAY));
        assert!(!retryable(StatusCode::CONFLICT) && !retryable(StatusCode::BAD_REQUEST));
    }

    /// Header values a server might send: numbers of every size and sign, dates, and junk.
    fn header_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<f64>().prop_map(|f| f.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            (-1e40f64..1e40).prop_map(|f| format!("{f:e}")),
            (0i64..253_402_300_799).prop_map(|t| {
                chrono::DateTime::from_timestamp(t, 0).map_or_else(String::new, |d| d.to_rfc2822())
            }),
            (-62_000_000_000i64..253_402_300_799).prop_map(|t| {
                chrono::DateTime::from_timestamp(t, 0).map_or_else(String::new, |d| d.to_rfc3339())
            }),
            "[ -~]{0,40}",
        ]
    }

    proptest! {
        /// Whatever the headers say, the parsers neither panic nor return a negative or
        /// non-finite wait, and a policy's wait is an error or at most its maximum (plus jitter).
        #[test]
        fn header_waits_never_panic_and_are_clamped(
            retry_after in proptest::option::of(header_value()),
            reset in proptest::option::of(header_value()),
            dashed in any::<bool>(),
            max_secs in 0u64..100_000,
            scale in prop_oneof![Just(1.0f64), 0.0f64..1e6],
        ) {
            let mut h = HeaderMap::new();
            if let Some(v) = retry_after.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                h.insert("retry-after", v);
            }
            let name = if dashed { "x-rate-limit-reset" } else { "x-ratelimit-reset" };
            if let Some(v) = reset.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                h.insert(name, v);
            }
            if let Some(secs) = requested_secs(&h, now_epoch_secs()) {
                prop_assert!(secs.is_finite() && secs >= 0.0);
            }
            let p = RetryPolicy { max_wait: Duration::from_secs(max_secs), scale, ..policy() };
            match p.requested_wait(&h) {
                Ok(Some(d)) => {
                    let limit = (max_secs as f64 + 0.25) * scale;
                    prop_assert!(d == Duration::MAX || d.as_secs_f64() <= limit * 1.000_001 + 1e-9, "{d:?} > {limit}");
                }
                Ok(None) => {}
                Err(e) => {
                    prop_assert!(e.asked_secs > max_secs as f64);
                    let _ = e.to_string();
                }
            }
        }
    }
}
