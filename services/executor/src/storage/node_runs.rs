//! Node runs: one row per attempt, idempotent on (execution, node, attempt).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::entities::node_run;

/// Statuses a run can still leave.
pub const ACTIVE: [&str; 2] = ["running", "waiting"];

/// Records the start of an attempt. The same attempt started again (its
/// step was released by a worker that shut down) resets the row, so writes
/// stay idempotent on (execution, node, attempt).
pub async fn record_start<C: ConnectionTrait>(
    db: &C,
    model: &node_run::Model,
) -> Result<(), DbErr> {
    node_run::Entity::insert(node_run::ActiveModel {
        id: Set(model.id),
        workspace_id: Set(model.workspace_id),
        execution_id: Set(model.execution_id),
        node_id: Set(model.node_id.clone()),
        attempt: Set(model.attempt),
        status: Set(model.status.clone()),
        input: Set(model.input.clone()),
        output: Set(model.output.clone()),
        port: Set(model.port.clone()),
        error: Set(model.error.clone()),
        error_class: Set(model.error_class.clone()),
        start_time: Set(model.start_time),
        end_time: Set(model.end_time),
        resume_time: Set(model.resume_time),
        llm_model: Set(model.llm_model.clone()),
        prompt_tokens: Set(model.prompt_tokens),
        completion_tokens: Set(model.completion_tokens),
        total_tokens: Set(model.total_tokens),
    })
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

#[derive(Default)]
pub struct RunEnd<'a> {
    pub status: &'static str,
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

/// Writes the outcome of an attempt that is still open.
pub async fn finish<C: ConnectionTrait>(
    db: &C,
    execution_id: Uuid,
    node_id: &str,
    attempt: i32,
    end: RunEnd<'_>,
) -> Result<(), DbErr> {
    let mut update = node_run::Entity::update_many()
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
        .filter(node_run::Column::ExecutionId.eq(execution_id))
        .filter(node_run::Column::NodeId.eq(node_id))
        .filter(node_run::Column::Attempt.eq(attempt))
        .filter(node_run::Column::Status.is_in(ACTIVE))
        .exec(db)
        .await
        .map(|_| ())
}

/// Closes every open run of the execution with `status`.
pub async fn stop_active<C: ConnectionTrait>(
    db: &C,
    execution_id: Uuid,
    status: &'static str,
    error: &str,
    end_time: DateTime<Utc>,
) -> Result<(), DbErr> {
    node_run::Entity::update_many()
        .col_expr(node_run::Column::Status, Expr::value(status))
        .col_expr(node_run::Column::Error, Expr::value(error))
        .col_expr(node_run::Column::EndTime, Expr::value(end_time))
        .filter(node_run::Column::ExecutionId.eq(execution_id))
        .filter(node_run::Column::Status.is_in(ACTIVE))
        .exec(db)
        .await
        .map(|_| ())
}

/// Every run of the execution, in the order they started.
pub async fn list_for_execution<C: ConnectionTrait>(
    db: &C,
    execution_id: Uuid,
) -> Result<Vec<node_run::Model>, DbErr> {
    node_run::Entity::find()
        .filter(node_run::Column::ExecutionId.eq(execution_id))
        .order_by_asc(node_run::Column::StartTime)
        .order_by_asc(node_run::Column::Id)
        .all(db)
        .await
}

/// A page of an execution's node runs in start order, after the run `after`.
pub async fn page_for_execution<C: ConnectionTrait>(
    db: &C,
    execution_id: Uuid,
    after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<node_run::Model>, DbErr> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::Condition;
    let mut query = node_run::Entity::find().filter(node_run::Column::ExecutionId.eq(execution_id));
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
    query
        .order_by_asc(node_run::Column::StartTime)
        .order_by_asc(node_run::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// One run of an execution.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    execution_id: Uuid,
    run_id: Uuid,
) -> Result<Option<node_run::Model>, DbErr> {
    node_run::Entity::find_by_id(run_id)
        .filter(node_run::Column::ExecutionId.eq(execution_id))
        .one(db)
        .await
}
