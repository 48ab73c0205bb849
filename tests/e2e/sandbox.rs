//! A mesh of its own for one test: listeners on 127.0.0.1:0, a fresh data
//! folder or PostgreSQL database, the bootstrap owner's key, and clients.
//!
//! The mesh runs in the test's process, or, with
//! `TYBOO_TEST_TOPOLOGY=processes` (on PostgreSQL only), as separate `tyboo`
//! processes on Redis (see `topology`): the same tests then drive the
//! distributed mode.

use std::net::SocketAddr;
use std::path::PathBuf;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::Value;
use tyboo::config::TybooConfig;
use tyboo::mesh::{Mesh, ServiceName};

use crate::topology::{EVERY_POOL, Topology};

/// Which database backend the suite runs against, from `TYBOO_TEST_BACKEND`
/// (`sqlite`, the default, or `postgres`), with the server at
/// `TYBOO_TEST_POSTGRES_URL` (default `postgres://root@127.0.0.1:5432/postgres`).
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

impl Backend {
    pub fn from_env() -> Backend {
        match std::env::var("TYBOO_TEST_BACKEND").as_deref() {
            Ok("postgres") => Backend::Postgres {
                admin_url: std::env::var("TYBOO_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".to_owned()),
            },
            Ok("sqlite") | Err(_) => Backend::Sqlite,
            Ok(other) => panic!("TYBOO_TEST_BACKEND={other}: expected sqlite or postgres"),
        }
    }
}

/// How a sandbox runs its mesh, from `TYBOO_TEST_TOPOLOGY`: `embedded` (the
/// default), every service in the test's process on the in-process queue;
/// or `processes`, tenancy, the vault, the executor, a worker process per
/// pool set and the edge as separate `tyboo` processes on PostgreSQL and
/// Redis (`TYBOO_TEST_REDIS_URL`), which needs `TYBOO_TEST_BACKEND=postgres`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeshMode {
    Embedded,
    Processes,
}

impl MeshMode {
    pub fn from_env() -> MeshMode {
        let mode = match std::env::var("TYBOO_TEST_TOPOLOGY").as_deref() {
            Ok("embedded") | Err(_) => MeshMode::Embedded,
            Ok("processes") => MeshMode::Processes,
            Ok(other) => panic!("TYBOO_TEST_TOPOLOGY={other}: expected embedded or processes"),
        };
        if mode == MeshMode::Processes && !matches!(Backend::from_env(), Backend::Postgres { .. }) {
            panic!(
                "TYBOO_TEST_TOPOLOGY=processes runs every service as its own process on \
                 PostgreSQL and Redis: set TYBOO_TEST_BACKEND=postgres too"
            );
        }
        mode
    }
}

/// Where one test's data lives; removed when the test ends.
pub struct TestStore {
    pub data_dir: PathBuf,
    pub database_url: String,
    postgres: Option<(String, String)>,
}

