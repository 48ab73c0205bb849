//! Executions.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tyboo_store::Session;
use uuid::Uuid;

use super::entities::execution;
use super::{ensure_in_scope, records};
use crate::domain::model::{Execution, ExecutionStatus};

/// Statuses from which an execution can still change.
/// Not finished: what cancel and the finishers move to a terminal status.
pub const ACTIVE: [ExecutionStatus; 3] = [
    ExecutionStatus::Queued,
    ExecutionStatus::Running,
    ExecutionStatus::Held,
];
/// Under way: what a deadline applies to. A HELD execution has not begun;
/// its deadline starts again when it is released.
pub const UNDER_WAY: [ExecutionStatus; 2] = [ExecutionStatus::Queued, ExecutionStatus::Running];

pub async fn insert<S: Session>(db: &S, record: &Execution) -> Result<(), DbErr> {
    ensure_in_scope(db, record.workspace_id)?;
    execution::Entity::insert(execution::ActiveModel::from(record))
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

fn by_id<S: Session>(db: &S, execution_id: Uuid) -> sea_orm::Select<execution::Entity> {
    db.scope().restrict(
        execution::Entity::find_by_id(execution_id),
        execution::Column::WorkspaceId,
    )
}

/// An execution of the scope.
pub async fn find<S: Session>(db: &S, execution_id: Uuid) -> Result<Option<Execution>, DbErr> {
    Ok(by_id(db, execution_id).one(db).await?.map(Into::into))
}

/// Reads the execution and, on PostgreSQL, locks its row until the
/// transaction ends, so the commits of one execution's steps run one at a
/// time and each sees the others' results. SQLite's write transactions are
/// already serialized.
pub async fn lock<S: Session>(db: &S, execution_id: Uuid) -> Result<Option<Execution>, DbErr> {
    let query = by_id(db, execution_id);
    let row = if db.get_database_backend() == DbBackend::Postgres {
        query.lock_exclusive().one(db).await?
    } else {
        query.one(db).await?
    };
    Ok(row.map(Into::into))
}

pub struct ListFilter {
    pub workflow_id: Option<Uuid>,
    pub status: Option<ExecutionStatus>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub before_id: Option<Uuid>,
}

/// Executions of the scope newest first.
pub async fn list<S: Session>(
    db: &S,
    filter: &ListFilter,
    limit: u64,
) -> Result<Vec<Execution>, DbErr> {
    let mut query = db
        .scope()
        .restrict(execution::Entity::find(), execution::Column::WorkspaceId);
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
    let rows = query
        .order_by_desc(execution::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

fn update<S: Session>(db: &S, execution_id: Uuid) -> sea_orm::UpdateMany<execution::Entity> {
    db.scope()
        .restrict(
            execution::Entity::update_many(),
            execution::Column::WorkspaceId,
        )
        .filter(execution::Column::Id.eq(execution_id))
}

/// Marks a queued execution running when its first step starts.
pub async fn mark_running<S: Session>(
    db: &S,
    execution_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    update(db, execution_id)
        .col_expr(
            execution::Column::Status,
            Expr::value(ExecutionStatus::Running),
        )
        .col_expr(execution::Column::StartTime, Expr::value(now))
        .col_expr(execution::Column::QueueReason, Expr::value(None::<String>))
        .filter(execution::Column::Status.eq(ExecutionStatus::Queued))
        .exec(db)
        .await
        .map(|_| ())
}

pub struct Finish<'a> {
    pub status: ExecutionStatus,
    pub error: Option<&'a str>,
    pub error_class: Option<&'a str>,
    pub failed_node_id: Option<&'a str>,
    pub end_time: DateTime<Utc>,
}

/// Moves an active execution to a terminal status; false when it had
/// already finished, so exactly one finisher wins.
pub async fn finish<S: Session>(
    db: &S,
    execution_id: Uuid,
    finish: Finish<'_>,
) -> Result<bool, DbErr> {
    let result = update(db, execution_id)
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
        .filter(execution::Column::Status.is_in(ACTIVE))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn set_data_bytes<S: Session>(
    db: &S,
    execution_id: Uuid,
    data_bytes: i64,
) -> Result<(), DbErr> {
    update(db, execution_id)
        .col_expr(execution::Column::DataBytes, Expr::value(data_bytes))
        .exec(db)
        .await
        .map(|_| ())
}

/// Active executions of the scope whose deadline has passed.
pub async fn past_deadline<S: Session>(
    db: &S,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Execution>, DbErr> {
    let rows = db
        .scope()
        .restrict(execution::Entity::find(), execution::Column::WorkspaceId)
        .filter(execution::Column::Status.is_in(UNDER_WAY))
        .filter(execution::Column::Deadline.lt(now))
        .order_by_asc(execution::Column::Deadline)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

/// Says why a queued execution waits (`None`: it no longer does).
pub async fn set_queue_reason<S: Session>(
    db: &S,
    execution_id: Uuid,
    reason: Option<&str>,
) -> Result<(), DbErr> {
    update(db, execution_id)
        .col_expr(
            execution::Column::QueueReason,
            Expr::value(reason.map(str::to_owned)),
        )
        .filter(execution::Column::Status.eq(ExecutionStatus::Queued))
        .exec(db)
        .await
        .map(|_| ())
}

/// Running executions of the scope in id order after `after_id`: the
/// holders of concurrency leases, which renew them.
pub async fn running_after<S: Session>(
    db: &S,
    after_id: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Execution>, DbErr> {
    let mut query = db
        .scope()
        .restrict(execution::Entity::find(), execution::Column::WorkspaceId)
        .filter(execution::Column::Status.eq(ExecutionStatus::Running));
    if let Some(after_id) = after_id {
        query = query.filter(execution::Column::Id.gt(after_id));
    }
    let rows = query
        .order_by_asc(execution::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

/// The queued executions of the scope that wait for a concurrency slot,
/// oldest first.
pub async fn waiting_for_slot<S: Session>(db: &S, limit: u64) -> Result<Vec<Execution>, DbErr> {
    let rows = db
        .scope()
        .restrict(execution::Entity::find(), execution::Column::WorkspaceId)
        .filter(execution::Column::Status.eq(ExecutionStatus::Queued))
        .filter(execution::Column::QueueReason.is_not_null())
        .order_by_asc(execution::Column::CreateTime)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

/// The HELD executions of the scope, oldest first.
pub async fn held<S: Session>(db: &S, limit: u64) -> Result<Vec<Execution>, DbErr> {
    let rows = db
        .scope()
        .restrict(execution::Entity::find(), execution::Column::WorkspaceId)
        .filter(execution::Column::Status.eq(ExecutionStatus::Held))
        .order_by_asc(execution::Column::CreateTime)
        .order_by_asc(execution::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

/// The workspaces that have HELD executions.
pub async fn workspaces_with_held<S: Session>(db: &S, limit: u64) -> Result<Vec<Uuid>, DbErr> {
    db.scope()
        .restrict(execution::Entity::find(), execution::Column::WorkspaceId)
        .select_only()
        .column(execution::Column::WorkspaceId)
        .filter(execution::Column::Status.eq(ExecutionStatus::Held))
        .distinct()
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
}

/// Moves a HELD execution to QUEUED with a fresh deadline; false when it
/// was no longer held (another executor released or someone cancelled it).
pub async fn release_held<S: Session>(
    db: &S,
    execution_id: Uuid,
    deadline: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = update(db, execution_id)
        .col_expr(
            execution::Column::Status,
            Expr::value(ExecutionStatus::Queued),
        )
        .col_expr(execution::Column::QueueReason, Expr::value(None::<String>))
        .col_expr(execution::Column::Deadline, Expr::value(deadline))
        .filter(execution::Column::Status.eq(ExecutionStatus::Held))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
