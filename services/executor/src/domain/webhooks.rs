//! Webhook deliveries: find the route, check the method, deduplicate on the
//! delivery id, admit the execution, and for sync hooks wait for its outcome.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use super::executions::Admission;
use super::workflows::normalize_hook_path;
use super::{Domain, ExecutionStatus, StepState, TriggerType, json_column, now};
use crate::error::{ExecutorError, ExecutorResult};
use crate::storage::entities::webhook_delivery;
use crate::storage::{executions, is_unique_violation, steps, triggers, workflows};

/// How often a sync waiter looks at the execution when no local notice
/// comes (it may run on a worker in another process).
const SYNC_POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Clone, Debug, Default)]
pub struct WebhookRequest {
    pub workspace_id: String,
    pub path: String,
    pub method: String,
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    pub query: HashMap<String, String>,
    pub body: Vec<u8>,
    pub delivery_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookMode {
    Async,
    Sync,
}

#[derive(Clone, Debug)]
pub struct SyncReply {
    pub status_code: u32,
    pub body: Value,
    pub timed_out: bool,
}

#[derive(Clone, Debug)]
pub struct WebhookReply {
    pub execution_id: Uuid,
    pub mode: WebhookMode,
    pub duplicate: bool,
    pub status: ExecutionStatus,
    pub sync: Option<SyncReply>,
}

impl Domain {
    pub async fn deliver_webhook(&self, request: WebhookRequest) -> ExecutorResult<WebhookReply> {
        let not_found = || ExecutorError::NotFound("webhook");
        let workspace_id = Uuid::parse_str(&request.workspace_id).map_err(|_| not_found())?;
        let path = normalize_hook_path(&request.path).ok_or_else(not_found)?;
        let route = triggers::find_route(self.db(), workspace_id, &path)
            .await?
            .ok_or_else(not_found)?;
        let workflow = workflows::find_live(self.db(), workspace_id, route.workflow_id)
            .await?
            .ok_or_else(not_found)?;
        let graph = self
            .graph(workspace_id, workflow.id, workflow.latest_version)
            .await?;
        let node = graph.node(&route.node_id).ok_or_else(not_found)?;
        let parameter = |name: &str| node.parameters.get(name).and_then(Value::as_str);

        let accepted_method = parameter("method").unwrap_or("POST").to_ascii_uppercase();
        let method = request.method.to_ascii_uppercase();
        if method != accepted_method {
            return Err(ExecutorError::FailedPrecondition(format!(
                "this webhook accepts {accepted_method} requests, not {method}"
            )));
        }
        let mode = match parameter("mode") {
            Some("sync") => WebhookMode::Sync,
            _ => WebhookMode::Async,
        };
        let wait_ms = node
            .parameters
            .get("response_timeout_ms")
            .and_then(Value::as_u64)
            .unwrap_or(self.config().webhook_sync_default_wait_ms)
            .min(self.config().webhook_sync_max_wait_ms);
        let respond_node = parameter("respond_node").map(str::to_owned);
        let delivery_id = match parameter("delivery_id_header") {
            Some(header) => request
                .headers
                .get(&header.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default(),
            None => request.delivery_id.clone(),
        };

        let cap = self.config().max_trigger_payload_bytes;
        if request.body.len() > cap {
            return Err(ExecutorError::invalid(
                "body",
                format!(
                    "payload of {} bytes exceeds the trigger payload cap of {cap} bytes \
                     (max_trigger_payload_bytes)",
                    request.body.len()
                ),
            ));
        }
        let body = parse_body(&request)?;
        let mut input = json!({
            "method": method,
            "path": path,
            "headers": request.headers,
            "query": request.query,
            "body": body,
        });
        if !delivery_id.is_empty() {
            input["delivery_id"] = Value::String(delivery_id.clone());
        }
        self.check_payload("body", &input)?;

        if !delivery_id.is_empty()
            && let Some(seen) =
                triggers::find_delivery(self.db(), workspace_id, &delivery_id).await?
        {
            return self
                .reply(
                    seen.execution_id,
                    mode,
                    true,
                    wait_ms,
                    respond_node.as_deref(),
                )
                .await;
        }
        let txn = self.store().begin_write().await?;
        let (execution, aftermath) = self
            .admit(
                &txn,
                Admission {
                    workspace_id,
                    workflow_id: workflow.id,
                    version: workflow.latest_version,
                    graph: &graph,
                    trigger_type: TriggerType::Webhook,
                    input,
                    dead_letter_id: None,
                    carried: Vec::new(),
                },
            )
            .await?;
        if !delivery_id.is_empty() {
            let seen = webhook_delivery::Model {
                id: Uuid::now_v7(),
                workspace_id,
                delivery_id: delivery_id.clone(),
                workflow_id: workflow.id,
                execution_id: execution.id,
                create_time: now(),
            };
            if let Err(error) = triggers::insert_delivery(&txn, &seen).await {
                txn.rollback().await?;
                if !is_unique_violation(&error) {
                    return Err(error.into());
                }
                // The same delivery raced in through another request.
                let seen = triggers::find_delivery(self.db(), workspace_id, &delivery_id)
                    .await?
                    .ok_or_else(|| ExecutorError::Internal("delivery vanished".to_owned()))?;
                return self
                    .reply(
                        seen.execution_id,
                        mode,
                        true,
                        wait_ms,
                        respond_node.as_deref(),
                    )
                    .await;
            }
        }
        txn.commit().await?;
        self.after_commit(execution.id, aftermath).await;
        self.reply(execution.id, mode, false, wait_ms, respond_node.as_deref())
            .await
    }

    async fn reply(
        &self,
        execution_id: Uuid,
        mode: WebhookMode,
        duplicate: bool,
        wait_ms: u64,
        respond_node: Option<&str>,
    ) -> ExecutorResult<WebhookReply> {
        if mode == WebhookMode::Async {
            let execution = executions::find(self.db(), execution_id)
                .await?
                .ok_or(ExecutorError::NotFound("execution"))?;
            return Ok(WebhookReply {
                execution_id,
                mode,
                duplicate,
                status: status_of(&execution.status),
                sync: None,
            });
        }
        let (status, sync) = self
            .wait_for_outcome(execution_id, Duration::from_millis(wait_ms), respond_node)
            .await?;
        Ok(WebhookReply {
            execution_id,
            mode,
            duplicate,
            status,
            sync: Some(sync),
        })
    }

    /// Waits until the execution finishes or `wait` passes, and builds the
    /// HTTP answer.
    async fn wait_for_outcome(
        &self,
        execution_id: Uuid,
        wait: Duration,
        respond_node: Option<&str>,
    ) -> ExecutorResult<(ExecutionStatus, SyncReply)> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut finished = self.subscribe_finished();
        loop {
            let execution = executions::find(self.db(), execution_id)
                .await?
                .ok_or(ExecutorError::NotFound("execution"))?;
            let status = status_of(&execution.status);
            if status.is_terminal() {
                let reply = self.final_reply(&execution, status, respond_node).await?;
                return Ok((status, reply));
            }
            let wake = tokio::time::Instant::now() + SYNC_POLL_INTERVAL;
            tokio::select! {
                () = tokio::time::sleep_until(wake.min(deadline)) => {}
                notice = finished.recv() => {
                    // A lagged receiver just looks at the database again.
                    if matches!(notice, Ok(id) if id != execution_id) {
                        continue;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let body = json!({
                    "error": format!("the workflow did not finish within {} ms", wait.as_millis()),
                    "execution_id": execution_id.to_string(),
                });
                return Ok((
                    status,
                    SyncReply {
                        status_code: 504,
                        body,
                        timed_out: true,
                    },
                ));
            }
        }
    }

    async fn final_reply(
        &self,
        execution: &crate::storage::entities::execution::Model,
        status: ExecutionStatus,
        respond_node: Option<&str>,
    ) -> ExecutorResult<SyncReply> {
        if status != ExecutionStatus::Succeeded {
            return Ok(SyncReply {
                status_code: 500,
                body: json!({
                    "error": execution.error.clone().unwrap_or_else(|| status.as_str().to_owned()),
                    "status": status.as_str(),
                    "execution_id": execution.id.to_string(),
                }),
                timed_out: false,
            });
        }
        let rows = steps::list_for_execution(self.db(), execution.id).await?;
        let succeeded = rows
            .iter()
            .filter(|row| row.state == StepState::Succeeded.as_str());
        let chosen = match respond_node {
            Some(node_id) => rows
                .iter()
                .find(|row| row.node_id == node_id && row.state == StepState::Succeeded.as_str()),
            None => None,
        }
        // The respond node may sit on a branch not taken: fall back to the
        // node that finished last.
        .or_else(|| succeeded.max_by_key(|row| (row.end_time, row.id)));
        let body = chosen
            .and_then(|row| row.output.as_deref())
            .map(json_column)
            .unwrap_or(Value::Null);
        Ok(SyncReply {
            status_code: 200,
            body,
            timed_out: false,
        })
    }
}

fn status_of(text: &str) -> ExecutionStatus {
    ExecutionStatus::parse(text).unwrap_or(ExecutionStatus::Failed)
}

/// The body as JSON when it says it is JSON, else as text.
fn parse_body(request: &WebhookRequest) -> ExecutorResult<Value> {
    if request.body.is_empty() {
        return Ok(Value::Null);
    }
    let is_json = request
        .headers
        .get("content-type")
        .is_some_and(|content_type| content_type.to_ascii_lowercase().contains("json"));
    if is_json {
        return serde_json::from_slice(&request.body).map_err(|error| {
            ExecutorError::invalid("body", format!("is not valid JSON: {error}"))
        });
    }
    Ok(Value::String(
        String::from_utf8_lossy(&request.body).into_owned(),
    ))
}
