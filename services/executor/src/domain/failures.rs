//! Failed attempts: a retry when the error class and the node's policy
//! allow one; otherwise the step fails, its execution stops (failed, or
//! timed out for the timeout class) and the step lands in the dead-letter
//! queue with the inputs it failed on.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tyboo_engine::{ErrorClass, NodeError};
use tyboo_store::Session;
use uuid::Uuid;

use super::progress::{Aftermath, Stop};
use super::steps::{Claimed, Failure};
use super::{
    DeadLetter, DeadLetterState, Domain, ExecutionStatus, NodeRunStatus, StepState, Work, now,
    to_json_text,
};
use crate::error::ExecutorResult;
use crate::storage::{dead_letters, node_runs, steps};

impl Domain {
    /// Commits a failed attempt: a retry when the error class and the policy
    /// allow one, else the step fails, its execution stops and the step goes
    /// to the dead-letter queue. Returns what it decided; `None` when the
    /// worker no longer held the step and the failure was discarded.
    pub async fn commit_failure(
        &self,
        claimed: &Claimed,
        error: NodeError,
    ) -> ExecutorResult<Option<Failure>> {
        let work = self.begin(claimed.scope()).await?;
        self.finish_failure(work, claimed, error, now()).await
    }

    pub(crate) async fn finish_failure(
        &self,
        mut work: Work,
        claimed: &Claimed,
        error: NodeError,
        now: DateTime<Utc>,
    ) -> ExecutorResult<Option<Failure>> {
        if self
            .lock_active(work.tx(), claimed.execution.id)
            .await?
            .is_none()
        {
            work.rollback().await?;
            self.refused();
            return Ok(None);
        }
        let Some((aftermath, failure)) = self.apply_failure(work.tx(), claimed, error, now).await?
        else {
            work.rollback().await?;
            self.refused();
            return Ok(None);
        };
        work.record(claimed.execution.id, aftermath);
        self.commit(work).await?;
        Ok(Some(failure))
    }

    /// The writes of a failed attempt, and what they decided; `None` when
    /// the step was no longer held.
    pub(crate) async fn apply_failure<S: Session>(
        &self,
        db: &S,
        claimed: &Claimed,
        error: NodeError,
        now: DateTime<Utc>,
    ) -> ExecutorResult<Option<(Aftermath, Failure)>> {
        let policy = claimed.policy();
        // The retry policy counts the errors the node reported; deliveries
        // lost with their worker have a limit of their own (max_deliveries).
        let reported = claimed.reported_attempts();
        let run_status = match error.class {
            ErrorClass::Timeout => NodeRunStatus::TimedOut,
            ErrorClass::Transient | ErrorClass::Permanent => NodeRunStatus::Failed,
        };
        let class = error.class.as_str();
        let message = error.to_string();
        let retry = error.class.is_retryable() && reported < policy.max_attempts;
        let mut aftermath = Aftermath::default();
        let transition = if retry {
            let delay = tyboo_engine::backoff(&policy, reported, error.retry_after);
            let available_at = crate::storage::truncate(
                now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero()),
            );
            let mut job = claimed.job();
            job.attempt = claimed.attempt() + 1;
            aftermath.jobs.push((job, Some(available_at)));
            steps::Transition {
                state: StepState::Ready,
                attempt: claimed.step.attempt + 1,
                available_at,
                output: None,
                port: None,
                error: Some(&message),
                error_class: Some(class),
                end_time: None,
                dispatched_at: Some(now),
            }
        } else {
            let state = match error.class {
                ErrorClass::Timeout => StepState::TimedOut,
                ErrorClass::Transient | ErrorClass::Permanent => StepState::Failed,
            };
            steps::Transition {
                state,
                attempt: claimed.step.attempt,
                available_at: claimed.step.available_at,
                output: None,
                port: None,
                error: Some(&message),
                error_class: Some(class),
                end_time: Some(now),
                dispatched_at: claimed.step.dispatched_at,
            }
        };
        if !steps::transition_held(db, claimed.step.id, claimed.step.fencing, transition).await? {
            ::metrics::counter!(crate::metrics::STALE_COMMITS_TOTAL).increment(1);
            return Ok(None);
        }
        node_runs::finish(
            db,
            claimed.execution.id,
            &claimed.step.node_id,
            claimed.step.attempt,
            node_runs::RunEnd {
                error: Some(&message),
                error_class: Some(class),
                end_time: Some(now),
                ..node_runs::RunEnd::new(run_status)
            },
        )
        .await?;
        if retry {
            return Ok(Some((aftermath, Failure::Retried)));
        }
        let letter = DeadLetter {
            id: Uuid::now_v7(),
            workspace_id: claimed.execution.workspace_id,
            execution_id: claimed.execution.id,
            workflow_id: claimed.execution.workflow_id,
            workflow_version: claimed.execution.workflow_version,
            node_id: claimed.step.node_id.clone(),
            inputs: to_json_text(&Value::Array(claimed.inputs.clone())),
            error_class: class.to_owned(),
            error: message.clone(),
            attempts: claimed.step.attempt,
            state: DeadLetterState::Pending,
            create_time: now,
            resolve_time: None,
            replay_execution_id: None,
        };
        dead_letters::insert(db, &letter).await?;
        ::metrics::counter!(
            crate::metrics::DEAD_LETTERS_TOTAL,
            "pool" => claimed.step.pool.clone(),
            "error_class" => class
        )
        .increment(1);
        let (status, failure) = match error.class {
            ErrorClass::Timeout => (ExecutionStatus::TimedOut, Failure::TimedOut),
            ErrorClass::Transient | ErrorClass::Permanent => {
                (ExecutionStatus::Failed, Failure::Failed)
            }
        };
        let execution_error = format!(
            "node {} failed after {} attempt(s): {message}",
            claimed.step.node_id, claimed.step.attempt
        );
        let stopped = self
            .stop_execution(
                db,
                claimed.execution.id,
                Stop {
                    status,
                    error: &execution_error,
                    error_class: Some(class),
                    failed_node_id: Some(&claimed.step.node_id),
                    now,
                },
            )
            .await?;
        if stopped {
            aftermath.finished = Some(status);
        }
        Ok(Some((aftermath, failure)))
    }
}
