//! The executor service: versioned workflows and their triggers (manual,
//! webhook, schedule), executions and their node runs, the dead-letter
//! queue, and the workers that run steps.
//!
//! `grpc` adapts requests to `domain`, which holds the rules and decides what
//! commits together; `storage` holds the tables and queries; `work` holds the
//! background tasks (workers, reconciler, scheduler). The database is the
//! source of truth for every execution; the queue only dispatches.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod states;
pub mod storage;
pub mod work;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use config::ExecutorConfig;
pub use domain::Domain;
pub use error::{ExecutorError, ExecutorResult};
pub use grpc::{CircuitBreakerGrpc, DeadLetterGrpc, ExecutionGrpc, WebhookGrpc, WorkflowGrpc};
pub use work::{WorkerHandle, Workers};

use tokio::task::JoinHandle;
use tyboo_auth::KeySource;
use tyboo_broker::Dispatch;
use tyboo_engine::Engine;
use tyboo_proto::executor::circuit_breaker_service_server::CircuitBreakerServiceServer;
use tyboo_proto::executor::dead_letter_service_server::DeadLetterServiceServer;
use tyboo_proto::executor::execution_service_server::ExecutionServiceServer;
use tyboo_proto::executor::webhook_service_server::WebhookServiceServer;
use tyboo_proto::executor::workflow_service_server::WorkflowServiceServer;
use tyboo_runtime::server::GrpcServer;
use tyboo_runtime::shutdown::Shutdown;

/// The running service: a cheap `Clone` handle.
#[derive(Clone, Debug)]
pub struct Executor {
    domain: Domain,
}

impl Executor {
    /// Connects to `database_url` (`sqlite://path?mode=rwc` or
    /// `postgres://…`; on PostgreSQL every table lives in the `executor`
    /// schema). Tokens are verified with keys from `key_source`; steps are
    /// dispatched through `dispatch`. Does not migrate.
    pub async fn connect(
        database_url: &str,
        config: ExecutorConfig,
        key_source: Arc<dyn KeySource>,
        dispatch: Arc<dyn Dispatch>,
    ) -> ExecutorResult<Executor> {
        config.validate().map_err(ExecutorError::Config)?;
        let engine = Engine::new(config.engine.clone())
            .map_err(|error| ExecutorError::Config(format!("engine: {error}")))?;
        let store = storage::connect(database_url, config.database_max_connections).await?;
        Ok(Executor {
            domain: Domain::new(store, config, engine, key_source, dispatch),
        })
    }

    /// Lets workflows use the vault's credentials: saves check the ids they
    /// reference at `vault`, workers decrypt them there, both with the
    /// executor's service token from `tokens`. Without it, credential
    /// references are refused.
    pub fn with_vault(
        self,
        vault: tonic::transport::Channel,
        tokens: tyboo_auth::ServiceTokenSource,
    ) -> ExecutorResult<Executor> {
        self.domain
            .set_vault(domain::credentials::VaultAccess::new(std::sync::Arc::new(
                adapters::vault::GrpcVault::new(vault, tokens),
            )))?;
        Ok(self)
    }

    /// Delivers the usage outbox to metering at `metering`, with the
    /// executor's service token. Without it usage waits in the outbox.
    pub fn with_metering(
        self,
        metering: tonic::transport::Channel,
        tokens: tyboo_auth::ServiceTokenSource,
    ) -> ExecutorResult<Executor> {
        self.domain
            .set_usage_sink(std::sync::Arc::new(adapters::metering::GrpcMetering::new(
                metering, tokens,
            )))?;
        Ok(self)
    }

    /// Holds concurrency slots in `leases` (Redis when steps are dispatched
    /// through Redis, so every worker process shares them) and reads each
    /// workspace's limits from `limits` (tenancy, through a short cache).
    /// Without it, slots are this process's and the limits the defaults.
    pub fn with_concurrency(
        self,
        leases: Arc<dyn tyboo_lease::ConcurrencyLeases>,
        limits: Arc<dyn tyboo_limits::LimitsSource>,
    ) -> ExecutorResult<Executor> {
        self.domain
            .set_concurrency(domain::Concurrency { leases, limits })?;
        Ok(self)
    }

