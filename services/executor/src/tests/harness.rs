//! Databases, tokens, workers and local HTTP servers for the suite.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tyboo_auth::testing::{FixedKeys, signing_keys};
use tyboo_auth::{Permission, Principal, Role, Subject, TokenSigner};
use tyboo_broker::{BrokerConfig, Dispatch, InProcessQueue};
use tyboo_engine::{Pool, WorkflowGraph};
use tyboo_runtime::shutdown::Shutdown;
use tyboo_store::testing::TestWorld;
pub use tyboo_store::testing::{on_postgres, on_sqlite};
use uuid::Uuid;

use crate::domain::breakers::MemoryAuditSink;
use crate::domain::workflows::Draft;
use crate::domain::{ExecutionDetail, WorkspaceScope};
use crate::{Executor, ExecutorConfig, WorkerHandle, Workers};

pub fn test_config() -> ExecutorConfig {
    let mut config = ExecutorConfig {
        reconcile_interval_ms: 200,
        redispatch_grace_ms: 1_000,
        lease_duration_ms: 2_000,
        heartbeat_interval_ms: 400,
        max_deliveries: 3,
        scheduler_interval_ms: 200,
        worker_receive_wait_ms: 100,
        worker_shutdown_grace_ms: 500,
        ..ExecutorConfig::default()
    };
    // The suite's upstreams listen on loopback.
    config.engine.egress.allow_cidrs = vec!["127.0.0.0/8".to_owned()];
    config
}

/// One test's world: a database, an executor on it, signing keys and a
/// workspace to act in.
#[derive(Clone)]
pub struct World {
    pub url: String,
    pub executor: Executor,
    pub signer: TokenSigner,
    pub keys: Arc<FixedKeys>,
    pub workspace_id: Uuid,
    pub config: ExecutorConfig,
    /// Where this world's breaker changes are audited.
    pub audit: Arc<MemoryAuditSink>,
    /// Redis key prefixes of the breakers this world made, removed when it
    /// closes (the PostgreSQL pass keeps breakers on Redis).
    breaker_prefixes: Arc<std::sync::Mutex<Vec<String>>>,
}

const REDIS_URL_VARIABLE: &str = "TYBOO_TEST_REDIS_URL";

