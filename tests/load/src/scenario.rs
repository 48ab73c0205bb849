//! The system under test (an embedded mesh or a running edge) and the
//! workflow driven through it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::{Value, json};
use tyboo::config::{SqliteSynchronous, TybooConfig};
use tyboo::mesh::{Mesh, ServiceName};

use tyboo_proto::tyboo::executor::v1 as pb;
use tyboo_proto::tyboo::executor::v1::execution_service_client::ExecutionServiceClient;

use crate::{Args, SqliteSync, Via, WorkflowKind};

pub struct Target {
    pub edge: String,
    pub api_key: String,
    pub http: reqwest::Client,
    /// Native gRPC to the edge, for `--via grpc`.
    grpc: Option<ExecutionServiceClient<tonic::transport::Channel>>,
    embedded: Option<(Mesh, Option<std::path::PathBuf>)>,
    /// Redis URL and key prefix of an embedded mesh's queue, removed at
    /// the end of the run.
    queue_keys: Option<(String, String)>,
}

impl Target {
    pub async fn open(args: &Args) -> anyhow::Result<Target> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency.max(1))
            .build()?;
        if let (Some(edge), Some(api_key)) = (&args.edge, &args.api_key) {
            let me: Value = http
                .get(format!("{edge}/v1/me"))
                .bearer_auth(api_key)
                .send()
                .await?
                .error_for_status()
                .context("the API key is not accepted")?
                .json()
                .await?;
            me["principal"]["workspaceId"]
                .as_str()
                .context("no workspace in /v1/me")?;
            let edge = edge.trim_end_matches('/').to_owned();
            return Ok(Target {
                grpc: grpc_client(args, &edge).await?,
                edge,
                api_key: api_key.clone(),
                http,
                embedded: None,
                queue_keys: None,
            });
        }
        let (data_dir, owned) = match &args.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let dir = std::env::temp_dir().join(format!("tyboo-load-{}", uuid::Uuid::now_v7()));
                (dir.clone(), Some(dir))
            }
        };
        let mut config = TybooConfig {
            data_dir,
            database_url: args.database_url.clone().unwrap_or_default(),
            queue_url: args.queue_url.clone().unwrap_or_default(),
            sqlite_synchronous: match args.sqlite_synchronous {
                SqliteSync::Full => SqliteSynchronous::Full,
                SqliteSync::Normal => SqliteSynchronous::Normal,
            },
            ..TybooConfig::default()
        };
        // A key prefix of this run's own on a shared Redis.
        config.executor.broker.key_prefix = format!("tyboo-load-{}", uuid::Uuid::now_v7().simple());
        config.executor.concurrency.leases.key_prefix = config.executor.broker.key_prefix.clone();
        config.executor.breakers.key_prefix = config.executor.broker.key_prefix.clone();
        config.edge.rate_limits.redis.key_prefix = config.executor.broker.key_prefix.clone();
        // One key drives the whole load from one address: the edge checks
        // its request limits on every call, with quotas no run reaches
        // (`--scenario edge-limits` measures what the checks cost) unless
        // `--default-request-limits` keeps the defaults. Running executions
        // keep their default limits.
        config.executor.usage.enabled = !args.no_metering;
        if !args.default_request_limits {
            let limits = &mut config.limits.defaults;
            limits.api_key_requests_per_minute = 6_000_000;
            limits.api_key_burst = 1_000_000;
            limits.workspace_requests_per_minute = 6_000_000;
            limits.workspace_burst = 1_000_000;
        }
        let queue_keys = (!config.queue_url.is_empty()).then(|| {
            (
                config.queue_url.clone(),
                config.executor.broker.key_prefix.clone(),
            )
        });
        let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config.listen.edge = any_port;
        config.listen.tenancy = any_port;
        config.listen.executor = any_port;
        config.listen.metering = any_port;
        config.listen.admin = any_port;
        config.log.filter = "warn".to_owned();
        config.edge.max_body_bytes = 4 * 1024 * 1024;
        // jq runs in sandbox processes of the `tyboo` binary built beside
        // this one, as in a deployment; without it, in threads.
        let sibling = std::env::current_exe()?.with_file_name("tyboo");
        if sibling.is_file() {
            config.executor.engine.limits.expression.evaluator_command = Some(sibling);
        }
        tyboo_runtime_logging(&config);
        let mesh = Mesh::start_embedded(config).await?;
        let bootstrap = mesh
            .bootstrap
            .clone()
            .context("the data folder is not empty: pass an empty --data-dir")?;
        let edge = format!(
            "http://{}",
            mesh.address(ServiceName::Edge).context("no edge")?
        );
        Ok(Target {
            grpc: grpc_client(args, &edge).await?,
            edge,
            api_key: bootstrap.api_key,
            http,
            embedded: Some((mesh, owned)),
            queue_keys,
        })
    }

    /// Whose CPU time counts: the given processes, or this one when the
    /// mesh runs inside it.
    pub fn cpu_pids(&self, pids: &[u32]) -> Vec<u32> {
        if self.embedded.is_some() || pids.is_empty() {
            vec![std::process::id()]
        } else {
            pids.to_vec()
        }
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        if let Some((mesh, owned)) = self.embedded {
            mesh.stop().await?;
            if let Some(dir) = owned {
                std::fs::remove_dir_all(dir).ok();
            }
        }
        if let Some((url, prefix)) = self.queue_keys {
            delete_redis_keys(&url, &prefix)?;
        }
        Ok(())
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.edge))
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.edge))
            .bearer_auth(&self.api_key)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("GET {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }
}

