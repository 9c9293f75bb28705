//! Keyed rate limits (token buckets, by governor): the gateway's per-user and per-address limits
//! and seating's hold and extension rate per user. Buckets live in the process: with several
//! instances behind a balancer, a key's calls may spend up to one bucket per instance.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One token bucket: `burst` calls at once, refilled at `requests_per_minute`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained rate; 0 turns the limit off.
    pub requests_per_minute: u32,
    /// Calls allowed in a burst (at least 1 when the limit is on).
    pub burst: u32,
}

impl RateLimit {
    /// No limit.
    pub const OFF: RateLimit = RateLimit {
        requests_per_minute: 0,
        burst: 0,
    };
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            requests_per_minute: 600,
            burst: 60,
        }
    }
}

/// One keyed token bucket, or none when the limit is off.
pub struct Limiter<K: std::hash::Hash + Eq + Clone>(Option<DefaultKeyedRateLimiter<K>>);

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    /// A bucket per key, as `limit` says.
    pub fn new(limit: RateLimit) -> Self {
        let Some(per_minute) = NonZeroU32::new(limit.requests_per_minute) else {
            return Self(None);
        };
        let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
        Self(Some(RateLimiter::keyed(
            Quota::per_minute(per_minute).allow_burst(burst),
        )))
    }

    /// Ok, or how long until the key's next call is allowed.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        match &self.0 {
            None => Ok(()),
            Some(limiter) => limiter
                .check_key(key)
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
        }
    }

    /// Forgets keys whose buckets are full again, so memory stays bounded.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo` saying when to try again.
pub fn rate_limited(wait: Duration) -> Status {
    // Whole milliseconds, at least one: a zero delay would invite an immediate retry.
    let wait = Duration::from_millis((wait.as_millis() as u64).max(1));
    Status::with_error_details(
        Code::ResourceExhausted,
        "too many requests: retry later",
        ErrorDetails::with_retry_info(Some(wait)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_says_how_long_to_wait() {
        let limiter = Limiter::new(RateLimit {
            requests_per_minute: 1,
            burst: 2,
        });
        let key = "user-1".to_owned();
        assert!(limiter.check(&key).is_ok());
        assert!(limiter.check(&key).is_ok());
        let wait = limiter.check(&key).expect_err("over the limit");
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(
            limiter.check(&"user-2".to_owned()).is_ok(),
            "buckets are per key"
        );

        let off = Limiter::new(RateLimit {
            requests_per_minute: 0,
            burst: 0,
        });
        for _ in 0..1000 {
            assert!(off.check(&key).is_ok());
        }
    }

    #[test]
    fn rate_limited_carries_retry_info() {
        let status = rate_limited(Duration::from_millis(1500));
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status.get_error_details().retry_info().cloned();
        assert_eq!(
            retry.and_then(|r| r.retry_delay),
            Some(Duration::from_millis(1500))
        );
    }
}
