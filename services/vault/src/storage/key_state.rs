//! The master key versions the vault last ran with.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DbErr, EntityTrait};

use super::Session;
use super::entities::key_state;

const ROW_ID: i32 = 1;

pub async fn get<C: Session>(db: &C) -> Result<Option<key_state::Model>, DbErr> {
    key_state::Entity::find_by_id(ROW_ID).one(db).await
}

pub async fn put<C: Session>(
    db: &C,
    active_version: u32,
    min_decrypt_version: u32,
    update_time: DateTime<Utc>,
) -> Result<(), DbErr> {
    key_state::Entity::insert(key_state::ActiveModel {
        id: Set(ROW_ID),
        active_version: Set(i64::from(active_version)),
        min_decrypt_version: Set(i64::from(min_decrypt_version)),
        update_time: Set(update_time),
    })
    .on_conflict(
        OnConflict::column(key_state::Column::Id)
            .update_columns([
                key_state::Column::ActiveVersion,
                key_state::Column::MinDecryptVersion,
                key_state::Column::UpdateTime,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await
    .map(|_| ())
}
