//! Admission of executions, and reading and cancelling them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tyboo_engine::{NodeSpec, WorkflowGraph};
use tyboo_store::Session;
use uuid::Uuid;

use super::pagination::{decode_id_token, next_token};
use super::progress::Stop;
use super::steps::{DERIVED_INPUT, StoredOutputs, output_text};
use super::{
    Domain, Execution, ExecutionDetail, ExecutionStatus, NodeRun, Scope, Step, StepState,
    TriggerType, WebhookDelivery, Work, WorkspaceScope, json_column, now, tenant, to_json_text,
};
use crate::error::{ExecutorError, ExecutorResult};
use crate::storage::{executions, is_unique_violation, node_runs, steps, triggers, workflows};

/// Everything needed to admit one execution.
pub(crate) struct Admission<'a> {
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub version: i64,
    pub graph: &'a WorkflowGraph,
    pub trigger_type: TriggerType,
    pub input: Value,
    pub dead_letter_id: Option<Uuid>,
    /// The person who started it, when a person did.
    pub started_by: Option<Uuid>,
    /// Terminal steps of an earlier execution kept as they were: a replay
    /// from the failed node starts where that execution stopped.
    pub carried: Vec<Step>,
}

/// Longest idempotency key a start may carry.
pub const MAX_IDEMPOTENCY_KEY_LENGTH: usize = 200;
/// The trigger name under which API starts remember their idempotency keys,
/// next to webhook deliveries; no node id can spell it.
const API_START_TRIGGER: &str = "@api";

pub struct ListExecutions {
    pub workflow_id: Option<Uuid>,
    pub status: Option<ExecutionStatus>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub page_size: i32,
    pub page_token: String,
}

