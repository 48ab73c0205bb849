//! Running executions per workspace and per user who started them.
//!
//! An execution takes its slots when its first step is claimed: a lease on
//! `concurrency:workspace:{id}` and, when a person started it, one on
//! `concurrency:user:{workspace}:{user}`, both held by the execution and
//! taken together or not at all. Over a limit it stays QUEUED with the
//! reason on its row, and looks again every `recheck_ms` or as soon as an
//! execution of its workspace finishes; past the workspace's queue wait
//! limit it ends TIMED_OUT. A finished execution gives its slots back; the
//! leases of running ones are renewed by every executor, so a slot whose
//! holder is gone (a crash between finishing and giving back, a Redis that
//! lost it) frees itself after the lease ttl.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tyboo_lease::{AcquireAll, ConcurrencyLeases};
use tyboo_limits::{Limits, LimitsSource};
use uuid::Uuid;

use super::{Domain, Execution, Scope};
use crate::error::ExecutorResult;
use crate::storage::{executions, steps};

/// Renews the leases of running executions, in every workspace.
pub const CONCURRENCY: Scope = Scope::System("concurrency leases");

/// Where the slots are held and where the limits come from.
#[derive(Clone)]
pub struct Concurrency {
    pub leases: Arc<dyn ConcurrencyLeases>,
    pub limits: Arc<dyn LimitsSource>,
}

/// What a first claim found.
pub(crate) enum Slot {
    /// The execution holds its slots and may start.
    Taken,
    /// Every slot of a limit is taken; the reason says which.
    Wait(String),
}

pub(crate) fn workspace_key(workspace_id: Uuid) -> String {
    format!("concurrency:workspace:{workspace_id}")
}

fn user_key(workspace_id: Uuid, user_id: Uuid) -> String {
    format!("concurrency:user:{workspace_id}:{user_id}")
}

/// Which limit a slot counts against.
#[derive(Clone, Copy)]
enum Holder {
    Workspace,
    User,
}

impl Holder {
    fn limit(self, limits: &Limits) -> u32 {
        match self {
            Holder::Workspace => limits.running_executions_per_workspace,
            Holder::User => limits.running_executions_per_user,
        }
    }
}

/// The slots an execution of `workspace_id` started by `started_by` holds:
/// its workspace's, and its user's when a person started it.
fn slot_keys(workspace_id: Uuid, started_by: Option<Uuid>) -> Vec<(String, Holder)> {
    let mut keys = vec![(workspace_key(workspace_id), Holder::Workspace)];
    keys.extend(started_by.map(|user_id| (user_key(workspace_id, user_id), Holder::User)));
    keys
}

impl Domain {
    /// The limits of `workspace_id`; the defaults when the source fails.
    pub(crate) async fn limits_of(&self, workspace_id: Uuid) -> Limits {
        match self.concurrency().limits.limits(workspace_id).await {
            Ok(limits) => limits,
            Err(error) => {
                tracing::warn!(%workspace_id, %error, "limits unavailable; using the defaults");
                Limits::default()
            }
        }
    }

    fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.config().concurrency.leases.ttl_ms)
    }

    /// Takes the slots `execution` needs to start, or says why it waits.
    pub(crate) async fn take_slot(&self, execution: &Execution, limits: &Limits) -> Slot {
        let slots = slot_keys(execution.workspace_id, execution.started_by);
        let keys: Vec<(&str, u32)> = slots
            .iter()
            .map(|(key, holder)| (key.as_str(), holder.limit(limits)))
            .collect();
        let holder = execution.id.to_string();
        match self
            .concurrency()
            .leases
            .acquire_all(&keys, &holder, self.lease_ttl())
            .await
        {
            Ok(AcquireAll::Granted { .. }) => Slot::Taken,
            Ok(AcquireAll::Full { index, held, limit }) => {
                let (whose, label) = match slots[index].1 {
                    Holder::Workspace => ("in this workspace", "workspace"),
                    Holder::User => ("for the user who started it", "user"),
                };
                if execution.queue_reason.is_none() {
                    ::metrics::counter!(crate::metrics::QUEUED_FOR_SLOT_TOTAL, "limit" => label)
                        .increment(1);
                }
                Slot::Wait(format!(
                    "waiting for a concurrency slot: {held} of {limit} running {whose}"
                ))
            }
            Err(error) => {
                // Without the leases no limit can be kept: wait rather than
                // start past it; the recheck tries again.
                tracing::warn!(execution_id = %execution.id, %error, "concurrency leases unavailable");
                ::metrics::counter!(
                    crate::metrics::LEASE_FAILURES_TOTAL,
                    "operation" => "acquire",
                    "outcome" => "unavailable"
                )
                .increment(1);
                Slot::Wait("waiting for the concurrency leases to answer".to_owned())
            }
        }
    }

    /// How long a waiting execution has waited past its limit, if it has.
    pub(crate) fn waited_too_long(
        execution: &Execution,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let waited = (now - execution.create_time).to_std().unwrap_or_default();
        (waited >= limits.queue_wait_limit()).then(|| {
            format!(
                "waited {} s for a concurrency slot, past the queue wait limit of {} s \
                 (queue_wait_limit_seconds)",
                waited.as_secs(),
                limits.queue_wait_limit_seconds
            )
        })
    }

    /// When a waiting execution looks for a slot again.
    pub(crate) fn recheck_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::milliseconds(
            i64::try_from(self.config().concurrency.recheck_ms).unwrap_or(5_000),
        )
    }

    /// Gives back the slots of executions that finished in `workspace_id`,
    /// then wakes as many of its waiting executions. Runs after the commit
    /// that finished them; a failure leaves the lease to expire.
    pub(crate) async fn release_slots(&self, workspace_id: Uuid, execution_ids: Vec<Uuid>) {
        let leases = self.concurrency().leases.clone();
        let reader = self.read(Scope::Workspace(workspace_id));
        let mut freed = 0;
        for execution_id in execution_ids {
            let started_by = match executions::find(&reader, execution_id).await {
                Ok(found) => found.and_then(|execution| execution.started_by),
                Err(error) => {
                    tracing::warn!(%execution_id, %error, "reading a finished execution failed");
                    None
                }
            };
            let holder = execution_id.to_string();
            for (key, _) in slot_keys(workspace_id, started_by) {
                if let Err(error) = leases.release(&key, &holder).await {
                    tracing::warn!(%execution_id, %error, "giving a concurrency slot back failed; it expires with its lease");
                    ::metrics::counter!(
                        crate::metrics::LEASE_FAILURES_TOTAL,
                        "operation" => "release",
                        "outcome" => "unavailable"
                    )
                    .increment(1);
                }
            }
            freed += 1;
        }
        if let Err(error) = self.wake_waiting(workspace_id, freed).await {
            tracing::warn!(%workspace_id, %error, "waking executions waiting for a slot failed; they look again on their own");
        }
    }

    /// Dispatches the first steps of the `count` oldest executions of the
    /// workspace that wait for a slot, so they take a freed one at once.
    async fn wake_waiting(&self, workspace_id: Uuid, count: u64) -> ExecutorResult<()> {
        if count == 0 {
            return Ok(());
        }
        let reader = self.read(Scope::Workspace(workspace_id));
        let mut jobs = Vec::new();
        for execution in executions::waiting_for_slot(&reader, count).await? {
            for step in steps::list_for_execution(&reader, execution.id).await? {
                if step.state == super::StepState::Ready {
                    jobs.push((step.job(), None));
                }
            }
        }
        self.dispatch_jobs(jobs).await;
        Ok(())
    }

    /// Renews the slots of every running execution; one that lost its lease
    /// takes it again if it can. Run every `leases.renew_interval_ms`.
    pub async fn renew_slots(&self) -> ExecutorResult<u64> {
        let leases = self.concurrency().leases.clone();
        let ttl = self.lease_ttl();
        let batch = self.config().reconcile_batch_size;
        let mut after = None;
        let mut renewed = 0;
        loop {
            let running = executions::running_after(&self.read(CONCURRENCY), after, batch).await?;
            let Some(last) = running.last() else {
                return Ok(renewed);
            };
            after = Some(last.id);
            for execution in &running {
                let holder = execution.id.to_string();
                for (key, slot) in slot_keys(execution.workspace_id, execution.started_by) {
                    match leases.renew(&key, &holder, ttl).await {
                        Ok(true) => renewed += 1,
                        Ok(false) => {
                            // Expired or lost: a running execution keeps
                            // running, and counts again as soon as it can.
                            let limits = self.limits_of(execution.workspace_id).await;
                            let limit = slot.limit(&limits);
                            let _ = leases.acquire(&key, &holder, limit, ttl).await;
                            ::metrics::counter!(
                                crate::metrics::LEASE_FAILURES_TOTAL,
                                "operation" => "renew",
                                "outcome" => "lost"
                            )
                            .increment(1);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "renewing concurrency leases failed");
                            ::metrics::counter!(
                                crate::metrics::LEASE_FAILURES_TOTAL,
                                "operation" => "renew",
                                "outcome" => "unavailable"
                            )
                            .increment(1);
                            return Ok(renewed);
                        }
                    }
                }
            }
            if (running.len() as u64) < batch {
                return Ok(renewed);
            }
        }
    }
}
