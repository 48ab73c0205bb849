//! Runs the conformance suite against the in-process limiter always, and
//! against Redis when `TYBOO_TEST_REDIS_URL` is set. Each Redis test gets a
//! key prefix of its own and removes its keys afterwards.

mod conformance;

use std::sync::Arc;
use std::time::Duration;

use tyboo_ratelimit::{
    InProcessLimiter, ManualClock, RateLimiter, RedisLimiter, RedisLimiterConfig,
};
use tyboo_redis::testing::delete_keys;
use uuid::Uuid;

const REDIS_URL_VARIABLE: &str = "TYBOO_TEST_REDIS_URL";

fn redis_url() -> Option<String> {
    std::env::var(REDIS_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
}

fn test_config() -> RedisLimiterConfig {
    RedisLimiterConfig {
        key_prefix: format!("tyboo-test-{}", Uuid::now_v7().simple()),
        command_timeout_ms: 2_000,
        ..RedisLimiterConfig::default()
    }
}

fn in_process(clock: &ManualClock) -> Arc<dyn RateLimiter> {
    Arc::new(InProcessLimiter::new(Arc::new(clock.clone())))
}

async fn redis(
    url: &str,
    config: &RedisLimiterConfig,
    clock: &ManualClock,
) -> Arc<dyn RateLimiter> {
    Arc::new(
        RedisLimiter::connect(url, config, Arc::new(clock.clone()))
            .await
            .expect("connect to redis"),
    )
}

/// Generates one in-process and one Redis test for a case.
macro_rules! conformance {
    ($case:ident) => {
        mod $case {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn in_process() {
                let clock = ManualClock::starting_now();
                conformance::$case(super::in_process(&clock), clock).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let Some(url) = redis_url() else {
                    eprintln!("{REDIS_URL_VARIABLE} is not set; skipping");
                    return;
                };
                let config = test_config();
                let clock = ManualClock::starting_now();
                conformance::$case(super::redis(&url, &config, &clock).await, clock).await;
                delete_keys(&url, &config.key_prefix).await;
            }
        }
    };
}

conformance!(burst_then_refusal_at_burst_plus_one);
conformance!(refills_after_exactly_one_interval);
conformance!(retry_after_is_exact);
conformance!(cost_above_one_needs_every_unit);
conformance!(keys_are_isolated);
conformance!(different_quotas_on_different_keys);
conformance!(remaining_and_reset_follow_the_refill);
conformance!(concurrent_checks_never_exceed_gcra);
conformance!(invalid_requests_are_refused);

/// Replicas share a limit through Redis but read their own clocks: one whose
/// clock runs `skew` ahead sees the shared TAT `skew` nearer, so it lets the
/// next request through up to `skew` early, and never more than that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_replicas_with_skewed_clocks_shift_only_by_their_skew() {
    let Some(url) = redis_url() else {
        eprintln!("{REDIS_URL_VARIABLE} is not set; skipping");
        return;
    };
    let config = test_config();
    let clock = ManualClock::starting_now();
    let skew = Duration::from_secs(3);
    let ahead = ManualClock::new(tyboo_ratelimit::Clock::now(&clock) + skew);
    let replica = redis(&url, &config, &clock).await;
    let skewed_replica = redis(&url, &config, &ahead).await;
    let quota = conformance::quota();
    for _ in 0..quota.burst {
        assert!(replica.check("k", &quota, 1).await.expect("check").allowed);
    }
    let on_time = replica.check("k", &quota, 1).await.expect("check");
    let early = skewed_replica.check("k", &quota, 1).await.expect("check");
    assert!(!on_time.allowed && !early.allowed, "one shared limit");
    assert_eq!(
        on_time.retry_after.expect("refused") - early.retry_after.expect("refused"),
        skew
    );
    delete_keys(&url, &config.key_prefix).await;
}
