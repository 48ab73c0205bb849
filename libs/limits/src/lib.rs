//! One source of per-workspace limits.
//!
//! A [`Limits`] value says what one workspace may do: requests per minute per
//! API key and per workspace (with their bursts), running executions per
//! workspace and per user, and how long an execution may wait for a slot.
//! It is the platform's defaults ([`LimitsConfig::defaults`]) with the
//! [`LimitOverrides`] an operator stored for that workspace in tenancy.
//!
//! Everything that enforces a limit asks one trait, [`LimitsSource`]. Tenancy
//! answers from its own store; the edge and the executor ask tenancy over
//! gRPC ([`GrpcLimits`]) through [`CachedLimits`], which keeps each answer for
//! `cache_ttl_ms` and serves the last one (or the defaults) while tenancy
//! cannot be reached, so a limit change is in force within seconds and an
//! outage of tenancy never fails a request. Tiers (metering) will stand
//! behind the same trait.

#![forbid(unsafe_code)]

mod cache;
mod config;
mod grpc;
mod proto;

use async_trait::async_trait;
use uuid::Uuid;

pub use crate::cache::CachedLimits;
pub use crate::config::{ConfigError, LimitOverrides, Limits, LimitsConfig};
pub use crate::grpc::GrpcLimits;

#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    /// The workspace does not exist (or the caller may not see it).
    #[error("no such workspace")]
    NotFound,
    /// The source could not answer: its store or the network failed.
    #[error("limits unavailable: {0}")]
    Unavailable(String),
}

/// Where the limits of a workspace come from.
#[async_trait]
pub trait LimitsSource: Send + Sync + 'static {
    async fn limits(&self, workspace_id: Uuid) -> Result<Limits, LimitsError>;
}

/// The configured defaults for every workspace: the source of a process
/// that has no tenancy to ask, and of tests.
#[derive(Clone, Debug)]
pub struct DefaultLimits(pub Limits);

#[async_trait]
impl LimitsSource for DefaultLimits {
    async fn limits(&self, _workspace_id: Uuid) -> Result<Limits, LimitsError> {
        Ok(self.0.clone())
    }
}

#[async_trait]
impl<S: LimitsSource + ?Sized> LimitsSource for std::sync::Arc<S> {
    async fn limits(&self, workspace_id: Uuid) -> Result<Limits, LimitsError> {
        (**self).limits(workspace_id).await
    }
}
