//! The behaviour every `RateLimiter` implementation owes its callers. Each
//! case takes the limiter under test and the manual clock it reads, and runs
//! unchanged against every backend: the values asserted are GCRA's exactly.
//!
//! Emission intervals are seconds long so that a real Redis, which expires a
//! key at its TAT by its own clock, never drops a key while a case runs.

use std::sync::Arc;
use std::time::Duration;

use tyboo_ratelimit::{Decision, LimiterError, ManualClock, Quota, RateLimiter};

/// 6 per minute, burst 5: T = 10 s, τ = 40 s.
pub fn quota() -> Quota {
    Quota::per_minute(6, 5).expect("valid quota")
}

const T: Duration = Duration::from_secs(10);

async fn check(limiter: &Arc<dyn RateLimiter>, key: &str, quota: &Quota, cost: u32) -> Decision {
    limiter.check(key, quota, cost).await.expect("check")
}

fn allowed(remaining: u32, reset_after: Duration) -> Decision {
    Decision {
        allowed: true,
        limit: 5,
        remaining,
        reset_after,
        retry_after: None,
    }
}

fn refused(reset_after: Duration, retry_after: Duration) -> Decision {
    Decision {
        allowed: false,
        limit: 5,
        remaining: 0,
        reset_after,
        retry_after: Some(retry_after),
    }
}

async fn exhaust(limiter: &Arc<dyn RateLimiter>, key: &str, quota: &Quota) {
    for _ in 0..quota.burst {
        assert!(check(limiter, key, quota, 1).await.allowed);
    }
}

pub async fn burst_then_refusal_at_burst_plus_one(
    limiter: Arc<dyn RateLimiter>,
    _clock: ManualClock,
) {
    let quota = quota();
    for index in 1..=5u32 {
        assert_eq!(
            check(&limiter, "k", &quota, 1).await,
            allowed(5 - index, T * index),
            "request {index} of the burst"
        );
    }
    assert_eq!(check(&limiter, "k", &quota, 1).await, refused(T * 5, T));
    assert_eq!(
        check(&limiter, "k", &quota, 1).await,
        refused(T * 5, T),
        "a refusal spends nothing"
    );
}

pub async fn refills_after_exactly_one_interval(limiter: Arc<dyn RateLimiter>, clock: ManualClock) {
    let quota = quota();
    exhaust(&limiter, "k", &quota).await;
    clock.advance(T - Duration::from_micros(1));
    assert_eq!(
        check(&limiter, "k", &quota, 1).await,
        refused(T * 4 + Duration::from_micros(1), Duration::from_micros(1))
    );
    clock.advance(Duration::from_micros(1));
    assert_eq!(check(&limiter, "k", &quota, 1).await, allowed(0, T * 5));
    assert!(!check(&limiter, "k", &quota, 1).await.allowed);
    clock.advance(T * 5);
    assert_eq!(
        check(&limiter, "k", &quota, 1).await,
        allowed(4, T),
        "a key idle for its whole refill is full again"
    );
}

pub async fn retry_after_is_exact(limiter: Arc<dyn RateLimiter>, clock: ManualClock) {
    let quota = quota();
    exhaust(&limiter, "k", &quota).await;
    clock.advance(Duration::from_millis(3_500));
    let decision = check(&limiter, "k", &quota, 1).await;
    assert_eq!(decision.retry_after, Some(Duration::from_millis(6_500)));
    clock.advance(decision.retry_after.expect("refused"));
    assert!(
        check(&limiter, "k", &quota, 1).await.allowed,
        "allowed as promised"
    );
}

