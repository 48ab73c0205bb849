//! The dead-letter queue.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::entities::dead_letter;

/// Adds a dead letter; a second one for the same failed step changes nothing.
pub async fn insert<C: ConnectionTrait>(db: &C, model: &dead_letter::Model) -> Result<(), DbErr> {
    dead_letter::Entity::insert(dead_letter::ActiveModel {
        id: Set(model.id),
        workspace_id: Set(model.workspace_id),
        execution_id: Set(model.execution_id),
        workflow_id: Set(model.workflow_id),
        workflow_version: Set(model.workflow_version),
        node_id: Set(model.node_id.clone()),
        inputs: Set(model.inputs.clone()),
        error_class: Set(model.error_class.clone()),
        error: Set(model.error.clone()),
        attempts: Set(model.attempts),
        state: Set(model.state.clone()),
        create_time: Set(model.create_time),
        resolve_time: Set(model.resolve_time),
        replay_execution_id: Set(model.replay_execution_id),
    })
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

pub async fn find_in_workspace<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    dead_letter_id: Uuid,
) -> Result<Option<dead_letter::Model>, DbErr> {
    dead_letter::Entity::find_by_id(dead_letter_id)
        .filter(dead_letter::Column::WorkspaceId.eq(workspace_id))
        .one(db)
        .await
}

#[derive(Default)]
pub struct ListFilter {
    pub workflow_id: Option<Uuid>,
    pub node_id: Option<String>,
    pub state: Option<&'static str>,
    pub error_class: Option<&'static str>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub before_id: Option<Uuid>,
}

/// Dead letters newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    filter: &ListFilter,
    limit: u64,
) -> Result<Vec<dead_letter::Model>, DbErr> {
    let mut query =
        dead_letter::Entity::find().filter(dead_letter::Column::WorkspaceId.eq(workspace_id));
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
    query
        .order_by_desc(dead_letter::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Closes a pending dead letter; false when it was already replayed or
/// discarded, so concurrent replays start one execution only.
pub async fn resolve<C: ConnectionTrait>(
    db: &C,
    dead_letter_id: Uuid,
    state: &'static str,
    replay_execution_id: Option<Uuid>,
    resolve_time: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = dead_letter::Entity::update_many()
        .col_expr(dead_letter::Column::State, Expr::value(state))
        .col_expr(
            dead_letter::Column::ReplayExecutionId,
            Expr::value(replay_execution_id),
        )
        .col_expr(dead_letter::Column::ResolveTime, Expr::value(resolve_time))
        .filter(dead_letter::Column::Id.eq(dead_letter_id))
        .filter(dead_letter::Column::State.eq("pending"))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
