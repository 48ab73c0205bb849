//! The limit overrides of workspaces.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::Session;
use super::entities::workspace_limits;

pub async fn find<C: Session>(
    db: &C,
    workspace_id: Uuid,
) -> Result<Option<workspace_limits::Model>, DbErr> {
    let query = workspace_limits::Entity::find_by_id(workspace_id);
    db.scope()
        .restrict(query, workspace_limits::Column::WorkspaceId)
        .one(db)
        .await
}

/// Writes the overrides of `workspace_id`, replacing any it had.
pub async fn upsert<C: Session>(
    db: &C,
    workspace_id: Uuid,
    overrides: &str,
    update_time: DateTime<Utc>,
    updated_by: &str,
) -> Result<(), DbErr> {
    if !db.scope().admits(workspace_id) {
        return Err(DbErr::Custom(format!(
            "a write to workspace {workspace_id} outside {}",
            db.scope()
        )));
    }
    workspace_limits::Entity::insert(workspace_limits::ActiveModel {
        workspace_id: Set(workspace_id),
        overrides: Set(overrides.to_owned()),
        update_time: Set(update_time),
        updated_by: Set(updated_by.to_owned()),
    })
    .on_conflict(
        OnConflict::column(workspace_limits::Column::WorkspaceId)
            .update_columns([
                workspace_limits::Column::Overrides,
                workspace_limits::Column::UpdateTime,
                workspace_limits::Column::UpdatedBy,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Removes the overrides of `workspace_id`: it takes every default again.
pub async fn delete<C: Session>(db: &C, workspace_id: Uuid) -> Result<(), DbErr> {
    let query = workspace_limits::Entity::delete_many().filter(sea_orm::ColumnTrait::eq(
        &workspace_limits::Column::WorkspaceId,
        workspace_id,
    ));
    db.scope()
        .restrict(query, workspace_limits::Column::WorkspaceId)
        .exec(db)
        .await?;
    Ok(())
}
