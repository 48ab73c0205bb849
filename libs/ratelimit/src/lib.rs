//! Request rate limiting with GCRA (the generic cell rate algorithm).
//!
//! A key (an API key, a workspace, a client address) is allowed `rate`
//! requests per `period` on average and at most `burst` at once. GCRA keeps
//! one number per key, the theoretical arrival time (TAT) of the next request
//! if the key sent at exactly the sustained rate. With the emission interval
//! `T = period / rate` and the tolerance `τ = T · (burst − 1)`, a request of
//! `cost` units at `now` is allowed iff `max(TAT, now) + T · (cost − 1) − τ ≤
//! now`, and then `TAT' = max(TAT, now) + T · cost`; a refusal leaves the TAT
//! alone. For `cost = 1` this is the textbook rule "allowed iff `TAT − τ ≤
//! now`"; for larger costs it asks for all `cost` units, as governor's
//! `check_n` does, so an almost empty key cannot overdraw by a large request.
//!
//! Two implementations sit behind [`RateLimiter`]: [`InProcessLimiter`] for
//! the embedded mode and [`RedisLimiter`] (one Lua script, one round trip) for
//! the distributed one, where every edge replica shares one limit.
//! [`FallbackLimiter`] puts the in-process one behind the Redis one for when
//! Redis is unreachable. One conformance suite runs against both.
//!
//! The in-process limiter is not `governor`: governor's keyed limiter holds
//! one quota for all its keys, while a check here brings its own quota (per
//! workspace overrides), and its internal state is not the plain TAT Redis
//! stores, so the two backends could not be held to one exact suite.
//!
//! Both do the same integer arithmetic in microseconds since the Unix epoch,
//! read from a [`Clock`], so a [`ManualClock`] makes every test exact and both
//! backends give identical answers. Microseconds, not milliseconds, because a
//! millisecond emission interval cannot express a rate above 1,000 per second
//! nor 1,000 per 7 seconds without rounding the rate visibly. The Lua side
//! computes with doubles, exact up to 2^53 µs (the year 2255), which the
//! quota's bounds keep every value far below.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tyboo_ratelimit::{InProcessLimiter, ManualClock, Quota, headers};
//!
//! let clock = ManualClock::new(Duration::from_secs(1_000_000));
//! let limiter = InProcessLimiter::new(Arc::new(clock.clone()));
//! let quota = Quota::per_minute(60, 2).unwrap(); // T = 1 s, burst 2
//! assert!(limiter.check_now("api-key:k1", &quota, 1).unwrap().allowed);
//! assert!(limiter.check_now("api-key:k1", &quota, 1).unwrap().allowed);
//! let refused = limiter.check_now("api-key:k1", &quota, 1).unwrap();
//! assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
//! // 429 with `RateLimit-Policy`, `RateLimit` and `Retry-After`.
//! assert_eq!(headers(&quota, &refused).len(), 3);
//! clock.advance(Duration::from_secs(1));
//! assert!(limiter.check_now("api-key:k1", &quota, 1).unwrap().allowed);
//! ```
#![forbid(unsafe_code)]

mod clock;
mod config;
mod fallback;
mod gcra;
mod headers;
mod memory;
pub mod metrics;
mod quota;
mod redis;

use async_trait::async_trait;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::config::{ConfigError, RateLimitConfig};
pub use crate::fallback::FallbackLimiter;
pub use crate::headers::{POLICY_NAME, RATELIMIT, RATELIMIT_POLICY, headers};
pub use crate::memory::InProcessLimiter;
pub use crate::quota::{Decision, MAX_KEY_LEN, MAX_REFILL, Quota};
pub use crate::redis::{RedisLimiter, RedisLimiterConfig};

#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    /// The shared limiter cannot answer (Redis unreachable or too slow).
    #[error("rate limiter unavailable: {0}")]
    Unavailable(String),
    /// The caller asked something no limiter can answer: a bad quota, an
    /// empty or overlong key, a cost of zero or above the burst.
    #[error("invalid rate limit request: {0}")]
    Invalid(String),
}

#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Spends `cost` units of `key`'s allowance under `quota` if they are
    /// there, and says what is left. A refused check spends nothing.
    ///
    /// The quota travels with each call rather than with the key, so a limit
    /// change (per-workspace overrides) takes effect on the next request;
    /// the key's state, one TAT, carries over to the new quota.
    async fn check(&self, key: &str, quota: &Quota, cost: u32) -> Result<Decision, LimiterError>;
}
