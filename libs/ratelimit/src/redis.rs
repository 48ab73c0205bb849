//! The distributed limiter: one TAT per key in Redis, updated by one Lua
//! script in one round trip, so every edge replica spends from one limit.
//!
//! Key: `{prefix}:rl:{key}`, holding the TAT in µs since the Unix epoch,
//! with an expiry at the TAT (a key past its TAT is a fresh key, so nothing
//! is lost when Redis drops it). The script does not read Redis' clock: the
//! caller passes `now` from its [`Clock`]. Tests are exact that way, and a
//! replica whose clock is off by `s` sees every TAT shifted by `s` — it
//! allows a key's burst up to `s` early or late — instead of the replicas
//! disagreeing with Redis about the order of events. Keep replicas on NTP.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::Pool;
use fred::prelude::{Error as RedisError, Value};
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, to_micros};
use crate::gcra::{self, Step};
use crate::quota::validate_request;
use crate::{Decision, LimiterError, Quota, RateLimiter};

/// KEYS: the key's TAT. ARGV: now, interval T, tolerance τ (µs), cost.
/// Returns {allowed (1 or 0), TAT after}: the same as [`gcra::step`].
/// Numbers are formatted with `%.0f` so that Redis stores plain integers.
const CHECK: &str = r#"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
local new_tat = tat + interval * cost
if new_tat - interval - tolerance > now then
  return {0, string.format('%.0f', tat)}
end
local ttl_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, string.format('%.0f', new_tat)}
"#;

/// The limiter's one script.
#[derive(Clone, Copy, Debug)]
enum Script {
    Check,
}

impl tyboo_redis::Script for Script {
    const ALL: &'static [Script] = &[Script::Check];

    fn source(self) -> &'static str {
        match self {
            Script::Check => CHECK,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisLimiterConfig {
    /// Every key starts with `{key_prefix}:rl:`.
    pub key_prefix: String,
    /// Connections the checks share; a check is one short script call.
    pub connections: usize,
    /// A check that gets no answer within this fails with `Unavailable`
    /// (and [`crate::FallbackLimiter`] answers locally). It is on the path
    /// of every request, so it stays short.
    pub command_timeout_ms: u64,
}

impl Default for RedisLimiterConfig {
    fn default() -> Self {
        Self {
            key_prefix: "tyboo".to_owned(),
            connections: 2,
            command_timeout_ms: 250,
        }
    }
}

impl RedisLimiterConfig {
    /// Every problem with this configuration; empty when it is valid.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            problems
                .push("redis key_prefix must be non-empty and contain no whitespace".to_owned());
        }
        if self.connections == 0 {
            problems.push("redis connections must be at least 1".to_owned());
        }
        if self.command_timeout_ms == 0 {
            problems.push("redis command_timeout_ms must be positive".to_owned());
        }
        problems
    }

    fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }
}

pub struct RedisLimiter {
    pool: Pool,
    scripts: tyboo_redis::Scripts<Script>,
    key_prefix: String,
    clock: Arc<dyn Clock>,
}

impl RedisLimiter {
    /// Connects and loads the script; fails with `Unavailable` when Redis
    /// does not answer within the command timeout. Once connected, the
    /// client reconnects by itself after Redis restarts.
    pub async fn connect(
        url: &str,
        config: &RedisLimiterConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LimiterError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(LimiterError::Invalid(problems.join("; ")));
        }
        let timeout = config.command_timeout();
        let builder = tyboo_redis::builder(url, timeout)
            .map_err(|error| LimiterError::Invalid(format!("redis url: {error}")))?;
        let pool = builder
            .build_pool(config.connections)
            .map_err(unavailable)?;
        tyboo_redis::connect_within(&pool, timeout)
            .await
            .map_err(LimiterError::Unavailable)?;
        let scripts = tyboo_redis::Scripts::load(&pool)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            pool,
            scripts,
            key_prefix: config.key_prefix.clone(),
            clock,
        })
    }

    fn redis_key(&self, key: &str) -> String {
        format!("{}:rl:{key}", self.key_prefix)
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn check(&self, key: &str, quota: &Quota, cost: u32) -> Result<Decision, LimiterError> {
        validate_request(key, quota, cost)?;
        let now = to_micros(self.clock.now());
        let args = vec![
            now.to_string(),
            quota.interval_micros().to_string(),
            quota.tolerance_micros().to_string(),
            cost.to_string(),
        ];
        let reply = self
            .scripts
            .run(&self.pool, Script::Check, vec![self.redis_key(key)], args)
            .await
            .map_err(unavailable)?;
        let step = parse_step(reply)?;
        Ok(gcra::decision(quota, step, now, cost))
    }
}

fn parse_step(reply: Value) -> Result<Step, LimiterError> {
    let fields = reply.into_array();
    let allowed = fields.first().and_then(Value::as_i64);
    let tat = fields
        .get(1)
        .and_then(Value::as_string)
        .and_then(|tat| tat.parse().ok());
    match (allowed, tat) {
        (Some(allowed), Some(tat)) => Ok(Step {
            allowed: allowed == 1,
            tat,
        }),
        _ => Err(LimiterError::Unavailable(format!(
            "unexpected reply from the rate limit script: {fields:?}"
        ))),
    }
}

fn unavailable(error: RedisError) -> LimiterError {
    LimiterError::Unavailable(error.to_string())
}
