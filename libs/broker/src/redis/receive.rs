//! The receive path: reclaiming stalled entries, taking new ones fairly
//! (across pools, and within a pool across workspaces) and blocking until a
//! pool's bell says one may have arrived.

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
    /// turn, starting from a rotating pool. When there are none, also returns
    /// the last bell id of each pool, to wait for the next from.
    async fn take(
        &self,
        pools: &[String],
        consumer: &str,
        max: usize,
    ) -> Result<(Vec<RawEntry>, Vec<String>), RedisError> {
        if max == 0 || pools.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let start = self.rotation.fetch_add(1, Ordering::Relaxed) % pools.len();
        let order: Vec<usize> = (0..pools.len())
            .map(|offset| (start + offset) % pools.len())
            .collect();
        let keys = order
            .iter()
            .map(|&index| self.keys.stream(&pools[index]))
            .collect();
        let mut args = vec![
            self.config.consumer_group.clone(),
            consumer.to_owned(),
            max.to_string(),
            self.keys.prefix.clone(),
        ];
        args.extend(order.iter().map(|&index| pools[index].clone()));
        let reply = self.run(Script::Take, keys, args).await?;
        let (mut entries, ordered_bells) = reply::taken(reply)
            .map_err(|error| RedisError::new(fred::error::ErrorKind::Parse, error.to_string()))?;
        for entry in &mut entries {
            entry.pool_index = order.get(entry.pool_index).copied().unwrap_or(usize::MAX);
        }
        let mut bells = vec!["0-0".to_owned(); pools.len()];
        for (position, bell) in ordered_bells.into_iter().enumerate() {
            if let Some(&index) = order.get(position) {
                bells[index] = bell;
            }
        }
        Ok((entries, bells))
    }

    /// Blocks for up to `block` until a bell of `pools` rings after the ids
    /// in `bells`, on a connection of its own. Returns early if no connection
    /// frees up before `give_up_at`.
    async fn wait_for_bell(
        &self,
        pools: &[String],
        bells: Vec<String>,
        block: Duration,
        give_up_at: Instant,
    ) -> Result<(), RedisError> {
        let block_millis = u64::try_from(block.as_millis()).unwrap_or(u64::MAX);
        if block_millis == 0 {
            return Ok(());
        }
        let Ok(client) = tokio::time::timeout_at(give_up_at, self.blocking.acquire()).await else {
            return Ok(());
        };
        let bell_keys: Vec<String> = pools.iter().map(|pool| self.keys.bell(pool)).collect();
        let options = Options {
            timeout: Some(block + self.config.command_timeout()),
            ..Options::default()
        };
        let _: Value = client
            .with_options(&options)
            .xread(Some(1), Some(block_millis), bell_keys, bells)
            .await?;
        Ok(())
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
            let (taken, bells) = self.take(pools, consumer, max - entries.len()).await?;
            entries.extend(taken);
            if !entries.is_empty() {
                return Ok(self.deliveries(pools, entries).await);
            }
            let now = Instant::now();
            if now >= give_up_at {
                return Ok(Vec::new());
            }
            let block = (give_up_at - now).min(self.config.block());
            // Woken or not, the next round takes what there is: a bell only
            // says that a pool's ready jobs went from none to some.
            self.wait_for_bell(pools, bells, block, give_up_at).await?;
        }
    }
}
