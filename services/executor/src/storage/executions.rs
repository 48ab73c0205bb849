//! Executions.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::execution;

/// Statuses from which an execution can still change.
pub const ACTIVE: [&str; 2] = ["queued", "running"];

pub async fn insert<C: ConnectionTrait>(db: &C, model: &execution::Model) -> Result<(), DbErr> {
    execution::Entity::insert(execution::ActiveModel {
        id: Set(model.id),
        workspace_id: Set(model.workspace_id),
        workflow_id: Set(model.workflow_id),
        workflow_version: Set(model.workflow_version),
        status: Set(model.status.clone()),
        trigger_type: Set(model.trigger_type.clone()),
        input: Set(model.input.clone()),
        error: Set(model.error.clone()),
        error_class: Set(model.error_class.clone()),
        failed_node_id: Set(model.failed_node_id.clone()),
        create_time: Set(model.create_time),
        start_time: Set(model.start_time),
        end_time: Set(model.end_time),
        deadline: Set(model.deadline),
        data_bytes: Set(model.data_bytes),
        dead_letter_id: Set(model.dead_letter_id),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// An execution of the workspace.
pub async fn find_in_workspace<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    execution_id: Uuid,
) -> Result<Option<execution::Model>, DbErr> {
    execution::Entity::find_by_id(execution_id)
        .filter(execution::Column::WorkspaceId.eq(workspace_id))
        .one(db)
        .await
}

/// An execution by id alone, for workers and the reconciler, which act for
/// the system rather than a caller.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    execution_id: Uuid,
) -> Result<Option<execution::Model>, DbErr> {
    execution::Entity::find_by_id(execution_id).one(db).await
}

/// Reads the execution and, on PostgreSQL, locks its row until the
/// transaction ends, so the commits of one execution's steps run one at a
/// time and each sees the others' results. SQLite's write transactions are
/// already serialized.
pub async fn lock<C: ConnectionTrait>(
    db: &C,
    execution_id: Uuid,
) -> Result<Option<execution::Model>, DbErr> {
    let query = execution::Entity::find_by_id(execution_id);
    if db.get_database_backend() == DbBackend::Postgres {
        query.lock_exclusive().one(db).await
    } else {
        query.one(db).await
    }
}

pub struct ListFilter {
    pub workflow_id: Option<Uuid>,
    pub status: Option<&'static str>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub before_id: Option<Uuid>,
}

/// Executions newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    filter: &ListFilter,
    limit: u64,
) -> Result<Vec<execution::Model>, DbErr> {
    let mut query =
        execution::Entity::find().filter(execution::Column::WorkspaceId.eq(workspace_id));
    if let Some(workflow_id) = filter.workflow_id {
        query = query.filter(execution::Column::WorkflowId.eq(workflow_id));
    }
    if let Some(status) = filter.status {
        query = query.filter(execution::Column::Status.eq(status));
    }
    if let Some(after) = filter.created_after {
        query = query.filter(execution::Column::CreateTime.gte(after));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(execution::Column::CreateTime.lt(before));
    }
    if let Some(before_id) = filter.before_id {
        query = query.filter(execution::Column::Id.lt(before_id));
    }
    query
        .order_by_desc(execution::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Marks a queued execution running when its first step starts.
pub async fn mark_running<C: ConnectionTrait>(
    db: &C,
    execution_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    execution::Entity::update_many()
        .col_expr(execution::Column::Status, Expr::value("running"))
        .col_expr(execution::Column::StartTime, Expr::value(now))
        .filter(execution::Column::Id.eq(execution_id))
        .filter(execution::Column::Status.eq("queued"))
        .exec(db)
        .await
        .map(|_| ())
}

pub struct Finish<'a> {
    pub status: &'static str,
    pub error: Option<&'a str>,
    pub error_class: Option<&'a str>,
    pub failed_node_id: Option<&'a str>,
    pub end_time: DateTime<Utc>,
}

/// Moves an active execution to a terminal status; false when it had
/// already finished, so exactly one finisher wins.
pub async fn finish<C: ConnectionTrait>(
    db: &C,
    execution_id: Uuid,
    finish: Finish<'_>,
) -> Result<bool, DbErr> {
    let result = execution::Entity::update_many()
        .col_expr(execution::Column::Status, Expr::value(finish.status))
        .col_expr(
            execution::Column::Error,
            Expr::value(finish.error.map(str::to_owned)),
        )
        .col_expr(
            execution::Column::ErrorClass,
            Expr::value(finish.error_class.map(str::to_owned)),
        )
        .col_expr(
            execution::Column::FailedNodeId,
            Expr::value(finish.failed_node_id.map(str::to_owned)),
        )
        .col_expr(execution::Column::EndTime, Expr::value(finish.end_time))
        .filter(execution::Column::Id.eq(execution_id))
        .filter(execution::Column::Status.is_in(ACTIVE))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn set_data_bytes<C: ConnectionTrait>(
    db: &C,
    execution_id: Uuid,
    data_bytes: i64,
) -> Result<(), DbErr> {
    execution::Entity::update_many()
        .col_expr(execution::Column::DataBytes, Expr::value(data_bytes))
        .filter(execution::Column::Id.eq(execution_id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Active executions whose deadline has passed.
pub async fn past_deadline<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<execution::Model>, DbErr> {
    execution::Entity::find()
        .filter(execution::Column::Status.is_in(ACTIVE))
        .filter(execution::Column::Deadline.lt(now))
        .order_by_asc(execution::Column::Deadline)
        .limit(limit)
        .all(db)
        .await
}
