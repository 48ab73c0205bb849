//! The rules of the executor: workflows and their versions, admission of
//! executions, the step state machine that workers drive, dead letters and
//! triggers. Nothing here knows about gRPC.

pub mod breakers;
pub mod cancellation;
pub mod concurrency;
pub mod credentials;
pub mod dead_letters;
pub mod executions;
mod failures;
pub mod model;
pub mod pagination;
mod parking;
pub mod progress;
pub mod quota;
pub mod schedules;
mod scope;
pub mod steps;
mod unit;
pub mod usage;
pub mod webhooks;
pub mod workflows;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;
use tyboo_auth::{KeySource, TokenVerifier};
use tyboo_broker::{Dispatch, Job};
use tyboo_engine::{Engine, WorkflowGraph};
use uuid::Uuid;

pub use model::*;
pub use scope::WorkspaceScope;
pub use tyboo_store::Scope;
pub use unit::{RECONCILER, SCHEDULER, WEBHOOK_TOKEN, Work, tenant};

use crate::config::ExecutorConfig;
use crate::error::{ExecutorError, ExecutorResult};
use crate::storage::{self, Store};
use cancellation::CancellationRegistry;
pub use concurrency::Concurrency;

/// Parsed graphs kept per process; versions are immutable, so an entry never
/// goes stale. Cleared wholesale past this many entries to bound memory.
const GRAPH_CACHE_LIMIT: usize = 1024;

