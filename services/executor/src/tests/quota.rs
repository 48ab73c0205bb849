//! Monthly quotas: past the workspace's executions or tasks of the month,
//! new executions are HELD with the reason, never dropped; they are released
//! in the order they came when the limit is raised or the month turns; a
//! HELD execution can be cancelled; and executors racing for the last of a
//! quota admit exactly what is left of it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tyboo_limits::{Limits, LimitsError, LimitsSource};
use tyboo_runtime::shutdown::Shutdown;
use tyboo_store::Scope;
use uuid::Uuid;

use super::conformance;
use super::harness::{World, create_in, start_in, test_config};
use crate::domain::quota::month_of;
use crate::domain::{ExecutionStatus, WorkspaceScope};
use crate::storage::entities::monthly_usage;
use crate::{Executor, Workers};

conformance!(
    over_the_executions_quota_new_executions_are_held_and_released_in_order,
    a_used_up_task_quota_holds_new_executions,
    racing_executors_admit_exactly_what_is_left_of_the_quota,
);

/// One workspace's limits, changed by the test as an operator would.
#[derive(Default)]
struct Settable(Mutex<Limits>);

impl Settable {
    fn set(&self, change: impl FnOnce(&mut Limits)) {
        change(&mut self.0.lock().unwrap());
    }
}

#[async_trait]
impl LimitsSource for Settable {
    async fn limits(&self, _workspace_id: Uuid) -> Result<Limits, LimitsError> {
        Ok(self.0.lock().unwrap().clone())
    }
}

async fn executor(world: &World, limits: Arc<Settable>) -> Executor {
    let config = test_config();
    let dispatch: Arc<dyn tyboo_broker::Dispatch> = Arc::new(tyboo_broker::InProcessQueue::new(
        &tyboo_broker::BrokerConfig::default(),
    ));
    let leases = Arc::new(
        tyboo_lease::InProcessLeases::new(
            &config.concurrency.leases,
            Arc::new(tyboo_lease::SystemClock),
        )
        .unwrap(),
    );
    Executor::connect(&world.url, config, world.keys.clone(), dispatch)
        .await
        .unwrap()
        .with_concurrency(leases, limits)
        .unwrap()
}

fn two_tasks() -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "a", "type": "set", "parameters": {"values": {"x": 1}}},
            {"id": "b", "type": "set", "parameters": {"values": {"y": 2}}}
        ],
        "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "b"}]
    })
}

async fn status(
    executor: &Executor,
    scope: &WorkspaceScope,
    id: Uuid,
) -> (ExecutionStatus, String) {
    let detail = executor.domain().get_execution(scope, id).await.unwrap();
    (
        detail.execution.status,
        detail.execution.queue_reason.unwrap_or_default(),
    )
}

