//! The receive path: reclaiming stalled entries, taking new ones fairly and
//! blocking until one arrives.

use std::sync::atomic::Ordering;
use std::time::Duration;

use fred::prelude::{ClientLike, Error as RedisError, Options, StreamsInterface, Value};
use tokio::time::Instant;

use super::reply::{self, RawEntry};
use super::scripts::Script;
use super::{CONSUMER_IDLE_EXPIRY_MS, ReclaimScan, Shared, lock};
use crate::{Delivery, Job, metrics};

impl Shared {
    /// Claims entries of `pools` that stayed pending longer than the
    /// visibility timeout, for pools whose scan is due in this process.
    async fn reclaim(
        &self,
        pools: &[String],
        consumer: &str,
        max: usize,
    ) -> Result<Vec<RawEntry>, RedisError> {
        let mut claimed = Vec::new();
        for (pool_index, pool) in pools.iter().enumerate() {
            if claimed.len() >= max {
                break;
            }
            let now = Instant::now();
            let cursor = {
                let scans = lock(&self.reclaim_scans);
                match scans.get(pool) {
                    Some(scan) if scan.next_at > now => continue,
                    Some(scan) => scan.cursor.clone(),
                    None => "0-0".to_owned(),
                }
            };
            let keys = vec![self.keys.stream(pool), self.keys.reclaimed_counts()];
            let args = vec![
                self.config.consumer_group.clone(),
                consumer.to_owned(),
                self.config.visibility_timeout_ms.to_string(),
                cursor,
                (max - claimed.len()).to_string(),
                pool.clone(),
                CONSUMER_IDLE_EXPIRY_MS
                    .max(self.config.visibility_timeout_ms * 10)
                    .to_string(),
            ];
            let reply = self.run(Script::Reclaim, keys, args).await?;
            let (next_cursor, entries) = reply::reclaimed(reply, pool_index).map_err(|error| {
                RedisError::new(fred::error::ErrorKind::Parse, error.to_string())
            })?;
            // An unfinished scan continues on the next receive; a finished one
            // waits for the next interval.
            let next_at = if next_cursor == "0-0" {
                now + self.config.reclaim_interval()
            } else {
                now
            };
            lock(&self.reclaim_scans).insert(
                pool.clone(),
                ReclaimScan {
                    next_at,
                    cursor: next_cursor,
                },
            );
            if !entries.is_empty() {
                metrics::record_reclaimed(pool, entries.len() as u64);
            }
            claimed.extend(entries);
        }
        Ok(claimed)
    }

    /// Takes up to `max` new entries without blocking, one pool at a time in
    /// turn, starting from a rotating pool.
    async fn take(
        &self,
        pools: &[String],
        consumer: &str,
        max: usize,
    ) -> Result<Vec<RawEntry>, RedisError> {
        if max == 0 || pools.is_empty() {
            return Ok(Vec::new());
        }
        let start = self.rotation.fetch_add(1, Ordering::Relaxed) % pools.len();
        let order: Vec<usize> = (0..pools.len())
            .map(|offset| (start + offset) % pools.len())
            .collect();
        let keys = order
            .iter()
            .map(|&index| self.keys.stream(&pools[index]))
            .collect();
        let args = vec![
            self.config.consumer_group.clone(),
            consumer.to_owned(),
            max.to_string(),
        ];
        let reply = self.run(Script::Take, keys, args).await?;
        let mut entries = reply::taken(reply)
            .map_err(|error| RedisError::new(fred::error::ErrorKind::Parse, error.to_string()))?;
        for entry in &mut entries {
            entry.pool_index = order.get(entry.pool_index).copied().unwrap_or(usize::MAX);
        }
        Ok(entries)
    }

    /// Blocks on every pool's stream for up to `block`, on a connection of its
    /// own. Returns nothing if no connection frees up before `give_up_at`.
    async fn blocking_read(
        &self,
        pools: &[String],
        consumer: &str,
        block: Duration,
        give_up_at: Instant,
    ) -> Result<Vec<RawEntry>, RedisError> {
        let block_millis = u64::try_from(block.as_millis()).unwrap_or(u64::MAX);
        if block_millis == 0 {
            return Ok(Vec::new());
        }
        let Ok(client) = tokio::time::timeout_at(give_up_at, self.blocking.acquire()).await else {
            return Ok(Vec::new());
        };
        let stream_keys: Vec<String> = pools.iter().map(|pool| self.keys.stream(pool)).collect();
        let ids = vec![">"; pools.len()];
        let options = Options {
            timeout: Some(block + self.config.command_timeout()),
            ..Options::default()
        };
        let reply: Value = client
            .with_options(&options)
            .xreadgroup(
                self.config.consumer_group.as_str(),
                consumer,
                Some(1),
                Some(block_millis),
                false,
                stream_keys.clone(),
                ids,
            )
            .await?;
        drop(client);
        reply::read_group(reply, |key| {
            stream_keys.iter().position(|stream| stream == key)
        })
        .map_err(|error| RedisError::new(fred::error::ErrorKind::Parse, error.to_string()))
    }

    /// Turns raw entries into deliveries. An entry whose job cannot be read
    /// can never run; it is logged and dropped so it does not come back.
    async fn deliveries(&self, pools: &[String], entries: Vec<RawEntry>) -> Vec<Delivery> {
        let mut deliveries = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some(pool) = pools.get(entry.pool_index) else {
                continue;
            };
            match serde_json::from_str::<Job>(&entry.job) {
                Ok(job) => deliveries.push(Delivery {
                    id: entry.id,
                    job,
                    delivery_count: entry
                        .previous_deliveries
                        .saturating_add(entry.group_deliveries),
                }),
                Err(error) => {
                    tracing::error!(pool = %pool, id = %entry.id, %error, "dropping unreadable queue entry");
                    if let Err(error) = self.acknowledge(pool, &entry.id).await {
                        tracing::warn!(pool = %pool, id = %entry.id, %error, "dropping unreadable entry failed");
                    }
                }
            }
        }
        deliveries
    }

    pub(super) async fn receive_once(
        &self,
        pools: &[String],
        consumer: &str,
        max: usize,
        give_up_at: Instant,
    ) -> Result<Vec<Delivery>, RedisError> {
        self.ensure_groups(pools).await?;
        loop {
            let mut entries = self.reclaim(pools, consumer, max).await?;
            let taken = self.take(pools, consumer, max - entries.len()).await?;
            entries.extend(taken);
            if !entries.is_empty() {
                return Ok(self.deliveries(pools, entries).await);
            }
            let now = Instant::now();
            if now >= give_up_at {
                return Ok(Vec::new());
            }
            let block = (give_up_at - now).min(self.config.block());
            let mut woken = self
                .blocking_read(pools, consumer, block, give_up_at)
                .await?;
            if woken.is_empty() {
                continue;
            }
            // One read covers every pool and may return an entry per pool;
            // what exceeds `max` goes back at once, with its count unchanged.
            for extra in woken.split_off(max.min(woken.len())) {
                let Some(pool) = pools.get(extra.pool_index) else {
                    continue;
                };
                self.put_back(pool, &extra.id, extra.job, extra.previous_deliveries, None)
                    .await?;
            }
            let topped_up = self.take(pools, consumer, max - woken.len()).await?;
            woken.extend(topped_up);
            return Ok(self.deliveries(pools, woken).await);
        }
    }
}
