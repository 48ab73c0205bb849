//! The dead-letter queue.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tyboo_store::Session;
use uuid::Uuid;

use super::entities::dead_letter;
use super::{ensure_in_scope, records};
use crate::domain::model::{DeadLetter, DeadLetterState};

fn select<S: Session>(db: &S) -> sea_orm::Select<dead_letter::Entity> {
    db.scope().restrict(
        dead_letter::Entity::find(),
        dead_letter::Column::WorkspaceId,
    )
}

/// Adds a dead letter; a second one for the same failed step changes nothing.
pub async fn insert<S: Session>(db: &S, record: &DeadLetter) -> Result<(), DbErr> {
    ensure_in_scope(db, record.workspace_id)?;
    dead_letter::Entity::insert(dead_letter::ActiveModel::from(record))
        .on_conflict(
            OnConflict::columns([
                dead_letter::Column::ExecutionId,
                dead_letter::Column::NodeId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

pub async fn find<S: Session>(db: &S, dead_letter_id: Uuid) -> Result<Option<DeadLetter>, DbErr> {
    Ok(select(db)
        .filter(dead_letter::Column::Id.eq(dead_letter_id))
        .one(db)
        .await?
        .map(Into::into))
}

#[derive(Default)]
pub struct ListFilter {
    pub workflow_id: Option<Uuid>,
    pub node_id: Option<String>,
    pub state: Option<DeadLetterState>,
    pub error_class: Option<&'static str>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub before_id: Option<Uuid>,
}

/// Dead letters newest first.
pub async fn list<S: Session>(
    db: &S,
    filter: &ListFilter,
    limit: u64,
) -> Result<Vec<DeadLetter>, DbErr> {
    let mut query = select(db);
    if let Some(workflow_id) = filter.workflow_id {
        query = query.filter(dead_letter::Column::WorkflowId.eq(workflow_id));
    }
    if let Some(node_id) = &filter.node_id {
        query = query.filter(dead_letter::Column::NodeId.eq(node_id.as_str()));
    }
    if let Some(state) = filter.state {
        query = query.filter(dead_letter::Column::State.eq(state));
    }
    if let Some(error_class) = filter.error_class {
        query = query.filter(dead_letter::Column::ErrorClass.eq(error_class));
    }
    if let Some(after) = filter.created_after {
        query = query.filter(dead_letter::Column::CreateTime.gte(after));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(dead_letter::Column::CreateTime.lt(before));
    }
    if let Some(before_id) = filter.before_id {
        query = query.filter(dead_letter::Column::Id.lt(before_id));
    }
    let rows = query
        .order_by_desc(dead_letter::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

/// Closes a pending dead letter; false when it was already replayed or
/// discarded, so concurrent replays start one execution only.
pub async fn resolve<S: Session>(
    db: &S,
    dead_letter_id: Uuid,
    state: DeadLetterState,
    replay_execution_id: Option<Uuid>,
    resolve_time: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = db
        .scope()
        .restrict(
            dead_letter::Entity::update_many(),
            dead_letter::Column::WorkspaceId,
        )
        .col_expr(dead_letter::Column::State, Expr::value(state))
        .col_expr(
            dead_letter::Column::ReplayExecutionId,
            Expr::value(replay_execution_id),
        )
        .col_expr(dead_letter::Column::ResolveTime, Expr::value(resolve_time))
        .filter(dead_letter::Column::Id.eq(dead_letter_id))
        .filter(dead_letter::Column::State.eq(DeadLetterState::Pending))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
