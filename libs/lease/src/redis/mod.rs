//! The distributed leases on Redis: one sorted set per key,
//! `{prefix}:lease:{key}`, holders scored by expiry (see `scripts`). Every
//! operation is one script call, one round trip.
//!
//! The processes sharing a Redis read their own clocks, so their clocks
//! should agree to well within a ttl; a clock running ahead reclaims other
//! holders' leases that much early.

mod reply;
mod scripts;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::Pool;
use fred::prelude::{Error as RedisError, Value};

use self::scripts::{Script, Scripts};
use crate::request::{Rules, now_millis, time_of};
use crate::{
    Acquire, AcquireAll, Clock, ConcurrencyLeases, Lease, LeaseConfig, LeaseError, LeaseResult,
    metrics,
};

pub struct RedisLeases {
    rules: Rules,
    clock: Arc<dyn Clock>,
    commands: Pool,
    scripts: Scripts,
    prefix: String,
}

/// Redis errors become `Unavailable`; they are logged here, where the detail
/// is still at hand.
fn unavailable(error: RedisError) -> LeaseError {
    tracing::warn!(%error, "redis command failed");
    LeaseError::Unavailable(error.to_string())
}

impl RedisLeases {
    pub async fn connect(
        url: &str,
        config: &LeaseConfig,
        clock: Arc<dyn Clock>,
    ) -> LeaseResult<Self> {
        let rules = Rules::new(config)?;
        let command_timeout = config.command_timeout();
        let builder = tyboo_redis::builder(url, command_timeout)
            .map_err(|error| LeaseError::Invalid(format!("redis url: {error}")))?;
        let commands = builder
            .build_pool(config.command_connections)
            .map_err(unavailable)?;
        tyboo_redis::connect_within(&commands, command_timeout)
            .await
            .map_err(LeaseError::Unavailable)?;
        let scripts = Scripts::load(&commands).await.map_err(unavailable)?;
        Ok(Self {
            rules,
            clock,
            commands,
            scripts,
            prefix: config.key_prefix.clone(),
        })
    }

    fn set_key(&self, key: &str) -> String {
        format!("{}:lease:{key}", self.prefix)
    }

    fn now(&self) -> String {
        now_millis(self.clock.as_ref()).to_string()
    }

    async fn run(
        &self,
        script: Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> LeaseResult<Value> {
        self.scripts
            .run(&self.commands, script, keys, args)
            .await
            .map_err(unavailable)
    }

    /// Both acquire operations, as one script over every key.
    async fn take(
        &self,
        keys: &[(&str, u32)],
        holder: &str,
        ttl_ms: i64,
    ) -> LeaseResult<AcquireAll> {
        let now = now_millis(self.clock.as_ref());
        let expires_at = now + ttl_ms;
        let set_keys = keys.iter().map(|(key, _)| self.set_key(key)).collect();
        let mut args = vec![now.to_string(), expires_at.to_string(), holder.to_owned()];
        args.extend(keys.iter().map(|(_, limit)| limit.to_string()));
        let reply = self.run(Script::Take, set_keys, args).await?;
        let outcome = match reply::taken(reply)? {
            None => AcquireAll::Granted {
                expires_at: time_of(expires_at),
            },
            Some((index, held)) => {
                let (_, limit) = keys
                    .get(index)
                    .ok_or_else(|| reply::unexpected("take index"))?;
                AcquireAll::Full {
                    index,
                    held,
                    limit: *limit,
                }
            }
        };
        metrics::record_acquire(matches!(outcome, AcquireAll::Granted { .. }));
        Ok(outcome)
    }
}

#[async_trait]
impl ConcurrencyLeases for RedisLeases {
    async fn acquire(
        &self,
        key: &str,
        holder: &str,
        limit: u32,
        ttl: Duration,
    ) -> LeaseResult<Acquire> {
        let ttl_ms = self.rules.acquire(key, holder, limit, ttl)?;
        let outcome = self.take(&[(key, limit)], holder, ttl_ms).await?;
        Ok(outcome.single())
    }

    async fn acquire_all(
        &self,
        keys: &[(&str, u32)],
        holder: &str,
        ttl: Duration,
    ) -> LeaseResult<AcquireAll> {
        let ttl_ms = self.rules.acquire_all(keys, holder, ttl)?;
        self.take(keys, holder, ttl_ms).await
    }

    async fn renew(&self, key: &str, holder: &str, ttl: Duration) -> LeaseResult<bool> {
        let ttl_ms = self.rules.renew(key, holder, ttl)?;
        let now = now_millis(self.clock.as_ref());
        let args = vec![
            now.to_string(),
            (now + ttl_ms).to_string(),
            holder.to_owned(),
        ];
        let reply = self
            .run(Script::Renew, vec![self.set_key(key)], args)
            .await?;
        Ok(reply::integer(&reply, "renew")? == 1)
    }

    async fn release(&self, key: &str, holder: &str) -> LeaseResult<()> {
        self.rules.release(key, holder)?;
        let args = vec![self.now(), holder.to_owned()];
        self.run(Script::Release, vec![self.set_key(key)], args)
            .await?;
        Ok(())
    }

    async fn held(&self, key: &str) -> LeaseResult<u32> {
        self.rules.key(key)?;
        let reply = self
            .run(Script::Held, vec![self.set_key(key)], vec![self.now()])
            .await?;
        reply::count(&reply, "held")
    }

    async fn holders(&self, key: &str) -> LeaseResult<Vec<Lease>> {
        self.rules.key(key)?;
        let reply = self
            .run(Script::Holders, vec![self.set_key(key)], vec![self.now()])
            .await?;
        reply::holders(reply)
    }
}
