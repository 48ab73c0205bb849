//! Request rate limits (GCRA, `tyboo-ratelimit`) on what the public sends.
//!
//! Keys, and the quota each is checked against:
//! - `api_key:{key id}`: every request authenticated by one API key, at the
//!   workspace's `api_key_requests_per_minute` / `api_key_burst`;
//! - `workspace:{id}`: every authenticated request into one workspace,
//!   whatever the key, at `workspace_requests_per_minute` /
//!   `workspace_burst`. Both come from the workspace's [`Limits`] (the
//!   defaults with its overrides, read through [`CachedLimits`]);
//! - `failed_auth:{address}`: failed API key exchanges from one client
//!   address (`edge.rate_limits.failed_auth_per_address`). An address that
//!   has spent its budget is refused *before* any key is exchanged, valid
//!   or not, until a unit has come back: guessing keys runs at the
//!   configured failures per address per minute at most;
//! - `invitation:{address}`: invitation accepts from one address;
//! - `webhook:{url digest}`: deliveries to one webhook URL, whose token
//!   stands for one workspace's trigger, and path.
//!
//! The client address is the connection's peer: the edge has no list of
//! trusted proxies, so `X-Forwarded-For` (which any client can write) is
//! never read.
//!
//! A limiter that fails (Redis down with no fallback, an invalid request)
//! never fails the request: it is logged and the request goes on. With
//! Redis, [`tyboo_ratelimit::FallbackLimiter`] limits locally meanwhile.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use tonic::Code;
use tyboo_limits::{CachedLimits, DefaultLimits, Limits, LimitsConfig};
use tyboo_ratelimit::{
    Clock, Decision, FallbackLimiter, InProcessLimiter, Quota, RateLimitConfig, RateLimiter,
    RedisLimiter, SystemClock,
};
use uuid::Uuid;

use crate::auth::TokenSubject;
use crate::config::EdgeConfig;
use crate::errors::{ApiError, EdgeError, EdgeResult};
use crate::metrics::{KIND_LABEL, RATE_LIMITED_TOTAL};

/// The peer address of the connection a request came on, set by
/// [`crate::server::serve`]. A request without one (a router served some
/// other way) is keyed as `unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientAddress(pub(crate) IpAddr);

/// What was limited: the `kind` label of the limited-requests counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    ApiKey,
    Workspace,
    FailedAuth,
    Invitation,
    Webhook,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::ApiKey => "api_key",
            Kind::Workspace => "workspace",
            Kind::FailedAuth => "failed_auth",
            Kind::Invitation => "invitation",
            Kind::Webhook => "webhook",
        }
    }

    fn refusal(self) -> &'static str {
        match self {
            Kind::ApiKey => "too many requests for this API key",
            Kind::Workspace => "too many requests for this workspace",
            Kind::FailedAuth => "too many failed authentications from this address",
            Kind::Invitation => "too many invitation accepts from this address",
            Kind::Webhook => "too many deliveries to this webhook",
        }
    }
}

/// The quota and answer of an allowed check, for the `RateLimit` headers
/// of the response.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Allowance {
    quota: Quota,
    decision: Decision,
}

impl Allowance {
    pub(crate) fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        tyboo_ratelimit::headers(&self.quota, &self.decision)
    }

    /// The tighter of two allowances: the one with fewer units left.
    fn tighter(self, other: Option<Allowance>) -> Allowance {
        match other {
            Some(other) if other.decision.remaining < self.decision.remaining => other,
            _ => self,
        }
    }
}

/// The edge's limiter, its quotas and where per-workspace limits come from.
pub struct RateLimits {
    enabled: bool,
    config: RateLimitConfig,
    limiter: Arc<dyn RateLimiter>,
    limits: CachedLimits,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RateLimits")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Limits checked by `limiter` (in-process, or shared through Redis),
    /// with each workspace's quotas from `limits`.
    pub fn new(
        enabled: bool,
        config: RateLimitConfig,
        limiter: Arc<dyn RateLimiter>,
        limits: CachedLimits,
    ) -> Self {
        Self {
            enabled,
            config,
            limiter,
            limits,
        }
    }

