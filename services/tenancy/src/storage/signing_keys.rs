//! The token signing key set.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::Session;
use super::entities::signing_key;

pub async fn insert<C: Session>(
    db: &C,
    kid: &str,
    secret: &[u8; 32],
    public: &[u8; 32],
    create_time: DateTime<Utc>,
) -> Result<signing_key::Model, DbErr> {
    let model = signing_key::Model {
        kid: kid.to_owned(),
        secret: secret.to_vec(),
        public: public.to_vec(),
        create_time,
        active: true,
        deactivate_time: None,
        retire_time: None,
    };
    signing_key::Entity::insert(signing_key::ActiveModel {
        kid: Set(model.kid.clone()),
        secret: Set(model.secret.clone()),
        public: Set(model.public.clone()),
        create_time: Set(model.create_time),
        active: Set(true),
        deactivate_time: Set(None),
        retire_time: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(model)
}

/// The newest active key, which signs new tokens.
pub async fn find_active<C: Session>(db: &C) -> Result<Option<signing_key::Model>, DbErr> {
    signing_key::Entity::find()
        .filter(signing_key::Column::Active.eq(true))
        .filter(signing_key::Column::RetireTime.is_null())
        .order_by_desc(signing_key::Column::CreateTime)
        .order_by_desc(signing_key::Column::Kid)
        .one(db)
        .await
}

/// Keys that verify tokens: the active ones, and those superseded after
/// `published_since` (their tokens may still be alive).
pub async fn list_published<C: Session>(
    db: &C,
    published_since: DateTime<Utc>,
) -> Result<Vec<signing_key::Model>, DbErr> {
    signing_key::Entity::find()
        .filter(signing_key::Column::RetireTime.is_null())
        .filter(
            Condition::any()
                .add(signing_key::Column::Active.eq(true))
                .add(signing_key::Column::DeactivateTime.gt(published_since)),
        )
        .order_by_desc(signing_key::Column::CreateTime)
        .order_by_desc(signing_key::Column::Kid)
        .all(db)
        .await
}

/// Marks every active key as superseded; returns their ids.
pub async fn deactivate_all<C: Session>(db: &C, now: DateTime<Utc>) -> Result<Vec<String>, DbErr> {
    let active: Vec<String> = signing_key::Entity::find()
        .filter(signing_key::Column::Active.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|key| key.kid)
        .collect();
    signing_key::Entity::update_many()
        .col_expr(signing_key::Column::Active, Expr::value(false))
        .col_expr(signing_key::Column::DeactivateTime, Expr::value(now))
        .filter(signing_key::Column::Active.eq(true))
        .exec(db)
        .await?;
    Ok(active)
}

/// Stops publishing keys superseded before `superseded_before`.
pub async fn retire_superseded<C: Session>(
    db: &C,
    superseded_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = signing_key::Entity::update_many()
        .col_expr(signing_key::Column::RetireTime, Expr::value(now))
        .filter(signing_key::Column::Active.eq(false))
        .filter(signing_key::Column::RetireTime.is_null())
        .filter(signing_key::Column::DeactivateTime.lte(superseded_before))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
