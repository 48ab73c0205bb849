//! The vault service: credentials that workflows use to reach other
//! systems, sealed with envelope encryption (a fresh AES-256-GCM data key
//! per credential version, wrapped under a versioned master key), handed in
//! plaintext only to mesh services, and never shown through the public API.
//!
//! `grpc` adapts requests to `domain`, which holds the rules and decides
//! what commits together; `crypto` seals and opens; `storage` holds the
//! tables and queries; `audit` is where every sensitive action is recorded
//! before it takes effect.
#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod storage;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use audit::{AuditRecord, AuditSink, MemoryAuditSink, TenancyAuditSink};
pub use config::{MasterKeyConfig, MasterKeyText, VaultConfig};
pub use domain::Domain;
pub use error::{VaultError, VaultResult};
pub use grpc::{CredentialAccessGrpc, CredentialGrpc, KeyManagementGrpc};

use crypto::KeyRing;
use tyboo_auth::KeySource;
use tyboo_proto::vault::credential_access_service_server::CredentialAccessServiceServer;
use tyboo_proto::vault::credential_service_server::CredentialServiceServer;
use tyboo_proto::vault::key_management_service_server::KeyManagementServiceServer;
use tyboo_runtime::server::GrpcServer;

/// The running service: a cheap `Clone` handle.
#[derive(Clone, Debug)]
pub struct Vault {
    domain: Domain,
}

impl Vault {
    /// Connects to `database_url` (`sqlite://path?mode=rwc` or
    /// `postgres://…`; on PostgreSQL every table lives in the `vault`
    /// schema). Master keys come from `config` (or its key file, generated on
    /// first start in embedded mode); tokens are verified with keys from
    /// `key_source`; sensitive actions are recorded through `audit`. Does not
    /// migrate.
    pub async fn connect(
        database_url: &str,
        config: VaultConfig,
        key_source: Arc<dyn KeySource>,
        audit: Arc<dyn AuditSink>,
    ) -> VaultResult<Vault> {
        config.validate().map_err(VaultError::Config)?;
        let keys = KeyRing::from_config(&config)?;
        let store = storage::connect(database_url, config.database_max_connections).await?;
        Ok(Vault {
            domain: Domain::new(store, config, keys, key_source, audit),
        })
    }

    /// Applies pending migrations; safe to run on every start.
    pub async fn migrate(&self) -> VaultResult<()> {
        self.domain.store().migrate().await.map_err(Into::into)
    }

    /// Applies pending migrations at `database_url` with nothing else
    /// started, then closes the connection again. The master keys are
    /// checked first, as on every start, so a migrated vault can open them.
    pub async fn migrate_database(database_url: &str, config: &VaultConfig) -> VaultResult<()> {
        config.validate().map_err(VaultError::Config)?;
        KeyRing::from_config(config)?;
        storage::migrate(database_url, config.database_max_connections)
            .await
            .map_err(Into::into)
    }

    /// Records the master key versions in use, auditing a change of them as
    /// a rotation. Calling it at start-up, after `migrate`, makes the audit
    /// record appear then; otherwise the first call that needs keys does it.
    pub async fn record_master_keys(&self) -> VaultResult<()> {
        self.domain.record_key_state().await
    }

    /// The domain API, for the service's own handlers and for tests.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    pub fn config(&self) -> &VaultConfig {
        self.domain.config()
    }

    /// Public: the edge routes it from its HTTP annotations.
    pub fn credential_grpc(&self) -> CredentialServiceServer<CredentialGrpc> {
        CredentialServiceServer::new(CredentialGrpc::new(self.domain.clone()))
    }

    /// Internal: plaintext for service tokens only. Serve it on the internal
    /// address; the edge never routes it.
    pub fn access_grpc(&self) -> CredentialAccessServiceServer<CredentialAccessGrpc> {
        CredentialAccessServiceServer::new(CredentialAccessGrpc::new(self.domain.clone()))
    }

    /// Internal: master key status and rewrap, for service tokens.
    pub fn key_management_grpc(&self) -> KeyManagementServiceServer<KeyManagementGrpc> {
        KeyManagementServiceServer::new(KeyManagementGrpc::new(self.domain.clone()))
    }

    /// Everything the vault serves on its port.
    pub fn grpc_server(&self) -> GrpcServer {
        GrpcServer::new()
            .with(self.credential_grpc())
            .with(self.access_grpc())
            .with(self.key_management_grpc())
    }

    /// Closes the connection pool.
    pub async fn close(self) -> VaultResult<()> {
        self.domain
            .store()
            .clone()
            .close()
            .await
            .map_err(Into::into)
    }
}