    /// The limits of an edge built from `config`: with `redis_url` (the
    /// platform's Redis), one limit shared by every edge replica, limited
    /// locally to `fallback_share` of it while Redis is unreachable;
    /// without, in-process. Each workspace's quotas come from `limits`.
    /// Fails when Redis does not answer at start.
    pub async fn connect(
        config: &EdgeConfig,
        redis_url: Option<&str>,
        limits: CachedLimits,
    ) -> EdgeResult<RateLimits> {
        let rate_limits = &config.rate_limits;
        let limiter: Arc<dyn RateLimiter> = match redis_url {
            None => Arc::new(InProcessLimiter::default()),
            Some(url) => {
                let clock: Arc<dyn Clock> = Arc::new(SystemClock);
                let redis = RedisLimiter::connect(url, &rate_limits.redis, clock.clone())
                    .await
                    .map_err(|error| EdgeError::RateLimiter(error.to_string()))?;
                let fallback = FallbackLimiter::new(
                    Arc::new(redis),
                    rate_limits.fallback_share,
                    Duration::from_millis(rate_limits.fallback_retry_ms),
                    clock,
                )
                .map_err(|error| EdgeError::RateLimiter(error.to_string()))?;
                Arc::new(fallback)
            }
        };
        Ok(Self::new(
            config.rate_limits_enabled,
            rate_limits.clone(),
            limiter,
            limits,
        ))
    }

    /// In-process limits with every workspace at `defaults`: an edge that
    /// was given nothing else.
    pub(crate) fn local(enabled: bool, config: RateLimitConfig) -> Self {
        let limits_config = LimitsConfig::default();
        let limits = CachedLimits::new(
            Arc::new(DefaultLimits(limits_config.defaults.clone())),
            &limits_config,
        );
        Self::new(
            enabled,
            config,
            Arc::new(InProcessLimiter::default()),
            limits,
        )
    }

    /// Spends one unit of `key`; `Err` is the refusal to answer with.
    async fn check(
        &self,
        kind: Kind,
        key: &str,
        quota: &Quota,
    ) -> Result<Option<Allowance>, ApiError> {
        match self.limiter.check(key, quota, 1).await {
            Ok(decision) if decision.allowed => Ok(Some(Allowance {
                quota: *quota,
                decision,
            })),
            Ok(decision) => Err(refusal(kind, quota, &decision)),
            Err(error) => {
                tracing::warn!(%error, kind = kind.label(), "rate limit not checked; the request goes on");
                Ok(None)
            }
        }
    }

    /// Every request with a principal: its API key's and its workspace's
    /// quotas. The headers of the answer show the tighter of the two.
    pub(crate) async fn authenticated(
        &self,
        subject: &TokenSubject,
        api_key: &str,
    ) -> Result<Option<Allowance>, ApiError> {
        if !self.enabled {
            return Ok(None);
        }
        let workspace = Uuid::parse_str(&subject.workspace_id).ok();
        let limits = match workspace {
            Some(workspace) => self.limits.get(workspace).await,
            None => Limits::default(),
        };
        let key_quota = per_minute(limits.api_key_requests_per_minute, limits.api_key_burst);
        let key = if subject.api_key_id.is_empty() {
            // A token tenancy issued without naming its key: the key's
            // digest stands for its id (never the key itself).
            format!(
                "api_key:{}",
                hex::encode(&Sha256::digest(api_key.as_bytes())[..16])
            )
        } else {
            format!("api_key:{}", subject.api_key_id)
        };
        let by_key = self.check(Kind::ApiKey, &key, &key_quota).await?;
        let by_workspace = match workspace {
            Some(workspace) => {
                let quota =
                    per_minute(limits.workspace_requests_per_minute, limits.workspace_burst);
                self.check(Kind::Workspace, &format!("workspace:{workspace}"), &quota)
                    .await?
            }
            None => None,
        };
        Ok(match (by_key, by_workspace) {
            (Some(by_key), other) => Some(by_key.tighter(other)),
            (None, other) => other,
        })
    }