/// Removes the keys under `prefix` with `redis-cli` (SCAN, then DEL).
pub(crate) fn delete_redis_keys(url: &str, prefix: &str) -> anyhow::Result<()> {
    let scanned = std::process::Command::new("redis-cli")
        .args(["-u", url, "--scan", "--pattern", &format!("{prefix}*")])
        .output()
        .context("running redis-cli")?;
    let listed = String::from_utf8_lossy(&scanned.stdout);
    let keys: Vec<&str> = listed.lines().filter(|key| !key.is_empty()).collect();
    for chunk in keys.chunks(100) {
        std::process::Command::new("redis-cli")
            .args(["-u", url, "DEL"])
            .args(chunk)
            .output()
            .context("running redis-cli")?;
    }
    Ok(())
}

async fn grpc_client(
    args: &Args,
    edge: &str,
) -> anyhow::Result<Option<ExecutionServiceClient<tonic::transport::Channel>>> {
    if args.via != Via::Grpc {
        return Ok(None);
    }
    let channel = tonic::transport::Endpoint::from_shared(edge.to_owned())?
        .connect()
        .await
        .context("connecting to the edge over gRPC")?;
    Ok(Some(ExecutionServiceClient::new(channel)))
}

fn tyboo_runtime_logging(config: &TybooConfig) {
    tyboo_runtime::telemetry::init_logging(&config.log);
}

pub struct Scenario {
    kind: WorkflowKind,
    workflow_id: String,
    /// The webhook URL path at the edge, for webhook scenarios.
    hook_url_path: String,
}

impl Scenario {
    pub async fn prepare(target: &Target, kind: WorkflowKind) -> anyhow::Result<Scenario> {
        let hook_path = format!("load-{}", uuid::Uuid::now_v7().simple());
        let graph = match kind {
            WorkflowKind::Noop => json!({
                "nodes": [{"id": "start", "type": "trigger.manual"},
                          {"id": "done", "type": "set", "parameters": {"values": {"ok": true}}}],
                "edges": [{"from": "start", "to": "done"}]
            }),
            WorkflowKind::Webhook3 => json!({
                "nodes": [{"id": "hook", "type": "trigger.webhook",
                           "parameters": {"path": hook_path, "mode": "async"}},
                          {"id": "shape", "type": "transform",
                           "parameters": {"program": "{id: .trigger.body.id, n: (.trigger.body.n + 1)}"}},
                          {"id": "done", "type": "set", "parameters": {"values": {"ok": true}, "include_input": true}}],
                "edges": [{"from": "hook", "to": "shape"}, {"from": "shape", "to": "done"}]
            }),
            WorkflowKind::Chain40 => {
                let mut nodes = vec![json!({"id": "start", "type": "trigger.manual"})];
                let mut edges = Vec::new();
                let mut previous = "start".to_owned();
                for index in 0..40 {
                    let id = format!("step{index}");
                    nodes.push(
                        json!({"id": id, "type": "set", "parameters": {"values": {"i": index}}}),
                    );
                    edges.push(json!({"from": previous, "to": id}));
                    previous = id;
                }
                json!({"nodes": nodes, "edges": edges})
            }
        };
        let created = target
            .post(
                "/v1/workflows",
                &json!({"name": format!("load {kind:?}"), "graph": graph}),
            )
            .await?;
        let workflow_id = created["workflow"]["id"]
            .as_str()
            .context("no workflow id")?
            .to_owned();
        let hook_url_path = match kind {
            WorkflowKind::Webhook3 => target
                .get(&format!("/v1/workflows/{workflow_id}/webhooks"))
                .await?["webhooks"][0]["urlPath"]
                .as_str()
                .context("no webhook URL")?
                .to_owned(),
            _ => String::new(),
        };
        Ok(Scenario {
            kind,
            workflow_id,
            hook_url_path,
        })
    }