/// The executor domain service: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Domain {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: ExecutorConfig,
    engine: Engine,
    dispatch: Arc<dyn Dispatch>,
    verifier: TokenVerifier,
    cancellations: CancellationRegistry,
    /// Ids of executions that reached a terminal status in this process,
    /// for sync webhooks waiting on them.
    finished: broadcast::Sender<Uuid>,
    graphs: Mutex<HashMap<(Uuid, i64), Arc<WorkflowGraph>>>,
    /// Places for sync webhook callers waiting on their execution.
    sync_waiters: Arc<tokio::sync::Semaphore>,
    /// Set once at start-up when a vault is configured; without it every
    /// credential reference is refused at save time.
    vault: OnceLock<credentials::VaultAccess>,
    /// Set once at start-up to shared leases and the workspaces' limits;
    /// until then, leases of this process and the default limits.
    concurrency: OnceLock<Concurrency>,
    local_concurrency: Concurrency,
    /// The circuit breakers outside node calls go through: shared ones set
    /// at start-up, else in-process ones made on first use.
    breakers: OnceLock<Arc<dyn tyboo_breaker::CircuitBreakers>>,
    /// Where manual breaker changes are audited; without it they are refused.
    audit: OnceLock<Arc<dyn breakers::AuditSink>>,
    /// Where the usage outbox is delivered; without it rows wait in the
    /// outbox until a process that has one delivers them.
    usage_sink: OnceLock<Arc<dyn usage::UsageSink>>,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Domain")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Domain {
    pub fn new(
        store: Store,
        config: ExecutorConfig,
        engine: Engine,
        key_source: Arc<dyn KeySource>,
        dispatch: Arc<dyn Dispatch>,
    ) -> Domain {
        let sync_waiters = Arc::new(tokio::sync::Semaphore::new(
            usize::try_from(config.webhook_sync_max_waiters).unwrap_or(usize::MAX),
        ));
        let clock: Arc<dyn tyboo_lease::Clock> = Arc::new(tyboo_lease::SystemClock);
        let leases = tyboo_lease::InProcessLeases::new(&config.concurrency.leases, clock.clone())
            .or_else(|_| {
                tyboo_lease::InProcessLeases::new(&tyboo_lease::LeaseConfig::default(), clock)
            })
            .expect("the default lease settings are valid");
        let local_concurrency = Concurrency {
            leases: Arc::new(leases),
            limits: Arc::new(tyboo_limits::DefaultLimits(tyboo_limits::Limits::default())),
        };
        Domain {
            inner: Arc::new(Inner {
                store,
                config,
                engine,
                dispatch,
                verifier: TokenVerifier::new(key_source),
                cancellations: CancellationRegistry::default(),
                finished: broadcast::channel(1024).0,
                graphs: Mutex::new(HashMap::new()),
                sync_waiters,
                vault: OnceLock::new(),
                concurrency: OnceLock::new(),
                local_concurrency,
                breakers: OnceLock::new(),
                audit: OnceLock::new(),
                usage_sink: OnceLock::new(),
            }),
        }
    }

    pub fn config(&self) -> &ExecutorConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn vault(&self) -> Option<&credentials::VaultAccess> {
        self.inner.vault.get()
    }

    /// Connects the vault. Called once, before serving; a second call is an
    /// error of the caller and is refused.
    pub fn set_vault(&self, vault: credentials::VaultAccess) -> ExecutorResult<()> {
        self.inner
            .vault
            .set(vault)
            .map_err(|_| ExecutorError::Config("the vault is already connected".to_owned()))
    }

    pub fn usage_sink(&self) -> Option<&Arc<dyn usage::UsageSink>> {
        self.inner.usage_sink.get()
    }

    /// Delivers the usage outbox to `sink`. Called once, before serving; a
    /// second call is refused.
    pub fn set_usage_sink(&self, sink: Arc<dyn usage::UsageSink>) -> ExecutorResult<()> {
        self.inner
            .usage_sink
            .set(sink)
            .map_err(|_| ExecutorError::Config("metering is already connected".to_owned()))
    }

    /// Where concurrency slots are held and the limits read.
    pub fn concurrency(&self) -> &Concurrency {
        self.inner
            .concurrency
            .get()
            .unwrap_or(&self.inner.local_concurrency)
    }

    /// Holds slots in `concurrency` (shared leases, the workspaces' limits).
    /// Called once, before serving; a second call is refused.
    pub fn set_concurrency(&self, concurrency: Concurrency) -> ExecutorResult<()> {
        self.inner.concurrency.set(concurrency).map_err(|_| {
            ExecutorError::Config("concurrency leases are already connected".to_owned())
        })
    }

    pub fn dispatch(&self) -> &Arc<dyn Dispatch> {
        &self.inner.dispatch
    }

    pub(crate) fn cancellations(&self) -> &CancellationRegistry {
        &self.inner.cancellations
    }

    /// Subscribes to "this execution finished" notices of this process.
    pub(crate) fn subscribe_finished(&self) -> broadcast::Receiver<Uuid> {
        self.inner.finished.subscribe()
    }

    pub(crate) fn announce_finished(&self, execution_id: Uuid) {
        // No receiver is the common case and not an error.
        let _ = self.inner.finished.send(execution_id);
    }

    /// The parsed graph of a workflow version of `scope`.
    pub(crate) async fn graph(
        &self,
        scope: Scope,
        workflow_id: Uuid,
        version: i64,
    ) -> ExecutorResult<Arc<WorkflowGraph>> {
        self.graph_on(&self.read(scope), workflow_id, version).await
    }

    /// [`Domain::graph`], read on `db` (a transaction) when not cached.
    pub(crate) async fn graph_on<S: tyboo_store::Session>(
        &self,
        db: &S,
        workflow_id: Uuid,
        version: i64,
    ) -> ExecutorResult<Arc<WorkflowGraph>> {
        if let Some(graph) = self.cached_graph(workflow_id, version) {
            return Ok(graph);
        }
        let row = storage::workflows::find_version(db, workflow_id, version)
            .await?
            .ok_or(ExecutorError::NotFound("workflow version"))?;
        let graph: WorkflowGraph = serde_json::from_str(&row.graph).map_err(|error| {
            ExecutorError::Internal(format!(
                "stored graph of workflow {workflow_id} version {version} does not parse: {error}"
            ))
        })?;
        let graph = Arc::new(graph);
        let mut cache = self
            .inner
            .graphs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= GRAPH_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert((workflow_id, version), graph.clone());
        Ok(graph)
    }

    fn cached_graph(&self, workflow_id: Uuid, version: i64) -> Option<Arc<WorkflowGraph>> {
        self.inner
            .graphs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(workflow_id, version))
            .cloned()
    }

    /// Sends jobs for steps whose rows have committed. A failure here loses
    /// nothing: the reconciler dispatches steps whose message went missing.
    pub(crate) async fn dispatch_jobs(
        &self,
        jobs: Vec<(Job, Option<chrono::DateTime<chrono::Utc>>)>,
    ) {
        if jobs.is_empty() {
            return;
        }
        if let Err(error) = self.inner.dispatch.enqueue_many(jobs).await {
            tracing::warn!(%error, "enqueueing steps failed; the reconciler will dispatch them");
        }
    }

    /// The pool a node's jobs run on: its own override, else its type's.
    pub(crate) fn pool_of(&self, node: &tyboo_engine::NodeSpec) -> tyboo_engine::Pool {
        node.pool.unwrap_or_else(|| {
            self.inner
                .engine
                .catalog()
                .get(&node.node_type)
                .map(|info| info.pool)
                .unwrap_or_default()
        })
    }
}

/// The current time as stored.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    storage::now()
}