    /// Before a key is exchanged: refuses an address that has spent its
    /// failed-authentication budget, until one unit has come back.
    pub(crate) async fn before_exchange(
        &self,
        address: Option<ClientAddress>,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let key = format!("auth_block:{}", address_key(address));
        match self.limiter.check(&key, &block_probe(), 1).await {
            Ok(decision) if !decision.allowed => {
                let budget = self.config.failed_auth_per_address;
                Err(refusal(
                    Kind::FailedAuth,
                    &budget,
                    &Decision {
                        allowed: false,
                        limit: budget.burst,
                        remaining: 0,
                        reset_after: decision.retry_after.unwrap_or_default(),
                        retry_after: decision.retry_after,
                    },
                ))
            }
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, "failed-authentication block not checked; the request goes on");
                Ok(())
            }
        }
    }

    /// After an exchange failed because the key is not valid: spends one
    /// unit of the address's budget, and blocks the address once the
    /// budget is spent. The last failure within the budget is still told
    /// that its key is invalid; the ones after it are refused.
    pub(crate) async fn failed_exchange(
        &self,
        address: Option<ClientAddress>,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let budget = self.config.failed_auth_per_address;
        let address = address_key(address);
        let allowance = self
            .check(Kind::FailedAuth, &format!("failed_auth:{address}"), &budget)
            .await;
        let wait = match &allowance {
            // Spent: blocked until one unit is back.
            Ok(Some(allowance)) if allowance.decision.remaining == 0 => {
                let tolerance = interval(&budget).saturating_mul(budget.burst - 1);
                allowance.decision.reset_after.saturating_sub(tolerance)
            }
            Err(_) => Duration::ZERO,
            Ok(_) => return Ok(()),
        };
        if !wait.is_zero() {
            match self
                .limiter
                .check(&format!("auth_block:{address}"), &block_for(wait), 1)
                .await
            {
                Ok(decision) if !decision.allowed => {
                    tracing::warn!("failed-authentication block refused by the limiter")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "failed-authentication block not stored"),
            }
        }
        allowance.map(|_| ())
    }

    /// An invitation accept from `address`.
    pub(crate) async fn invitation(&self, address: Option<ClientAddress>) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let key = format!("invitation:{}", address_key(address));
        self.check(
            Kind::Invitation,
            &key,
            &self.config.invitation_accept_per_address,
        )
        .await
        .map(|_| ())
    }

    /// A delivery to the webhook `token` and `path`. Neither goes into the
    /// key as such: the token is a credential and the path is the
    /// caller's, so the key holds a digest of both.
    pub(crate) async fn webhook(
        &self,
        token: &str,
        path: &str,
    ) -> Result<Option<Allowance>, ApiError> {
        if !self.enabled {
            return Ok(None);
        }
        let mut hasher = Sha256::new();
        hasher.update(token.as_bytes());
        hasher.update([0]);
        hasher.update(path.as_bytes());
        let key = format!("webhook:{}", hex::encode(&hasher.finalize()[..16]));
        self.check(Kind::Webhook, &key, &self.config.webhook_per_workspace_path)
            .await
    }
}

/// The probe's tolerance. Requests in flight from one address (a NAT, a
/// busy client) probe at once, and each reads its clock before its check
/// reaches Redis, so the checks land out of order by up to the time they
/// queue; the tolerance must exceed that skew plus the microsecond each
/// probe adds. A block lasts this much longer than its wait to make up.
const PROBE_TOLERANCE: Duration = Duration::from_secs(1);

/// The check every key exchange makes of its address's block: one unit per
/// microsecond, with a tolerance of [`PROBE_TOLERANCE`]. It is refused only
/// while a block (below) holds the key's TAT more than the tolerance ahead
/// of now; probes alone move the TAT one microsecond each, which comes back
/// a microsecond later.
fn block_probe() -> Quota {
    let burst = u32::try_from(PROBE_TOLERANCE.as_micros() + 1).expect("a small tolerance");
    Quota::new(1, Duration::from_micros(1), burst).expect("a valid quota")
}

/// The check that blocks an address for `wait`: it moves the key's TAT
/// `wait` plus the probe's tolerance ahead, so probes are refused for
/// `wait`. Its burst of two gives it a tolerance of a whole block, so the
/// microseconds that concurrent probes have just added to the TAT never
/// refuse it; at most two blocks stack, when two failures race.
fn block_for(wait: Duration) -> Quota {
    let period = wait
        .saturating_add(PROBE_TOLERANCE)
        .min(tyboo_ratelimit::MAX_REFILL / 2);
    Quota::new(1, period, 2).expect("a valid quota")
}

/// A quota of `rate` per minute from a workspace's limits. Their bounds
/// keep every value valid; should one not be, the nearest valid quota.
fn per_minute(rate: u32, burst: u32) -> Quota {
    Quota::per_minute(rate.max(1), burst.max(1))
        .unwrap_or_else(|_| Quota::per_minute(rate.max(1), 1).expect("a valid quota"))
}

