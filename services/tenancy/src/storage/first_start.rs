//! The one row that remembers what the first start created.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::Session;
use super::entities::first_start;

/// The key of the table's only row.
pub const ROW_ID: &str = "first_start";

pub async fn find<C: Session>(db: &C) -> Result<Option<first_start::Model>, DbErr> {
    first_start::Entity::find_by_id(ROW_ID.to_owned())
        .one(db)
        .await
}

pub async fn insert<C: Session>(
    db: &C,
    organization_id: Uuid,
    workspace_id: Uuid,
    user_id: Uuid,
    api_key_id: Uuid,
    create_time: DateTime<Utc>,
) -> Result<(), DbErr> {
    first_start::Entity::insert(first_start::ActiveModel {
        id: Set(ROW_ID.to_owned()),
        organization_id: Set(organization_id),
        workspace_id: Set(workspace_id),
        user_id: Set(user_id),
        api_key_id: Set(api_key_id),
        create_time: Set(create_time),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

pub async fn replace_api_key<C: Session>(db: &C, api_key_id: Uuid) -> Result<(), DbErr> {
    first_start::Entity::update_many()
        .col_expr(first_start::Column::ApiKeyId, Expr::value(api_key_id))
        .filter(first_start::Column::Id.eq(ROW_ID))
        .exec(db)
        .await
        .map(|_| ())
}