impl TestStore {
    pub async fn create() -> TestStore {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let data_dir = std::env::temp_dir().join(format!("tyboo-e2e-{unique}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        match Backend::from_env() {
            Backend::Sqlite => TestStore {
                data_dir,
                database_url: String::new(),
                postgres: None,
            },
            Backend::Postgres { admin_url } => {
                let name = format!("tyboo_e2e_{unique}");
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("PostgreSQL answers at TYBOO_TEST_POSTGRES_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                admin.close().await.ok();
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(base, _)| base.to_owned())
                    .unwrap();
                TestStore {
                    data_dir,
                    database_url: format!("{base}/{name}"),
                    postgres: Some((admin_url, name)),
                }
            }
        }
    }

    /// A direct connection to the tenancy database, to do what no API
    /// allows (tampering with the audit log).
    pub async fn tenancy_database(&self) -> DatabaseConnection {
        if self.database_url.is_empty() {
            let path = self.data_dir.join("tenancy.db");
            Database::connect(format!("sqlite://{}?mode=rw", path.display()))
                .await
                .unwrap()
        } else {
            let mut options = sea_orm::ConnectOptions::new(self.database_url.clone());
            options.set_schema_search_path("tenancy");
            Database::connect(options).await.unwrap()
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    pub async fn remove(self) {
        std::fs::remove_dir_all(&self.data_dir).ok();
        if let Some((admin_url, name)) = self.postgres {
            let admin = Database::connect(&admin_url).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .ok();
        }
    }
}

/// A configuration for a test mesh: every port ephemeral, data in `store`.
pub fn test_config(store: &TestStore) -> TybooConfig {
    let mut config = TybooConfig {
        data_dir: store.data_dir.clone(),
        database_url: store.database_url.clone(),
        ..TybooConfig::default()
    };
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    config.listen.edge = any_port;
    config.listen.tenancy = any_port;
    config.listen.admin = any_port;
    config.listen.executor = any_port;
    config.listen.vault = any_port;
    config.listen.metering = any_port;
    // The tests' upstreams are local servers; production refuses loopback.
    config.executor.engine.egress.allow_cidrs =
        vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()];
    // jq evaluates in real sandbox processes of the binary under test.
    config.executor.engine.limits.expression.evaluator_command =
        Some(PathBuf::from(env!("CARGO_BIN_EXE_tyboo")));
    config.bootstrap.owner_email = "owner@example.com".to_owned();
    config.grpc.drain_timeout_seconds = 5;
    config
}

pub struct Sandbox {
    mesh: Option<Mesh>,
    topology: Option<Topology>,
    pub store: Option<TestStore>,
    pub edge: SocketAddr,
    /// The admin listener (`/metrics`) of the process that runs the edge.
    pub admin: SocketAddr,
    pub tenancy: SocketAddr,
    pub vault: SocketAddr,
    pub executor: SocketAddr,
    pub metering: SocketAddr,
    pub owner_key: String,
    pub owner_id: String,
    pub workspace_id: String,
    pub http: reqwest::Client,
}

impl Sandbox {
    pub async fn start() -> Sandbox {
        Self::start_with(|_| {}).await
    }

    /// Starts a mesh on [`test_config`] as `adjust` changes it, in this
    /// process or as separate processes (see [`MeshMode`]).
    pub async fn start_with(adjust: impl FnOnce(&mut TybooConfig)) -> Sandbox {
        let mode = MeshMode::from_env();
        let store = TestStore::create().await;
        let mut config = test_config(&store);
        adjust(&mut config);
        match mode {
            MeshMode::Embedded => {
                let mesh = Mesh::start_embedded(config).await.expect("mesh starts");
                let bootstrap = mesh.bootstrap.clone().expect("first start bootstraps");
                Sandbox {
                    edge: mesh.address(ServiceName::Edge).unwrap(),
                    admin: mesh.admin_address,
                    tenancy: mesh.address(ServiceName::Tenancy).unwrap(),
                    vault: mesh.address(ServiceName::Vault).unwrap(),
                    executor: mesh.address(ServiceName::Executor).unwrap(),
                    metering: mesh.address(ServiceName::Metering).unwrap(),
                    owner_key: bootstrap.api_key.clone(),
                    owner_id: bootstrap.user_id.to_string(),
                    workspace_id: bootstrap.workspace_id.to_string(),
                    mesh: Some(mesh),
                    topology: None,
                    store: Some(store),
                    http: http_client(),
                }
            }
            MeshMode::Processes => {
                let topology = Topology::start(config, &EVERY_POOL).await;
                Sandbox {
                    edge: topology.edge,
                    admin: topology.edge_admin,
                    tenancy: topology.tenancy,
                    vault: topology.vault,
                    executor: topology.executor,
                    metering: topology.metering,
                    owner_key: topology.owner.api_key.clone(),
                    owner_id: topology.owner.owner_id.clone(),
                    workspace_id: topology.owner.workspace_id.clone(),
                    mesh: None,
                    topology: Some(topology),
                    store: Some(store),
                    http: http_client(),
                }
            }
        }
    }

    /// With separate processes, starts one more edge process and returns
    /// where it serves; `None` for a mesh in this process.
    pub async fn add_edge(&mut self) -> Option<SocketAddr> {
        match &mut self.topology {
            Some(topology) => Some(topology.add_edge().await),
            None => None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.edge, path)
    }

    /// Sends a JSON request through the edge; returns status and body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("edge answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(key), None).await
    }

    /// The owner's GET of `path`, the answer's text exactly as sent (numbers
    /// are compared as written, which parsing would hide).
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.owner_key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, key, Some(body))
            .await
    }

    /// Invites `email` with `role` and accepts; returns (user id, API key).
    pub async fn add_member(&self, email: &str, role: &str) -> (String, String) {
        let (status, invitation) = self
            .post(
                &format!("/v1/workspaces/{}/invitations", self.workspace_id),
                Some(&self.owner_key),
                serde_json::json!({"email": email, "role": role}),
            )
            .await;
        assert_eq!(status, 200, "{invitation}");
        let (status, accepted) = self
            .post(
                "/v1/invitations:accept",
                None,
                serde_json::json!({"token": invitation["token"], "displayName": email}),
            )
            .await;
        assert_eq!(status, 200, "{accepted}");
        (
            accepted["member"]["userId"].as_str().unwrap().to_owned(),
            accepted["apiKey"]["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// A gRPC channel to the edge's native gRPC port.
    pub async fn edge_channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.edge))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn metering_channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.metering))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn executor_channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.executor))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn tenancy_channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.tenancy))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn vault_channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.vault))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Runs a statement on the tenancy database; returns the rows it changed.
    pub async fn execute_sql(&self, sql: &str) -> u64 {
        let database = self.store.as_ref().unwrap().tenancy_database().await;
        let backend = database.get_database_backend();
        database
            .execute_raw(Statement::from_string(backend, sql.to_owned()))
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
            .rows_affected()
    }

    pub async fn stop(mut self) {
        if let Some(mesh) = self.mesh.take() {
            mesh.stop().await.expect("mesh stops cleanly");
        }
        if let Some(topology) = self.topology.take() {
            topology.stop().await;
        }
        if let Some(store) = self.store.take() {
            store.remove().await;
        }
    }
}

