//! The distributed queue on Redis Streams.
//!
//! Keys, all under the configured prefix:
//! - `{prefix}:r:{pool}:{workspace}`: a list of the workspace's ready jobs in
//!   the pool, oldest first; it exists only while it holds a job.
//! - `{prefix}:turns:{pool}`: a list of the pool's workspaces that have ready
//!   jobs, each once, in the order they are served (round robin).
//! - `{prefix}:bell:{pool}`: a one-entry stream that gets a new entry when
//!   the pool's turns go from empty to not; blocked consumers wait on it.
//! - `{prefix}:q:{pool}`: one stream per pool, read through one consumer
//!   group. A receive moves the jobs it takes from the ready lists into the
//!   stream and reads them in the same script, so an entry is pending in the
//!   group from delivery until it is acknowledged (or reclaimed by another
//!   consumer after the visibility timeout), and is deleted with its
//!   acknowledgement.
//! - `{prefix}:delayed`: a sorted set of jobs scored by due time (ms), moved
//!   to their workspace's ready list by a script once due.
//! - `{prefix}:delayed:counts`, `{prefix}:reclaimed`: per-pool counters.

mod promoter;
mod receive;
mod reply;
mod scripts;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fred::clients::{ExclusivePool, Pool};
use fred::prelude::{ClientLike, Error as RedisError, StreamsInterface, Value};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use self::scripts::{Script, Scripts};
use crate::{
    BrokerConfig, BrokerError, BrokerResult, Delivery, Dispatch, Job, PoolStats, metrics,
    unix_millis, validate_pool,
};

/// Jobs per enqueue script call, so one call never holds Redis for long.
const ENQUEUE_CHUNK: usize = 512;
/// A consumer that holds nothing and has not read for this long belongs to a
/// process that is gone.
const CONSUMER_IDLE_EXPIRY_MS: u64 = 60 * 60 * 1_000;

pub struct RedisQueue {
    shared: Arc<Shared>,
    promoter: tokio::task::JoinHandle<()>,
}

impl Drop for RedisQueue {
    fn drop(&mut self) {
        self.promoter.abort();
    }
}

struct Shared {
    config: BrokerConfig,
    commands: Pool,
    /// Blocking reads each get a connection of their own: a blocked command
    /// would hold up every other command queued behind it.
    blocking: ExclusivePool,
    scripts: Scripts,
    keys: Keys,
    /// Pools whose consumer group this process has created or seen.
    known_groups: Mutex<HashSet<String>>,
    reclaim_scans: Mutex<HashMap<String, ReclaimScan>>,
    rotation: AtomicUsize,
    /// Wakes the promoter when this process schedules a delayed job, which
    /// may be due before the promoter's planned wake-up.
    delayed_scheduled: Notify,
}

struct ReclaimScan {
    next_at: Instant,
    cursor: String,
}

struct Keys {
    prefix: String,
}

impl Keys {
    fn stream(&self, pool: &str) -> String {
        format!("{}:q:{pool}", self.prefix)
    }

    fn turns(&self, pool: &str) -> String {
        format!("{}:turns:{pool}", self.prefix)
    }

    fn bell(&self, pool: &str) -> String {
        format!("{}:bell:{pool}", self.prefix)
    }

    fn delayed(&self) -> String {
        format!("{}:delayed", self.prefix)
    }

    fn delayed_counts(&self) -> String {
        format!("{}:delayed:counts", self.prefix)
    }

    fn reclaimed_counts(&self) -> String {
        format!("{}:reclaimed", self.prefix)
    }
}

/// Redis errors become `Unavailable`; they are logged here, where the detail
/// is still at hand.
fn unavailable(error: RedisError) -> BrokerError {
    tracing::warn!(%error, "redis command failed");
    BrokerError::Unavailable(error.to_string())
}

fn is_missing_group(error: &RedisError) -> bool {
    error.details().contains("NOGROUP")
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves these maps consistent, so a panic
    // elsewhere while holding the lock is no reason to stop serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn encode_job(job: &Job) -> BrokerResult<String> {
    serde_json::to_string(job).map_err(|error| BrokerError::Invalid(error.to_string()))
}

/// The score of a delayed job, or -1 when it is due already.
fn due_millis(not_before: Option<DateTime<Utc>>) -> i64 {
    match not_before {
        Some(at) if at > Utc::now() => unix_millis(at),
        _ => -1,
    }
}