    /// Shares circuit breakers with every other executor and worker process
    /// (Redis, from `tyboo_breaker::connect`); without it each process keeps
    /// its own in-process breakers.
    pub fn with_breakers(
        self,
        breakers: Arc<dyn tyboo_breaker::CircuitBreakers>,
    ) -> ExecutorResult<Executor> {
        self.domain.set_breakers(breakers)?;
        Ok(self)
    }

    /// Audits manual breaker changes at `audit` (tenancy's log in the mesh);
    /// without it they are refused.
    pub fn with_audit(
        self,
        audit: Arc<dyn domain::breakers::AuditSink>,
    ) -> ExecutorResult<Executor> {
        self.domain.set_audit(audit)?;
        Ok(self)
    }

    /// Applies pending migrations; safe to run on every start.
    pub async fn migrate(&self) -> ExecutorResult<()> {
        self.domain.store().migrate().await.map_err(Into::into)
    }

    /// Applies pending migrations at `database_url` with nothing else
    /// started (no engine, no queue), then closes the connection again.
    pub async fn migrate_database(
        database_url: &str,
        config: &ExecutorConfig,
    ) -> ExecutorResult<()> {
        config.validate().map_err(ExecutorError::Config)?;
        storage::migrate(database_url, config.database_max_connections)
            .await
            .map_err(Into::into)
    }

    /// The domain API, for the service's own handlers and for tests.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    pub fn config(&self) -> &ExecutorConfig {
        self.domain.config()
    }

    pub fn workflow_grpc(&self) -> WorkflowServiceServer<WorkflowGrpc> {
        WorkflowServiceServer::new(WorkflowGrpc::new(self.domain.clone()))
    }

    pub fn execution_grpc(&self) -> ExecutionServiceServer<ExecutionGrpc> {
        ExecutionServiceServer::new(ExecutionGrpc::new(self.domain.clone()))
    }

    pub fn dead_letter_grpc(&self) -> DeadLetterServiceServer<DeadLetterGrpc> {
        DeadLetterServiceServer::new(DeadLetterGrpc::new(self.domain.clone()))
    }

    /// Internal, for platform operators: serve it on the executor's port.
    pub fn circuit_breaker_grpc(&self) -> CircuitBreakerServiceServer<CircuitBreakerGrpc> {
        CircuitBreakerServiceServer::new(CircuitBreakerGrpc::new(self.domain.clone()))
    }

    /// Unauthenticated by design (the hook URL is the credential): serve it
    /// only on the internal address the edge calls, never publicly.
    pub fn webhook_grpc(&self) -> WebhookServiceServer<WebhookGrpc> {
        WebhookServiceServer::new(WebhookGrpc::new(self.domain.clone()))
    }

    /// Everything the executor serves on its port.
    pub fn grpc_server(&self) -> GrpcServer {
        GrpcServer::new()
            .with(self.workflow_grpc())
            .with(self.execution_grpc())
            .with(self.dead_letter_grpc())
            .with(self.webhook_grpc())
            .with(self.circuit_breaker_grpc())
    }

    /// Starts the reconciler, the scheduler and the breaker gauges' refresh;
    /// all stop on `shutdown`.
    /// Run them in every executor replica: their writes are compare-and-set.
    pub fn start_background(&self, shutdown: Shutdown) -> Vec<JoinHandle<()>> {
        vec![
            work::reconciler::spawn(self.domain.clone(), shutdown.clone()),
            work::leases::spawn(self.domain.clone(), shutdown.clone()),
            work::scheduler::spawn(self.domain.clone(), shutdown.clone()),
            work::breaker_gauges::spawn(self.domain.clone(), shutdown.clone()),
            work::quota::spawn(self.domain.clone(), shutdown.clone()),
        ]
        .into_iter()
        .chain(work::usage::spawn(self.domain.clone(), shutdown))
        .collect()
    }

    /// Closes the connection pool.
    pub async fn close(self) -> ExecutorResult<()> {
        self.domain
            .store()
            .clone()
            .close()
            .await
            .map_err(Into::into)
    }
}
