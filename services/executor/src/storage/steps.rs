//! Steps: the rows workers claim under a lease and commit to under a fencing
//! number. Every transition is a compare-and-set on the state (and, for a
//! worker's writes, the fencing number it claimed with), so a stale worker,
//! a duplicate message or a concurrent cancel can never overwrite a newer
//! decision.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tyboo_store::Session;
use uuid::Uuid;

use super::entities::step;
use super::{ensure_in_scope, records};
use crate::domain::model::{Step, StepState};

/// States a step can still leave.
pub const ACTIVE: [StepState; 3] = [StepState::Ready, StepState::Running, StepState::Waiting];

pub async fn insert<S: Session>(db: &S, record: &Step) -> Result<(), DbErr> {
    ensure_in_scope(db, record.workspace_id)?;
    step::Entity::insert(step::ActiveModel::from(record))
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// Every step of an execution, in insertion order.
pub async fn list_for_execution<S: Session>(
    db: &S,
    execution_id: Uuid,
) -> Result<Vec<Step>, DbErr> {
    let rows = select(db)
        .filter(step::Column::ExecutionId.eq(execution_id))
        .order_by_asc(step::Column::Id)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

fn select<S: Session>(db: &S) -> sea_orm::Select<step::Entity> {
    db.scope()
        .restrict(step::Entity::find(), step::Column::WorkspaceId)
}

fn update<S: Session>(db: &S) -> sea_orm::UpdateMany<step::Entity> {
    db.scope()
        .restrict(step::Entity::update_many(), step::Column::WorkspaceId)
}

pub struct Claim {
    pub step_id: Uuid,
    pub expected_state: StepState,
    pub expected_fencing: i64,
    pub attempt: i32,
    pub lost_workers: i32,
    pub lease_owner: String,
    pub lease_expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Takes the step for one attempt with a new fencing number; false when
/// someone else changed it first.
pub async fn claim<S: Session>(db: &S, claim: Claim) -> Result<bool, DbErr> {
    let result = update(db)
        .col_expr(step::Column::State, Expr::value(StepState::Running))
        .col_expr(step::Column::Attempt, Expr::value(claim.attempt))
        .col_expr(step::Column::LostWorkers, Expr::value(claim.lost_workers))
        .col_expr(
            step::Column::Fencing,
            Expr::value(claim.expected_fencing + 1),
        )
        .col_expr(step::Column::LeaseOwner, Expr::value(claim.lease_owner))
        .col_expr(
            step::Column::LeaseExpiresAt,
            Expr::value(claim.lease_expires_at),
        )
        .col_expr(step::Column::StartTime, Expr::value(claim.now))
        .filter(step::Column::Id.eq(claim.step_id))
        .filter(step::Column::State.eq(claim.expected_state))
        .filter(step::Column::Fencing.eq(claim.expected_fencing))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Extends a held lease; false when the worker no longer holds the step.
pub async fn renew_lease<S: Session>(
    db: &S,
    step_id: Uuid,
    fencing: i64,
    lease_expires_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = update(db)
        .col_expr(step::Column::LeaseExpiresAt, Expr::value(lease_expires_at))
        .filter(step::Column::Id.eq(step_id))
        .filter(step::Column::State.eq(StepState::Running))
        .filter(step::Column::Fencing.eq(fencing))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// How a held step moves on.
pub struct Transition<'a> {
    pub state: StepState,
    pub attempt: i32,
    pub available_at: DateTime<Utc>,
    pub output: Option<&'a str>,
    pub port: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_class: Option<&'a str>,
    pub end_time: Option<DateTime<Utc>>,
    pub dispatched_at: Option<DateTime<Utc>>,
}

/// Applies `transition` to a step the caller holds under `fencing`, releasing
/// the lease; false when the worker no longer holds it (its result must not
/// count).
pub async fn transition_held<S: Session>(
    db: &S,
    step_id: Uuid,
    fencing: i64,
    transition: Transition<'_>,
) -> Result<bool, DbErr> {
    let result = update(db)
        .col_expr(step::Column::State, Expr::value(transition.state))
        .col_expr(step::Column::Attempt, Expr::value(transition.attempt))
        .col_expr(
            step::Column::AvailableAt,
            Expr::value(transition.available_at),
        )
        .col_expr(
            step::Column::Output,
            Expr::value(transition.output.map(str::to_owned)),
        )
        .col_expr(
            step::Column::Port,
            Expr::value(transition.port.map(str::to_owned)),
        )
        .col_expr(
            step::Column::Error,
            Expr::value(transition.error.map(str::to_owned)),
        )
        .col_expr(
            step::Column::ErrorClass,
            Expr::value(transition.error_class.map(str::to_owned)),
        )
        .col_expr(step::Column::EndTime, Expr::value(transition.end_time))
        .col_expr(
            step::Column::DispatchedAt,
            Expr::value(transition.dispatched_at),
        )
        .col_expr(
            step::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            step::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(step::Column::Id.eq(step_id))
        .filter(step::Column::State.eq(StepState::Running))
        .filter(step::Column::Fencing.eq(fencing))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Ends every step of the execution that could still run, with `state`
/// (cancelled when the execution stops for another reason).
pub async fn stop_active<S: Session>(
    db: &S,
    execution_id: Uuid,
    state: StepState,
    end_time: DateTime<Utc>,
) -> Result<(), DbErr> {
    update(db)
        .col_expr(step::Column::State, Expr::value(state))
        .col_expr(step::Column::EndTime, Expr::value(end_time))
        .col_expr(
            step::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            step::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(step::Column::ExecutionId.eq(execution_id))
        .filter(step::Column::State.is_in(ACTIVE))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn mark_dispatched<S: Session>(
    db: &S,
    step_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if step_ids.is_empty() {
        return Ok(());
    }
    update(db)
        .col_expr(step::Column::DispatchedAt, Expr::value(now))
        .filter(step::Column::Id.is_in(step_ids.iter().copied()))
        .exec(db)
        .await
        .map(|_| ())
}

/// Steps whose message may have been lost: available (or with an expired
/// lease) for longer than the grace period and not dispatched within it.
pub async fn needing_dispatch<S: Session>(
    db: &S,
    now: DateTime<Utc>,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Step>, DbErr> {
    let not_recently_dispatched = Condition::any()
        .add(step::Column::DispatchedAt.is_null())
        .add(step::Column::DispatchedAt.lt(cutoff));
    let idle = Condition::all()
        .add(step::Column::State.is_in([StepState::Ready, StepState::Waiting]))
        .add(step::Column::AvailableAt.lt(cutoff))
        .add(not_recently_dispatched.clone());
    // A lease that ran out means the worker died: dispatch once right away
    // (not dispatched since it expired), then again each grace period.
    let abandoned = Condition::all()
        .add(step::Column::State.eq(StepState::Running))
        .add(step::Column::LeaseExpiresAt.lt(now))
        .add(Condition::any().add(not_recently_dispatched).add(
            Expr::col(step::Column::DispatchedAt).lt(Expr::col(step::Column::LeaseExpiresAt)),
        ));
    let rows = select(db)
        .filter(Condition::any().add(idle).add(abandoned))
        .order_by_asc(step::Column::AvailableAt)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}

/// Every step that is not finished, in id order after `after_id`: at start-up
/// all of them are dispatched again, since a restarted in-process queue
/// holds nothing.
pub async fn active_after<S: Session>(
    db: &S,
    after_id: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Step>, DbErr> {
    let mut query = select(db).filter(step::Column::State.is_in(ACTIVE));
    if let Some(after_id) = after_id {
        query = query.filter(step::Column::Id.gt(after_id));
    }
    let rows = query
        .order_by_asc(step::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records::all(rows))
}
