//! The access-change log: appended inside the transaction of the change it
//! records, read by cursor, pruned as it goes.
//!
//! Readers remember the last id they saw and ask for the ones above it, so
//! an id must never become visible after a higher one. SQLite has one writer
//! at a time; on PostgreSQL a sequence hands out ids at insert time, not at
//! commit, so writers take a transaction-scoped advisory lock before they
//! insert and hold it until they commit: ids then commit in order.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::access_change;
use super::{LOCK_ACCESS_CHANGES, Session, lock_globally};

pub struct NewAccessChange<'a> {
    pub workspace_id: Uuid,
    pub user_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub kind: &'a str,
}

/// Appends a change inside the caller's transaction and prunes the rows
/// created before `prune_before`, keeping the newest row whatever its age
/// so that the newest cursor is always known. Returns the new row's id.
///
/// Call it last in the transaction: the lock it takes is held until commit.
pub async fn append<C: Session>(
    db: &C,
    new: NewAccessChange<'_>,
    prune_before: DateTime<Utc>,
) -> Result<i64, DbErr> {
    lock_globally(db, LOCK_ACCESS_CHANGES).await?;
    // The time is read under the lock, so it grows with the id as well.
    let create_time = super::now();
    let inserted = access_change::Entity::insert(access_change::ActiveModel {
        id: NotSet,
        workspace_id: Set(new.workspace_id),
        user_id: Set(new.user_id),
        api_key_id: Set(new.api_key_id),
        kind: Set(new.kind.to_owned()),
        create_time: Set(create_time),
    })
    .exec(db)
    .await?;
    let id = inserted.last_insert_id;
    prune(db, prune_before, id).await?;
    Ok(id)
}

/// Deletes every row up to the newest one created before `before`, and
/// never `keep` or anything after it. Deleting by id keeps what remains a
/// contiguous tail of the log, which is what lets a reader tell whether its
/// cursor still falls inside it.
async fn prune<C: Session>(db: &C, before: DateTime<Utc>, keep: i64) -> Result<(), DbErr> {
    let newest_expired: Option<i64> = access_change::Entity::find()
        .select_only()
        .column(access_change::Column::Id)
        .filter(access_change::Column::CreateTime.lt(before))
        .filter(access_change::Column::Id.lt(keep))
        .order_by_desc(access_change::Column::Id)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    let Some(newest_expired) = newest_expired else {
        return Ok(());
    };
    access_change::Entity::delete_many()
        .filter(access_change::Column::Id.lte(newest_expired))
        .exec(db)
        .await
        .map(|_| ())
}

/// Up to `limit` changes with an id above `after`, oldest first.
pub async fn list_after<C: Session>(
    db: &C,
    after: i64,
    limit: u64,
) -> Result<Vec<access_change::Model>, DbErr> {
    access_change::Entity::find()
        .filter(access_change::Column::Id.gt(after))
        .order_by_asc(access_change::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// The oldest and newest ids still kept; `None` before the first change.
pub async fn bounds<C: Session>(db: &C) -> Result<Option<(i64, i64)>, DbErr> {
    let (oldest, newest): (Option<i64>, Option<i64>) = access_change::Entity::find()
        .select_only()
        .column_as(access_change::Column::Id.min(), "oldest")
        .column_as(access_change::Column::Id.max(), "newest")
        .into_tuple()
        .one(db)
        .await?
        .unwrap_or((None, None));
    Ok(oldest.zip(newest))
}
