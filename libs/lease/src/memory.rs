//! The embedded leases: real and correct for one process. Each key maps its
//! holders to their expiry; every operation on a key first drops the expired
//! ones. Keys whose holders all vanished without anyone touching the key
//! again are swept whenever the map has doubled since the last sweep, so
//! memory stays proportional to the live keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::request::{Rules, now_millis, time_of};
use crate::{
    Acquire, AcquireAll, Clock, ConcurrencyLeases, Lease, LeaseConfig, LeaseResult, metrics,
};

/// Keys below this count are never swept.
const SWEEP_FLOOR: usize = 64;

pub struct InProcessLeases {
    rules: Rules,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

/// Holder → expiry in Unix milliseconds; live while the clock is before it.
type Holders = HashMap<String, i64>;

struct State {
    keys: HashMap<String, Holders>,
    sweep_at: usize,
}

impl State {
    /// The live holders of `key`, created empty when missing.
    fn live(&mut self, key: &str, now: i64) -> &mut Holders {
        let holders = self.keys.entry(key.to_owned()).or_default();
        holders.retain(|_, expires_at| *expires_at > now);
        holders
    }

    /// The live holders of `key` for a read, without keeping an empty entry.
    fn count_live(&mut self, key: &str, now: i64) -> Option<&Holders> {
        let holders = self.keys.get_mut(key)?;
        holders.retain(|_, expires_at| *expires_at > now);
        if holders.is_empty() {
            self.keys.remove(key);
            return None;
        }
        self.keys.get(key)
    }

    fn forget_if_empty(&mut self, key: &str) {
        if self.keys.get(key).is_some_and(HashMap::is_empty) {
            self.keys.remove(key);
        }
    }

    fn sweep_if_grown(&mut self, now: i64) {
        if self.keys.len() < self.sweep_at {
            return;
        }
        self.keys.retain(|_, holders| {
            holders.retain(|_, expires_at| *expires_at > now);
            !holders.is_empty()
        });
        self.sweep_at = (self.keys.len() * 2).max(SWEEP_FLOOR);
    }
}

impl InProcessLeases {
    pub fn new(config: &LeaseConfig, clock: Arc<dyn Clock>) -> LeaseResult<Self> {
        Ok(Self {
            rules: Rules::new(config)?,
            clock,
            state: Mutex::new(State {
                keys: HashMap::new(),
                sweep_at: SWEEP_FLOOR,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the maps consistent, so a panic
        // elsewhere while holding the lock is no reason to stop serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Both acquire operations: check every key, then take every key or none.
    fn take(&self, keys: &[(&str, u32)], holder: &str, ttl_ms: i64) -> AcquireAll {
        let now = now_millis(self.clock.as_ref());
        let expires_at = now + ttl_ms;
        let mut state = self.lock();
        let mut full = None;
        for (index, (key, limit)) in keys.iter().enumerate() {
            let holders = state.live(key, now);
            let held = u32::try_from(holders.len()).unwrap_or(u32::MAX);
            if !holders.contains_key(holder) && held >= *limit {
                full = Some(AcquireAll::Full {
                    index,
                    held,
                    limit: *limit,
                });
                break;
            }
        }
        let outcome = match full {
            Some(full) => {
                for (key, _) in keys {
                    state.forget_if_empty(key);
                }
                full
            }
            None => {
                for (key, _) in keys {
                    state.live(key, now).insert(holder.to_owned(), expires_at);
                }
                AcquireAll::Granted {
                    expires_at: time_of(expires_at),
                }
            }
        };
        state.sweep_if_grown(now);
        metrics::record_acquire(matches!(outcome, AcquireAll::Granted { .. }));
        outcome
    }
}

#[async_trait]
impl ConcurrencyLeases for InProcessLeases {
    async fn acquire(
        &self,
        key: &str,
        holder: &str,
        limit: u32,
        ttl: Duration,
    ) -> LeaseResult<Acquire> {
        let ttl_ms = self.rules.acquire(key, holder, limit, ttl)?;
        let outcome = self.take(&[(key, limit)], holder, ttl_ms);
        Ok(outcome.single())
    }

    async fn acquire_all(
        &self,
        keys: &[(&str, u32)],
        holder: &str,
        ttl: Duration,
    ) -> LeaseResult<AcquireAll> {
        let ttl_ms = self.rules.acquire_all(keys, holder, ttl)?;
        Ok(self.take(keys, holder, ttl_ms))
    }

    async fn renew(&self, key: &str, holder: &str, ttl: Duration) -> LeaseResult<bool> {
        let ttl_ms = self.rules.renew(key, holder, ttl)?;
        let now = now_millis(self.clock.as_ref());
        let mut state = self.lock();
        let renewed = match state.live(key, now).get_mut(holder) {
            Some(expires_at) => {
                *expires_at = now + ttl_ms;
                true
            }
            None => false,
        };
        state.forget_if_empty(key);
        Ok(renewed)
    }

    async fn release(&self, key: &str, holder: &str) -> LeaseResult<()> {
        self.rules.release(key, holder)?;
        let now = now_millis(self.clock.as_ref());
        let mut state = self.lock();
        state.live(key, now).remove(holder);
        state.forget_if_empty(key);
        Ok(())
    }

    async fn held(&self, key: &str) -> LeaseResult<u32> {
        self.rules.key(key)?;
        let now = now_millis(self.clock.as_ref());
        let mut state = self.lock();
        let held = state.count_live(key, now).map_or(0, HashMap::len);
        Ok(u32::try_from(held).unwrap_or(u32::MAX))
    }

    async fn holders(&self, key: &str) -> LeaseResult<Vec<Lease>> {
        self.rules.key(key)?;
        let now = now_millis(self.clock.as_ref());
        let mut state = self.lock();
        let Some(holders) = state.count_live(key, now) else {
            return Ok(Vec::new());
        };
        let mut leases: Vec<(i64, &String)> = holders
            .iter()
            .map(|(holder, expires_at)| (*expires_at, holder))
            .collect();
        leases.sort();
        Ok(leases
            .into_iter()
            .map(|(expires_at, holder)| Lease {
                holder: holder.clone(),
                expires_at: time_of(expires_at),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use chrono::DateTime;

    #[tokio::test]
    async fn keys_abandoned_by_their_holders_are_swept() {
        let clock = ManualClock::new(DateTime::from_timestamp_millis(0).expect("epoch"));
        let leases = InProcessLeases::new(&LeaseConfig::default(), Arc::new(clock.clone()))
            .expect("valid config");
        let ttl = Duration::from_secs(1);
        for index in 1..SWEEP_FLOOR {
            let key = format!("abandoned-{index}");
            leases.acquire(&key, "h", 1, ttl).await.expect("acquire");
        }
        clock.advance(ttl);
        leases.acquire("fresh", "h", 1, ttl).await.expect("acquire");
        assert_eq!(
            leases.lock().keys.len(),
            1,
            "only the key with a live lease is kept"
        );
    }
}
