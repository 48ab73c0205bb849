//! The reconciler repairs what the queue cannot know about: steps whose
//! message was lost or whose worker died, and executions past their
//! deadline. At start-up it dispatches every unfinished step again, since a
//! restarted in-process queue holds nothing, so a killed process finishes
//! every execution once it is back.

use std::time::Duration;

use tokio::task::JoinHandle;
use tyboo_broker::Job;
use tyboo_runtime::shutdown::Shutdown;

use crate::domain::{Domain, StepState, now};
use crate::error::ExecutorResult;
use crate::storage::entities::step;
use crate::storage::{executions, steps};

pub fn spawn(domain: Domain, shutdown: Shutdown) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = redispatch_all(&domain).await {
            tracing::error!(%error, "re-dispatching unfinished steps at start-up failed");
        }
        let every = Duration::from_millis(domain.config().reconcile_interval_ms);
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.signaled() => break,
            }
            if let Err(error) = reconcile_once(&domain).await {
                tracing::warn!(%error, "reconciliation pass failed");
            }
        }
    })
}

/// One pass: time out late executions, then dispatch steps whose message may
/// be lost or whose lease ran out.
pub async fn reconcile_once(domain: &Domain) -> ExecutorResult<()> {
    let batch = domain.config().reconcile_batch_size;
    let now = now();
    for execution in executions::past_deadline(domain.db(), now, batch).await? {
        domain.time_out_execution(execution.id).await?;
    }
    let grace = chrono::Duration::milliseconds(
        i64::try_from(domain.config().redispatch_grace_ms).unwrap_or(i64::MAX / 2),
    );
    let rows = steps::needing_dispatch(domain.db(), now, now - grace, batch).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<_> = rows.iter().map(|row| row.id).collect();
    steps::mark_dispatched(domain.db(), &ids, now).await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for row in &rows {
        let reason = if row.state == StepState::Running.as_str() {
            "lease_expired"
        } else {
            "lost"
        };
        ::metrics::counter!(crate::metrics::REDISPATCHED_TOTAL, "reason" => reason).increment(1);
        jobs.push((job_for(row), None));
    }
    domain.dispatch_jobs(jobs).await;
    Ok(())
}

/// Dispatches every unfinished step, each at the time it may next run.
pub async fn redispatch_all(domain: &Domain) -> ExecutorResult<()> {
    let batch = domain.config().reconcile_batch_size;
    let mut after = None;
    loop {
        let rows = steps::active_after(domain.db(), after, batch).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = Some(last.id);
        let now = now();
        let jobs: Vec<_> = rows
            .iter()
            .map(|row| {
                let due = if row.state == StepState::Running.as_str() {
                    row.lease_expires_at
                } else {
                    Some(row.available_at)
                };
                (job_for(row), due.filter(|at| *at > now))
            })
            .collect();
        ::metrics::counter!(crate::metrics::REDISPATCHED_TOTAL, "reason" => "startup")
            .increment(jobs.len() as u64);
        let ids: Vec<_> = rows.iter().map(|row| row.id).collect();
        steps::mark_dispatched(domain.db(), &ids, now).await?;
        domain.dispatch_jobs(jobs).await;
        if (rows.len() as u64) < batch {
            return Ok(());
        }
    }
}

fn job_for(row: &step::Model) -> Job {
    Job {
        pool: row.pool.clone(),
        execution_id: row.execution_id,
        node_id: row.node_id.clone(),
        attempt: u32::try_from(row.attempt).unwrap_or(1),
        workspace_id: row.workspace_id,
    }
}
