//! Workflows and their immutable versions.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::entities::{workflow, workflow_version};

/// A live (not deleted) workflow of the workspace.
pub async fn find_live<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    workflow_id: Uuid,
) -> Result<Option<workflow::Model>, DbErr> {
    workflow::Entity::find_by_id(workflow_id)
        .filter(workflow::Column::WorkspaceId.eq(workspace_id))
        .filter(workflow::Column::DeleteTime.is_null())
        .one(db)
        .await
}

pub async fn insert_workflow<C: ConnectionTrait>(
    db: &C,
    model: &workflow::Model,
) -> Result<(), DbErr> {
    workflow::Entity::insert(workflow::ActiveModel {
        id: Set(model.id),
        workspace_id: Set(model.workspace_id),
        name: Set(model.name.clone()),
        description: Set(model.description.clone()),
        latest_version: Set(model.latest_version),
        create_time: Set(model.create_time),
        update_time: Set(model.update_time),
        delete_time: Set(model.delete_time),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// Moves the workflow to `new_version` only if `previous_version` is still
/// the latest: two concurrent saves cannot both claim the same number.
pub async fn bump_version<C: ConnectionTrait>(
    db: &C,
    workflow_id: Uuid,
    previous_version: i64,
    new_version: i64,
    name: &str,
    description: &str,
    update_time: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = workflow::Entity::update_many()
        .col_expr(workflow::Column::LatestVersion, Expr::value(new_version))
        .col_expr(workflow::Column::Name, Expr::value(name))
        .col_expr(workflow::Column::Description, Expr::value(description))
        .col_expr(workflow::Column::UpdateTime, Expr::value(update_time))
        .filter(workflow::Column::Id.eq(workflow_id))
        .filter(workflow::Column::LatestVersion.eq(previous_version))
        .filter(workflow::Column::DeleteTime.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn mark_deleted<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    workflow_id: Uuid,
    delete_time: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = workflow::Entity::update_many()
        .col_expr(workflow::Column::DeleteTime, Expr::value(delete_time))
        .filter(workflow::Column::Id.eq(workflow_id))
        .filter(workflow::Column::WorkspaceId.eq(workspace_id))
        .filter(workflow::Column::DeleteTime.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Live workflows, newest first, after `before_id` (the page token).
pub async fn list_live<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    before_id: Option<Uuid>,
    limit: u64,
) -> Result<Vec<workflow::Model>, DbErr> {
    let mut query = workflow::Entity::find()
        .filter(workflow::Column::WorkspaceId.eq(workspace_id))
        .filter(workflow::Column::DeleteTime.is_null());
    if let Some(before_id) = before_id {
        query = query.filter(workflow::Column::Id.lt(before_id));
    }
    query
        .order_by_desc(workflow::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

pub async fn insert_version<C: ConnectionTrait>(
    db: &C,
    model: &workflow_version::Model,
) -> Result<(), DbErr> {
    workflow_version::Entity::insert(workflow_version::ActiveModel {
        id: Set(model.id),
        workspace_id: Set(model.workspace_id),
        workflow_id: Set(model.workflow_id),
        version: Set(model.version),
        name: Set(model.name.clone()),
        description: Set(model.description.clone()),
        graph: Set(model.graph.clone()),
        created_by: Set(model.created_by.clone()),
        create_time: Set(model.create_time),
        restored_from_version: Set(model.restored_from_version),
        node_count: Set(model.node_count),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// A version of a workflow of the workspace, deleted or not: executions keep
/// running the version they pinned.
pub async fn find_version<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    workflow_id: Uuid,
    version: i64,
) -> Result<Option<workflow_version::Model>, DbErr> {
    workflow_version::Entity::find()
        .filter(workflow_version::Column::WorkspaceId.eq(workspace_id))
        .filter(workflow_version::Column::WorkflowId.eq(workflow_id))
        .filter(workflow_version::Column::Version.eq(version))
        .one(db)
        .await
}

/// Versions newest first, below `before_version` (the page token).
pub async fn list_versions<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    workflow_id: Uuid,
    before_version: Option<i64>,
    limit: u64,
) -> Result<Vec<workflow_version::Model>, DbErr> {
    let mut query = workflow_version::Entity::find()
        .filter(workflow_version::Column::WorkspaceId.eq(workspace_id))
        .filter(workflow_version::Column::WorkflowId.eq(workflow_id));
    if let Some(before_version) = before_version {
        query = query.filter(workflow_version::Column::Version.lt(before_version));
    }
    query
        .order_by_desc(workflow_version::Column::Version)
        .limit(limit)
        .all(db)
        .await
}
