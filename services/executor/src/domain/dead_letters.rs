//! The dead-letter queue: inspect, replay (from the failed node or from the
//! start, on the pinned or the latest version) and discard, one by one or in
//! bulk by filter.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::executions::Admission;
use super::pagination::{decode_id_token, next_token};
use super::{
    DeadLetter, DeadLetterState, Domain, Execution, ReplayMode, ReplayVersion, StepState,
    TriggerType, WorkspaceScope, json_column, now, tenant,
};
use crate::error::{ExecutorError, ExecutorResult};
use crate::storage::{dead_letters, executions, steps, workflows};

/// Matches dead letters; unset fields match everything.
#[derive(Clone, Debug, Default)]
pub struct DeadLetterFilter {
    pub workflow_id: Option<Uuid>,
    pub node_id: Option<String>,
    pub state: Option<DeadLetterState>,
    pub error_class: Option<tyboo_engine::ErrorClass>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

impl DeadLetterFilter {
    fn to_storage(&self, before_id: Option<Uuid>) -> dead_letters::ListFilter {
        dead_letters::ListFilter {
            workflow_id: self.workflow_id,
            node_id: self.node_id.clone(),
            state: self.state,
            error_class: self.error_class.map(tyboo_engine::ErrorClass::as_str),
            created_after: self.created_after,
            created_before: self.created_before,
            before_id,
        }
    }
}

/// What became of one dead letter of a bulk replay.
#[derive(Debug)]
pub struct BulkReplayed {
    pub dead_letter_id: Uuid,
    pub result: Result<Uuid, String>,
}

impl Domain {
    pub async fn list_dead_letters(
        &self,
        scope: &WorkspaceScope,
        filter: &DeadLetterFilter,
        requested_page_size: i32,
        page_token: &str,
    ) -> ExecutorResult<(Vec<DeadLetter>, String)> {
        let limit = self.page_size(requested_page_size)?;
        let storage_filter = filter.to_storage(decode_id_token(page_token)?);
        let rows = dead_letters::list(&self.read(tenant(scope)), &storage_filter, limit).await?;
        let next = next_token(&rows, limit, |row| row.id.to_string());
        Ok((rows, next))
    }

    pub async fn get_dead_letter(
        &self,
        scope: &WorkspaceScope,
        dead_letter_id: Uuid,
    ) -> ExecutorResult<DeadLetter> {
        dead_letters::find(&self.read(tenant(scope)), dead_letter_id)
            .await?
            .ok_or(ExecutorError::NotFound("dead letter"))
    }

    /// Starts a new execution from a pending dead letter and marks it replayed.
    pub async fn replay_dead_letter(
        &self,
        scope: &WorkspaceScope,
        dead_letter_id: Uuid,
        mode: ReplayMode,
        version: ReplayVersion,
    ) -> ExecutorResult<(DeadLetter, Execution)> {
        let letter = self.get_dead_letter(scope, dead_letter_id).await?;
        ensure_pending(&letter)?;
        let reader = self.read(tenant(scope));
        let original = executions::find(&reader, letter.execution_id)
            .await?
            .ok_or(ExecutorError::NotFound("execution"))?;
        let version_number = match version {
            ReplayVersion::Pinned => letter.workflow_version,
            ReplayVersion::Latest => {
                workflows::find_live(&reader, letter.workflow_id)
                    .await?
                    .ok_or_else(|| {
                        ExecutorError::FailedPrecondition(
                            "the workflow was deleted; replay on the pinned version".to_owned(),
                        )
                    })?
                    .latest_version
            }
        };
        let graph = self
            .graph(tenant(scope), letter.workflow_id, version_number)
            .await?;
        let carried = match mode {
            ReplayMode::FromStart => Vec::new(),
            ReplayMode::FromFailedNode => {
                if graph.node(&letter.node_id).is_none() {
                    return Err(ExecutorError::FailedPrecondition(format!(
                        "node {} is not in version {version_number}; replay from the start",
                        letter.node_id
                    )));
                }
                steps::list_for_execution(&reader, original.id)
                    .await?
                    .into_iter()
                    .filter(|row| matches!(row.state, StepState::Succeeded | StepState::Skipped))
                    .collect()
            }
        };
        let mut work = self.begin(tenant(scope)).await?;
        let execution = self
            .admit(
                &mut work,
                Admission {
                    workspace_id: scope.workspace_id,
                    workflow_id: letter.workflow_id,
                    version: version_number,
                    graph: &graph,
                    trigger_type: TriggerType::Replay,
                    input: json_column(&original.input)?,
                    dead_letter_id: Some(letter.id),
                    started_by: scope.user_id(),
                    carried,
                },
            )
            .await?;
        let now = now();
        let resolved = dead_letters::resolve(
            work.tx(),
            letter.id,
            DeadLetterState::Replayed,
            Some(execution.id),
            now,
        )
        .await?;
        if !resolved {
            work.rollback().await?;
            return Err(ExecutorError::FailedPrecondition(
                "the dead letter was resolved concurrently".to_owned(),
            ));
        }
        self.commit(work).await?;
        let letter = DeadLetter {
            state: DeadLetterState::Replayed,
            resolve_time: Some(now),
            replay_execution_id: Some(execution.id),
            ..letter
        };
        Ok((letter, execution))
    }

