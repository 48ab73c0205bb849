//! Running executions per workspace and per user: never more than the
//! limit at once, the rest QUEUED with the reason and started as slots
//! free, timed out past the queue wait limit, and a slot whose holder died
//! freed once its lease expires. On the PostgreSQL pass the leases live in
//! Redis when `TYBOO_TEST_REDIS_URL` is set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tyboo_auth::{Permission, Principal, Role, Subject};
use tyboo_lease::{ConcurrencyLeases, InProcessLeases, LeaseConfig, RedisLeases, SystemClock};
use tyboo_limits::{Limits, LimitsError, LimitsSource};
use tyboo_runtime::shutdown::Shutdown;
use uuid::Uuid;

use super::conformance;
use super::harness::{World, create_in, start_in, test_config};
use crate::domain::{ExecutionStatus, WorkspaceScope};
use crate::{Executor, ExecutorConfig};

conformance!(
    at_most_the_limit_run_and_every_execution_finishes,
    a_users_limit_holds_while_the_workspace_has_room,
    an_execution_waiting_past_the_queue_wait_limit_times_out,
    a_slot_whose_holder_died_frees_itself_after_the_lease_ttl,
);

/// Limits per workspace, as tenancy would answer them.
struct PerWorkspace(HashMap<Uuid, Limits>);

#[async_trait]
impl LimitsSource for PerWorkspace {
    async fn limits(&self, workspace_id: Uuid) -> Result<Limits, LimitsError> {
        Ok(self.0.get(&workspace_id).cloned().unwrap_or_default())
    }
}

fn config() -> ExecutorConfig {
    let mut config = test_config();
    config.concurrency.recheck_ms = 200;
    config.concurrency.leases.ttl_ms = 1_500;
    config.concurrency.leases.renew_interval_ms = 300;
    config
}

/// The leases of this run: in Redis under a prefix of its own on the
/// PostgreSQL pass when Redis is given, in-process otherwise.
async fn leases(world: &World, config: &ExecutorConfig) -> Arc<dyn ConcurrencyLeases> {
    let redis = std::env::var("TYBOO_TEST_REDIS_URL").ok();
    match redis.filter(|_| world.url.starts_with("postgres")) {
        Some(url) => {
            let config = LeaseConfig {
                key_prefix: format!("tyboo-test-leases-{}", Uuid::now_v7().simple()),
                ..config.concurrency.leases.clone()
            };
            Arc::new(
                RedisLeases::connect(&url, &config, Arc::new(SystemClock))
                    .await
                    .unwrap(),
            )
        }
        None => Arc::new(
            InProcessLeases::new(&config.concurrency.leases, Arc::new(SystemClock)).unwrap(),
        ),
    }
}

/// An executor of `world`'s database with these limits and leases.
async fn executor(
    world: &World,
    limits: HashMap<Uuid, Limits>,
    leases: Arc<dyn ConcurrencyLeases>,
) -> Executor {
    let dispatch: Arc<dyn tyboo_broker::Dispatch> = Arc::new(tyboo_broker::InProcessQueue::new(
        &tyboo_broker::BrokerConfig::default(),
    ));
    let executor = Executor::connect(&world.url, config(), world.keys.clone(), dispatch)
        .await
        .unwrap();
    executor
        .with_concurrency(leases, Arc::new(PerWorkspace(limits)))
        .unwrap()
}

fn scope_of(workspace_id: Uuid, user_id: Uuid) -> WorkspaceScope {
    WorkspaceScope::for_principal(
        Principal {
            subject: Subject::User(user_id),
            workspace_id: Some(workspace_id),
            organization_id: Some(Uuid::now_v7()),
            role: Some(Role::Owner),
            api_key_id: None,
            api_key_version: None,
        },
        Permission::WorkflowsWrite,
    )
    .unwrap()
}

fn delaying(ms: u64) -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "pause", "type": "delay", "parameters": {"ms": ms}},
            {"id": "done", "type": "set", "parameters": {"values": {"done": true}}}
        ],
        "edges": [{"from": "start", "to": "pause"}, {"from": "pause", "to": "done"}]
    })
}

