//! Invitations. Tokens are stored as hashes only.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::Session;
use super::entities::invitation;

pub const STATE_PENDING: &str = "pending";
pub const STATE_ACCEPTED: &str = "accepted";
pub const STATE_REVOKED: &str = "revoked";

pub struct NewInvitation<'a> {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub email: &'a str,
    pub role: &'a str,
    pub token_hash: &'a str,
    pub invited_by: &'a str,
    pub create_time: DateTime<Utc>,
    pub expire_time: DateTime<Utc>,
}

pub async fn insert<C: Session>(
    db: &C,
    new: NewInvitation<'_>,
) -> Result<invitation::Model, DbErr> {
    let model = invitation::Model {
        id: new.id,
        workspace_id: new.workspace_id,
        email: new.email.to_owned(),
        role: new.role.to_owned(),
        token_hash: new.token_hash.to_owned(),
        invited_by: new.invited_by.to_owned(),
        state: STATE_PENDING.to_owned(),
        create_time: new.create_time,
        expire_time: new.expire_time,
        close_time: None,
        accepted_user_id: None,
    };
    invitation::Entity::insert(invitation::ActiveModel {
        id: Set(model.id),
        workspace_id: Set(model.workspace_id),
        email: Set(model.email.clone()),
        role: Set(model.role.clone()),
        token_hash: Set(model.token_hash.clone()),
        invited_by: Set(model.invited_by.clone()),
        state: Set(model.state.clone()),
        create_time: Set(model.create_time),
        expire_time: Set(model.expire_time),
        close_time: Set(None),
        accepted_user_id: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(model)
}

pub async fn find_in_workspace<C: Session>(
    db: &C,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Option<invitation::Model>, DbErr> {
    invitation::Entity::find_by_id(id)
        .filter(invitation::Column::WorkspaceId.eq(workspace_id))
        .one(db)
        .await
}

pub async fn find_by_token_hash<C: Session>(
    db: &C,
    token_hash: &str,
) -> Result<Option<invitation::Model>, DbErr> {
    invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(token_hash))
        .one(db)
        .await
}

/// A pending, unexpired invitation of `email` in the workspace, if any.
pub async fn find_open_for_email<C: Session>(
    db: &C,
    workspace_id: Uuid,
    email: &str,
    now: DateTime<Utc>,
) -> Result<Option<invitation::Model>, DbErr> {
    invitation::Entity::find()
        .filter(invitation::Column::WorkspaceId.eq(workspace_id))
        .filter(invitation::Column::Email.eq(email))
        .filter(invitation::Column::State.eq(STATE_PENDING))
        .filter(invitation::Column::ExpireTime.gt(now))
        .one(db)
        .await
}

/// The workspace's invitations, newest first; only pending, unexpired ones
/// unless `include_closed`.
pub async fn list<C: Session>(
    db: &C,
    workspace_id: Uuid,
    include_closed: bool,
    now: DateTime<Utc>,
) -> Result<Vec<invitation::Model>, DbErr> {
    let mut query =
        invitation::Entity::find().filter(invitation::Column::WorkspaceId.eq(workspace_id));
    if !include_closed {
        query = query
            .filter(invitation::Column::State.eq(STATE_PENDING))
            .filter(invitation::Column::ExpireTime.gt(now));
    }
    query
        .order_by_desc(invitation::Column::CreateTime)
        .order_by_desc(invitation::Column::Id)
        .all(db)
        .await
}

/// Moves a pending invitation to `state`. Returns false when it was no longer
/// pending, which is how two concurrent accepts of one token resolve.
pub async fn close<C: Session>(
    db: &C,
    id: Uuid,
    state: &str,
    accepted_user_id: Option<Uuid>,
    close_time: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = invitation::Entity::update_many()
        .col_expr(invitation::Column::State, Expr::value(state))
        .col_expr(invitation::Column::CloseTime, Expr::value(close_time))
        .col_expr(
            invitation::Column::AcceptedUserId,
            Expr::value(accepted_user_id),
        )
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::State.eq(STATE_PENDING))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
