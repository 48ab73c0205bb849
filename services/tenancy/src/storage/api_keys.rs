//! API keys. Secrets are stored as hashes only.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::Session;
use super::entities::api_key;

pub struct NewApiKey<'a> {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub name: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a str,
    pub create_time: DateTime<Utc>,
    pub expire_time: Option<DateTime<Utc>>,
}

pub async fn insert<C: Session>(db: &C, new: NewApiKey<'_>) -> Result<api_key::Model, DbErr> {
    let model = api_key::Model {
        id: new.id,
        workspace_id: new.workspace_id,
        user_id: new.user_id,
        name: new.name.to_owned(),
        prefix: new.prefix.to_owned(),
        key_hash: new.key_hash.to_owned(),
        create_time: new.create_time,
        expire_time: new.expire_time,
        last_use_time: None,
        rotate_time: None,
        revoke_time: None,
    };
    api_key::Entity::insert(api_key::ActiveModel {
        id: Set(model.id),
        workspace_id: Set(model.workspace_id),
        user_id: Set(model.user_id),
        name: Set(model.name.clone()),
        prefix: Set(model.prefix.clone()),
        key_hash: Set(model.key_hash.clone()),
        create_time: Set(model.create_time),
        expire_time: Set(model.expire_time),
        last_use_time: Set(None),
        rotate_time: Set(None),
        revoke_time: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(model)
}

pub async fn find<C: Session>(db: &C, id: Uuid) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find_by_id(id).one(db).await
}

/// A live (not revoked) key of the workspace.
pub async fn find_live_in_workspace<C: Session>(
    db: &C,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find_by_id(id)
        .filter(api_key::Column::WorkspaceId.eq(workspace_id))
        .filter(api_key::Column::RevokeTime.is_null())
        .one(db)
        .await
}

pub async fn find_by_hash<C: Session>(
    db: &C,
    key_hash: &str,
) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(key_hash))
        .one(db)
        .await
}

/// Live keys of the workspace, of one user or of everyone, oldest first.
pub async fn list_live<C: Session>(
    db: &C,
    workspace_id: Uuid,
    only_user: Option<Uuid>,
) -> Result<Vec<api_key::Model>, DbErr> {
    let mut query = api_key::Entity::find()
        .filter(api_key::Column::WorkspaceId.eq(workspace_id))
        .filter(api_key::Column::RevokeTime.is_null());
    if let Some(user_id) = only_user {
        query = query.filter(api_key::Column::UserId.eq(user_id));
    }
    query
        .order_by_asc(api_key::Column::CreateTime)
        .order_by_asc(api_key::Column::Id)
        .all(db)
        .await
}

/// Replaces the secret of a key: the old hash is gone, so the old secret
/// stops authenticating when this commits.
pub async fn replace_secret<C: Session>(
    db: &C,
    id: Uuid,
    prefix: &str,
    key_hash: &str,
    rotate_time: DateTime<Utc>,
) -> Result<(), DbErr> {
    api_key::Entity::update_many()
        .col_expr(api_key::Column::Prefix, Expr::value(prefix))
        .col_expr(api_key::Column::KeyHash, Expr::value(key_hash))
        .col_expr(api_key::Column::RotateTime, Expr::value(rotate_time))
        .filter(api_key::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn revoke<C: Session>(db: &C, id: Uuid, revoke_time: DateTime<Utc>) -> Result<(), DbErr> {
    api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokeTime, Expr::value(revoke_time))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokeTime.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// Revokes every live key a user holds in a workspace; returns how many.
pub async fn revoke_all_of_member<C: Session>(
    db: &C,
    workspace_id: Uuid,
    user_id: Uuid,
    revoke_time: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokeTime, Expr::value(revoke_time))
        .filter(api_key::Column::WorkspaceId.eq(workspace_id))
        .filter(api_key::Column::UserId.eq(user_id))
        .filter(api_key::Column::RevokeTime.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Records a use, writing only when the stored time is older than
/// `resolution`, so a busy key costs one write per interval, not per call.
pub async fn touch_last_use<C: Session>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
    resolution: chrono::Duration,
) -> Result<(), DbErr> {
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUseTime, Expr::value(now))
        .filter(api_key::Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(api_key::Column::LastUseTime.is_null())
                .add(api_key::Column::LastUseTime.lt(now - resolution)),
        )
        .exec(db)
        .await
        .map(|_| ())
}