    pub async fn discard_dead_letter(
        &self,
        scope: &WorkspaceScope,
        dead_letter_id: Uuid,
    ) -> ExecutorResult<DeadLetter> {
        let letter = self.get_dead_letter(scope, dead_letter_id).await?;
        ensure_pending(&letter)?;
        let now = now();
        let work = self.begin(tenant(scope)).await?;
        let resolved =
            dead_letters::resolve(work.tx(), letter.id, DeadLetterState::Discarded, None, now)
                .await?;
        self.commit(work).await?;
        if !resolved {
            return Err(ExecutorError::FailedPrecondition(
                "the dead letter was resolved concurrently".to_owned(),
            ));
        }
        Ok(DeadLetter {
            state: DeadLetterState::Discarded,
            resolve_time: Some(now),
            ..letter
        })
    }

    /// Replays pending dead letters matching `filter`, oldest state first
    /// per page, up to `limit`; a letter that cannot replay is reported, not
    /// fatal.
    pub async fn bulk_replay_dead_letters(
        &self,
        scope: &WorkspaceScope,
        filter: &DeadLetterFilter,
        mode: ReplayMode,
        version: ReplayVersion,
        requested_limit: i32,
    ) -> ExecutorResult<Vec<BulkReplayed>> {
        let pending = self
            .pending_matching(scope, filter, requested_limit)
            .await?;
        let mut results = Vec::with_capacity(pending.len());
        for letter in pending {
            let result = match self
                .replay_dead_letter(scope, letter.id, mode, version)
                .await
            {
                Ok((_, execution)) => Ok(execution.id),
                Err(
                    error @ (ExecutorError::FailedPrecondition(_) | ExecutorError::NotFound(_)),
                ) => Err(error.to_string()),
                Err(error) => return Err(error),
            };
            results.push(BulkReplayed {
                dead_letter_id: letter.id,
                result,
            });
        }
        Ok(results)
    }

    /// Discards pending dead letters matching `filter`; returns their ids.
    pub async fn bulk_discard_dead_letters(
        &self,
        scope: &WorkspaceScope,
        filter: &DeadLetterFilter,
        requested_limit: i32,
    ) -> ExecutorResult<Vec<Uuid>> {
        let pending = self
            .pending_matching(scope, filter, requested_limit)
            .await?;
        let now = now();
        let mut discarded = Vec::with_capacity(pending.len());
        for letter in pending {
            let work = self.begin(tenant(scope)).await?;
            let resolved =
                dead_letters::resolve(work.tx(), letter.id, DeadLetterState::Discarded, None, now)
                    .await?;
            self.commit(work).await?;
            if resolved {
                discarded.push(letter.id);
            }
        }
        Ok(discarded)
    }

    async fn pending_matching(
        &self,
        scope: &WorkspaceScope,
        filter: &DeadLetterFilter,
        requested_limit: i32,
    ) -> ExecutorResult<Vec<DeadLetter>> {
        if requested_limit < 0 {
            return Err(ExecutorError::invalid("limit", "must not be negative"));
        }
        let config = self.config();
        let limit = if requested_limit == 0 {
            config.bulk_limit_default
        } else {
            (requested_limit as u32).min(config.bulk_limit_max)
        };
        let pending = DeadLetterFilter {
            state: Some(DeadLetterState::Pending),
            ..filter.clone()
        };
        Ok(dead_letters::list(
            &self.read(tenant(scope)),
            &pending.to_storage(None),
            u64::from(limit),
        )
        .await?)
    }
}

fn ensure_pending(letter: &DeadLetter) -> ExecutorResult<()> {
    if letter.state != DeadLetterState::Pending {
        return Err(ExecutorError::FailedPrecondition(format!(
            "the dead letter is already {}",
            letter.state
        )));
    }
    Ok(())
}
