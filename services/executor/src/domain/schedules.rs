//! Fires schedule triggers. Each due tick is taken by a compare-and-set on
//! the schedule's `next_fire_at`, in the same unit of work that admits the
//! execution: however many executors run, a tick fires once, and a tick
//! missed while every executor was down fires once when one comes back.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::executions::Admission;
use super::{Domain, SCHEDULER, Schedule, Scope, TriggerType, now};
use crate::error::ExecutorResult;
use crate::storage::{triggers, truncate, workflows};

/// Where a schedule whose cron stopped parsing goes, so it does not fire on
/// every pass; saving the workflow again recomputes it.
const BROKEN_SCHEDULE_RETRY: chrono::Duration = chrono::Duration::days(1);

impl Domain {
    /// Fires every schedule due now; returns how many ticks this call fired.
    pub async fn fire_due_schedules(&self) -> ExecutorResult<usize> {
        let now = now();
        let due = triggers::due_schedules(
            &self.read(SCHEDULER),
            now,
            self.config().reconcile_batch_size,
        )
        .await?;
        let mut fired = 0;
        for schedule in due {
            if self.fire_schedule(&schedule, now).await? {
                fired += 1;
            }
        }
        Ok(fired)
    }

    /// Takes the schedule's due tick and admits its execution, in the
    /// schedule's workspace; false when another executor took the tick.
    async fn fire_schedule(&self, schedule: &Schedule, now: DateTime<Utc>) -> ExecutorResult<bool> {
        let next = match tyboo_engine::next_fire(&schedule.cron, &schedule.timezone, now) {
            Ok(next) => truncate(next),
            Err(message) => {
                tracing::warn!(schedule_id = %schedule.id, %message, "schedule cannot compute its next tick");
                now + BROKEN_SCHEDULE_RETRY
            }
        };
        let scope = Scope::Workspace(schedule.workspace_id);
        let mut work = self.begin(scope).await?;
        if !triggers::advance_schedule(work.tx(), schedule.id, schedule.next_fire_at, next).await? {
            work.rollback().await?;
            return Ok(false);
        }
        let Some(workflow) = workflows::find_live(work.tx(), schedule.workflow_id).await? else {
            self.commit(work).await?;
            return Ok(false);
        };
        let graph = self
            .graph(scope, workflow.id, workflow.latest_version)
            .await?;
        let input = json!({
            "scheduled_time": schedule.next_fire_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        self.admit(
            &mut work,
            Admission {
                workspace_id: workflow.workspace_id,
                workflow_id: workflow.id,
                version: workflow.latest_version,
                graph: &graph,
                trigger_type: TriggerType::Schedule,
                input,
                dead_letter_id: None,
                started_by: None,
                carried: Vec::new(),
            },
        )
        .await?;
        self.commit(work).await?;
        ::metrics::counter!(crate::metrics::SCHEDULE_FIRES_TOTAL).increment(1);
        Ok(true)
    }
}