/// Adds `authorization: Bearer <key>` to a gRPC request.
pub fn with_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// Execution statuses after which nothing more happens.
pub const TERMINAL_STATUSES: [&str; 4] = [
    "EXECUTION_STATUS_SUCCEEDED",
    "EXECUTION_STATUS_FAILED",
    "EXECUTION_STATUS_CANCELLED",
    "EXECUTION_STATUS_TIMED_OUT",
];

impl Sandbox {
    /// Saves a workflow through the edge; returns its id.
    pub async fn create_workflow(&self, name: &str, graph: Value) -> String {
        let (status, created) = self
            .post(
                "/v1/workflows",
                Some(&self.owner_key),
                serde_json::json!({"name": name, "graph": graph}),
            )
            .await;
        assert_eq!(status, 200, "{created}");
        created["workflow"]["id"].as_str().unwrap().to_owned()
    }

    /// The edge URL of a workflow's webhook trigger `node_id`, as its
    /// editors read it.
    pub async fn hook_url(&self, workflow_id: &str, node_id: &str) -> String {
        let (status, listed) = self
            .get(
                &format!("/v1/workflows/{workflow_id}/webhooks"),
                &self.owner_key,
            )
            .await;
        assert_eq!(status, 200, "{listed}");
        let hook = listed["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|hook| hook["nodeId"] == node_id)
            .unwrap_or_else(|| panic!("no webhook `{node_id}`: {listed}"));
        self.url(hook["urlPath"].as_str().unwrap())
    }

    /// Polls an execution until it reaches a terminal status.
    pub async fn wait_for_execution(&self, execution_id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (status, body) = self
                .get(&format!("/v1/executions/{execution_id}"), &self.owner_key)
                .await;
            assert_eq!(status, 200, "{body}");
            let execution = body["execution"].clone();
            let current = execution["status"].as_str().unwrap_or_default().to_owned();
            if TERMINAL_STATUSES.contains(&current.as_str()) {
                return execution;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "execution {execution_id} still {current}: {execution}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Starts a workflow over the API with `input`; returns the execution id.
    pub async fn start_execution(&self, workflow_id: &str, input: Value) -> String {
        let (status, started) = self
            .post(
                &format!("/v1/workflows/{workflow_id}/executions"),
                Some(&self.owner_key),
                serde_json::json!({"input": input}),
            )
            .await;
        assert_eq!(status, 200, "{started}");
        started["execution"]["id"].as_str().unwrap().to_owned()
    }
}

/// The node runs of an execution for `node_id`, in attempt order.
pub fn node_runs<'a>(execution: &'a Value, node_id: &str) -> Vec<&'a Value> {
    execution["nodeRuns"]
        .as_array()
        .map(|runs| runs.iter().filter(|run| run["nodeId"] == node_id).collect())
        .unwrap_or_default()
}

/// An HTTP client for tests. reqwest here shares the engine's TLS stack,
/// which needs its provider installed before the first client is built.
pub fn http_client() -> reqwest::Client {
    tyboo_engine::install_tls_provider();
    reqwest::Client::new()
}
