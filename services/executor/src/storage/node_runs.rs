//! Node runs: one row per attempt, idempotent on (execution, node, attempt).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use tyboo_store::Session;
use uuid::Uuid;

use super::entities::node_run;
use super::{ensure_in_scope, records};
use crate::domain::model::{NodeRun, NodeRunStatus};

/// Statuses a run can still leave.
pub const ACTIVE: [NodeRunStatus; 2] = [NodeRunStatus::Running, NodeRunStatus::Waiting];

fn select<S: Session>(db: &S, execution_id: Uuid) -> sea_orm::Select<node_run::Entity> {
    db.scope()
        .restrict(node_run::Entity::find(), node_run::Column::WorkspaceId)
        .filter(node_run::Column::ExecutionId.eq(execution_id))
}

fn update<S: Session>(db: &S, execution_id: Uuid) -> sea_orm::UpdateMany<node_run::Entity> {
    db.scope()
        .restrict(
            node_run::Entity::update_many(),
            node_run::Column::WorkspaceId,
        )
        .filter(node_run::Column::ExecutionId.eq(execution_id))
}

/// Records the start of an attempt. The same attempt started again (its
/// step was released by a worker that shut down) resets the row, so writes
/// stay idempotent on (execution, node, attempt).
pub async fn record_start<S: Session>(db: &S, record: &NodeRun) -> Result<(), DbErr> {
    ensure_in_scope(db, record.workspace_id)?;
    node_run::Entity::insert(node_run::ActiveModel::from(record))
        .on_conflict(
            OnConflict::columns([
                node_run::Column::ExecutionId,
                node_run::Column::NodeId,
                node_run::Column::Attempt,
            ])
            .update_columns([
                node_run::Column::Status,
                node_run::Column::Input,
                node_run::Column::Error,
                node_run::Column::ErrorClass,
                node_run::Column::StartTime,
                node_run::Column::EndTime,
            ])
            .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

pub struct RunEnd<'a> {
    pub status: NodeRunStatus,
    pub output: Option<&'a str>,
    pub port: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_class: Option<&'a str>,
    pub end_time: Option<DateTime<Utc>>,
    pub resume_time: Option<DateTime<Utc>>,
    pub llm_model: Option<&'a str>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
}

impl RunEnd<'_> {
    /// An end with `status` and nothing else set.
    pub fn new(status: NodeRunStatus) -> Self {
        RunEnd {
            status,
            output: None,
            port: None,
            error: None,
            error_class: None,
            end_time: None,
            resume_time: None,
            llm_model: None,
            prompt_tokens: None,
            completion_tokens: None,
            total_tokens: None,
        }
    }
}

/// Writes the outcome of an attempt that is still open.
pub async fn finish<S: Session>(
    db: &S,
    execution_id: Uuid,
    node_id: &str,
    attempt: i32,
    end: RunEnd<'_>,
) -> Result<(), DbErr> {
    let mut update = update(db, execution_id)
        .col_expr(node_run::Column::Status, Expr::value(end.status))
        .col_expr(
            node_run::Column::Error,
            Expr::value(end.error.map(str::to_owned)),
        )
        .col_expr(
            node_run::Column::ErrorClass,
            Expr::value(end.error_class.map(str::to_owned)),
        )
        .col_expr(node_run::Column::EndTime, Expr::value(end.end_time))
        .col_expr(node_run::Column::ResumeTime, Expr::value(end.resume_time));
    // A waiting run keeps the output it produced; only a new one replaces it.
    if end.output.is_some() {
        update = update
            .col_expr(
                node_run::Column::Output,
                Expr::value(end.output.map(str::to_owned)),
            )
            .col_expr(
                node_run::Column::Port,
                Expr::value(end.port.map(str::to_owned)),
            );
    }
    if end.llm_model.is_some() {
        update = update
            .col_expr(
                node_run::Column::LlmModel,
                Expr::value(end.llm_model.map(str::to_owned)),
            )
            .col_expr(
                node_run::Column::PromptTokens,
                Expr::value(end.prompt_tokens),
            )
            .col_expr(
                node_run::Column::CompletionTokens,
                Expr::value(end.completion_tokens),
            )
            .col_expr(node_run::Column::TotalTokens, Expr::value(end.total_tokens));
    }
    update
        .filter(node_run::Column::NodeId.eq(node_id))
        .filter(node_run::Column::Attempt.eq(attempt))
        .filter(node_run::Column::Status.is_in(ACTIVE))
        .exec(db)
        .await
        .map(|_| ())
}

/// Closes every open run of the execution with `status`.
pub async fn stop_active<S: Session>(
    db: &S,
    execution_id: Uuid,
    status: NodeRunStatus,
    error: &str,
    end_time: DateTime<Utc>,
) -> Result<(), DbErr> {
    update(db, execution_id)
        .col_expr(node_run::Column::Status, Expr::value(status))
        .col_expr(node_run::Column::Error, Expr::value(error))
        .col_expr(node_run::Column::EndTime, Expr::value(end_time))
        .filter(node_run::Column::Status.is_in(ACTIVE))
        .exec(db)
        .await
        .map(|_| ())
}

/// Every run of the execution, in the order they started.
pub async fn list_for_execution<S: Session>(
    db: &S,
    execution_id: Uuid,
) -> Result<Vec<NodeRun>, DbErr> {
    let rows = select(db, execution_id)
        .order_by_asc(node_run::Column::StartTime)
        .order_by_asc(node_run::Column::Id)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

/// A page of an execution's node runs in start order, after the run `after`.
pub async fn page_for_execution<S: Session>(
    db: &S,
    execution_id: Uuid,
    after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<NodeRun>, DbErr> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::Condition;
    let mut query = select(db, execution_id);
    if let Some((start_time, id)) = after {
        query = query.filter(
            Condition::any()
                .add(node_run::Column::StartTime.gt(start_time))
                .add(
                    Condition::all()
                        .add(node_run::Column::StartTime.eq(start_time))
                        .add(node_run::Column::Id.gt(id)),
                ),
        );
    }
    let rows = query
        .order_by_asc(node_run::Column::StartTime)
        .order_by_asc(node_run::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

/// One run of an execution.
pub async fn find<S: Session>(
    db: &S,
    execution_id: Uuid,
    run_id: Uuid,
) -> Result<Option<NodeRun>, DbErr> {
    Ok(select(db, execution_id)
        .filter(node_run::Column::Id.eq(run_id))
        .one(db)
        .await?
        .map(Into::into))
}