/// How long one unit of `quota` takes to come back.
fn interval(quota: &Quota) -> Duration {
    let micros = quota.period.as_micros().div_ceil(u128::from(quota.rate));
    Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

fn address_key(address: Option<ClientAddress>) -> String {
    address.map_or_else(|| "unknown".to_owned(), |ClientAddress(ip)| ip.to_string())
}

/// A 429 (`RESOURCE_EXHAUSTED`) with `Retry-After`, the `RateLimit`
/// headers and, for gRPC, a `RetryInfo`; counted by kind.
fn refusal(kind: Kind, quota: &Quota, decision: &Decision) -> ApiError {
    metrics::counter!(RATE_LIMITED_TOTAL, KIND_LABEL => kind.label()).increment(1);
    let retry_after = decision.retry_after.unwrap_or(Duration::from_secs(1));
    ApiError::new(
        Code::ResourceExhausted,
        format!(
            "{}: retry in {} s",
            kind.refusal(),
            retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)
        ),
    )
    .with_headers(tyboo_ratelimit::headers(quota, decision))
    .with_retry_delay(retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_the_period_over_the_rate() {
        let quota = Quota::per_minute(20, 10).expect("valid");
        assert_eq!(interval(&quota), Duration::from_secs(3));
    }

    fn limits_at(clock: Arc<tyboo_ratelimit::ManualClock>, failures: Quota) -> RateLimits {
        let limiter = Arc::new(InProcessLimiter::new(clock));
        let config = RateLimitConfig {
            failed_auth_per_address: failures,
            ..RateLimitConfig::default()
        };
        let limits = CachedLimits::new(
            Arc::new(DefaultLimits(Limits::default())),
            &LimitsConfig::default(),
        );
        RateLimits::new(true, config, limiter, limits)
    }

    fn address() -> Option<ClientAddress> {
        Some(ClientAddress("192.0.2.7".parse().expect("an address")))
    }

    #[tokio::test]
    async fn many_exchanges_from_one_address_at_one_instant_are_not_blocked() {
        let clock = Arc::new(tyboo_ratelimit::ManualClock::new(Duration::from_secs(1)));
        let limits = limits_at(clock.clone(), Quota::per_minute(60, 3).expect("valid"));
        for probe in 0..10_000 {
            assert!(
                limits.before_exchange(address()).await.is_ok(),
                "probe {probe} refused without a failure"
            );
        }
        // A microsecond later the run has drained by one.
        clock.advance(Duration::from_micros(1));
        assert!(limits.before_exchange(address()).await.is_ok());
    }

    #[tokio::test]
    async fn a_block_is_stored_right_after_concurrent_probes() {
        let clock = Arc::new(tyboo_ratelimit::ManualClock::new(Duration::from_secs(1)));
        // Two failures, then one more per second.
        let limits = limits_at(clock.clone(), Quota::per_minute(60, 2).expect("valid"));
        for _ in 0..50 {
            limits
                .before_exchange(address())
                .await
                .expect("not blocked");
        }
        limits
            .failed_exchange(address())
            .await
            .expect("first failure");
        limits
            .failed_exchange(address())
            .await
            .expect("second failure");
        // The budget is spent: the probes' TAT ahead of now did not stop
        // the block from being stored.
        let refused = limits.before_exchange(address()).await.unwrap_err();
        assert_eq!(refused.status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert!(
            refused
                .message()
                .contains("too many failed authentications")
        );
        // Blocked for the wait (one unit, 1 s) from the failure, plus the
        // 50 µs the probes had moved the TAT ahead.
        clock.advance(Duration::from_millis(999));
        assert!(limits.before_exchange(address()).await.is_err());
        clock.advance(Duration::from_millis(2));
        assert!(limits.before_exchange(address()).await.is_ok());
        // Another address was never blocked.
        let other = Some(ClientAddress("192.0.2.8".parse().expect("an address")));
        assert!(limits.before_exchange(other).await.is_ok());
    }

    #[test]
    fn a_block_quota_is_valid_for_every_wait() {
        for wait in [
            Duration::ZERO,
            Duration::from_micros(1),
            Duration::from_secs(1),
            tyboo_ratelimit::MAX_REFILL,
            Duration::MAX,
        ] {
            let quota = block_for(wait);
            assert!(quota.validate().is_ok(), "{wait:?}");
        }
    }

    #[test]
    fn workspace_limits_become_quotas() {
        assert_eq!(per_minute(600, 100), Quota::per_minute(600, 100).unwrap());
    }
}
