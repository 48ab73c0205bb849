//! Monthly quotas: executions and tasks per workspace and calendar month
//! (UTC), from the workspace's limits. Admission reserves an execution in
//! the transaction that writes it, so executors racing for the last of a
//! quota admit exactly what is left; past it the execution is written HELD,
//! with the reason, and nothing of it runs. HELD executions are released in
//! the order they came, each reserving its place, once the quota allows:
//! a higher limit (an upgrade, within the limits cache's lifetime), or the
//! month's turn, which starts counting afresh.

use chrono::{DateTime, Utc};
use tyboo_engine::WorkflowGraph;
use tyboo_limits::Limits;
use uuid::Uuid;

use super::model::{Execution, ExecutionStatus};
use super::{Domain, Scope};
use crate::error::ExecutorResult;
use crate::storage::{executions, monthly_usage, now};

/// Finds the workspaces with HELD executions, across the platform.
pub const QUOTA_RELEASE: Scope = Scope::System("quota release");

/// "2026-12": the month `time` counts in.
pub fn month_of(time: DateTime<Utc>) -> String {
    time.format("%Y-%m").to_string()
}

impl Domain {
    /// The deadline of an execution of `graph` that starts at `now`.
    pub(crate) fn deadline_from(&self, graph: &WorkflowGraph, now: DateTime<Utc>) -> DateTime<Utc> {
        let max_duration_ms = graph
            .settings
            .max_duration_ms
            .unwrap_or(self.config().default_max_duration_ms)
            .min(self.config().max_duration_cap_ms);
        now + chrono::Duration::milliseconds(i64::try_from(max_duration_ms).unwrap_or(i64::MAX / 2))
    }

    /// Reserves one execution of `workspace_id`'s month in `db`: `None`
    /// when it may run, or why it is held.
    pub(crate) async fn reserve_quota<S: tyboo_store::Session>(
        &self,
        db: &S,
        workspace_id: Uuid,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> ExecutorResult<Option<String>> {
        if !limits.has_monthly_quota() {
            return Ok(None);
        }
        let month = month_of(now);
        let reserved = monthly_usage::reserve_execution(
            db,
            workspace_id,
            &month,
            limits.executions_per_month,
            limits.tasks_per_month,
        )
        .await?;
        if reserved {
            return Ok(None);
        }
        let (executions, _) = monthly_usage::used(db, workspace_id, &month).await?;
        let reason = if limits.executions_per_month > 0
            && executions >= i64::from(limits.executions_per_month)
        {
            format!(
                "held: the workspace has started its {} executions of {month} \
                 (executions_per_month); it runs when the quota allows",
                limits.executions_per_month
            )
        } else {
            format!(
                "held: the workspace has used its {} tasks of {month} (tasks_per_month); it \
                 runs when the quota allows",
                limits.tasks_per_month
            )
        };
        Ok(Some(reason))
    }

    /// Counts a task against the month's quota when one is in force.
    pub(crate) async fn count_task<S: tyboo_store::Session>(
        &self,
        db: &S,
        workspace_id: Uuid,
        now: DateTime<Utc>,
    ) -> ExecutorResult<()> {
        let limits = self.limits_of(workspace_id).await;
        if limits.has_monthly_quota() {
            monthly_usage::add_task(db, workspace_id, &month_of(now)).await?;
        }
        Ok(())
    }

    /// Releases the HELD executions of `workspace_id` the quota now allows,
    /// oldest first, stopping at the first it does not; answers how many.
    pub async fn release_held(&self, workspace_id: Uuid) -> ExecutorResult<usize> {
        let scope = Scope::Workspace(workspace_id);
        let limits = self.limits_of(workspace_id).await;
        let mut released = 0;
        loop {
            let held = executions::held(&self.read(scope), 50).await?;
            if held.is_empty() {
                return Ok(released);
            }
            for execution in held {
                let now = now();
                let mut work = self.begin(scope).await?;
                if self
                    .reserve_quota(work.tx(), workspace_id, &limits, now)
                    .await?
                    .is_some()
                {
                    work.rollback().await?;
                    return Ok(released);
                }
                let graph = self
                    .graph_on(work.tx(), execution.workflow_id, execution.workflow_version)
                    .await?;
                let deadline = self.deadline_from(&graph, now);
                if !executions::release_held(work.tx(), execution.id, deadline).await? {
                    // Released by another executor, or cancelled, meanwhile.
                    work.rollback().await?;
                    continue;
                }
                let execution = Execution {
                    status: ExecutionStatus::Queued,
                    queue_reason: None,
                    deadline,
                    ..execution
                };
                self.meter_execution(work.tx(), &execution).await?;
                let aftermath = self
                    .advance_execution(work.tx(), &execution, &graph, now)
                    .await?;
                work.record(execution.id, aftermath);
                self.commit(work).await?;
                ::metrics::counter!(crate::metrics::EXECUTIONS_RELEASED_TOTAL).increment(1);
                released += 1;
            }
        }
    }

    /// [`Domain::release_held`] for every workspace with HELD executions.
    pub async fn release_all_held(&self) -> ExecutorResult<usize> {
        let workspaces = executions::workspaces_with_held(&self.read(QUOTA_RELEASE), 1_000).await?;
        let mut released = 0;
        for workspace_id in workspaces {
            released += self.release_held(workspace_id).await?;
        }
        Ok(released)
    }
}
