//! The metering service: the usage ledger of every workspace. The executor
//! writes usage in its own transactions (an outbox) and delivers it here;
//! each event is counted once, whatever is delivered again, and LLM calls
//! are priced when recorded, with the price version kept on the row.
//!
//! `grpc` adapts requests to `domain`, which holds the rules; `storage`
//! holds the table and queries.
#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod storage;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use config::{MeteringConfig, ModelPrice};
pub use domain::Domain;
pub use error::{MeteringError, MeteringResult};
pub use grpc::{MeteringIngestGrpc, UsageGrpc};

use tyboo_auth::KeySource;
use tyboo_proto::metering::metering_ingest_service_server::MeteringIngestServiceServer;
use tyboo_proto::metering::usage_service_server::UsageServiceServer;
use tyboo_runtime::server::GrpcServer;

/// The running service: a cheap `Clone` handle.
#[derive(Clone, Debug)]
pub struct Metering {
    domain: Domain,
}

impl Metering {
    /// Connects to `database_url` (`sqlite://path?mode=rwc` or
    /// `postgres://…`; on PostgreSQL every table lives in the `metering`
    /// schema); tokens are verified with keys from `key_source`. Does not
    /// migrate.
    pub async fn connect(
        database_url: &str,
        config: MeteringConfig,
        key_source: Arc<dyn KeySource>,
    ) -> MeteringResult<Metering> {
        config.validate().map_err(MeteringError::Config)?;
        let store = storage::connect(database_url, config.database_max_connections).await?;
        metrics::describe();
        Ok(Metering {
            domain: Domain::new(store, config, key_source),
        })
    }

    /// Applies pending migrations; safe to run on every start.
    pub async fn migrate(&self) -> MeteringResult<()> {
        self.domain.store().migrate().await.map_err(Into::into)
    }

    /// Applies pending migrations at `database_url` with nothing else
    /// started, then closes the connection again.
    pub async fn migrate_database(
        database_url: &str,
        config: &MeteringConfig,
    ) -> MeteringResult<()> {
        config.validate().map_err(MeteringError::Config)?;
        storage::migrate(database_url, config.database_max_connections)
            .await
            .map_err(Into::into)
    }

    /// The domain API, for the service's own handlers and for tests.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    pub fn config(&self) -> &MeteringConfig {
        self.domain.config()
    }

    /// Public: the edge routes it from its HTTP annotations.
    pub fn usage_grpc(&self) -> UsageServiceServer<UsageGrpc> {
        UsageServiceServer::new(UsageGrpc::new(self.domain.clone()))
    }

    /// Internal: usage delivered by the mesh's services.
    pub fn ingest_grpc(&self) -> MeteringIngestServiceServer<MeteringIngestGrpc> {
        MeteringIngestServiceServer::new(MeteringIngestGrpc::new(self.domain.clone()))
    }

    /// Everything metering serves on its port.
    pub fn grpc_server(&self) -> GrpcServer {
        GrpcServer::new()
            .with(self.usage_grpc())
            .with(self.ingest_grpc())
    }

    /// Closes the connection pool.
    pub async fn close(self) -> MeteringResult<()> {
        self.domain
            .store()
            .clone()
            .close()
            .await
            .map_err(Into::into)
    }
}