/// Waits for every execution to end; returns each one's start and end.
async fn all_finished(
    executor: &Executor,
    scope: &WorkspaceScope,
    ids: &[Uuid],
    limit: Duration,
) -> Vec<crate::domain::Execution> {
    let give_up = tokio::time::Instant::now() + limit;
    let mut done = Vec::new();
    for id in ids {
        loop {
            let execution = executor
                .domain()
                .get_execution(scope, *id)
                .await
                .unwrap()
                .execution;
            if execution.status.is_terminal() {
                done.push(execution);
                break;
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "execution {id} still {:?}: {:?}",
                execution.status,
                execution.queue_reason
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    done
}

/// The most executions running at one instant, from their start and end.
fn most_at_once(executions: &[crate::domain::Execution]) -> usize {
    let mut edges: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for execution in executions {
        edges.push((execution.start_time.expect("started"), 1));
        edges.push((execution.end_time.expect("ended"), -1));
    }
    // An end and a start at the same instant: the end first.
    edges.sort();
    let mut running = 0;
    let mut most = 0;
    for (_, change) in edges {
        running += change;
        most = most.max(running);
    }
    usize::try_from(most).unwrap()
}

/// Polls until some execution of `ids` waits with a reason; returns it.
async fn a_queue_reason(executor: &Executor, scope: &WorkspaceScope, ids: &[Uuid]) -> String {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        for id in ids {
            let execution = executor
                .domain()
                .get_execution(scope, *id)
                .await
                .unwrap()
                .execution;
            if let Some(reason) = execution.queue_reason {
                assert_eq!(execution.status, ExecutionStatus::Queued);
                return reason;
            }
        }
        assert!(tokio::time::Instant::now() < give_up, "nobody waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn at_most_the_limit_run_and_every_execution_finishes(world: World) {
    let limited = Uuid::now_v7();
    let other = Uuid::now_v7();
    let two = Limits {
        running_executions_per_workspace: 2,
        ..Limits::default()
    };
    let leases = leases(&world, &config()).await;
    let executor = executor(&world, HashMap::from([(limited, two)]), leases).await;
    let shutdown = Shutdown::new();
    let _workers = crate::Workers::start(&executor, &tyboo_engine::Pool::ALL, 8, shutdown.clone());

    // Every start by another user: only the workspace's limit applies.
    let owner = scope_of(limited, Uuid::now_v7());
    let workflow_id = create_in(&executor, &owner, delaying(150)).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let scope = scope_of(limited, Uuid::now_v7());
        ids.push(start_in(&executor, &scope, workflow_id).await);
    }
    let reason = a_queue_reason(&executor, &owner, &ids).await;
    assert_eq!(
        reason,
        "waiting for a concurrency slot: 2 of 2 running in this workspace"
    );

    // Another workspace is not held behind the flood.
    let other_scope = scope_of(other, Uuid::now_v7());
    let other_workflow = create_in(&executor, &other_scope, delaying(0)).await;
    let begun = std::time::Instant::now();
    let quick = start_in(&executor, &other_scope, other_workflow).await;
    let quick = all_finished(&executor, &other_scope, &[quick], Duration::from_secs(10)).await;
    assert_eq!(quick[0].status, ExecutionStatus::Succeeded);
    assert!(quick[0].queue_reason.is_none());
    let other_took = begun.elapsed();

    let done = all_finished(&executor, &owner, &ids, Duration::from_secs(60)).await;
    assert!(
        done.iter()
            .all(|execution| execution.status == ExecutionStatus::Succeeded),
        "{done:?}"
    );
    assert!(
        done.iter()
            .all(|execution| execution.queue_reason.is_none())
    );
    assert_eq!(
        most_at_once(&done),
        2,
        "never more than the limit, and the limit used"
    );
    // Twenty 150 ms executions two at a time take 1.5 s at least; the
    // other workspace's one finished well before that.
    assert!(other_took < Duration::from_millis(1_500), "{other_took:?}");
    shutdown.trigger();
}

async fn a_users_limit_holds_while_the_workspace_has_room(world: World) {
    let workspace = Uuid::now_v7();
    let one_each = Limits {
        running_executions_per_workspace: 10,
        running_executions_per_user: 1,
        ..Limits::default()
    };
    let leases = leases(&world, &config()).await;
    let executor = executor(&world, HashMap::from([(workspace, one_each)]), leases).await;
    let shutdown = Shutdown::new();
    let _workers = crate::Workers::start(&executor, &tyboo_engine::Pool::ALL, 8, shutdown.clone());
    let person = scope_of(workspace, Uuid::now_v7());
    let workflow_id = create_in(&executor, &person, delaying(150)).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(start_in(&executor, &person, workflow_id).await);
    }
    let colleague = scope_of(workspace, Uuid::now_v7());
    let theirs = start_in(&executor, &colleague, workflow_id).await;
    let reason = a_queue_reason(&executor, &person, &ids).await;
    assert_eq!(
        reason,
        "waiting for a concurrency slot: 1 of 1 running for the user who started it"
    );
    let done = all_finished(&executor, &person, &ids, Duration::from_secs(30)).await;
    assert_eq!(most_at_once(&done), 1);
    assert!(
        done.iter()
            .all(|execution| execution.started_by == person.user_id())
    );
    let theirs = all_finished(&executor, &colleague, &[theirs], Duration::from_secs(10)).await;
    assert_eq!(theirs[0].status, ExecutionStatus::Succeeded);
    // The colleague's ran beside the person's: their slot is their own.
    let mut both = done.clone();
    both.extend(theirs);
    assert_eq!(most_at_once(&both), 2);
    shutdown.trigger();
}

async fn an_execution_waiting_past_the_queue_wait_limit_times_out(world: World) {
    let workspace = Uuid::now_v7();
    let short_wait = Limits {
        running_executions_per_workspace: 1,
        queue_wait_limit_seconds: 1,
        ..Limits::default()
    };
    let leases = leases(&world, &config()).await;
    let executor = executor(&world, HashMap::from([(workspace, short_wait)]), leases).await;
    let shutdown = Shutdown::new();
    let _workers = crate::Workers::start(&executor, &tyboo_engine::Pool::ALL, 4, shutdown.clone());
    let scope = scope_of(workspace, Uuid::now_v7());
    let workflow_id = create_in(&executor, &scope, delaying(2_500)).await;
    let first = start_in(&executor, &scope, workflow_id).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = start_in(&executor, &scope, workflow_id).await;
    let done = all_finished(&executor, &scope, &[first, second], Duration::from_secs(20)).await;
    assert_eq!(done[0].status, ExecutionStatus::Succeeded);
    assert_eq!(done[1].status, ExecutionStatus::TimedOut, "{:?}", done[1]);
    let error = done[1].error.clone().unwrap_or_default();
    assert!(error.contains("queue wait limit of 1 s"), "{error}");
    assert!(done[1].start_time.is_none(), "it never started");
    shutdown.trigger();
}

async fn a_slot_whose_holder_died_frees_itself_after_the_lease_ttl(world: World) {
    let workspace = Uuid::now_v7();
    let one = Limits {
        running_executions_per_workspace: 1,
        ..Limits::default()
    };
    let config = config();
    let leases = leases(&world, &config).await;
    // A process that took the slot and died before giving it back.
    let ttl = Duration::from_millis(config.concurrency.leases.ttl_ms);
    let dead = Uuid::now_v7().to_string();
    let key = crate::domain::concurrency::workspace_key(workspace);
    leases.acquire(&key, &dead, 1, ttl).await.unwrap();
    let taken_at = std::time::Instant::now();

    let executor = executor(&world, HashMap::from([(workspace, one)]), leases.clone()).await;
    let shutdown = Shutdown::new();
    let _workers = crate::Workers::start(&executor, &tyboo_engine::Pool::ALL, 4, shutdown.clone());
    let scope = scope_of(workspace, Uuid::now_v7());
    let workflow_id = create_in(&executor, &scope, delaying(0)).await;
    let waiting = start_in(&executor, &scope, workflow_id).await;
    let reason = a_queue_reason(&executor, &scope, &[waiting]).await;
    assert!(reason.contains("1 of 1 running"), "{reason}");
    let done = all_finished(&executor, &scope, &[waiting], Duration::from_secs(20)).await;
    assert_eq!(done[0].status, ExecutionStatus::Succeeded);
    assert!(
        taken_at.elapsed() >= ttl,
        "started only once the dead holder's lease expired"
    );
    // The finished execution gave its own slot back.
    assert_eq!(leases.held(&key).await.unwrap(), 0);
    shutdown.trigger();
}
