//! Circuit breakers for outbound node calls, one per (node type, target
//! host), shared by every tenant and every worker that calls that target.
//!
//! A breaker counts calls and failures in a sliding time window. Once the
//! window holds at least the minimum number of calls and the failure rate
//! reaches the threshold, it opens: calls are rejected until a cool-down has
//! passed (doubling with each consecutive trip, capped). Then it is half-open:
//! a fixed number of probe calls go through; enough successes close it, one
//! failure opens it again with a longer cool-down. An operator may force a
//! breaker open or closed, and reset it.
//!
//! Only failures that say the *target* is unhealthy may be recorded as
//! failures (see [`counts_against_target`]): a breaker is shared between
//! tenants, so one tenant's bad credentials must never open it for others.
//!
//! Two implementations sit behind [`CircuitBreakers`]: [`InProcessBreakers`]
//! for the embedded mode and [`RedisBreakers`] for the distributed one, where
//! each operation is one atomic Lua script. Time comes from a [`Clock`] (the
//! Redis scripts take it as an argument), so tests drive it exactly. One
//! conformance suite runs against both.
#![forbid(unsafe_code)]

mod classify;
mod clock;
mod config;
mod key;
mod machine;
mod memory;
pub mod metrics;
mod redis;
mod state;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use crate::classify::{FailureKind, counts_against_target};
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::config::BreakerConfig;
pub use crate::key::{BreakerKey, MAX_HOST_LEN, MAX_NODE_TYPE_LEN};
pub use crate::memory::InProcessBreakers;
pub use crate::redis::RedisBreakers;
pub use crate::state::{BreakerState, CircuitState};

/// What a caller may do with one call to the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The breaker is closed (or forced closed): call.
    Allowed,
    /// The breaker is half-open and this call took one of its trial slots:
    /// call, and record the result, which decides whether it closes.
    Probe,
    /// Do not call before `retry_at`: then the breaker may admit a probe.
    Rejected { retry_at: DateTime<Utc> },
}

/// The result of an admitted call, as far as the target's health goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Debug, thiserror::Error)]
pub enum BreakerError {
    #[error("breaker store unavailable: {0}")]
    Unavailable(String),
    #[error("invalid breaker key: {0}")]
    InvalidKey(String),
    #[error("invalid breaker config: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
}

pub type BreakerResult<T> = Result<T, BreakerError>;

#[async_trait]
pub trait CircuitBreakers: Send + Sync + 'static {
    /// Asks to make one call to the target of `key`.
    async fn admit(&self, key: &BreakerKey) -> BreakerResult<Admission>;

    /// Records the result of an admitted call. While half-open, every result
    /// counts as a probe's; while open or forced, results are ignored (they
    /// belong to calls admitted before the breaker opened).
    async fn record(&self, key: &BreakerKey, outcome: Outcome) -> BreakerResult<()>;

    /// The breaker of `key` as of now; a key never seen is closed.
    async fn get(&self, key: &BreakerKey) -> BreakerResult<BreakerState>;

    /// Every breaker with state worth reporting (any recorded call within the
    /// idle expiry, or a forced state), ordered by key. Also refreshes the
    /// state gauges.
    async fn list(&self) -> BreakerResult<Vec<BreakerState>>;

    /// Forgets the breaker of `key`: closed, empty window, no trips.
    async fn reset(&self, key: &BreakerKey) -> BreakerResult<()>;

    /// Rejects every call until reset or forced closed.
    async fn force_open(&self, key: &BreakerKey) -> BreakerResult<()>;

    /// Admits every call and ignores results until reset or forced open.
    async fn force_closed(&self, key: &BreakerKey) -> BreakerResult<()>;
}

/// Opens the breakers the configuration asks for: Redis when `url` is given,
/// in-process otherwise.
pub async fn connect(
    url: Option<&str>,
    config: &BreakerConfig,
    clock: Arc<dyn Clock>,
) -> BreakerResult<Arc<dyn CircuitBreakers>> {
    config.validate()?;
    match url {
        Some(url) => Ok(Arc::new(RedisBreakers::connect(url, config, clock).await?)),
        None => Ok(Arc::new(InProcessBreakers::new(config, clock)?)),
    }
}
