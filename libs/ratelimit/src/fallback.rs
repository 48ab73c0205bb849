//! Keeps limiting when Redis is down. Requests must not fail because their
//! limiter is unreachable, and letting everything through would drop the
//! protection exactly when the system is degraded; so each replica limits on
//! its own, to its share of the global quota (e.g. `1 / replicas`), until
//! Redis answers again.
//!
//! After a failure the shared limiter is left alone for `retry_primary_after`
//! (measured on the limiter's clock), so an outage does not add the command
//! timeout to every request; the first check after that tries it again.
//! Local state starts fresh at each outage's first fallback and is not
//! carried back: on recovery the key's Redis TAT applies again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, to_micros};
use crate::quota::validate_request;
use crate::{Decision, InProcessLimiter, LimiterError, Quota, RateLimiter, metrics};

pub struct FallbackLimiter {
    primary: Arc<dyn RateLimiter>,
    local: InProcessLimiter,
    share: f64,
    retry_primary_after: u64,
    clock: Arc<dyn Clock>,
    /// When the primary last failed (µs on `clock`), 0 while it answers.
    failed_at: AtomicU64,
}

impl FallbackLimiter {
    /// `share` (in (0, 1]) scales the rate and burst of every quota while
    /// the local limiter answers, rounded down but at least 1.
    pub fn new(
        primary: Arc<dyn RateLimiter>,
        share: f64,
        retry_primary_after: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LimiterError> {
        if !(share > 0.0 && share <= 1.0) {
            return Err(LimiterError::Invalid(format!(
                "fallback share {share} must be in (0, 1]"
            )));
        }
        Ok(Self {
            primary,
            local: InProcessLimiter::new(clock.clone()),
            share,
            retry_primary_after: to_micros(retry_primary_after),
            clock,
            failed_at: AtomicU64::new(0),
        })
    }

    /// Whether the last answer came from the local limiter.
    pub fn is_degraded(&self) -> bool {
        self.failed_at.load(Ordering::SeqCst) != 0
    }

    /// The quota a replica enforces alone: its share of `quota`. Should
    /// rounding make it invalid (a refill beyond the bound), the full quota.
    pub fn local_quota(&self, quota: &Quota) -> Quota {
        let scale = |value: u32| ((f64::from(value) * self.share).floor() as u32).max(1);
        let scaled = Quota {
            rate: scale(quota.rate),
            period: quota.period,
            burst: scale(quota.burst),
        };
        if scaled.validate().is_ok() {
            scaled
        } else {
            *quota
        }
    }

    fn answer_locally(
        &self,
        key: &str,
        quota: &Quota,
        cost: u32,
    ) -> Result<Decision, LimiterError> {
        metrics::record_fallback();
        let local_quota = self.local_quota(quota);
        self.local
            .check_now(key, &local_quota, cost.min(local_quota.burst))
    }
}

#[async_trait]
impl RateLimiter for FallbackLimiter {
    async fn check(&self, key: &str, quota: &Quota, cost: u32) -> Result<Decision, LimiterError> {
        validate_request(key, quota, cost)?;
        let now = to_micros(self.clock.now()).max(1);
        let failed_at = self.failed_at.load(Ordering::SeqCst);
        if failed_at != 0 && now < failed_at.saturating_add(self.retry_primary_after) {
            return self.answer_locally(key, quota, cost);
        }
        match self.primary.check(key, quota, cost).await {
            Ok(decision) => {
                if self.failed_at.swap(0, Ordering::SeqCst) != 0 {
                    tracing::info!("shared rate limiter answers again; local fallback ends");
                }
                Ok(decision)
            }
            Err(LimiterError::Unavailable(error)) => {
                if self.failed_at.swap(now, Ordering::SeqCst) == 0 {
                    tracing::warn!(
                        %error,
                        share = self.share,
                        "shared rate limiter unavailable; limiting locally to a share of each quota"
                    );
                }
                self.answer_locally(key, quota, cost)
            }
            Err(invalid) => Err(invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    struct Down;

    #[async_trait]
    impl RateLimiter for Down {
        async fn check(&self, _: &str, _: &Quota, _: u32) -> Result<Decision, LimiterError> {
            Err(LimiterError::Unavailable("down".to_owned()))
        }
    }

    fn limiter(share: f64) -> Result<FallbackLimiter, LimiterError> {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000)));
        FallbackLimiter::new(Arc::new(Down), share, Duration::from_secs(1), clock)
    }

    #[test]
    fn share_is_bounded() {
        assert!(limiter(0.0).is_err());
        assert!(limiter(f64::NAN).is_err());
        assert!(limiter(1.5).is_err());
        assert!(limiter(1.0).is_ok());
        assert!(limiter(0.01).is_ok());
    }

    #[test]
    fn the_local_quota_is_the_share_rounded_down_but_never_zero() {
        let limiter = limiter(0.5).expect("limiter");
        let quota = Quota::per_minute(601, 3).expect("valid");
        assert_eq!(
            limiter.local_quota(&quota),
            Quota::per_minute(300, 1).expect("valid")
        );
        let tiny = Quota::per_minute(1, 1).expect("valid");
        assert_eq!(limiter.local_quota(&tiny), tiny);
    }

    #[tokio::test]
    async fn a_cost_above_the_local_burst_is_clamped_not_an_error() {
        let limiter = limiter(0.5).expect("limiter");
        let quota = Quota::per_minute(60, 10).expect("valid");
        let decision = limiter
            .check("k", &quota, 10)
            .await
            .expect("no error while down");
        assert!(decision.allowed);
        assert_eq!((decision.limit, decision.remaining), (5, 0));
        assert!(limiter.is_degraded());
    }
}
