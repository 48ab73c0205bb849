//! The embedded breakers: one map behind a mutex, real and correct for one
//! process. Breakers nobody touched within the idle expiry are pruned, at
//! most once a window bucket, so tenants calling ever new hosts cannot grow
//! the map without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::clock::now_millis;
use crate::machine::Breaker;
use crate::state::{Mode, Transition};
use crate::{
    Admission, BreakerConfig, BreakerKey, BreakerResult, BreakerState, CircuitBreakers, Clock,
    Outcome, metrics,
};

#[derive(Clone)]
pub struct InProcessBreakers {
    shared: Arc<Shared>,
}

struct Shared {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    breakers: HashMap<BreakerKey, Breaker>,
    pruned_at_ms: i64,
}

impl State {
    /// The live breaker of `key`, created closed when absent or forgotten.
    fn breaker(&mut self, key: &BreakerKey, now_ms: i64, config: &BreakerConfig) -> &mut Breaker {
        if now_ms - self.pruned_at_ms >= config.bucket_ms() {
            self.breakers
                .retain(|_, breaker| !breaker.is_idle(now_ms, config));
            self.pruned_at_ms = now_ms;
        }
        let breaker = self
            .breakers
            .entry(key.clone())
            .or_insert_with(|| Breaker::new(now_ms));
        if breaker.is_idle(now_ms, config) {
            *breaker = Breaker::new(now_ms);
        }
        breaker
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the map consistent, so a panic elsewhere
    // while holding the lock is no reason to stop serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl InProcessBreakers {
    pub fn new(config: &BreakerConfig, clock: Arc<dyn Clock>) -> BreakerResult<Self> {
        config.validate()?;
        Ok(Self {
            shared: Arc::new(Shared {
                config: config.clone(),
                clock,
                state: Mutex::new(State::default()),
            }),
        })
    }

    fn now_ms(&self) -> i64 {
        now_millis(self.shared.clock.as_ref())
    }

    fn force(&self, key: &BreakerKey, mode: Mode) -> BreakerResult<()> {
        key.validate()?;
        let now_ms = self.now_ms();
        let transition = {
            let mut state = lock(&self.shared.state);
            state
                .breaker(key, now_ms, &self.shared.config)
                .force(mode, now_ms)
        };
        metrics::record_transition(&key.node_type, transition);
        Ok(())
    }
}

#[async_trait]
impl CircuitBreakers for InProcessBreakers {
    async fn admit(&self, key: &BreakerKey) -> BreakerResult<Admission> {
        key.validate()?;
        let now_ms = self.now_ms();
        let config = &self.shared.config;
        let (admission, transition) = {
            let mut state = lock(&self.shared.state);
            // Admitting a key never seen leaves nothing behind.
            match state.breakers.get(key) {
                None => (Admission::Allowed, None),
                Some(_) => state.breaker(key, now_ms, config).admit(now_ms, config),
            }
        };
        metrics::record_transition(&key.node_type, transition);
        metrics::record_admission(&key.node_type, admission);
        Ok(admission)
    }

    async fn record(&self, key: &BreakerKey, outcome: Outcome) -> BreakerResult<()> {
        key.validate()?;
        let now_ms = self.now_ms();
        let config = &self.shared.config;
        let transition = {
            let mut state = lock(&self.shared.state);
            state
                .breaker(key, now_ms, config)
                .record(now_ms, outcome, config)
        };
        metrics::record_transition(&key.node_type, transition);
        Ok(())
    }

    async fn get(&self, key: &BreakerKey) -> BreakerResult<BreakerState> {
        key.validate()?;
        let now_ms = self.now_ms();
        let config = &self.shared.config;
        let mut state = lock(&self.shared.state);
        let view = match state.breakers.get_mut(key) {
            Some(breaker) if !breaker.is_idle(now_ms, config) => breaker.view(now_ms, config),
            _ => Breaker::new(now_ms).view(now_ms, config),
        };
        Ok(view.report(key.clone(), now_ms, config))
    }

    async fn list(&self) -> BreakerResult<Vec<BreakerState>> {
        let now_ms = self.now_ms();
        let config = &self.shared.config;
        let mut listed: Vec<BreakerState> = {
            let mut state = lock(&self.shared.state);
            state
                .breakers
                .retain(|_, breaker| !breaker.is_idle(now_ms, config));
            state
                .breakers
                .iter_mut()
                .map(|(key, breaker)| {
                    breaker
                        .view(now_ms, config)
                        .report(key.clone(), now_ms, config)
                })
                .collect()
        };
        listed.sort_by(|left, right| left.key.cmp(&right.key));
        metrics::record_snapshot(&listed);
        Ok(listed)
    }

    async fn reset(&self, key: &BreakerKey) -> BreakerResult<()> {
        key.validate()?;
        let now_ms = self.now_ms();
        let config = &self.shared.config;
        let removed = lock(&self.shared.state).breakers.remove(key);
        let transition = removed
            .filter(|breaker| !breaker.is_idle(now_ms, config))
            .and_then(|mut breaker| {
                Transition::between(breaker.view(now_ms, config).mode, Mode::Closed)
            });
        metrics::record_transition(&key.node_type, transition);
        Ok(())
    }

    async fn force_open(&self, key: &BreakerKey) -> BreakerResult<()> {
        self.force(key, Mode::ForcedOpen)
    }

    async fn force_closed(&self, key: &BreakerKey) -> BreakerResult<()> {
        self.force(key, Mode::ForcedClosed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::DateTime;

    use super::*;
    use crate::ManualClock;

    #[tokio::test]
    async fn idle_breakers_are_forgotten_and_forced_ones_kept() {
        let clock =
            ManualClock::new(DateTime::from_timestamp_millis(1_900_000_000_000).expect("time"));
        let config = BreakerConfig::default();
        let breakers =
            InProcessBreakers::new(&config, Arc::new(clock.clone())).expect("valid config");
        let idle = BreakerKey::new("http", "idle.example");
        let forced = BreakerKey::new("http", "forced.example");
        breakers
            .record(&idle, Outcome::Failure)
            .await
            .expect("record");
        breakers.force_open(&forced).await.expect("force");

        clock.advance(Duration::from_millis(config.idle_expiry_ms - 1));
        assert_eq!(breakers.list().await.expect("list").len(), 2);

        clock.advance(Duration::from_millis(1));
        let listed = breakers.list().await.expect("list");
        let keys: Vec<&BreakerKey> = listed.iter().map(|state| &state.key).collect();
        assert_eq!(keys, [&forced]);
        assert_eq!(lock(&breakers.shared.state).breakers.len(), 1);
    }
}
