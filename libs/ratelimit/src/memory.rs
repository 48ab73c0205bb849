//! The in-process limiter for the embedded mode (and the Redis limiter's
//! fallback).
//!
//! Not `governor`: its keyed limiter holds one quota for every key (a quota
//! per key is its open issue #193), while a request here brings its own
//! quota (per-workspace overrides), and its state is not the plain TAT the
//! Redis backend stores, so the two could not be held to one conformance
//! suite with exact values. The arithmetic is a dozen lines ([`crate::gcra`]);
//! this module only keeps the TATs.
//!
//! TATs live in a fixed number of shards, each a `Mutex<HashMap>`, so that
//! checks on different keys rarely wait for each other and a check holds a
//! lock for a few arithmetic operations only. A key whose TAT is in the past
//! is indistinguishable from a key never seen, so a shard drops all such
//! keys whenever it has doubled since its last sweep: memory stays bounded by
//! the keys active within their refill time, at an amortised constant cost.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock, to_micros};
use crate::quota::validate_request;
use crate::{Decision, LimiterError, Quota, RateLimiter, gcra};

const SHARDS: usize = 64;
/// A shard below this size is never swept: sweeping it would cost more than
/// the memory it frees.
const MIN_SWEEP_LEN: usize = 1_024;

pub struct InProcessLimiter {
    clock: Arc<dyn Clock>,
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

struct Shard {
    tats: HashMap<String, u64>,
    sweep_at_len: usize,
}

impl Default for InProcessLimiter {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl InProcessLimiter {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    tats: HashMap::new(),
                    sweep_at_len: MIN_SWEEP_LEN,
                })
            })
            .collect();
        Self {
            clock,
            hasher: RandomState::new(),
            shards,
        }
    }

    /// Keys currently holding state (their TAT may already be past, until
    /// the next sweep of their shard).
    pub fn tracked_keys(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).tats.len()).sum()
    }

    /// Checks synchronously; [`RateLimiter::check`] is this, for callers
    /// that hold the trait.
    pub fn check_now(&self, key: &str, quota: &Quota, cost: u32) -> Result<Decision, LimiterError> {
        validate_request(key, quota, cost)?;
        let now = to_micros(self.clock.now());
        let shard_index = self.hasher.hash_one(key) as usize % SHARDS;
        let mut shard = lock(&self.shards[shard_index]);
        let step = gcra::step(quota, shard.tats.get(key).copied(), now, cost);
        if step.allowed {
            match shard.tats.get_mut(key) {
                Some(tat) => *tat = step.tat,
                None => {
                    shard.tats.insert(key.to_owned(), step.tat);
                    shard.sweep_if_grown(now);
                }
            }
        }
        drop(shard);
        Ok(gcra::decision(quota, step, now, cost))
    }
}

impl Shard {
    fn sweep_if_grown(&mut self, now: u64) {
        if self.tats.len() < self.sweep_at_len {
            return;
        }
        self.tats.retain(|_, tat| *tat > now);
        self.sweep_at_len = (self.tats.len() * 2).max(MIN_SWEEP_LEN);
    }
}

#[async_trait]
impl RateLimiter for InProcessLimiter {
    async fn check(&self, key: &str, quota: &Quota, cost: u32) -> Result<Decision, LimiterError> {
        self.check_now(key, quota, cost)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A shard is consistent after every statement, so a panic elsewhere
    // while holding it is no reason to stop limiting.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ManualClock;

    #[test]
    fn expired_keys_are_swept_as_the_map_grows() {
        let clock = ManualClock::new(Duration::from_secs(1_000));
        let limiter = InProcessLimiter::new(Arc::new(clock.clone()));
        let quota = Quota::new(1, Duration::from_secs(1), 1).expect("valid");
        let keys = SHARDS * MIN_SWEEP_LEN;
        for index in 0..keys {
            assert!(
                limiter
                    .check_now(&format!("old-{index}"), &quota, 1)
                    .expect("check")
                    .allowed
            );
        }
        clock.advance(Duration::from_secs(1));
        for index in 0..keys {
            assert!(
                limiter
                    .check_now(&format!("new-{index}"), &quota, 1)
                    .expect("check")
                    .allowed
            );
        }
        assert!(
            limiter.tracked_keys() < 2 * keys,
            "keys whose TAT passed are dropped: {} tracked",
            limiter.tracked_keys()
        );
    }

    #[test]
    fn a_refused_key_is_not_stored() {
        let clock = ManualClock::new(Duration::from_secs(1_000));
        let limiter = InProcessLimiter::new(Arc::new(clock));
        let quota = Quota::new(1, Duration::from_secs(1), 2).expect("valid");
        assert!(limiter.check_now("k", &quota, 2).expect("check").allowed);
        assert!(!limiter.check_now("k", &quota, 1).expect("check").allowed);
        assert_eq!(limiter.tracked_keys(), 1);
    }
}