async fn wait_for(executor: &Executor, scope: &WorkspaceScope, id: Uuid, wanted: ExecutionStatus) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (now, reason) = status(executor, scope, id).await;
        if now == wanted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{id} is {now} ({reason}), not {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn over_the_executions_quota_new_executions_are_held_and_released_in_order(world: World) {
    let limits = Arc::new(Settable::default());
    limits.set(|limits| limits.executions_per_month = 2);
    let executor = executor(&world, limits.clone()).await;
    let shutdown = Shutdown::new();
    let workers = Workers::start(&executor, &tyboo_engine::Pool::ALL, 4, shutdown.clone());
    let scope = world.scope();
    let workflow_id = create_in(&executor, &scope, two_tasks()).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(start_in(&executor, &scope, workflow_id).await);
    }
    for id in &ids[..2] {
        wait_for(&executor, &scope, *id, ExecutionStatus::Succeeded).await;
    }
    for id in &ids[2..] {
        let (now, reason) = status(&executor, &scope, *id).await;
        assert_eq!(now, ExecutionStatus::Held);
        assert!(
            reason.starts_with("held: the workspace has started its 2 executions of ")
                && reason.contains("(executions_per_month)"),
            "{reason}"
        );
    }
    // Nothing changed: nothing is released, and a held execution runs nothing.
    assert_eq!(
        executor
            .domain()
            .release_held(world.workspace_id)
            .await
            .unwrap(),
        0
    );
    let detail = executor
        .domain()
        .get_execution(&scope, ids[2])
        .await
        .unwrap();
    assert!(
        detail.steps.iter().all(|step| step.node_id == "start"),
        "{detail:?}"
    );

    // The workspace moves to a larger quota: the two oldest are released.
    limits.set(|limits| limits.executions_per_month = 4);
    assert_eq!(
        executor
            .domain()
            .release_held(world.workspace_id)
            .await
            .unwrap(),
        2
    );
    wait_for(&executor, &scope, ids[2], ExecutionStatus::Succeeded).await;
    wait_for(&executor, &scope, ids[3], ExecutionStatus::Succeeded).await;
    assert_eq!(
        status(&executor, &scope, ids[4]).await.0,
        ExecutionStatus::Held
    );

    // A held execution may be cancelled like any other.
    let extra = start_in(&executor, &scope, workflow_id).await;
    assert_eq!(
        status(&executor, &scope, extra).await.0,
        ExecutionStatus::Held
    );
    executor
        .domain()
        .cancel_execution(&scope, extra)
        .await
        .unwrap();
    assert_eq!(
        status(&executor, &scope, extra).await.0,
        ExecutionStatus::Cancelled
    );

    // The month turns (this month's count becomes last month's): the rest
    // is released by the executor's own background release.
    let month = month_of(chrono::Utc::now());
    let tx = executor
        .domain()
        .store()
        .write(Scope::Workspace(world.workspace_id))
        .await
        .unwrap();
    monthly_usage::Entity::update_many()
        .col_expr(monthly_usage::Column::Month, Expr::value("2000-01"))
        .filter(monthly_usage::Column::WorkspaceId.eq(world.workspace_id))
        .filter(monthly_usage::Column::Month.eq(month))
        .exec(&tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let background = executor.start_background(shutdown.clone());
    wait_for(&executor, &scope, ids[4], ExecutionStatus::Succeeded).await;
    shutdown.trigger();
    workers.join().await;
    for task in background {
        task.await.unwrap();
    }
}

async fn a_used_up_task_quota_holds_new_executions(world: World) {
    let limits = Arc::new(Settable::default());
    limits.set(|limits| limits.tasks_per_month = 2);
    let executor = executor(&world, limits.clone()).await;
    let shutdown = Shutdown::new();
    let workers = Workers::start(&executor, &tyboo_engine::Pool::ALL, 4, shutdown.clone());
    let scope = world.scope();
    let workflow_id = create_in(&executor, &scope, two_tasks()).await;
    // The first runs its two tasks; the quota is then used up.
    let first = start_in(&executor, &scope, workflow_id).await;
    wait_for(&executor, &scope, first, ExecutionStatus::Succeeded).await;
    let second = start_in(&executor, &scope, workflow_id).await;
    let (now, reason) = status(&executor, &scope, second).await;
    assert_eq!(now, ExecutionStatus::Held);
    assert!(
        reason.contains("its 2 tasks of") && reason.contains("(tasks_per_month)"),
        "{reason}"
    );
    // No quota at all: everything held runs.
    limits.set(|limits| limits.tasks_per_month = 0);
    assert_eq!(
        executor
            .domain()
            .release_held(world.workspace_id)
            .await
            .unwrap(),
        1
    );
    wait_for(&executor, &scope, second, ExecutionStatus::Succeeded).await;
    shutdown.trigger();
    workers.join().await;
}

async fn racing_executors_admit_exactly_what_is_left_of_the_quota(world: World) {
    const STARTS: usize = 500;
    const QUOTA: u32 = 100;
    let limits = Arc::new(Settable::default());
    limits.set(|limits| limits.executions_per_month = QUOTA);
    // Several executor replicas on one PostgreSQL database; SQLite has one
    // writer per file, so there the starts race in one executor.
    let replicas = if world.url.starts_with("postgres") {
        4
    } else {
        1
    };
    let mut executors = Vec::new();
    for _ in 0..replicas {
        executors.push(executor(&world, limits.clone()).await);
    }
    let scope = world.scope();
    let workflow_id = create_in(&executors[0], &scope, two_tasks()).await;
    let mut starts = tokio::task::JoinSet::new();
    for index in 0..STARTS {
        let executor = executors[index % replicas].clone();
        let scope = scope.clone();
        starts.spawn(async move { start_in(&executor, &scope, workflow_id).await });
    }
    let mut ids = Vec::new();
    while let Some(id) = starts.join_next().await {
        ids.push(id.unwrap());
    }
    let mut held = 0;
    for id in &ids {
        if status(&executors[0], &scope, *id).await.0 == ExecutionStatus::Held {
            held += 1;
        }
    }
    assert_eq!(STARTS - held, QUOTA as usize);
    assert_eq!(held, STARTS - QUOTA as usize);
    let row = monthly_usage::Entity::find()
        .filter(monthly_usage::Column::WorkspaceId.eq(world.workspace_id))
        .one(
            &executors[0]
                .domain()
                .store()
                .read(Scope::Workspace(world.workspace_id)),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.executions, i64::from(QUOTA));
}