    /// Starts `count` executions, paced at `rate` per second when positive.
    pub async fn start_all(
        &self,
        target: &Target,
        count: usize,
        rate: f64,
        concurrency: usize,
    ) -> anyhow::Result<Vec<String>> {
        let began = Instant::now();
        let ids = futures::stream::iter(0..count)
            .map(|index| async move {
                if rate > 0.0 {
                    let due = began + Duration::from_secs_f64(index as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                self.start_one(target, index).await
            })
            .buffer_unordered(concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        ids.into_iter().collect()
    }

    async fn start_one(&self, target: &Target, index: usize) -> anyhow::Result<String> {
        let reply = match self.kind {
            WorkflowKind::Webhook3 => {
                let response = target
                    .http
                    .post(format!("{}{}", target.edge, self.hook_url_path))
                    .json(&json!({"id": index, "n": index}))
                    .send()
                    .await?;
                if response.status().as_u16() != 202 {
                    bail!("webhook answered {}", response.status());
                }
                response.json::<Value>().await?
            }
            WorkflowKind::Noop | WorkflowKind::Chain40 if target.grpc.is_some() => {
                let mut client = target.grpc.clone().context("no gRPC client")?;
                let mut request = tonic::Request::new(pb::StartExecutionRequest {
                    workflow_id: self.workflow_id.clone(),
                    version: None,
                    input: Some(tyboo_executor::grpc::conversions::json_message(
                        &json!({"n": index}),
                    )),
                    idempotency_key: String::new(),
                });
                request.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {}", target.api_key).parse()?,
                );
                let started = client.start_execution(request).await?.into_inner();
                json!({"executionId": started.execution.context("no execution")?.id})
            }
            WorkflowKind::Noop | WorkflowKind::Chain40 => {
                let started = target
                    .post(
                        &format!("/v1/workflows/{}/executions", self.workflow_id),
                        &json!({"input": {"n": index}}),
                    )
                    .await?;
                json!({"executionId": started["execution"]["id"]})
            }
        };
        Ok(reply["executionId"]
            .as_str()
            .context("no execution id")?
            .to_owned())
    }

    /// Waits until none of the workflow's executions is queued or running.
    pub async fn wait_until_finished(
        &self,
        target: &Target,
        execution_ids: &[String],
        limit: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let mut open = 0;
            for status in ["EXECUTION_STATUS_QUEUED", "EXECUTION_STATUS_RUNNING"] {
                let listed = target
                    .get(&format!(
                        "/v1/executions?workflowId={}&status={status}&pageSize=1",
                        self.workflow_id
                    ))
                    .await?;
                open += listed["executions"].as_array().map(Vec::len).unwrap_or(0);
            }
            if open == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} executions did not finish in time", execution_ids.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every execution with its node runs, after the measured window.
    pub async fn fetch_all(&self, target: &Target, ids: &[String]) -> anyhow::Result<Vec<Value>> {
        let fetched = futures::stream::iter(ids)
            .map(|id| async move {
                target
                    .get(&format!("/v1/executions/{id}"))
                    .await
                    .map(|body| body["execution"].clone())
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        fetched.into_iter().collect()
    }
}
