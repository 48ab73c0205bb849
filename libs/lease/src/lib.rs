//! Concurrency leases, as Hatchet's concurrency keys: at most `limit` holders
//! per key at once, each lease lasting `ttl` unless its holder renews it.
//!
//! A lease is how a running execution occupies a slot of its workspace and of
//! the user who started it. Leases expire instead of waiting for a release, so
//! a holder that crashes (a killed worker, a lost process) frees its slot once
//! its ttl has run out; nothing has to notice the crash. Expired leases are
//! reclaimed lazily by every operation on their key, so there is no sweeper
//! whose absence could leak slots.
//!
//! Time comes from an injectable [`Clock`] and is counted in whole
//! milliseconds; the Redis scripts receive it as an argument rather than
//! reading Redis's clock, so tests with a [`ManualClock`] are exact.
//!
//! Two implementations sit behind [`ConcurrencyLeases`]: [`InProcessLeases`]
//! for the embedded mode and [`RedisLeases`] (a sorted set per key) for the
//! distributed one. One conformance suite runs against both.
#![forbid(unsafe_code)]

mod clock;
mod config;
mod memory;
pub mod metrics;
mod redis;
mod request;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::config::LeaseConfig;
pub use crate::memory::InProcessLeases;
pub use crate::redis::RedisLeases;

/// The answer to a request for one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// The holder has the lease (new or renewed) until `expires_at`.
    Granted { expires_at: DateTime<Utc> },
    /// Every slot is taken by a live lease of another holder; nothing changed.
    Full { held: u32, limit: u32 },
}

/// The answer to a request for one slot of each of several keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcquireAll {
    /// The holder has a lease on every key until `expires_at`.
    Granted { expires_at: DateTime<Utc> },
    /// The key at `index` of the request (the first one found full) has no
    /// free slot; no lease was taken or renewed on any key.
    Full { index: usize, held: u32, limit: u32 },
}

impl AcquireAll {
    /// The answer for a request of one key.
    fn single(self) -> Acquire {
        match self {
            AcquireAll::Granted { expires_at } => Acquire::Granted { expires_at },
            AcquireAll::Full { held, limit, .. } => Acquire::Full { held, limit },
        }
    }
}

/// One live lease on a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("leases unavailable: {0}")]
    Unavailable(String),
    #[error("invalid lease request: {0}")]
    Invalid(String),
}

pub type LeaseResult<T> = Result<T, LeaseError>;

/// Slots per key, held by named holders (an execution id, say). A key is any
/// string naming what is limited (`workspace:{id}`, `user:{id}`); a holder
/// counts at most once per key however often it acquires.
#[async_trait]
pub trait ConcurrencyLeases: Send + Sync {
    /// Takes a slot of `key` for `holder` until now + `ttl`, when fewer than
    /// `limit` live leases are held. A holder that has the lease already
    /// renews it and is granted even over `limit` (the limit may have been
    /// lowered since); it is never counted twice.
    async fn acquire(
        &self,
        key: &str,
        holder: &str,
        limit: u32,
        ttl: Duration,
    ) -> LeaseResult<Acquire>;

    /// Takes a slot of every `(key, limit)` for `holder`, atomically: either
    /// all are granted (or renewed) or none is and nothing changes. The keys
    /// must be distinct.
    async fn acquire_all(
        &self,
        keys: &[(&str, u32)],
        holder: &str,
        ttl: Duration,
    ) -> LeaseResult<AcquireAll>;

    /// Extends `holder`'s lease of `key` to now + `ttl`. False when the
    /// holder has no live lease (it expired, possibly handed to another
    /// holder since, or was released): the holder no longer owns the slot.
    async fn renew(&self, key: &str, holder: &str, ttl: Duration) -> LeaseResult<bool>;

    /// Gives the slot back. Releasing a lease not held does nothing.
    async fn release(&self, key: &str, holder: &str) -> LeaseResult<()>;

    /// Live leases of `key`.
    async fn held(&self, key: &str) -> LeaseResult<u32>;

    /// The live leases of `key`, soonest to expire first (ties by holder).
    async fn holders(&self, key: &str) -> LeaseResult<Vec<Lease>>;
}

/// Opens the leases the configuration asks for: Redis when `url` is given,
/// in-process otherwise.
pub async fn connect(
    url: Option<&str>,
    config: &LeaseConfig,
    clock: Arc<dyn Clock>,
) -> LeaseResult<Arc<dyn ConcurrencyLeases>> {
    match url {
        Some(url) => Ok(Arc::new(RedisLeases::connect(url, config, clock).await?)),
        None => Ok(Arc::new(InProcessLeases::new(config, clock)?)),
    }
}
