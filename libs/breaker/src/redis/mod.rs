//! The distributed breakers, shared by every worker process through Redis.
//!
//! Keys, all under the configured prefix:
//! - `{prefix}:breaker:{node_type}|{host}`: one hash per breaker (fields in
//!   [`scripts`]), expiring after the idle expiry unless forced;
//! - `{prefix}:breakers`: the set of known breakers, `node_type|host`, which
//!   `list` reads and prunes of expired ones.

mod reply;
mod scripts;

use std::sync::Arc;

use async_trait::async_trait;
use fred::clients::Pool;
use fred::prelude::{Error as RedisError, Value};

use self::scripts::{Script, Scripts};
use crate::clock::now_millis;
use crate::state::Mode;
use crate::{
    Admission, BreakerConfig, BreakerError, BreakerKey, BreakerResult, BreakerState,
    CircuitBreakers, Clock, Outcome, metrics,
};

pub struct RedisBreakers {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    commands: Pool,
    scripts: Scripts,
}

/// Redis errors become `Unavailable`; they are logged here, where the detail
/// is still at hand.
fn unavailable(error: RedisError) -> BreakerError {
    tracing::warn!(%error, "redis command failed");
    BreakerError::Unavailable(error.to_string())
}

impl RedisBreakers {
    pub async fn connect(
        url: &str,
        config: &BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> BreakerResult<Self> {
        config.validate()?;
        let command_timeout = config.command_timeout();
        let builder = tyboo_redis::builder(url, command_timeout)
            .map_err(|error| BreakerError::Unavailable(format!("redis url: {error}")))?;
        let commands = builder
            .build_pool(config.command_connections)
            .map_err(unavailable)?;
        tyboo_redis::connect_within(&commands, command_timeout)
            .await
            .map_err(BreakerError::Unavailable)?;
        let scripts = Scripts::load(&commands).await.map_err(unavailable)?;
        Ok(Self {
            config: config.clone(),
            clock,
            commands,
            scripts,
        })
    }

    fn breaker_prefix(&self) -> String {
        format!("{}:breaker:", self.config.key_prefix)
    }

    fn known(&self) -> String {
        format!("{}:breakers", self.config.key_prefix)
    }

    /// The time and the configuration, the first arguments of every script.
    fn common_args(&self, now_ms: i64) -> Vec<String> {
        let config = &self.config;
        vec![
            now_ms.to_string(),
            config.bucket_ms().to_string(),
            config.window_buckets.to_string(),
            config.minimum_calls.to_string(),
            config.failure_rate_threshold_percent.to_string(),
            config.cool_down_base_ms.to_string(),
            config.cool_down_max_ms.to_string(),
            config.half_open_probes.to_string(),
            config.successes_to_close.to_string(),
            config.probe_timeout_ms.to_string(),
            config.idle_expiry_ms.to_string(),
        ]
    }

    /// Runs `script` on the breaker of `key`, with `extra` arguments after
    /// the key's member.
    async fn run_on(
        &self,
        script: Script,
        key: &BreakerKey,
        now_ms: i64,
        extra: &[&str],
    ) -> BreakerResult<Value> {
        key.validate()?;
        let member = key.encode();
        let keys = vec![format!("{}{member}", self.breaker_prefix()), self.known()];
        let mut args = self.common_args(now_ms);
        args.push(member);
        args.extend(extra.iter().map(|value| (*value).to_owned()));
        self.scripts
            .run(&self.commands, script, keys, args)
            .await
            .map_err(unavailable)
    }

    /// Runs a script that answers `{from, to}` and counts the transition.
    async fn change(&self, script: Script, key: &BreakerKey, extra: &[&str]) -> BreakerResult<()> {
        let now_ms = now_millis(self.clock.as_ref());
        let reply = self.run_on(script, key, now_ms, extra).await?;
        metrics::record_transition(&key.node_type, reply::transition(&reply.into_array(), 0)?);
        Ok(())
    }
}

#[async_trait]
impl CircuitBreakers for RedisBreakers {
    async fn admit(&self, key: &BreakerKey) -> BreakerResult<Admission> {
        let now_ms = now_millis(self.clock.as_ref());
        let reply = self.run_on(Script::Admit, key, now_ms, &[]).await?;
        let (admission, transition) = reply::admission(reply)?;
        metrics::record_transition(&key.node_type, transition);
        metrics::record_admission(&key.node_type, admission);
        Ok(admission)
    }

    async fn record(&self, key: &BreakerKey, outcome: Outcome) -> BreakerResult<()> {
        let outcome = match outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        };
        self.change(Script::Record, key, &[outcome]).await
    }

    async fn get(&self, key: &BreakerKey) -> BreakerResult<BreakerState> {
        let now_ms = now_millis(self.clock.as_ref());
        let reply = self.run_on(Script::Get, key, now_ms, &[]).await?;
        let view = reply::stored_view(&reply.into_array())?;
        Ok(view.report(key.clone(), now_ms, &self.config))
    }

    async fn list(&self) -> BreakerResult<Vec<BreakerState>> {
        let now_ms = now_millis(self.clock.as_ref());
        let mut args = self.common_args(now_ms);
        args.push(self.breaker_prefix());
        let reply = self
            .scripts
            .run(&self.commands, Script::List, vec![self.known()], args)
            .await
            .map_err(unavailable)?;
        let mut listed = reply::listed(reply)?
            .into_iter()
            .map(|(key, view)| view.report(key, now_ms, &self.config))
            .collect::<Vec<_>>();
        listed.sort_by(|left, right| left.key.cmp(&right.key));
        metrics::record_snapshot(&listed);
        Ok(listed)
    }

    async fn reset(&self, key: &BreakerKey) -> BreakerResult<()> {
        self.change(Script::Reset, key, &[]).await
    }

    async fn force_open(&self, key: &BreakerKey) -> BreakerResult<()> {
        self.change(Script::Force, key, &[Mode::ForcedOpen.name()])
            .await
    }

    async fn force_closed(&self, key: &BreakerKey) -> BreakerResult<()> {
        self.change(Script::Force, key, &[Mode::ForcedClosed.name()])
            .await
    }
}
