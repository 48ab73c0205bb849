//! The reconciler repairs what the queue cannot know about: steps whose
//! message was lost or whose worker died, and executions past their
//! deadline. At start-up it dispatches every unfinished step again, since a
//! restarted in-process queue holds nothing, so a killed process finishes
//! every execution once it is back.

use std::time::Duration;

use tokio::task::JoinHandle;
use tyboo_runtime::shutdown::Shutdown;

use crate::domain::{Domain, RECONCILER, Scope, StepState, now};
use crate::error::ExecutorResult;
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
    for execution in executions::past_deadline(&domain.read(RECONCILER), now, batch).await? {
        domain
            .time_out_execution(Scope::Workspace(execution.workspace_id), execution.id)
            .await?;
    }
    let grace = chrono::Duration::milliseconds(
        i64::try_from(domain.config().redispatch_grace_ms).unwrap_or(i64::MAX / 2),
    );
    let rows = steps::needing_dispatch(&domain.read(RECONCILER), now, now - grace, batch).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<_> = rows.iter().map(|row| row.id).collect();
    let mut work = domain.begin(RECONCILER).await?;
    steps::mark_dispatched(work.tx(), &ids, now).await?;
    for row in &rows {
        let reason = if row.state == StepState::Running {
            "lease_expired"
        } else {
            "lost"
        };
        ::metrics::counter!(crate::metrics::REDISPATCHED_TOTAL, "reason" => reason).increment(1);
        work.dispatch(row.job(), None);
    }
    domain.commit(work).await
}

/// Dispatches every unfinished step, each at the time it may next run.
pub async fn redispatch_all(domain: &Domain) -> ExecutorResult<()> {
    let batch = domain.config().reconcile_batch_size;
    let mut after = None;
    loop {
        let rows = steps::active_after(&domain.read(RECONCILER), after, batch).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = Some(last.id);
        let now = now();
        let ids: Vec<_> = rows.iter().map(|row| row.id).collect();
        let mut work = domain.begin(RECONCILER).await?;
        steps::mark_dispatched(work.tx(), &ids, now).await?;
        for row in &rows {
            let due = if row.state == StepState::Running {
                row.lease_expires_at
            } else {
                Some(row.available_at)
            };
            work.dispatch(row.job(), due.filter(|at| *at > now));
        }
        ::metrics::counter!(crate::metrics::REDISPATCHED_TOTAL, "reason" => "startup")
            .increment(rows.len() as u64);
        domain.commit(work).await?;
        if (rows.len() as u64) < batch {
            return Ok(());
        }
    }
}
