//! Units of work. Every read opens in a [`Scope`] and every write runs in a
//! [`Work`]: a transaction in a scope that collects what must happen once it
//! has committed (jobs to dispatch, local workers and waiters to wake), and
//! does it in [`Domain::commit`], so no write path can commit and forget to
//! dispatch what it readied.
//!
//! The few paths that act for the system rather than a caller name their
//! reason here; every other scope is a caller's workspace, or the workspace
//! of the execution a worker's job names.

use chrono::{DateTime, Utc};
use tyboo_broker::Job;
use tyboo_store::{Reader, Scope, Tx};
use uuid::Uuid;

use super::progress::{Aftermath, Jobs};
use super::{Domain, ExecutionStatus, WorkspaceScope};
use crate::error::ExecutorResult;

/// Finds steps whose message was lost and executions past their deadline,
/// in every workspace.
pub const RECONCILER: Scope = Scope::System("reconciler");
/// Finds the schedules due now, in every workspace.
pub const SCHEDULER: Scope = Scope::System("scheduler");
/// Finds the workspace a hook URL's token belongs to.
pub const WEBHOOK_TOKEN: Scope = Scope::System("webhook token");

/// The scope of a verified caller: its workspace.
pub fn tenant(scope: &WorkspaceScope) -> Scope {
    Scope::Workspace(scope.workspace_id)
}

/// A write transaction and what follows its commit.
pub struct Work {
    tx: Tx,
    jobs: Jobs,
    finished: Vec<(Uuid, ExecutionStatus)>,
}

impl Work {
    pub fn tx(&self) -> &Tx {
        &self.tx
    }

    /// Takes what a transaction decided for `execution_id` on, to act on
    /// after the commit.
    pub fn record(&mut self, execution_id: Uuid, aftermath: Aftermath) {
        if let Some(status) = aftermath.finished {
            self.finished.push((execution_id, status));
        }
        self.jobs.extend(aftermath.jobs);
    }

    /// Dispatches `job` once committed, at `at` (now when `None`).
    pub fn dispatch(&mut self, job: Job, at: Option<DateTime<Utc>>) {
        self.jobs.push((job, at));
    }

    /// Ends the transaction without writing anything; nothing follows.
    pub async fn rollback(self) -> ExecutorResult<()> {
        Ok(self.tx.rollback().await?)
    }
}

impl Domain {
    /// Reads in `scope`.
    pub(crate) fn read(&self, scope: Scope) -> Reader<'_> {
        self.store().read(scope)
    }

    /// Starts a unit of work in `scope`.
    pub(crate) async fn begin(&self, scope: Scope) -> ExecutorResult<Work> {
        Ok(Work {
            tx: self.store().write(scope).await?,
            jobs: Vec::new(),
            finished: Vec::new(),
        })
    }

    /// Commits `work`, then acts on it: wakes local workers of a stopped
    /// execution and local waiters of a finished one, counts it, and
    /// dispatches the jobs it readied.
    pub(crate) async fn commit(&self, work: Work) -> ExecutorResult<()> {
        let Work { tx, jobs, finished } = work;
        let workspace_id = tyboo_store::Session::scope(&tx).workspace_id();
        tx.commit().await?;
        if self.config().concurrency.enabled && !finished.is_empty() {
            // Every path that finishes an execution acts in its workspace.
            match workspace_id {
                Some(workspace_id) => {
                    let domain = self.clone();
                    let ids = finished.iter().map(|(id, _)| *id).collect();
                    tokio::spawn(async move { domain.release_slots(workspace_id, ids).await });
                }
                None => tracing::warn!(
                    "executions finished outside a workspace scope; their slots expire with their leases"
                ),
            }
        }
        for (execution_id, status) in finished {
            if status != ExecutionStatus::Succeeded {
                self.cancellations().cancel(execution_id);
            }
            self.announce_finished(execution_id);
            ::metrics::counter!(
                crate::metrics::EXECUTIONS_FINISHED_TOTAL,
                "status" => status.as_str()
            )
            .increment(1);
        }
        self.dispatch_jobs(jobs).await;
        Ok(())
    }
}