impl RedisQueue {
    pub async fn connect(url: &str, config: &BrokerConfig) -> BrokerResult<Self> {
        config.validate()?;
        let command_timeout = config.command_timeout();
        let builder = tyboo_redis::builder(url, command_timeout)
            .map_err(|error| BrokerError::Invalid(format!("redis url: {error}")))?;
        let commands = builder
            .build_pool(config.command_connections)
            .map_err(unavailable)?;
        let blocking = builder
            .build_exclusive_pool(config.blocking_connections)
            .map_err(unavailable)?;
        let connected = tokio::time::timeout(command_timeout, async {
            commands.init().await?;
            blocking.init().await?;
            Ok::<_, RedisError>(())
        })
        .await;
        match connected {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(unavailable(error)),
            Err(_) => {
                return Err(BrokerError::Unavailable(format!(
                    "no connection to redis within {command_timeout:?}"
                )));
            }
        }
        let scripts = Scripts::load(&commands).await.map_err(unavailable)?;
        let shared = Arc::new(Shared {
            config: config.clone(),
            commands,
            blocking,
            scripts,
            keys: Keys {
                prefix: config.key_prefix.clone(),
            },
            known_groups: Mutex::new(HashSet::new()),
            reclaim_scans: Mutex::new(HashMap::new()),
            rotation: AtomicUsize::new(0),
            delayed_scheduled: Notify::new(),
        });
        let promoter = tokio::spawn(promoter::run(shared.clone()));
        Ok(Self { shared, promoter })
    }
}

