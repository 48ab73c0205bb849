//! Trigger tables: webhook routes, schedules and seen webhook deliveries.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::entities::{schedule, webhook_delivery, webhook_route};

/// Drops a workflow's routes and schedules, before a save writes the new
/// ones or a delete leaves none.
pub async fn delete_for_workflow<C: ConnectionTrait>(
    db: &C,
    workflow_id: Uuid,
) -> Result<(), DbErr> {
    webhook_route::Entity::delete_many()
        .filter(webhook_route::Column::WorkflowId.eq(workflow_id))
        .exec(db)
        .await?;
    schedule::Entity::delete_many()
        .filter(schedule::Column::WorkflowId.eq(workflow_id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn find_route<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    path: &str,
) -> Result<Option<webhook_route::Model>, DbErr> {
    webhook_route::Entity::find()
        .filter(webhook_route::Column::WorkspaceId.eq(workspace_id))
        .filter(webhook_route::Column::Path.eq(path))
        .one(db)
        .await
}

pub async fn insert_route<C: ConnectionTrait>(
    db: &C,
    model: &webhook_route::Model,
) -> Result<(), DbErr> {
    webhook_route::Entity::insert(webhook_route::ActiveModel {
        id: Set(model.id),
        workspace_id: Set(model.workspace_id),
        path: Set(model.path.clone()),
        workflow_id: Set(model.workflow_id),
        node_id: Set(model.node_id.clone()),
        token: Set(model.token.clone()),
        create_time: Set(model.create_time),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// The route a hook URL's token names.
pub async fn find_route_by_token<C: ConnectionTrait>(
    db: &C,
    token: &str,
) -> Result<Option<webhook_route::Model>, DbErr> {
    webhook_route::Entity::find()
        .filter(webhook_route::Column::Token.eq(token))
        .one(db)
        .await
}

/// A workflow's webhook routes, by node id.
pub async fn routes_for_workflow<C: ConnectionTrait>(
    db: &C,
    workflow_id: Uuid,
) -> Result<Vec<webhook_route::Model>, DbErr> {
    webhook_route::Entity::find()
        .filter(webhook_route::Column::WorkflowId.eq(workflow_id))
        .order_by_asc(webhook_route::Column::NodeId)
        .all(db)
        .await
}

/// Gives one route a new token; false when the workflow has no webhook
/// trigger with that node id.
pub async fn set_route_token<C: ConnectionTrait>(
    db: &C,
    workflow_id: Uuid,
    node_id: &str,
    token: &str,
) -> Result<bool, DbErr> {
    let result = webhook_route::Entity::update_many()
        .col_expr(webhook_route::Column::Token, Expr::value(token))
        .filter(webhook_route::Column::WorkflowId.eq(workflow_id))
        .filter(webhook_route::Column::NodeId.eq(node_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn insert_schedule<C: ConnectionTrait>(
    db: &C,
    model: &schedule::Model,
) -> Result<(), DbErr> {
    schedule::Entity::insert(schedule::ActiveModel {
        id: Set(model.id),
        workspace_id: Set(model.workspace_id),
        workflow_id: Set(model.workflow_id),
        node_id: Set(model.node_id.clone()),
        cron: Set(model.cron.clone()),
        timezone: Set(model.timezone.clone()),
        next_fire_at: Set(model.next_fire_at),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// Schedules due at `now`, oldest tick first.
pub async fn due_schedules<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<schedule::Model>, DbErr> {
    schedule::Entity::find()
        .filter(schedule::Column::NextFireAt.lte(now))
        .order_by_asc(schedule::Column::NextFireAt)
        .limit(limit)
        .all(db)
        .await
}

/// Moves a schedule from the tick `due` to `next`; false when another
/// executor already took this tick.
pub async fn advance_schedule<C: ConnectionTrait>(
    db: &C,
    schedule_id: Uuid,
    due: DateTime<Utc>,
    next: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = schedule::Entity::update_many()
        .col_expr(schedule::Column::NextFireAt, Expr::value(next))
        .filter(schedule::Column::Id.eq(schedule_id))
        .filter(schedule::Column::NextFireAt.eq(due))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// A delivery id already seen by one webhook trigger.
pub async fn find_delivery<C: ConnectionTrait>(
    db: &C,
    (workspace_id, workflow_id, node_id): (Uuid, Uuid, &str),
    delivery_id: &str,
) -> Result<Option<webhook_delivery::Model>, DbErr> {
    webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::WorkspaceId.eq(workspace_id))
        .filter(webhook_delivery::Column::WorkflowId.eq(workflow_id))
        .filter(webhook_delivery::Column::NodeId.eq(node_id))
        .filter(webhook_delivery::Column::DeliveryId.eq(delivery_id))
        .one(db)
        .await
}

pub async fn insert_delivery<C: ConnectionTrait>(
    db: &C,
    model: &webhook_delivery::Model,
) -> Result<(), DbErr> {
    webhook_delivery::Entity::insert(webhook_delivery::ActiveModel {
        id: Set(model.id),
        workspace_id: Set(model.workspace_id),
        delivery_id: Set(model.delivery_id.clone()),
        workflow_id: Set(model.workflow_id),
        node_id: Set(model.node_id.clone()),
        execution_id: Set(model.execution_id),
        create_time: Set(model.create_time),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}