impl Domain {
    /// Starts an execution of the latest version, or of `version`. With an
    /// idempotency key, a start already made with that key for this
    /// workflow answers with its execution instead.
    pub async fn start_execution(
        &self,
        scope: &WorkspaceScope,
        workflow_id: Uuid,
        version: Option<i64>,
        input: Value,
        idempotency_key: Option<&str>,
    ) -> ExecutorResult<Execution> {
        self.check_payload("input", &input)?;
        self.check_depth("input", &input, 0)?;
        let key = idempotency_key.filter(|key| !key.is_empty());
        if let Some(key) = key
            && (key.len() > MAX_IDEMPOTENCY_KEY_LENGTH
                || !key.bytes().all(|byte| byte.is_ascii_graphic()))
        {
            return Err(ExecutorError::invalid(
                "idempotency_key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters"),
            ));
        }
        let reader = self.read(tenant(scope));
        let workflow = workflows::find_live(&reader, workflow_id)
            .await?
            .ok_or(ExecutorError::NotFound("workflow"))?;
        let trigger = (workflow_id, API_START_TRIGGER);
        if let Some(key) = key
            && let Some(seen) = triggers::find_delivery(&reader, trigger, key).await?
        {
            return executions::find(&reader, seen.execution_id)
                .await?
                .ok_or(ExecutorError::NotFound("execution"));
        }
        let version = version.unwrap_or(workflow.latest_version);
        let graph = self.graph(tenant(scope), workflow_id, version).await?;
        let mut work = self.begin(tenant(scope)).await?;
        let execution = self
            .admit(
                &mut work,
                Admission {
                    workspace_id: scope.workspace_id,
                    workflow_id,
                    version,
                    graph: &graph,
                    trigger_type: TriggerType::Manual,
                    input,
                    dead_letter_id: None,
                    started_by: scope.user_id(),
                    carried: Vec::new(),
                },
            )
            .await?;
        if let Some(key) = key {
            let seen = WebhookDelivery {
                id: Uuid::now_v7(),
                workspace_id: scope.workspace_id,
                delivery_id: key.to_owned(),
                workflow_id,
                node_id: API_START_TRIGGER.to_owned(),
                execution_id: execution.id,
                create_time: now(),
            };
            if let Err(error) = triggers::insert_delivery(work.tx(), &seen).await {
                work.rollback().await?;
                if !is_unique_violation(&error) {
                    return Err(error.into());
                }
                // The same start raced in through another call: its
                // execution is the answer, and this one never happened.
                let seen = triggers::find_delivery(&reader, trigger, key)
                    .await?
                    .ok_or_else(|| ExecutorError::Internal("start key vanished".to_owned()))?;
                return executions::find(&reader, seen.execution_id)
                    .await?
                    .ok_or(ExecutorError::NotFound("execution"));
            }
        }
        self.commit(work).await?;
        Ok(execution)
    }

    /// Refuses a trigger payload over the cap, naming the cap.
    /// Refuses a value that nests deeper than stored values may, naming
    /// the field, the depth and the key that sets the limit.
    pub(crate) fn check_depth(
        &self,
        field: &str,
        value: &Value,
        wrapping: usize,
    ) -> ExecutorResult<()> {
        let limit = self.config().max_json_depth;
        let depth = super::json_depth(value) + wrapping;
        if depth > limit {
            return Err(ExecutorError::invalid(
                field,
                format!(
                    "nests {} levels of arrays and objects; at most {} are accepted \
                     (max_json_depth)",
                    depth - wrapping,
                    limit - wrapping.min(limit)
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_payload(&self, field: &str, input: &Value) -> ExecutorResult<()> {
        let cap = self.config().max_trigger_payload_bytes;
        let size = to_json_text(input).len();
        if size > cap {
            return Err(ExecutorError::invalid(
                field,
                format!(
                    "payload of {size} bytes exceeds the trigger payload cap of {cap} bytes \
                     (max_trigger_payload_bytes)"
                ),
            ));
        }
        Ok(())
    }

    /// Whether an execution may be admitted now, and its trigger node: the
    /// one gate every start passes (API, webhook, schedule, replay), where
    /// per-workspace quotas and concurrency limits hook in.
    fn check_admission<'g>(
        &self,
        work: &Work,
        admission: &Admission<'g>,
    ) -> ExecutorResult<&'g NodeSpec> {
        if !work.tx().scope().admits(admission.workspace_id) {
            return Err(ExecutorError::Internal(format!(
                "an execution of workspace {} admitted in {}",
                admission.workspace_id,
                work.tx().scope()
            )));
        }
        tyboo_engine::trigger_node(admission.graph).ok_or_else(|| {
            ExecutorError::FailedPrecondition("the workflow has no trigger node".to_owned())
        })
    }

    /// Writes the execution and its first steps in `work`: the trigger's
    /// data is the trigger node's output, and its successors become ready,
    /// dispatched once `work` commits. The one path every start takes.
    pub(crate) async fn admit(
        &self,
        work: &mut Work,
        admission: Admission<'_>,
    ) -> ExecutorResult<Execution> {
        let now = now();
        let graph = admission.graph;
        let trigger = self.check_admission(work, &admission)?;
        let db = work.tx();
        let limits = self.limits_of(admission.workspace_id).await;
        let held = self
            .reserve_quota(db, admission.workspace_id, &limits, now)
            .await?;
        let input_text = to_json_text(&admission.input);
        let execution = Execution {
            id: Uuid::now_v7(),
            workspace_id: admission.workspace_id,
            workflow_id: admission.workflow_id,
            workflow_version: admission.version,
            status: if held.is_some() {
                ExecutionStatus::Held
            } else {
                ExecutionStatus::Queued
            },
            trigger_type: admission.trigger_type,
            input: input_text.clone(),
            error: None,
            error_class: None,
            failed_node_id: None,
            create_time: now,
            start_time: None,
            end_time: None,
            deadline: self.deadline_from(graph, now),
            data_bytes: i64::try_from(input_text.len()).unwrap_or(i64::MAX),
            dead_letter_id: admission.dead_letter_id,
            started_by: admission.started_by,
            queue_reason: held.clone(),
        };
        executions::insert(db, &execution).await?;
        // A HELD execution is metered when it is released and runs.
        if held.is_none() {
            self.meter_execution(db, &execution).await?;
        }

        // The execution's only rows: what the first advance reads.
        let mut rows = Vec::with_capacity(admission.carried.len() + 1);
        let mut kept_trigger = false;
        for carried in &admission.carried {
            let Some(node) = graph.node(&carried.node_id) else {
                continue;
            };
            kept_trigger |= node.id == trigger.id;
            let row = Step {
                id: Uuid::now_v7(),
                workspace_id: execution.workspace_id,
                execution_id: execution.id,
                pool: self.pool_of(node).as_str().to_owned(),
                fencing: 0,
                lease_owner: None,
                lease_expires_at: None,
                dispatched_at: None,
                lost_workers: 0,
                ..carried.clone()
            };
            steps::insert(db, &row).await?;
            rows.push(row);
        }
        if !kept_trigger {
            let row = Step {
                id: Uuid::now_v7(),
                workspace_id: execution.workspace_id,
                execution_id: execution.id,
                node_id: trigger.id.clone(),
                pool: self.pool_of(trigger).as_str().to_owned(),
                state: StepState::Succeeded,
                attempt: 1,
                fencing: 0,
                lease_owner: None,
                lease_expires_at: None,
                available_at: now,
                dispatched_at: None,
                // The trigger's output is the execution's input, stored once
                // in the execution's row (see `StoredOutputs`).
                output: None,
                port: Some(tyboo_engine::MAIN_PORT.to_owned()),
                error: None,
                error_class: None,
                start_time: Some(now),
                end_time: Some(now),
                lost_workers: 0,
            };
            steps::insert(db, &row).await?;
            rows.push(row);
        }
        if held.is_some() {
            // Kept with its trigger's data, and nothing of it ready: it
            // starts when it is released.
            ::metrics::counter!(crate::metrics::EXECUTIONS_HELD_TOTAL).increment(1);
            return Ok(execution);
        }
        let aftermath = self.advance_from(db, &execution, graph, rows, now).await?;
        work.record(execution.id, aftermath);
        ::metrics::counter!(
            crate::metrics::EXECUTIONS_STARTED_TOTAL,
            "trigger" => admission.trigger_type.as_str()
        )
        .increment(1);
        Ok(execution)
    }

    pub async fn get_execution(
        &self,
        scope: &WorkspaceScope,
        execution_id: Uuid,
    ) -> ExecutorResult<ExecutionDetail> {
        let execution = executions::find(&self.read(tenant(scope)), execution_id)
            .await?
            .ok_or(ExecutorError::NotFound("execution"))?;
        self.execution_detail(execution).await
    }

    /// A page of an execution's node runs in start order, after the run
    /// named by `page_token`; at most `page_size` (0: the default).
    pub async fn list_node_runs(
        &self,
        scope: &WorkspaceScope,
        execution_id: Uuid,
        page_size: i32,
        page_token: &str,
    ) -> ExecutorResult<(Vec<NodeRun>, u64)> {
        let reader = self.read(tenant(scope));
        let execution = executions::find(&reader, execution_id)
            .await?
            .ok_or(ExecutorError::NotFound("execution"))?;
        let limit = self.page_size(page_size)?;
        let after = match decode_id_token(page_token)? {
            None => None,
            Some(run_id) => {
                let run = node_runs::find(&reader, execution.id, run_id)
                    .await?
                    .ok_or_else(|| {
                        ExecutorError::invalid("page_token", "is not a token this service issued")
                    })?;
                Some((run.start_time, run.id))
            }
        };
        let mut rows = node_runs::page_for_execution(&reader, execution.id, after, limit).await?;
        if rows.iter().any(|run| run.input == DERIVED_INPUT) {
            let mut steps = steps::list_for_execution(&reader, execution.id).await?;
            self.read_back(&execution, &mut steps, &mut rows).await?;
        }
        Ok((rows, limit))
    }

    pub(crate) async fn execution_detail(
        &self,
        execution: Execution,
    ) -> ExecutorResult<ExecutionDetail> {
        let reader = self.read(Scope::Workspace(execution.workspace_id));
        let mut steps = steps::list_for_execution(&reader, execution.id).await?;
        let mut runs = node_runs::list_for_execution(&reader, execution.id).await?;
        self.read_back(&execution, &mut steps, &mut runs).await?;
        Ok(ExecutionDetail {
            execution,
            steps,
            runs,
        })
    }

    /// Fills in what is stored only once (see `StoredOutputs`): the
    /// trigger's output, and each run's inputs.
    async fn read_back(
        &self,
        execution: &Execution,
        steps: &mut [Step],
        runs: &mut [NodeRun],
    ) -> ExecutorResult<()> {
        if runs.iter().any(|run| run.input == DERIVED_INPUT) {
            let graph = self
                .graph(
                    Scope::Workspace(execution.workspace_id),
                    execution.workflow_id,
                    execution.workflow_version,
                )
                .await?;
            let trigger = json_column(&execution.input)?;
            let outputs = StoredOutputs::read(steps, &trigger)?;
            for run in runs.iter_mut().filter(|run| run.input == DERIVED_INPUT) {
                let inputs = outputs.inputs_of(&graph, &run.node_id);
                run.input = to_json_text(&Value::Array(inputs));
            }
        }
        for row in steps.iter_mut() {
            if row.output.is_none() {
                row.output = output_text(row, execution).map(str::to_owned);
            }
        }
        Ok(())
    }

    /// Executions newest first, and the next page token.
    pub async fn list_executions(
        &self,
        scope: &WorkspaceScope,
        request: ListExecutions,
    ) -> ExecutorResult<(Vec<Execution>, String)> {
        let limit = self.page_size(request.page_size)?;
        let filter = executions::ListFilter {
            workflow_id: request.workflow_id,
            status: request.status,
            created_after: request.created_after,
            created_before: request.created_before,
            before_id: decode_id_token(&request.page_token)?,
        };
        let rows = executions::list(&self.read(tenant(scope)), &filter, limit).await?;
        let next = next_token(&rows, limit, |row| row.id.to_string());
        Ok((rows, next))
    }

    /// Cancels an active execution; a finished one is returned unchanged.
    pub async fn cancel_execution(
        &self,
        scope: &WorkspaceScope,
        execution_id: Uuid,
    ) -> ExecutorResult<Execution> {
        let mut work = self.begin(tenant(scope)).await?;
        let execution = executions::lock(work.tx(), execution_id)
            .await?
            .ok_or(ExecutorError::NotFound("execution"))?;
        let error = format!("cancelled by {}", scope.actor());
        let stopped = self
            .stop_execution(
                work.tx(),
                execution.id,
                Stop {
                    status: ExecutionStatus::Cancelled,
                    error: &error,
                    error_class: None,
                    failed_node_id: None,
                    now: now(),
                },
            )
            .await?;
        if stopped {
            work.record(execution_id, ExecutionStatus::Cancelled.into());
        }
        self.commit(work).await?;
        executions::find(&self.read(tenant(scope)), execution_id)
            .await?
            .ok_or(ExecutorError::NotFound("execution"))
    }

    /// Times out an execution past its deadline; false when it had already
    /// finished or is not late.
    pub(crate) async fn time_out_execution(
        &self,
        scope: Scope,
        execution_id: Uuid,
    ) -> ExecutorResult<bool> {
        let mut work = self.begin(scope).await?;
        let Some(execution) = executions::lock(work.tx(), execution_id).await? else {
            return Ok(false);
        };
        let now = now();
        if execution.deadline > now {
            return Ok(false);
        }
        let allowed = (execution.deadline - execution.create_time).num_milliseconds();
        let error = format!("the execution exceeded its max_duration of {allowed} ms");
        let stopped = self
            .stop_execution(
                work.tx(),
                execution_id,
                Stop {
                    status: ExecutionStatus::TimedOut,
                    error: &error,
                    error_class: Some(tyboo_engine::ErrorClass::Timeout.as_str()),
                    failed_node_id: None,
                    now,
                },
            )
            .await?;
        if stopped {
            work.record(execution_id, ExecutionStatus::TimedOut.into());
        }
        self.commit(work).await?;
        Ok(stopped)
    }
}
