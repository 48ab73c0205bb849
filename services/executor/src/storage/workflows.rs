//! Workflows and their immutable versions.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tyboo_store::Session;
use uuid::Uuid;

use super::entities::{workflow, workflow_version};
use super::{ensure_in_scope, records};
use crate::domain::model::{Workflow, WorkflowVersion};

fn live<S: Session>(db: &S) -> sea_orm::Select<workflow::Entity> {
    db.scope()
        .restrict(workflow::Entity::find(), workflow::Column::WorkspaceId)
        .filter(workflow::Column::DeleteTime.is_null())
}

fn update<S: Session>(db: &S, workflow_id: Uuid) -> sea_orm::UpdateMany<workflow::Entity> {
    db.scope()
        .restrict(
            workflow::Entity::update_many(),
            workflow::Column::WorkspaceId,
        )
        .filter(workflow::Column::Id.eq(workflow_id))
        .filter(workflow::Column::DeleteTime.is_null())
}

fn versions<S: Session>(db: &S, workflow_id: Uuid) -> sea_orm::Select<workflow_version::Entity> {
    db.scope()
        .restrict(
            workflow_version::Entity::find(),
            workflow_version::Column::WorkspaceId,
        )
        .filter(workflow_version::Column::WorkflowId.eq(workflow_id))
}

/// A live (not deleted) workflow of the scope.
pub async fn find_live<S: Session>(db: &S, workflow_id: Uuid) -> Result<Option<Workflow>, DbErr> {
    Ok(live(db)
        .filter(workflow::Column::Id.eq(workflow_id))
        .one(db)
        .await?
        .map(Into::into))
}

pub async fn insert_workflow<S: Session>(db: &S, record: &Workflow) -> Result<(), DbErr> {
    ensure_in_scope(db, record.workspace_id)?;
    workflow::Entity::insert(workflow::ActiveModel::from(record))
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// Moves the workflow to `new_version` only if `previous_version` is still
/// the latest: two concurrent saves cannot both claim the same number.
pub async fn bump_version<S: Session>(
    db: &S,
    workflow_id: Uuid,
    previous_version: i64,
    new_version: i64,
    name: &str,
    description: &str,
    update_time: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = update(db, workflow_id)
        .col_expr(workflow::Column::LatestVersion, Expr::value(new_version))
        .col_expr(workflow::Column::Name, Expr::value(name))
        .col_expr(workflow::Column::Description, Expr::value(description))
        .col_expr(workflow::Column::UpdateTime, Expr::value(update_time))
        .filter(workflow::Column::LatestVersion.eq(previous_version))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn mark_deleted<S: Session>(
    db: &S,
    workflow_id: Uuid,
    delete_time: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = update(db, workflow_id)
        .col_expr(workflow::Column::DeleteTime, Expr::value(delete_time))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Live workflows, newest first, after `before_id` (the page token).
pub async fn list_live<S: Session>(
    db: &S,
    before_id: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Workflow>, DbErr> {
    let mut query = live(db);
    if let Some(before_id) = before_id {
        query = query.filter(workflow::Column::Id.lt(before_id));
    }
    let rows = query
        .order_by_desc(workflow::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

pub async fn insert_version<S: Session>(db: &S, record: &WorkflowVersion) -> Result<(), DbErr> {
    ensure_in_scope(db, record.workspace_id)?;
    workflow_version::Entity::insert(workflow_version::ActiveModel::from(record))
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// A version of a workflow of the scope, deleted or not: executions keep
/// running the version they pinned.
pub async fn find_version<S: Session>(
    db: &S,
    workflow_id: Uuid,
    version: i64,
) -> Result<Option<WorkflowVersion>, DbErr> {
    Ok(versions(db, workflow_id)
        .filter(workflow_version::Column::Version.eq(version))
        .one(db)
        .await?
        .map(Into::into))
}

/// Versions newest first, below `before_version` (the page token).
pub async fn list_versions<S: Session>(
    db: &S,
    workflow_id: Uuid,
    before_version: Option<i64>,
    limit: u64,
) -> Result<Vec<WorkflowVersion>, DbErr> {
    let mut query = versions(db, workflow_id);
    if let Some(before_version) = before_version {
        query = query.filter(workflow_version::Column::Version.lt(before_version));
    }
    let rows = query
        .order_by_desc(workflow_version::Column::Version)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}
