//! Memberships: a user's role in a workspace.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::Session;
use super::entities::{membership, user};

pub async fn find_membership<C: Session>(
    db: &C,
    workspace_id: Uuid,
    user_id: Uuid,
) -> Result<Option<membership::Model>, DbErr> {
    membership::Entity::find()
        .filter(membership::Column::WorkspaceId.eq(workspace_id))
        .filter(membership::Column::UserId.eq(user_id))
        .one(db)
        .await
}

/// A membership together with its user, in one query.
pub async fn find_member<C: Session>(
    db: &C,
    workspace_id: Uuid,
    user_id: Uuid,
) -> Result<Option<(membership::Model, user::Model)>, DbErr> {
    let found = membership::Entity::find()
        .filter(membership::Column::WorkspaceId.eq(workspace_id))
        .filter(membership::Column::UserId.eq(user_id))
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(membership, user)| user.map(|user| (membership, user))))
}

/// Every member of a workspace with their user row, in join order, in one query.
pub async fn list_members<C: Session>(
    db: &C,
    workspace_id: Uuid,
) -> Result<Vec<(membership::Model, user::Model)>, DbErr> {
    let rows = membership::Entity::find()
        .filter(membership::Column::WorkspaceId.eq(workspace_id))
        .find_also_related(user::Entity)
        .order_by_asc(membership::Column::JoinTime)
        .order_by_asc(membership::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(membership, user)| user.map(|user| (membership, user)))
        .collect())
}

pub async fn insert_membership<C: Session>(
    db: &C,
    workspace_id: Uuid,
    user_id: Uuid,
    role: &str,
    join_time: DateTime<Utc>,
) -> Result<membership::Model, DbErr> {
    let model = membership::Model {
        id: Uuid::now_v7(),
        workspace_id,
        user_id,
        role: role.to_owned(),
        join_time,
    };
    membership::Entity::insert(membership::ActiveModel {
        id: Set(model.id),
        workspace_id: Set(model.workspace_id),
        user_id: Set(model.user_id),
        role: Set(model.role.clone()),
        join_time: Set(model.join_time),
    })
    .exec_without_returning(db)
    .await?;
    Ok(model)
}

pub async fn count_with_role<C: Session>(
    db: &C,
    workspace_id: Uuid,
    role: &str,
) -> Result<u64, DbErr> {
    membership::Entity::find()
        .filter(membership::Column::WorkspaceId.eq(workspace_id))
        .filter(membership::Column::Role.eq(role))
        .count(db)
        .await
}

pub async fn update_role<C: Session>(db: &C, membership_id: Uuid, role: &str) -> Result<(), DbErr> {
    membership::Entity::update_many()
        .col_expr(membership::Column::Role, Expr::value(role))
        .filter(membership::Column::Id.eq(membership_id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn delete_membership<C: Session>(db: &C, membership_id: Uuid) -> Result<(), DbErr> {
    membership::Entity::delete_many()
        .filter(membership::Column::Id.eq(membership_id))
        .exec(db)
        .await
        .map(|_| ())
}
