//! Parked steps: a node call held back by its target's open circuit breaker
//! did not happen, so the step goes back to ready for the breaker's probe
//! time with its attempt unchanged: waiting for a target to recover spends
//! none of the node's retry budget.

use chrono::{DateTime, Utc};

use super::steps::{Claimed, Committed};
use super::{Domain, NodeRunStatus, StepState, now};
use crate::error::ExecutorResult;
use crate::storage::{node_runs, steps};

impl Domain {
    /// Re-queues a held step for `until` without spending an attempt. Like
    /// every commit it applies only while this worker still holds the step
    /// (its fencing number) and the execution can still change; otherwise
    /// nothing is written and `Refused` is returned.
    pub async fn commit_parked(
        &self,
        claimed: &Claimed,
        until: DateTime<Utc>,
        reason: &str,
    ) -> ExecutorResult<Committed> {
        let now = now();
        let until = crate::storage::truncate(until.max(now));
        let mut work = self.begin(claimed.scope()).await?;
        if self
            .lock_active(work.tx(), claimed.execution.id)
            .await?
            .is_none()
        {
            work.rollback().await?;
            return Ok(self.refused());
        }
        let moved = steps::transition_held(
            work.tx(),
            claimed.step.id,
            claimed.step.fencing,
            steps::Transition {
                state: StepState::Ready,
                attempt: claimed.step.attempt,
                available_at: until,
                output: None,
                port: None,
                error: Some(reason),
                error_class: None,
                end_time: None,
                dispatched_at: Some(now),
            },
        )
        .await?;
        if !moved {
            work.rollback().await?;
            return Ok(self.refused());
        }
        // The attempt's run shows why it waits and until when; the next
        // claim starts the same attempt again, which resets the row.
        node_runs::finish(
            work.tx(),
            claimed.execution.id,
            &claimed.step.node_id,
            claimed.step.attempt,
            node_runs::RunEnd {
                error: Some(reason),
                resume_time: Some(until),
                ..node_runs::RunEnd::new(NodeRunStatus::Waiting)
            },
        )
        .await?;
        work.dispatch(claimed.job(), Some(until));
        self.commit(work).await?;
        ::metrics::counter!(
            crate::metrics::PARKED_STEPS_TOTAL,
            "pool" => claimed.step.pool.clone(),
            "node_type" => claimed.node.node_type.clone()
        )
        .increment(1);
        Ok(Committed::Applied)
    }
}
