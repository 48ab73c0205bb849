//! A workspace's use of its monthly quotas. Admission reserves an
//! execution with one conditional update, so executors racing for the last
//! of a quota cannot overshoot it: the row's lock orders them, and each
//! sees the count the one before it committed.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entities::monthly_usage::{self, Column, Entity};
use super::{Session, ensure_in_scope};

/// The row of (`workspace_id`, `month`), made with zeros if missing.
async fn ensure<S: Session>(db: &S, workspace_id: Uuid, month: &str) -> Result<(), DbErr> {
    ensure_in_scope(db, workspace_id)?;
    Entity::insert(monthly_usage::ActiveModel::from(monthly_usage::Model {
        workspace_id,
        month: month.to_owned(),
        executions: 0,
        tasks: 0,
    }))
    .on_conflict(
        OnConflict::columns([Column::WorkspaceId, Column::Month])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// Counts one more execution of the month if both quotas allow it (0: no
/// quota); false, with nothing changed, when one is used up.
pub async fn reserve_execution<S: Session>(
    db: &S,
    workspace_id: Uuid,
    month: &str,
    executions_per_month: u32,
    tasks_per_month: u32,
) -> Result<bool, DbErr> {
    ensure(db, workspace_id, month).await?;
    let mut update = Entity::update_many()
        .col_expr(Column::Executions, Expr::col(Column::Executions).add(1))
        .filter(Column::WorkspaceId.eq(workspace_id))
        .filter(Column::Month.eq(month));
    if executions_per_month > 0 {
        update = update.filter(Column::Executions.lt(i64::from(executions_per_month)));
    }
    if tasks_per_month > 0 {
        update = update.filter(Column::Tasks.lt(i64::from(tasks_per_month)));
    }
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// Counts one more task of the month.
pub async fn add_task<S: Session>(db: &S, workspace_id: Uuid, month: &str) -> Result<(), DbErr> {
    ensure(db, workspace_id, month).await?;
    Entity::update_many()
        .col_expr(Column::Tasks, Expr::col(Column::Tasks).add(1))
        .filter(Column::WorkspaceId.eq(workspace_id))
        .filter(Column::Month.eq(month))
        .exec(db)
        .await
        .map(|_| ())
}

/// The month's use: (executions, tasks); zeros when nothing was counted.
pub async fn used<S: Session>(
    db: &S,
    workspace_id: Uuid,
    month: &str,
) -> Result<(i64, i64), DbErr> {
    Ok(Entity::find_by_id((workspace_id, month.to_owned()))
        .one(db)
        .await?
        .map_or((0, 0), |row| (row.executions, row.tasks)))
}
