//! Ledger rows. Every read names the workspace and the month; the only
//! write is an insert that leaves a row already recorded as it is.

use sea_orm::sea_query::{Expr, OnConflict, SimpleExpr};
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, FromQueryResult, Order, QueryFilter, QueryOrder, QuerySelect,
    Select,
};
use uuid::Uuid;

use super::Session;
use super::entities::usage_event::{self, Column};

/// Inserts `rows`, skipping those whose (workspace, idempotency key) the
/// ledger already holds; answers how many were new.
pub async fn insert_new<C: Session>(db: &C, rows: Vec<usage_event::Model>) -> Result<u64, DbErr> {
    if rows.is_empty() {
        return Ok(0);
    }
    let active = rows.into_iter().map(usage_event::ActiveModel::from);
    let inserted = usage_event::Entity::insert_many(active)
        .on_conflict(
            OnConflict::columns([Column::WorkspaceId, Column::IdempotencyKey])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted)
}

/// Sums over a set of rows, as every total and breakdown reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromQueryResult)]
pub struct Sums {
    pub executions: i64,
    pub tasks: i64,
    pub llm_calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
}

fn count_of(kind: usage_event::UsageKind) -> SimpleExpr {
    // The kind is one of three constants, never caller input.
    Expr::cust(format!(
        "CAST(COALESCE(SUM(CASE WHEN kind = '{}' THEN 1 ELSE 0 END), 0) AS BIGINT)",
        kind.as_str()
    ))
}

fn sum_of(column: &str) -> SimpleExpr {
    Expr::cust(format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)"))
}

/// `query` reading [`Sums`] columns beside whatever it groups by.
fn with_sums(query: Select<usage_event::Entity>) -> Select<usage_event::Entity> {
    query
        .column_as(count_of(usage_event::UsageKind::Execution), "executions")
        .column_as(count_of(usage_event::UsageKind::Task), "tasks")
        .column_as(count_of(usage_event::UsageKind::LlmCall), "llm_calls")
        .column_as(sum_of("input_tokens"), "input_tokens")
        .column_as(sum_of("output_tokens"), "output_tokens")
        .column_as(sum_of("cost_micros"), "cost_micros")
}

fn of_month(workspace_id: Uuid, month: &str) -> Select<usage_event::Entity> {
    usage_event::Entity::find()
        .select_only()
        .filter(Column::WorkspaceId.eq(workspace_id))
        .filter(Column::UsageMonth.eq(month))
}

/// The month's totals.
pub async fn totals<C: Session>(db: &C, workspace_id: Uuid, month: &str) -> Result<Sums, DbErr> {
    Ok(with_sums(of_month(workspace_id, month))
        .into_model::<Sums>()
        .one(db)
        .await?
        .unwrap_or_default())
}

#[derive(Debug, FromQueryResult)]
pub struct WorkflowSums {
    pub workflow_id: Uuid,
    #[sea_orm(nested)]
    pub sums: Sums,
}

/// The month's sums per workflow, busiest first; at most `limit`.
pub async fn by_workflow<C: Session>(
    db: &C,
    workspace_id: Uuid,
    month: &str,
    limit: u64,
) -> Result<Vec<WorkflowSums>, DbErr> {
    with_sums(of_month(workspace_id, month).column(Column::WorkflowId))
        .group_by(Column::WorkflowId)
        .order_by(Expr::cust("COUNT(*)"), Order::Desc)
        .order_by_asc(Column::WorkflowId)
        .limit(limit)
        .into_model::<WorkflowSums>()
        .all(db)
        .await
}

#[derive(Debug, FromQueryResult)]
pub struct ModelSums {
    pub provider_host: String,
    pub model: String,
    #[sea_orm(nested)]
    pub sums: Sums,
}

/// The month's LLM sums per provider and model, costliest first; at most
/// `limit`.
pub async fn by_model<C: Session>(
    db: &C,
    workspace_id: Uuid,
    month: &str,
    limit: u64,
) -> Result<Vec<ModelSums>, DbErr> {
    with_sums(
        of_month(workspace_id, month)
            .filter(Column::Kind.eq(usage_event::UsageKind::LlmCall))
            .column(Column::ProviderHost)
            .column(Column::Model),
    )
    .group_by(Column::ProviderHost)
    .group_by(Column::Model)
    .order_by(sum_of("cost_micros"), Order::Desc)
    .order_by(Expr::cust("COUNT(*)"), Order::Desc)
    .order_by_asc(Column::ProviderHost)
    .order_by_asc(Column::Model)
    .limit(limit)
    .into_model::<ModelSums>()
    .all(db)
    .await
}

#[derive(Debug, FromQueryResult)]
pub struct DaySums {
    pub usage_day: String,
    #[sea_orm(nested)]
    pub sums: Sums,
}

/// The month's sums per day with usage, in date order.
pub async fn by_day<C: Session>(
    db: &C,
    workspace_id: Uuid,
    month: &str,
) -> Result<Vec<DaySums>, DbErr> {
    with_sums(of_month(workspace_id, month).column(Column::UsageDay))
        .group_by(Column::UsageDay)
        .order_by_asc(Column::UsageDay)
        .into_model::<DaySums>()
        .all(db)
        .await
}

/// A page of the month's rows in recording order, after `after`.
pub async fn page<C: Session>(
    db: &C,
    workspace_id: Uuid,
    month: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<usage_event::Model>, DbErr> {
    let mut query = usage_event::Entity::find()
        .filter(Column::WorkspaceId.eq(workspace_id))
        .filter(Column::UsageMonth.eq(month));
    if let Some(after) = after {
        query = query.filter(Column::Id.gt(after));
    }
    query.order_by_asc(Column::Id).limit(limit).all(db).await
}

/// Whether `id` is a row of the workspace's month: what a page token must
/// name.
pub async fn exists_in_month<C: Session>(
    db: &C,
    workspace_id: Uuid,
    month: &str,
    id: Uuid,
) -> Result<bool, DbErr> {
    Ok(usage_event::Entity::find_by_id(id)
        .filter(Column::WorkspaceId.eq(workspace_id))
        .filter(Column::UsageMonth.eq(month))
        .select_only()
        .column(Column::Id)
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .is_some())
}

/// Which of `keys` (workspace, idempotency key) the ledger already holds.
pub async fn existing_keys<C: Session>(
    db: &C,
    keys: &std::collections::BTreeSet<(Uuid, String)>,
) -> Result<std::collections::BTreeSet<(Uuid, String)>, DbErr> {
    if keys.is_empty() {
        return Ok(Default::default());
    }
    let workspaces: std::collections::BTreeSet<Uuid> = keys.iter().map(|(w, _)| *w).collect();
    let found: Vec<(Uuid, String)> = usage_event::Entity::find()
        .select_only()
        .column(Column::WorkspaceId)
        .column(Column::IdempotencyKey)
        .filter(Column::WorkspaceId.is_in(workspaces))
        .filter(Column::IdempotencyKey.is_in(keys.iter().map(|(_, key)| key.clone())))
        .into_tuple()
        .all(db)
        .await?;
    Ok(found
        .into_iter()
        .filter(|pair| keys.contains(pair))
        .collect())
}
