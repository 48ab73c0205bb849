//! The audit chain: append-only events and one head row per chain.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::Session;
use super::entities::{audit_event, audit_head};

/// Starts the chain of a new workspace.
pub async fn insert_head<C: Session>(db: &C, workspace_id: Uuid) -> Result<(), DbErr> {
    audit_head::Entity::insert(audit_head::ActiveModel {
        workspace_id: Set(workspace_id),
        last_sequence: Set(0),
        last_hash: Set(String::new()),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// Starts a chain unless it exists (used for the global chain).
pub async fn ensure_head<C: Session>(db: &C, workspace_id: Uuid) -> Result<(), DbErr> {
    audit_head::Entity::insert(audit_head::ActiveModel {
        workspace_id: Set(workspace_id),
        last_sequence: Set(0),
        last_hash: Set(String::new()),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// Locks the chain head for the rest of the transaction and returns it.
///
/// The lock is a no-op UPDATE rather than `SELECT … FOR UPDATE` because it
/// works alike on both backends: PostgreSQL row-locks the head until commit,
/// and SQLite holds the database write lock already. Every writer of the
/// workspace passes here first, so they run one after another.
pub async fn lock_head<C: Session>(
    db: &C,
    workspace_id: Uuid,
) -> Result<Option<audit_head::Model>, DbErr> {
    let locked = audit_head::Entity::update_many()
        .col_expr(
            audit_head::Column::LastSequence,
            Expr::col(audit_head::Column::LastSequence),
        )
        .filter(audit_head::Column::WorkspaceId.eq(workspace_id))
        .exec(db)
        .await?;
    if locked.rows_affected == 0 {
        return Ok(None);
    }
    audit_head::Entity::find_by_id(workspace_id).one(db).await
}

pub async fn find_head<C: Session>(
    db: &C,
    workspace_id: Uuid,
) -> Result<Option<audit_head::Model>, DbErr> {
    audit_head::Entity::find_by_id(workspace_id).one(db).await
}

pub async fn advance_head<C: Session>(
    db: &C,
    workspace_id: Uuid,
    last_sequence: i64,
    last_hash: &str,
) -> Result<(), DbErr> {
    audit_head::Entity::update_many()
        .col_expr(audit_head::Column::LastSequence, Expr::value(last_sequence))
        .col_expr(audit_head::Column::LastHash, Expr::value(last_hash))
        .filter(audit_head::Column::WorkspaceId.eq(workspace_id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn insert_event<C: Session>(db: &C, event: audit_event::Model) -> Result<(), DbErr> {
    audit_event::Entity::insert(audit_event::ActiveModel {
        id: Set(event.id),
        workspace_id: Set(event.workspace_id),
        sequence: Set(event.sequence),
        actor: Set(event.actor),
        action: Set(event.action),
        target: Set(event.target),
        request_id: Set(event.request_id),
        occur_time: Set(event.occur_time),
        details: Set(event.details),
        previous_hash: Set(event.previous_hash),
        hash: Set(event.hash),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// Exact-match filters of a listing; `None` matches anything.
#[derive(Clone, Debug, Default)]
pub struct EventFilter<'a> {
    pub action: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub target: Option<&'a str>,
    /// Inclusive.
    pub start_time: Option<DateTime<Utc>>,
    /// Exclusive.
    pub end_time: Option<DateTime<Utc>>,
}

/// Up to `limit` events newest first, all with a sequence below `before`.
pub async fn list_events<C: Session>(
    db: &C,
    workspace_id: Uuid,
    filter: &EventFilter<'_>,
    before_sequence: Option<i64>,
    limit: u64,
) -> Result<Vec<audit_event::Model>, DbErr> {
    let mut query =
        audit_event::Entity::find().filter(audit_event::Column::WorkspaceId.eq(workspace_id));
    if let Some(action) = filter.action {
        query = query.filter(audit_event::Column::Action.eq(action));
    }
    if let Some(actor) = filter.actor {
        query = query.filter(audit_event::Column::Actor.eq(actor));
    }
    if let Some(target) = filter.target {
        query = query.filter(audit_event::Column::Target.eq(target));
    }
    if let Some(start_time) = filter.start_time {
        query = query.filter(audit_event::Column::OccurTime.gte(start_time));
    }
    if let Some(end_time) = filter.end_time {
        query = query.filter(audit_event::Column::OccurTime.lt(end_time));
    }
    if let Some(before) = before_sequence {
        query = query.filter(audit_event::Column::Sequence.lt(before));
    }
    query
        .order_by_desc(audit_event::Column::Sequence)
        .limit(limit)
        .all(db)
        .await
}

/// Up to `limit` events in chain order with sequence in (after, up_to].
pub async fn events_in_order<C: Session>(
    db: &C,
    workspace_id: Uuid,
    after_sequence: i64,
    up_to_sequence: i64,
    limit: u64,
) -> Result<Vec<audit_event::Model>, DbErr> {
    audit_event::Entity::find()
        .filter(audit_event::Column::WorkspaceId.eq(workspace_id))
        .filter(audit_event::Column::Sequence.gt(after_sequence))
        .filter(audit_event::Column::Sequence.lte(up_to_sequence))
        .order_by_asc(audit_event::Column::Sequence)
        .limit(limit)
        .all(db)
        .await
}
