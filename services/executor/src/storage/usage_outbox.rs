//! The usage outbox. Rows are written in the scope of the work they count
//! and read and deleted by the delivery, which serves every workspace.

use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::usage_outbox;
use super::{Session, ensure_in_scope};

pub async fn insert<S: Session>(db: &S, rows: Vec<usage_outbox::Model>) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    for row in &rows {
        ensure_in_scope(db, row.workspace_id)?;
    }
    usage_outbox::Entity::insert_many(rows.into_iter().map(usage_outbox::ActiveModel::from))
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// The oldest `limit` rows.
pub async fn oldest<S: Session>(db: &S, limit: u64) -> Result<Vec<usage_outbox::Model>, DbErr> {
    db.scope()
        .restrict(
            usage_outbox::Entity::find(),
            usage_outbox::Column::WorkspaceId,
        )
        .order_by_asc(usage_outbox::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

pub async fn delete<S: Session>(db: &S, ids: &[Uuid]) -> Result<u64, DbErr> {
    let query = usage_outbox::Entity::delete_many()
        .filter(usage_outbox::Column::Id.is_in(ids.iter().copied()));
    Ok(db
        .scope()
        .restrict(query, usage_outbox::Column::WorkspaceId)
        .exec(db)
        .await?
        .rows_affected)
}

pub async fn count<S: Session>(db: &S) -> Result<u64, DbErr> {
    db.scope()
        .restrict(
            usage_outbox::Entity::find(),
            usage_outbox::Column::WorkspaceId,
        )
        .count(db)
        .await
}