/// The Redis of the PostgreSQL pass, for a world on PostgreSQL.
fn redis_for(database_url: &str) -> Option<String> {
    if !database_url.starts_with("postgres") {
        return None;
    }
    std::env::var(REDIS_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
}

impl World {
    async fn open(url: String, config: ExecutorConfig) -> World {
        let (signer, keys) = signing_keys();
        let dispatch: Arc<dyn Dispatch> = Arc::new(InProcessQueue::new(&BrokerConfig::default()));
        let executor = Executor::connect(&url, config.clone(), keys.clone(), dispatch)
            .await
            .unwrap();
        executor.migrate().await.unwrap();
        let audit = Arc::new(MemoryAuditSink::default());
        let world = World {
            url,
            executor: executor.clone(),
            signer,
            keys,
            workspace_id: Uuid::now_v7(),
            config: config.clone(),
            audit: audit.clone(),
            breaker_prefixes: Arc::default(),
        };
        world.attach_breakers(&executor, &config).await;
        executor.with_audit(audit).unwrap();
        world
    }

    /// Gives `executor` breakers of its own: on Redis under a fresh prefix
    /// in the PostgreSQL pass, in-process otherwise.
    async fn attach_breakers(&self, executor: &Executor, config: &ExecutorConfig) {
        let mut breaker_config = config.breakers.clone();
        breaker_config.key_prefix = format!("tyboo-test-{}", Uuid::now_v7().simple());
        let redis = redis_for(&self.url);
        let breakers = tyboo_breaker::connect(
            redis.as_deref(),
            &breaker_config,
            Arc::new(tyboo_breaker::SystemClock),
        )
        .await
        .expect("breakers connect");
        if redis.is_some() {
            self.breaker_prefixes
                .lock()
                .unwrap()
                .push(breaker_config.key_prefix);
        }
        executor.clone().with_breakers(breakers).unwrap();
    }

    /// Another executor on this world's database, with `config`, fresh
    /// breakers and this world's audit log.
    pub async fn executor_with(&self, config: ExecutorConfig) -> Executor {
        let dispatch: Arc<dyn Dispatch> = Arc::new(InProcessQueue::new(&BrokerConfig::default()));
        let executor = Executor::connect(&self.url, config.clone(), self.keys.clone(), dispatch)
            .await
            .unwrap();
        self.attach_breakers(&executor, &config).await;
        executor.clone().with_audit(self.audit.clone()).unwrap();
        executor
    }

    pub fn sign(&self, principal: &Principal) -> String {
        self.signer
            .sign(principal, Duration::from_secs(300))
            .unwrap()
            .0
    }

    /// A second executor on the same database and queue, as another replica
    /// or a restarted process would be.
    pub async fn reconnect(&self, dispatch: Arc<dyn Dispatch>) -> Executor {
        Executor::connect(&self.url, self.config.clone(), self.keys.clone(), dispatch)
            .await
            .unwrap()
    }

    pub fn principal(&self, workspace_id: Uuid, role: Role) -> Principal {
        Principal {
            subject: Subject::User(Uuid::now_v7()),
            workspace_id: Some(workspace_id),
            organization_id: Some(Uuid::now_v7()),
            role: Some(role),
            api_key_id: None,
            api_key_version: None,
        }
    }

    pub fn token(&self, role: Role) -> String {
        let principal = self.principal(self.workspace_id, role);
        self.signer
            .sign(&principal, Duration::from_secs(300))
            .unwrap()
            .0
    }

    pub fn scope(&self) -> WorkspaceScope {
        WorkspaceScope::for_principal(
            self.principal(self.workspace_id, Role::Owner),
            Permission::WorkflowsWrite,
        )
        .unwrap()
    }

    pub fn other_scope(&self) -> WorkspaceScope {
        WorkspaceScope::for_principal(
            self.principal(Uuid::now_v7(), Role::Owner),
            Permission::WorkflowsWrite,
        )
        .unwrap()
    }

    /// The first-attempt job of `node_id` on the default pool, as the queue
    /// would deliver it.
    pub fn default_job(&self, execution_id: Uuid, node_id: &str) -> tyboo_broker::Job {
        tyboo_broker::Job {
            pool: "default".to_owned(),
            execution_id,
            node_id: node_id.to_owned(),
            attempt: 1,
            workspace_id: self.workspace_id,
        }
    }

    pub fn workers(&self, shutdown: &Shutdown) -> WorkerHandle {
        Workers::start(&self.executor, &Pool::ALL, 4, shutdown.clone())
    }

    pub async fn create(&self, graph: Value) -> Uuid {
        let graph: WorkflowGraph = serde_json::from_value(graph).unwrap();
        self.executor
            .domain()
            .create_workflow(
                &self.scope(),
                Draft {
                    name: "test".to_owned(),
                    description: String::new(),
                    graph,
                },
            )
            .await
            .unwrap()
            .workflow
            .id
    }

    pub async fn start(&self, workflow_id: Uuid, input: Value) -> Uuid {
        self.executor
            .domain()
            .start_execution(&self.scope(), workflow_id, None, input, None)
            .await
            .unwrap()
            .id
    }

    /// Waits until the execution is terminal, for at most `limit`.
    pub async fn finished(&self, execution_id: Uuid, limit: Duration) -> ExecutionDetail {
        let give_up = tokio::time::Instant::now() + limit;
        loop {
            let detail = self
                .executor
                .domain()
                .get_execution(&self.scope(), execution_id)
                .await
                .unwrap();
            let status = detail.execution.status;
            if status.is_terminal() || tokio::time::Instant::now() >= give_up {
                return detail;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The output a node's step ended with.
pub fn output_of(detail: &ExecutionDetail, node_id: &str) -> Value {
    detail
        .steps
        .iter()
        .find(|step| step.node_id == node_id)
        .and_then(|step| step.output.as_deref())
        .map(|text| serde_json::from_str(text).unwrap())
        .unwrap_or(Value::Null)
}

pub fn state_of(detail: &ExecutionDetail, node_id: &str) -> String {
    detail
        .steps
        .iter()
        .find(|step| step.node_id == node_id)
        .map(|step| step.state.as_str().to_owned())
        .unwrap_or_default()
}

impl TestWorld for World {
    const SQLITE_PREFIX: &'static str = "tyboo-executor";
    const POSTGRES_PREFIX: &'static str = "tyboo_x";

    async fn open(url: &str) -> World {
        World::open(url.to_owned(), test_config()).await
    }

    async fn close(self) {
        if let Some(redis) = redis_for(&self.url) {
            let prefixes = self.breaker_prefixes.lock().unwrap().clone();
            for prefix in prefixes {
                tyboo_redis::testing::delete_keys(&redis, &prefix).await;
            }
        }
        let _ = self.executor.close().await;
    }
}

/// A local HTTP upstream that counts calls per path and answers with the
/// status the test sets, so tests see each side effect exactly.
#[derive(Clone)]
pub struct Sink {
    pub url: String,
    pub calls: Arc<AtomicUsize>,
    /// Status to answer with; 200 when zero.
    pub status: Arc<AtomicUsize>,
    /// Milliseconds to wait before answering.
    pub delay_ms: Arc<AtomicUsize>,
}

impl Sink {
    pub async fn start() -> Sink {
        let calls = Arc::new(AtomicUsize::new(0));
        let status = Arc::new(AtomicUsize::new(200));
        let delay_ms = Arc::new(AtomicUsize::new(0));
        let state = (calls.clone(), status.clone(), delay_ms.clone());
        let app = axum::Router::new()
            .fallback(
                |axum::extract::State((calls, status, delay_ms)): axum::extract::State<(
                    Arc<AtomicUsize>,
                    Arc<AtomicUsize>,
                    Arc<AtomicUsize>,
                )>| async move {
                    let delay = delay_ms.load(Ordering::SeqCst) as u64;
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    let count = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    let code = http::StatusCode::from_u16(status.load(Ordering::SeqCst) as u16)
                        .unwrap_or(http::StatusCode::OK);
                    (code, axum::Json(json!({"count": count})))
                },
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sink {
            url,
            calls,
            status,
            delay_ms,
        }
    }

    pub fn count(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A workflow of `graph` in `scope`, created on `executor`.
pub async fn create_in(executor: &Executor, scope: &WorkspaceScope, graph: Value) -> Uuid {
    executor
        .domain()
        .create_workflow(
            scope,
            Draft {
                name: "test".to_owned(),
                description: String::new(),
                graph: serde_json::from_value(graph).unwrap(),
            },
        )
        .await
        .unwrap()
        .workflow
        .id
}

/// An execution of the latest version, started on `executor` in `scope`.
pub async fn start_in(executor: &Executor, scope: &WorkspaceScope, workflow_id: Uuid) -> Uuid {
    executor
        .domain()
        .start_execution(scope, workflow_id, None, json!({}), None)
        .await
        .unwrap()
        .id
}