pub async fn cost_above_one_needs_every_unit(limiter: Arc<dyn RateLimiter>, clock: ManualClock) {
    let quota = Quota::per_minute(6, 10).expect("valid quota");
    let first = check(&limiter, "k", &quota, 4).await;
    assert_eq!(
        (first.allowed, first.remaining, first.reset_after),
        (true, 6, T * 4)
    );
    let second = check(&limiter, "k", &quota, 4).await;
    assert_eq!(
        (second.allowed, second.remaining, second.reset_after),
        (true, 2, T * 8)
    );
    let third = check(&limiter, "k", &quota, 4).await;
    assert_eq!(
        (third.allowed, third.remaining, third.retry_after),
        (false, 2, Some(T * 2)),
        "two units left do not pay for four"
    );
    assert!(
        check(&limiter, "k", &quota, 2).await.allowed,
        "but pay for two"
    );
    clock.advance(T * 4);
    assert!(check(&limiter, "k", &quota, 4).await.allowed);
    assert!(!check(&limiter, "k", &quota, 1).await.allowed);
}

pub async fn keys_are_isolated(limiter: Arc<dyn RateLimiter>, _clock: ManualClock) {
    let quota = quota();
    exhaust(&limiter, "api-key:a", &quota).await;
    assert!(!check(&limiter, "api-key:a", &quota, 1).await.allowed);
    assert_eq!(check(&limiter, "api-key:b", &quota, 1).await, allowed(4, T));
    assert_eq!(
        check(&limiter, "api-key:a:", &quota, 1).await,
        allowed(4, T)
    );
}

pub async fn different_quotas_on_different_keys(
    limiter: Arc<dyn RateLimiter>,
    _clock: ManualClock,
) {
    let small = Quota::per_minute(6, 2).expect("valid quota");
    let large = Quota::new(1, Duration::from_secs(20), 4).expect("valid quota");
    let mut small_allowed = 0;
    let mut large_allowed = 0;
    for _ in 0..10 {
        small_allowed += u32::from(check(&limiter, "small", &small, 1).await.allowed);
        large_allowed += u32::from(check(&limiter, "large", &large, 1).await.allowed);
    }
    assert_eq!((small_allowed, large_allowed), (2, 4));
    let decision = check(&limiter, "large", &large, 1).await;
    assert_eq!(
        (decision.limit, decision.reset_after, decision.retry_after),
        (4, Duration::from_secs(80), Some(Duration::from_secs(20)))
    );
}

pub async fn remaining_and_reset_follow_the_refill(
    limiter: Arc<dyn RateLimiter>,
    clock: ManualClock,
) {
    let quota = quota();
    for _ in 0..3 {
        check(&limiter, "k", &quota, 1).await;
    }
    clock.advance(Duration::from_secs(15));
    assert_eq!(
        check(&limiter, "k", &quota, 1).await,
        allowed(2, Duration::from_secs(25)),
        "5 - 3 + 1.5 back - 1 = 2.5 units; only whole units count as remaining"
    );
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        check(&limiter, "k", &quota, 1).await,
        allowed(2, Duration::from_secs(30))
    );
}

pub async fn concurrent_checks_never_exceed_gcra(
    limiter: Arc<dyn RateLimiter>,
    clock: ManualClock,
) {
    let quota = Quota::per_minute(6, 50).expect("valid quota");
    let count_allowed = || async {
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter
                        .check("hot", &quota, 1)
                        .await
                        .expect("check")
                        .allowed
                })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            allowed += u32::from(task.await.expect("task"));
        }
        allowed
    };
    assert_eq!(
        count_allowed().await,
        50,
        "exactly the burst at one instant"
    );
    clock.advance(T * 3);
    assert_eq!(count_allowed().await, 3, "exactly what came back");
}

pub async fn invalid_requests_are_refused(limiter: Arc<dyn RateLimiter>, _clock: ManualClock) {
    let quota = quota();
    let invalid =
        |result: Result<Decision, LimiterError>| matches!(result, Err(LimiterError::Invalid(_)));
    assert!(invalid(limiter.check("k", &quota, 0).await));
    assert!(invalid(limiter.check("k", &quota, 6).await));
    assert!(invalid(limiter.check("", &quota, 1).await));
    let zero = Quota { rate: 0, ..quota };
    assert!(invalid(limiter.check("k", &zero, 1).await));
    assert_eq!(
        check(&limiter, "k", &quota, 5).await,
        allowed(0, T * 5),
        "a cost of exactly the burst is allowed on a full key"
    );
}
