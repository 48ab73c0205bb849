//! The dispatch queue for step jobs.
//!
//! The database is the source of truth for executions and steps; a queue
//! message is only a reference to a step that should run. Delivery is at least
//! once: a delivery that is not acknowledged within the visibility timeout is
//! handed out again, so consumers acknowledge only after the step's result has
//! been committed, and every write downstream is idempotent on
//! (execution, node, attempt).
//!
//! Two implementations sit behind [`Dispatch`]: [`InProcessQueue`] for the
//! embedded mode and [`RedisQueue`] (Redis Streams with a consumer group) for
//! the distributed one. One conformance suite runs against both.
#![forbid(unsafe_code)]

mod config;
mod memory;
pub mod metrics;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::config::BrokerConfig;
pub use crate::memory::InProcessQueue;
pub use crate::redis::RedisQueue;

/// Pool names become part of Redis keys and metric labels, so they stay short
/// and plain.
pub const MAX_POOL_NAME_LEN: usize = 64;
/// A job is a reference, not a payload: a node id longer than this is a bug
/// upstream, and refusing it keeps the memory held per queued job bounded.
pub const MAX_NODE_ID_LEN: usize = 256;

/// A reference to one attempt of one step. The step's inputs and state live in
/// the database; this only says which row to load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub pool: String,
    pub execution_id: Uuid,
    pub node_id: String,
    pub attempt: u32,
    pub workspace_id: Uuid,
}

impl Job {
    /// Checks the bounds every backend relies on.
    pub fn validate(&self) -> BrokerResult<()> {
        validate_pool(&self.pool)?;
        if self.node_id.is_empty() {
            return Err(BrokerError::Invalid("node id is empty".to_owned()));
        }
        if self.node_id.len() > MAX_NODE_ID_LEN {
            return Err(BrokerError::Invalid(format!(
                "node id is longer than {MAX_NODE_ID_LEN} bytes"
            )));
        }
        Ok(())
    }
}

/// Checks that `pool` can be used as a key segment and a metric label.
pub fn validate_pool(pool: &str) -> BrokerResult<()> {
    if pool.is_empty() {
        return Err(BrokerError::Invalid("pool name is empty".to_owned()));
    }
    if pool.len() > MAX_POOL_NAME_LEN {
        return Err(BrokerError::Invalid(format!(
            "pool name is longer than {MAX_POOL_NAME_LEN} bytes"
        )));
    }
    let allowed = |character: char| character.is_ascii_alphanumeric() || "-_.".contains(character);
    if !pool.chars().all(allowed) {
        return Err(BrokerError::Invalid(format!(
            "pool name {pool:?} may only contain ASCII letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

/// One hand-out of a job to a consumer.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Opaque message id; stable across redeliveries of the same message.
    pub id: String,
    pub job: Job,
    /// 1 on first delivery; counts every hand-out, including those after a
    /// release, so poison jobs can be recognised.
    pub delivery_count: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Jobs that can be delivered now.
    pub ready: u64,
    /// Jobs waiting for their `not_before`.
    pub delayed: u64,
    /// Jobs delivered and not yet acknowledged or released.
    pub in_flight: u64,
    /// How long the oldest ready job has been waiting.
    pub oldest_ready_age: Option<Duration>,
    /// Deliveries handed out again after their visibility timeout ran out.
    pub reclaimed_total: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("invalid job: {0}")]
    Invalid(String),
}

pub type BrokerResult<T> = Result<T, BrokerError>;

#[async_trait]
pub trait Dispatch: Send + Sync + 'static {
    /// Makes `job` available now, or at `not_before` (delayed retries, `delay`
    /// nodes) without a busy loop.
    async fn enqueue(&self, job: Job, not_before: Option<DateTime<Utc>>) -> BrokerResult<()>;

    /// Enqueues several jobs in one round trip; all are validated first, so an
    /// invalid job enqueues nothing.
    async fn enqueue_many(&self, jobs: Vec<(Job, Option<DateTime<Utc>>)>) -> BrokerResult<()>;

    /// Waits up to `wait` for at most `max` jobs of any of `pools` (fair across
    /// pools), for consumer `consumer`. A delivery not acknowledged within the
    /// visibility timeout is delivered again (to any consumer), with
    /// `delivery_count + 1`.
    async fn receive(
        &self,
        pools: &[String],
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> BrokerResult<Vec<Delivery>>;

    /// Done with a delivery (after its result is committed). Idempotent.
    async fn ack(&self, delivery: &Delivery) -> BrokerResult<()>;

    /// Gives a delivery back at once (e.g. shutdown) or at `not_before`.
    /// Releasing a delivery that was already acknowledged or released does
    /// nothing.
    async fn release(
        &self,
        delivery: &Delivery,
        not_before: Option<DateTime<Utc>>,
    ) -> BrokerResult<()>;

    /// Counts for one pool; also refreshes the pool's gauges.
    async fn stats(&self, pool: &str) -> BrokerResult<PoolStats>;
}

/// Opens the queue the configuration asks for: Redis when `url` is given, the
/// in-process queue otherwise.
pub async fn connect(url: Option<&str>, config: &BrokerConfig) -> BrokerResult<Arc<dyn Dispatch>> {
    config.validate()?;
    match url {
        Some(url) => Ok(Arc::new(RedisQueue::connect(url, config).await?)),
        None => Ok(Arc::new(InProcessQueue::new(config))),
    }
}

/// Refreshes the gauges of `pools` every `every`, so that an autoscaler sees
/// depth and age even while nobody asks for stats. Runs until aborted.
pub fn spawn_stats_refresh(
    dispatch: Arc<dyn Dispatch>,
    pools: Vec<String>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            for pool in &pools {
                if let Err(error) = dispatch.stats(pool).await {
                    tracing::warn!(pool = %pool, %error, "refreshing queue gauges failed");
                }
            }
        }
    })
}

/// Milliseconds since the Unix epoch, the unit of Redis stream ids and of the
/// delayed set's scores.
fn unix_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(pool: &str, node_id: &str) -> Job {
        Job {
            pool: pool.to_owned(),
            execution_id: Uuid::nil(),
            node_id: node_id.to_owned(),
            attempt: 1,
            workspace_id: Uuid::nil(),
        }
    }

    #[test]
    fn pool_names_that_cannot_be_key_segments_are_refused() {
        assert!(job("default", "n1").validate().is_ok());
        assert!(job("ai.gpu-1_a", "n1").validate().is_ok());
        assert!(job("", "n1").validate().is_err());
        assert!(job("a|b", "n1").validate().is_err());
        assert!(job("a:b", "n1").validate().is_err());
        assert!(
            job(&"p".repeat(MAX_POOL_NAME_LEN + 1), "n1")
                .validate()
                .is_err()
        );
    }

    #[test]
    fn node_ids_are_bounded() {
        assert!(job("default", "").validate().is_err());
        assert!(
            job("default", &"n".repeat(MAX_NODE_ID_LEN))
                .validate()
                .is_ok()
        );
        assert!(
            job("default", &"n".repeat(MAX_NODE_ID_LEN + 1))
                .validate()
                .is_err()
        );
    }
}
