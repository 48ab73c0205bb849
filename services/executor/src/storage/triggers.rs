//! Trigger tables: webhook routes, schedules and seen webhook deliveries.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tyboo_store::Session;
use uuid::Uuid;

use super::entities::{schedule, webhook_delivery, webhook_route};
use super::{ensure_in_scope, records};
use crate::domain::model::{Schedule, WebhookDelivery, WebhookRoute};

fn routes<S: Session>(db: &S) -> sea_orm::Select<webhook_route::Entity> {
    db.scope().restrict(
        webhook_route::Entity::find(),
        webhook_route::Column::WorkspaceId,
    )
}

/// Drops a workflow's routes and schedules, before a save writes the new
/// ones or a delete leaves none.
pub async fn delete_for_workflow<S: Session>(db: &S, workflow_id: Uuid) -> Result<(), DbErr> {
    db.scope()
        .restrict(
            webhook_route::Entity::delete_many(),
            webhook_route::Column::WorkspaceId,
        )
        .filter(webhook_route::Column::WorkflowId.eq(workflow_id))
        .exec(db)
        .await?;
    db.scope()
        .restrict(
            schedule::Entity::delete_many(),
            schedule::Column::WorkspaceId,
        )
        .filter(schedule::Column::WorkflowId.eq(workflow_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The route of the scope's workspace listening on `path`.
pub async fn find_route<S: Session>(db: &S, path: &str) -> Result<Option<WebhookRoute>, DbErr> {
    Ok(routes(db)
        .filter(webhook_route::Column::Path.eq(path))
        .one(db)
        .await?
        .map(Into::into))
}

pub async fn insert_route<S: Session>(db: &S, record: &WebhookRoute) -> Result<(), DbErr> {
    ensure_in_scope(db, record.workspace_id)?;
    webhook_route::Entity::insert(webhook_route::ActiveModel::from(record))
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// The route a hook URL's token names.
pub async fn find_route_by_token<S: Session>(
    db: &S,
    token: &str,
) -> Result<Option<WebhookRoute>, DbErr> {
    Ok(routes(db)
        .filter(webhook_route::Column::Token.eq(token))
        .one(db)
        .await?
        .map(Into::into))
}

/// A workflow's webhook routes, by node id.
pub async fn routes_for_workflow<S: Session>(
    db: &S,
    workflow_id: Uuid,
) -> Result<Vec<WebhookRoute>, DbErr> {
    let rows = routes(db)
        .filter(webhook_route::Column::WorkflowId.eq(workflow_id))
        .order_by_asc(webhook_route::Column::NodeId)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

/// Gives one route a new token; false when the workflow has no webhook
/// trigger with that node id.
pub async fn set_route_token<S: Session>(
    db: &S,
    workflow_id: Uuid,
    node_id: &str,
    token: &str,
) -> Result<bool, DbErr> {
    let result = db
        .scope()
        .restrict(
            webhook_route::Entity::update_many(),
            webhook_route::Column::WorkspaceId,
        )
        .col_expr(webhook_route::Column::Token, Expr::value(token))
        .filter(webhook_route::Column::WorkflowId.eq(workflow_id))
        .filter(webhook_route::Column::NodeId.eq(node_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn insert_schedule<S: Session>(db: &S, record: &Schedule) -> Result<(), DbErr> {
    ensure_in_scope(db, record.workspace_id)?;
    schedule::Entity::insert(schedule::ActiveModel::from(record))
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// Schedules due at `now`, oldest tick first.
pub async fn due_schedules<S: Session>(
    db: &S,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Schedule>, DbErr> {
    let rows = db
        .scope()
        .restrict(schedule::Entity::find(), schedule::Column::WorkspaceId)
        .filter(schedule::Column::NextFireAt.lte(now))
        .order_by_asc(schedule::Column::NextFireAt)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

/// Moves a schedule from the tick `due` to `next`; false when another
/// executor already took this tick.
pub async fn advance_schedule<S: Session>(
    db: &S,
    schedule_id: Uuid,
    due: DateTime<Utc>,
    next: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = db
        .scope()
        .restrict(
            schedule::Entity::update_many(),
            schedule::Column::WorkspaceId,
        )
        .col_expr(schedule::Column::NextFireAt, Expr::value(next))
        .filter(schedule::Column::Id.eq(schedule_id))
        .filter(schedule::Column::NextFireAt.eq(due))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// A delivery id already seen by one webhook trigger of the scope.
pub async fn find_delivery<S: Session>(
    db: &S,
    (workflow_id, node_id): (Uuid, &str),
    delivery_id: &str,
) -> Result<Option<WebhookDelivery>, DbErr> {
    Ok(db
        .scope()
        .restrict(
            webhook_delivery::Entity::find(),
            webhook_delivery::Column::WorkspaceId,
        )
        .filter(webhook_delivery::Column::WorkflowId.eq(workflow_id))
        .filter(webhook_delivery::Column::NodeId.eq(node_id))
        .filter(webhook_delivery::Column::DeliveryId.eq(delivery_id))
        .one(db)
        .await?
        .map(Into::into))
}

pub async fn insert_delivery<S: Session>(db: &S, record: &WebhookDelivery) -> Result<(), DbErr> {
    ensure_in_scope(db, record.workspace_id)?;
    webhook_delivery::Entity::insert(webhook_delivery::ActiveModel::from(record))
        .exec_without_returning(db)
        .await
        .map(|_| ())
}
