//! What an attempt to send came to, and when to try again. Pure: unit-tested.

use std::time::Duration;

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted the message; `detail` is its id or reply.
    Sent {
        /// Provider's id or reply.
        detail: String,
    },
    /// Worth trying again, after `after` if the provider said so.
    Retry {
        /// What went wrong.
        detail: String,
        /// The provider's requested wait (`Retry-After`, Telegram's `retry_after`).
        after: Option<Duration>,
    },
    /// Not sent on purpose (the customer opted out, the order has no tracking link).
    Skipped {
        /// Why.
        detail: String,
    },
    /// Will never work as it is (bad address, rejected request): dead at once.
    Permanent {
        /// Why.
        detail: String,
    },
}

/// Classifies an HTTP provider's status: 2xx sent; 408, 429 and 5xx retry; any other 4xx
/// (and a redirect, which is never followed) is permanent.
pub fn from_http(status: u16, retry_after: Option<Duration>, detail: String) -> Outcome {
    match status {
        200..=299 => Outcome::Sent { detail },
        408 | 429 | 500..=599 => Outcome::Retry { detail: format!("HTTP {status}: {detail}"), after: retry_after },
        300..=399 => Outcome::Permanent { detail: format!("HTTP {status}: redirect not followed ({detail})") },
        _ => Outcome::Permanent { detail: format!("HTTP {status}: {detail}") },
    }
}

/// Reads a `Retry-After` header: seconds, or an HTTP date relative to `now`.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate_parse(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn httpdate_parse(value: &str) -> Option<std::time::SystemTime> {
    let parsed = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = u64::try_from(parsed.timestamp()).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

/// When to try again after `attempts` failed attempts: the provider's wait if it gave one
/// (capped), otherwise `base` doubled per attempt, capped, with ±25% jitter so that many
/// jobs failing together do not retry together. `jitter` is a number in `[0, 1)`.
pub fn backoff(attempts: u32, base: Duration, max: Duration, hint: Option<Duration>, jitter: f64) -> Duration {
    if let Some(hint) = hint {
        return hint.min(max);
    }
    let exp = base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    let capped = exp.min(max);
    capped.mul_f64(0.75 + jitter.clamp(0.0, 1.0) * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_issue_says() {
        assert!(matches!(from_http(201, None, "SM1".into()), Outcome::Sent { .. }));
        for s in [408, 429, 500, 503] {
            assert!(matches!(from_http(s, None, String::new()), Outcome::Retry { .. }), "{s}");
        }
        for s in [301, 400, 401, 404, 410, 422] {
            assert!(matches!(from_http(s, None, String::new()), Outcome::Permanent { .. }), "{s}");
        }
        let retry = from_http(429, Some(Duration::from_secs(7)), "slow down".into());
        assert_eq!(retry, Outcome::Retry { detail: "HTTP 429: slow down".into(), after: Some(Duration::from_secs(7)) });
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_doubles_caps_jitters_and_honours_hints() {
        let (base, max) = (Duration::from_secs(10), Duration::from_secs(300));
        assert_eq!(backoff(1, base, max, None, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(3, base, max, None, 0.5), Duration::from_secs(40));
        assert_eq!(backoff(30, base, max, None, 0.5), max);
        assert_eq!(backoff(1, base, max, None, 0.0), Duration::from_millis(7500));
        assert_eq!(backoff(1, base, max, None, 0.999_999).as_millis(), 12_499);
        assert_eq!(backoff(5, base, max, Some(Duration::from_secs(3)), 0.9), Duration::from_secs(3));
        assert_eq!(backoff(5, base, max, Some(Duration::from_secs(9_999)), 0.9), max);
    }
}
