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
    /// The longest single wait.
    pub cap: Duration,
    /// Multiplies every wait: 1.0 in production. `IDSYNC_RETRY_DELAY_SCALE` sets it (tests use a
    /// small value so that a fake's `Retry-After: 1` costs milliseconds).
    pub scale: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            scale: std::env::var("IDSYNC_RETRY_DELAY_SCALE")
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .unwrap_or(1.0),
        }
    }
}

/// Statuses worth another attempt: throttling and server-side failures.
#[must_use]
pub fn retryable(status: StatusCode) -> bool {
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

    /// The wait a 429 (or 503) asks for, from its headers; `None` when it names none.
    #[must_use]
    pub fn requested_wait(&self, headers: &HeaderMap) -> Option<Duration> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let wait = if let Some(v) = header("retry-after") {
            retry_after(v)?
        } else {
            let v = header("x-ratelimit-reset").or_else(|| header("x-rate-limit-reset"))?;
            reset_wait(v)?
        };
        // A little jitter so that many clients told the same moment do not return together.
        Some(self.scaled(wait.min(self.cap) + Duration::from_millis(fastrand::u64(0..250))))
    }

    /// A wait as this policy takes it (`IDSYNC_RETRY_DELAY_SCALE` applied).
    #[must_use]
    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.scale)
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let now = chrono::Utc::now();
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or_default(),
    )
}

/// A rate-limit reset: epoch seconds (Okta, Atlassian), seconds remaining (OneLogin), or an ISO-8601
/// moment (some Atlassian platform APIs).
fn reset_wait(v: &str) -> Option<Duration> {
    if let Ok(n) = v.parse::<f64>() {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        // Anything after 2001 is an epoch; smaller numbers are seconds to wait.
        if n > 1e9 {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()?
                .as_secs_f64();
            return Some(Duration::from_secs_f64((n - now).max(0.0)));
        }
        return Some(Duration::from_secs_f64(n));
    }
    let at = chrono::DateTime::parse_from_rfc3339(v).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            scale: 1.0,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn retry_after_seconds_and_reset_headers() {
        let p = policy();
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        let w = p.requested_wait(&h).unwrap();
        assert!(
            w >= Duration::from_secs(2) && w < Duration::from_millis(2300),
            "{w:?}"
        );

        let mut h = HeaderMap::new();
        let in_3s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3;
        h.insert(
            "x-rate-limit-reset",
            HeaderValue::from_str(&in_3s.to_string()).unwrap(),
        );
        let w = p.requested_wait(&h).unwrap();
        assert!(
            w > Duration::from_secs(1) && w < Duration::from_millis(3300),
            "{w:?}"
        );

        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("5"));
        assert!(p.requested_wait(&h).unwrap() >= Duration::from_secs(5));
        assert!(p.requested_wait(&HeaderMap::new()).is_none());
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
}
