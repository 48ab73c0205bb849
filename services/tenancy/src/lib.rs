//! The tenancy service: organizations, workspaces, users, memberships and
//! roles, invitations, API keys, the keys that sign principal tokens, and
//! the hash-chained audit log of every change to them.
//!
//! `grpc` adapts requests to `domain`, which holds the rules and decides
//! what commits together; `storage` holds the tables and queries.
#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod storage;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use config::TenancyConfig;
pub use domain::{Bootstrap, Domain};
pub use error::{TenancyError, TenancyResult};
pub use grpc::{AuditGrpc, AuthGrpc, LimitsGrpc, TenancyGrpc};

use domain::validation::{Email, Name};
use tyboo_proto::tenancy::audit_service_server::AuditServiceServer;
use tyboo_proto::tenancy::auth_service_server::AuthServiceServer;
use tyboo_proto::tenancy::limits_service_server::LimitsServiceServer;
use tyboo_proto::tenancy::tenancy_service_server::TenancyServiceServer;
use tyboo_runtime::server::GrpcServer;

/// The running service: a cheap `Clone` handle.
#[derive(Clone, Debug)]
pub struct Tenancy {
    domain: Domain,
}

impl Tenancy {
    /// Connects to `database_url` (`sqlite://path?mode=rwc` or
    /// `postgres://…`). On PostgreSQL every table lives in the `tenancy`
    /// schema, created if missing and first on each connection's search
    /// path. Does not migrate.
    pub async fn connect(database_url: &str, config: TenancyConfig) -> TenancyResult<Tenancy> {
        config.validate().map_err(TenancyError::Config)?;
        let store = storage::connect(database_url, config.database_max_connections).await?;
        Ok(Tenancy {
            domain: Domain::new(store, config),
        })
    }

    /// Applies pending migrations; safe to run on every start.
    pub async fn migrate(&self) -> TenancyResult<()> {
        self.domain.store().migrate().await.map_err(Into::into)
    }

    /// Applies pending migrations at `database_url` with nothing else
    /// started, then closes the connection again.
    pub async fn migrate_database(database_url: &str, config: &TenancyConfig) -> TenancyResult<()> {
        config.validate().map_err(TenancyError::Config)?;
        storage::migrate(database_url, config.database_max_connections)
            .await
            .map_err(Into::into)
    }

    /// The domain API, for the service's own handlers and for tests.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    pub fn config(&self) -> &TenancyConfig {
        self.domain.config()
    }

    pub fn tenancy_grpc(&self) -> TenancyServiceServer<TenancyGrpc> {
        TenancyServiceServer::new(TenancyGrpc::new(self.domain.clone()))
    }

    pub fn auth_grpc(&self) -> AuthServiceServer<AuthGrpc> {
        AuthServiceServer::new(AuthGrpc::new(self.domain.clone()))
    }

    /// Internal: other services append to the audit log with service
    /// tokens. Not routed by the edge.
    pub fn audit_grpc(&self) -> AuditServiceServer<AuditGrpc> {
        AuditServiceServer::new(AuditGrpc::new(self.domain.clone()))
    }

    /// Everything tenancy serves on its port.
    pub fn grpc_server(&self) -> GrpcServer {
        GrpcServer::new()
            .with(self.tenancy_grpc())
            .with(self.auth_grpc())
            .with(self.audit_grpc())
            .with(self.limits_grpc())
    }

    /// A workspace's limits: read by members, the edge and the executor;
    /// changed by operators.
    pub fn limits_grpc(&self) -> LimitsServiceServer<LimitsGrpc> {
        LimitsServiceServer::new(LimitsGrpc::new(self.domain.clone()))
    }

    /// The same tenancy with `limits` as every workspace's defaults.
    pub fn with_limit_defaults(self, limits: tyboo_limits::Limits) -> Tenancy {
        let domain = Domain::with_limit_defaults(
            self.domain.store().clone(),
            self.domain.config().clone(),
            limits,
        );
        Tenancy { domain }
    }

    /// The published verification keys, read from this service's database.
    pub fn key_source(&self) -> Arc<dyn tyboo_auth::KeySource> {
        self.domain.key_source()
    }

    /// On first start (no organization yet) creates an organization, a
    /// workspace, an owner and the owner's API key, all audited as "system",
    /// and returns them; afterwards returns `None`.
    pub async fn bootstrap_if_empty(
        &self,
        org_name: &str,
        workspace_name: &str,
        owner_email: &str,
    ) -> TenancyResult<Option<Bootstrap>> {
        let max_length = self.config().max_name_length;
        let organization_name = Name::parse("organization_name", org_name, max_length)?;
        let workspace_name = Name::parse("workspace_name", workspace_name, max_length)?;
        let owner_email = Email::parse("owner_email", owner_email)?;
        self.domain
            .bootstrap_if_empty(&organization_name, &workspace_name, &owner_email)
            .await
    }

    /// Closes the connection pool.
    pub async fn close(self) -> TenancyResult<()> {
        self.domain
            .store()
            .clone()
            .close()
            .await
            .map_err(Into::into)
    }
}