impl Shared {
    async fn run(
        &self,
        script: Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Value, RedisError> {
        self.scripts.run(&self.commands, script, keys, args).await
    }

    /// Creates the consumer group of each pool not seen yet. The group starts
    /// at the beginning of the stream, so jobs enqueued before any consumer
    /// existed are not skipped.
    async fn ensure_groups(&self, pools: &[String]) -> Result<(), RedisError> {
        let missing: Vec<String> = {
            let known = lock(&self.known_groups);
            pools
                .iter()
                .filter(|pool| !known.contains(*pool))
                .cloned()
                .collect()
        };
        for pool in missing {
            let created = self
                .commands
                .next()
                .xgroup_create::<Value, _, _, _>(
                    self.keys.stream(&pool),
                    self.config.consumer_group.as_str(),
                    "0",
                    true,
                )
                .await;
            match created {
                Ok(_) => {}
                Err(error) if error.details().contains("BUSYGROUP") => {}
                Err(error) => return Err(error),
            }
            lock(&self.known_groups).insert(pool);
        }
        Ok(())
    }

    /// Forgets the groups of `pools`, after Redis reported one missing (a
    /// restart without persistence), so that the next call recreates them.
    fn forget_groups(&self, pools: &[String]) {
        let mut known = lock(&self.known_groups);
        for pool in pools {
            known.remove(pool);
        }
    }

    async fn enqueue_chunk(&self, jobs: &[(Job, Option<DateTime<Utc>>)]) -> BrokerResult<bool> {
        let mut args = Vec::with_capacity(2 + jobs.len() * 6);
        args.push(self.keys.prefix.clone());
        args.push(unix_millis(Utc::now()).to_string());
        let mut any_delayed = false;
        for (job, not_before) in jobs {
            let due = due_millis(*not_before);
            any_delayed |= due >= 0;
            args.push(job.pool.clone());
            args.push(job.workspace_id.to_string());
            args.push(due.to_string());
            args.push("0".to_owned());
            args.push(Uuid::now_v7().simple().to_string());
            args.push(encode_job(job)?);
        }
        let keys = vec![self.keys.delayed(), self.keys.delayed_counts()];
        self.run(Script::Enqueue, keys, args)
            .await
            .map_err(unavailable)?;
        Ok(any_delayed)
    }

    /// Puts a pending entry back: now or at `due`, with `prior` deliveries
    /// remembered. Returns false when the entry was no longer pending.
    async fn put_back(
        &self,
        job: &Job,
        id: &str,
        prior: u32,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<bool, RedisError> {
        let due = due_millis(not_before);
        let job_json = encode_job(job).map_err(|error| {
            RedisError::new(fred::error::ErrorKind::InvalidArgument, error.to_string())
        })?;
        let keys = vec![
            self.keys.stream(&job.pool),
            self.keys.delayed(),
            self.keys.delayed_counts(),
        ];
        let args = vec![
            self.config.consumer_group.clone(),
            id.to_owned(),
            self.keys.prefix.clone(),
            job.pool.clone(),
            job.workspace_id.to_string(),
            due.to_string(),
            prior.to_string(),
            Uuid::now_v7().simple().to_string(),
            job_json,
            unix_millis(Utc::now()).to_string(),
        ];
        let released = self.run(Script::Release, keys, args).await?;
        if due >= 0 {
            self.delayed_scheduled.notify_one();
        }
        Ok(released.as_i64() == Some(1))
    }

    async fn acknowledge(&self, pool: &str, id: &str) -> Result<bool, RedisError> {
        let keys = vec![self.keys.stream(pool)];
        let args = vec![self.config.consumer_group.clone(), id.to_owned()];
        let acked = self.run(Script::Ack, keys, args).await?;
        Ok(acked.as_i64() == Some(1))
    }
}

#[async_trait]
impl Dispatch for RedisQueue {
    async fn enqueue(&self, job: Job, not_before: Option<DateTime<Utc>>) -> BrokerResult<()> {
        self.enqueue_many(vec![(job, not_before)]).await
    }

    async fn enqueue_many(&self, jobs: Vec<(Job, Option<DateTime<Utc>>)>) -> BrokerResult<()> {
        for (job, _) in &jobs {
            job.validate()?;
        }
        let mut any_delayed = false;
        for chunk in jobs.chunks(ENQUEUE_CHUNK) {
            any_delayed |= self.shared.enqueue_chunk(chunk).await?;
        }
        if any_delayed {
            self.shared.delayed_scheduled.notify_one();
        }
        for (job, _) in &jobs {
            metrics::record_enqueued(&job.pool, 1);
        }
        Ok(())
    }

    async fn receive(
        &self,
        pools: &[String],
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> BrokerResult<Vec<Delivery>> {
        let mut unique_pools: Vec<String> = Vec::with_capacity(pools.len());
        for pool in pools {
            validate_pool(pool)?;
            if !unique_pools.contains(pool) {
                unique_pools.push(pool.clone());
            }
        }
        if consumer.is_empty() {
            return Err(BrokerError::Invalid("consumer name is empty".to_owned()));
        }
        let give_up_at = Instant::now() + wait;
        if max == 0 {
            return Ok(Vec::new());
        }
        if unique_pools.is_empty() {
            tokio::time::sleep_until(give_up_at).await;
            return Ok(Vec::new());
        }
        match self
            .shared
            .receive_once(&unique_pools, consumer, max, give_up_at)
            .await
        {
            Err(error) if is_missing_group(&error) => {
                self.shared.forget_groups(&unique_pools);
                self.shared
                    .receive_once(&unique_pools, consumer, max, give_up_at)
                    .await
                    .map_err(unavailable)
            }
            result => result.map_err(unavailable),
        }
    }

    async fn ack(&self, delivery: &Delivery) -> BrokerResult<()> {
        validate_delivery(delivery)?;
        match self
            .shared
            .acknowledge(&delivery.job.pool, &delivery.id)
            .await
        {
            Ok(true) => {
                metrics::record_acked(&delivery.job.pool);
                Ok(())
            }
            Ok(false) => Ok(()),
            // The group, and with it the delivery, is gone: nothing to ack.
            Err(error) if is_missing_group(&error) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn release(
        &self,
        delivery: &Delivery,
        not_before: Option<DateTime<Utc>>,
    ) -> BrokerResult<()> {
        validate_delivery(delivery)?;
        encode_job(&delivery.job)?;
        let released = self
            .shared
            .put_back(
                &delivery.job,
                &delivery.id,
                delivery.delivery_count,
                not_before,
            )
            .await;
        match released {
            Ok(_) => Ok(()),
            // The delivery vanished with its group; the reconciler re-dispatches
            // steps whose message was lost.
            Err(error) if is_missing_group(&error) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn stats(&self, pool: &str) -> BrokerResult<PoolStats> {
        validate_pool(pool)?;
        let keys = vec![
            self.shared.keys.stream(pool),
            self.shared.keys.delayed_counts(),
            self.shared.keys.reclaimed_counts(),
            self.shared.keys.turns(pool),
        ];
        let args = vec![
            self.shared.config.consumer_group.clone(),
            pool.to_owned(),
            self.shared.keys.prefix.clone(),
        ];
        let reply = self
            .shared
            .run(Script::Stats, keys, args)
            .await
            .map_err(unavailable)?;
        let raw = reply::stats(reply)?;
        let now_millis = unix_millis(Utc::now());
        let oldest_listed = raw
            .oldest_ready_millis
            .map(|millis| Duration::from_millis(u64::try_from(now_millis - millis).unwrap_or(0)));
        let oldest_unread = raw
            .oldest_unread_id
            .as_deref()
            .and_then(|id| reply::age_of_stream_id(id, now_millis));
        let stats = PoolStats {
            ready: raw.ready,
            delayed: raw.delayed,
            in_flight: raw.pending,
            oldest_ready_age: oldest_listed.max(oldest_unread),
            reclaimed_total: raw.reclaimed,
        };
        metrics::record_stats(pool, &stats);
        Ok(stats)
    }
}

fn validate_delivery(delivery: &Delivery) -> BrokerResult<()> {
    validate_pool(&delivery.job.pool)?;
    if !reply::is_stream_id(&delivery.id) {
        return Err(BrokerError::Invalid(format!(
            "unknown message id {:?}",
            delivery.id
        )));
    }
    Ok(())
}
