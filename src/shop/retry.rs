//! What to do with a failed attempt, and how long to wait before the next one.
//!
//! One pure classifier decides: 429 waits for the rate-limit window (never counted as a failed
//! item), 408 and 5xx other than 501 are transient, timeouts and dropped or refused connections
//! are transient (a daemon outlives network blips), every other status is final and carries the
//! API's message. Transient failures of idempotent calls are retried with capped, jittered
//! exponential backoff from `backon`.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Success,
    RateLimited,
    Transient(String),
    Final,
}

pub fn classify_status(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        429 => Verdict::RateLimited,
        408 | 500 | 502..=599 => Verdict::Transient(format!("HTTP {status}")),
        _ => Verdict::Final,
    }
}

pub fn classify_error(e: &reqwest::Error) -> Verdict {
    if e.is_timeout() {
        Verdict::Transient("timed out".into())
    } else if e.is_connect() {
        Verdict::Transient("connection refused or failed".into())
    } else if e.is_request() || e.is_body() || e.is_decode() {
        Verdict::Transient("connection dropped".into())
    } else {
        Verdict::Transient(format!("transport error: {}", short_error(e)))
    }
}

/// A reqwest error with its causes, on one line.
pub fn short_error(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// The delays between attempts: 200 ms doubling up to `max`, with jitter.
pub fn backoff(max_retries: u32, min: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(max_retries as usize)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(classify_status(200), Verdict::Success);
        assert_eq!(classify_status(429), Verdict::RateLimited);
        assert!(matches!(classify_status(503), Verdict::Transient(_)));
        assert_eq!(classify_status(501), Verdict::Final);
        assert_eq!(classify_status(422), Verdict::Final);
        assert_eq!(classify_status(401), Verdict::Final);
    }

    #[test]
    fn backoff_is_bounded_and_capped() {
        let d: Vec<_> = backoff(5, Duration::from_millis(100), Duration::from_secs(1)).collect();
        assert_eq!(d.len(), 5);
        assert!(d.iter().all(|x| *x <= Duration::from_secs(2)), "{d:?}");
    }
}
