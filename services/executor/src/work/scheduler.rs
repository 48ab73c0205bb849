//! Fires schedule triggers. Each due tick is taken by a compare-and-set on
//! the schedule's `next_fire_at`, in the same transaction that admits the
//! execution: however many executors run, a tick fires once, and a tick
//! missed while every executor was down fires once when one comes back.

use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;
use tyboo_runtime::shutdown::Shutdown;

use crate::domain::executions::Admission;
use crate::domain::{Domain, TriggerType, now};
use crate::error::ExecutorResult;
use crate::storage::entities::schedule;
use crate::storage::{triggers, truncate, workflows};

/// Where a schedule whose cron stopped parsing goes, so it does not fire on
/// every pass; saving the workflow again recomputes it.
const BROKEN_SCHEDULE_RETRY: chrono::Duration = chrono::Duration::days(1);

pub fn spawn(domain: Domain, shutdown: Shutdown) -> JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_millis(domain.config().scheduler_interval_ms);
        loop {
            if let Err(error) = fire_due(&domain).await {
                tracing::warn!(%error, "scheduler pass failed");
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.signaled() => break,
            }
        }
    })
}

/// Fires every schedule due now; returns how many ticks this call fired.
pub async fn fire_due(domain: &Domain) -> ExecutorResult<usize> {
    let now = now();
    let due =
        triggers::due_schedules(domain.db(), now, domain.config().reconcile_batch_size).await?;
    let mut fired = 0;
    for schedule in due {
        if fire(domain, &schedule, now).await? {
            fired += 1;
        }
    }
    Ok(fired)
}

async fn fire(
    domain: &Domain,
    schedule: &schedule::Model,
    now: chrono::DateTime<chrono::Utc>,
) -> ExecutorResult<bool> {
    let next = match tyboo_engine::next_fire(&schedule.cron, &schedule.timezone, now) {
        Ok(next) => truncate(next),
        Err(message) => {
            tracing::warn!(schedule_id = %schedule.id, %message, "schedule cannot compute its next tick");
            now + BROKEN_SCHEDULE_RETRY
        }
    };
    let txn = domain.store().begin_write().await?;
    if !triggers::advance_schedule(&txn, schedule.id, schedule.next_fire_at, next).await? {
        txn.rollback().await?;
        return Ok(false);
    }
    let Some(workflow) =
        workflows::find_live(&txn, schedule.workspace_id, schedule.workflow_id).await?
    else {
        txn.commit().await?;
        return Ok(false);
    };
    let graph = domain
        .graph(workflow.workspace_id, workflow.id, workflow.latest_version)
        .await?;
    let input = json!({
        "scheduled_time": schedule.next_fire_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    let (execution, aftermath) = domain
        .admit(
            &txn,
            Admission {
                workspace_id: workflow.workspace_id,
                workflow_id: workflow.id,
                version: workflow.latest_version,
                graph: &graph,
                trigger_type: TriggerType::Schedule,
                input,
                dead_letter_id: None,
                carried: Vec::new(),
            },
        )
        .await?;
    txn.commit().await?;
    ::metrics::counter!(crate::metrics::SCHEDULE_FIRES_TOTAL).increment(1);
    domain.after_commit(execution.id, aftermath).await;
    Ok(true)
}
