//! Credential rows. Every query on them names the workspace, except the
//! rewrap and status scans, which serve the vault as a whole and never
//! return a row to a caller.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::Session;
use super::entities::credential;
use crate::crypto::Sealed;

pub async fn insert<C: Session>(db: &C, model: credential::Model) -> Result<(), DbErr> {
    let active: credential::ActiveModel = model.into();
    credential::Entity::insert(active)
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

pub async fn find<C: Session>(
    db: &C,
    workspace_id: Uuid,
    credential_id: Uuid,
) -> Result<Option<credential::Model>, DbErr> {
    credential::Entity::find_by_id(credential_id)
        .filter(credential::Column::WorkspaceId.eq(workspace_id))
        .one(db)
        .await
}

/// Ids and types of those of `ids` that exist in the workspace.
pub async fn existing<C: Session>(
    db: &C,
    workspace_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String, String)>, DbErr> {
    credential::Entity::find()
        .select_only()
        .column(credential::Column::Id)
        .column(credential::Column::CredentialType)
        .column(credential::Column::AllowedHosts)
        .filter(credential::Column::WorkspaceId.eq(workspace_id))
        .filter(credential::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(credential::Column::Id)
        .into_tuple()
        .all(db)
        .await
}

/// A page of the workspace's credentials by name, after `after_name`.
pub async fn list<C: Session>(
    db: &C,
    workspace_id: Uuid,
    credential_type: Option<&str>,
    after_name: Option<&str>,
    limit: u64,
) -> Result<Vec<credential::Model>, DbErr> {
    let mut query =
        credential::Entity::find().filter(credential::Column::WorkspaceId.eq(workspace_id));
    if let Some(credential_type) = credential_type {
        query = query.filter(credential::Column::CredentialType.eq(credential_type));
    }
    if let Some(after_name) = after_name {
        query = query.filter(credential::Column::Name.gt(after_name));
    }
    query
        .order_by_asc(credential::Column::Name)
        .limit(limit)
        .all(db)
        .await
}

/// The new version of a credential, written only if `previous_version` is
/// still current: two concurrent replaces cannot both win.
pub struct Replacement<'a> {
    pub version: i64,
    pub sealed: &'a Sealed,
    pub allowed_hosts: &'a str,
    pub updated_by: &'a str,
    pub update_time: DateTime<Utc>,
}

pub async fn replace<C: Session>(
    db: &C,
    workspace_id: Uuid,
    credential_id: Uuid,
    previous_version: i64,
    replacement: Replacement<'_>,
) -> Result<bool, DbErr> {
    let sealed = replacement.sealed;
    let result = credential::Entity::update_many()
        .col_expr(
            credential::Column::Version,
            Expr::value(replacement.version),
        )
        .col_expr(
            credential::Column::KeyVersion,
            Expr::value(i64::from(sealed.key_version)),
        )
        .col_expr(
            credential::Column::Ciphertext,
            Expr::value(sealed.ciphertext.clone()),
        )
        .col_expr(
            credential::Column::DataNonce,
            Expr::value(sealed.data_nonce.clone()),
        )
        .col_expr(
            credential::Column::WrappedKey,
            Expr::value(sealed.wrapped_key.clone()),
        )
        .col_expr(
            credential::Column::KeyNonce,
            Expr::value(sealed.key_nonce.clone()),
        )
        .col_expr(
            credential::Column::AllowedHosts,
            Expr::value(replacement.allowed_hosts),
        )
        .col_expr(
            credential::Column::UpdatedBy,
            Expr::value(replacement.updated_by),
        )
        .col_expr(
            credential::Column::UpdateTime,
            Expr::value(replacement.update_time),
        )
        .filter(credential::Column::Id.eq(credential_id))
        .filter(credential::Column::WorkspaceId.eq(workspace_id))
        .filter(credential::Column::Version.eq(previous_version))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn delete<C: Session>(
    db: &C,
    workspace_id: Uuid,
    credential_id: Uuid,
) -> Result<bool, DbErr> {
    let result = credential::Entity::delete_many()
        .filter(credential::Column::Id.eq(credential_id))
        .filter(credential::Column::WorkspaceId.eq(workspace_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Rows wrapped under a version in `[min_version, below_version)`, by id,
/// after `after_id`.
pub async fn to_rewrap<C: Session>(
    db: &C,
    min_version: u32,
    below_version: u32,
    after_id: Option<Uuid>,
    limit: u64,
) -> Result<Vec<credential::Model>, DbErr> {
    let mut query = credential::Entity::find()
        .filter(credential::Column::KeyVersion.gte(i64::from(min_version)))
        .filter(credential::Column::KeyVersion.lt(i64::from(below_version)));
    if let Some(after_id) = after_id {
        query = query.filter(credential::Column::Id.gt(after_id));
    }
    query
        .order_by_asc(credential::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Moves one row's data key to a new wrapping, only if neither the
/// credential nor its wrapping changed since it was read.
pub async fn rewrap<C: Session>(
    db: &C,
    row: &credential::Model,
    sealed: &Sealed,
) -> Result<bool, DbErr> {
    let result = credential::Entity::update_many()
        .col_expr(
            credential::Column::KeyVersion,
            Expr::value(i64::from(sealed.key_version)),
        )
        .col_expr(
            credential::Column::WrappedKey,
            Expr::value(sealed.wrapped_key.clone()),
        )
        .col_expr(
            credential::Column::KeyNonce,
            Expr::value(sealed.key_nonce.clone()),
        )
        .filter(credential::Column::Id.eq(row.id))
        .filter(credential::Column::WorkspaceId.eq(row.workspace_id))
        .filter(credential::Column::Version.eq(row.version))
        .filter(credential::Column::KeyVersion.eq(row.key_version))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// How many credentials each master key version wraps.
pub async fn count_by_key_version<C: Session>(db: &C) -> Result<Vec<(i64, i64)>, DbErr> {
    credential::Entity::find()
        .select_only()
        .column(credential::Column::KeyVersion)
        .column_as(credential::Column::Id.count(), "rows")
        .group_by(credential::Column::KeyVersion)
        .order_by_asc(credential::Column::KeyVersion)
        .into_tuple()
        .all(db)
        .await
}
