//! Crash recovery and fencing: a process killed mid-execution finishes every
//! execution after a restart without re-running completed nodes, and a
//! worker that lost its lease cannot commit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tyboo_broker::{BrokerConfig, Dispatch, InProcessQueue};
use tyboo_runtime::shutdown::Shutdown;

use super::conformance;
use super::harness::{Sink, World};
use crate::Workers;
use crate::domain::steps::{ClaimOutcome, Committed, Failure};
use crate::domain::{ExecutionStatus, NodeRunStatus, StepState};

async fn a_restart_finishes_executions_without_rerunning_completed_nodes(world: World) {
    let first = Sink::start().await;
    let slow = Sink::start().await;
    let last = Sink::start().await;
    slow.delay_ms.store(1_500, Ordering::SeqCst);
    let workflow_id = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "first", "type": "http.request", "parameters": {"method": "POST", "url": first.url.clone()}},
                {"id": "slow", "type": "http.request", "parameters": {"method": "POST", "url": slow.url.clone()}},
                {"id": "last", "type": "http.request", "parameters": {"method": "POST", "url": last.url.clone()}}
            ],
            "edges": [
                {"from": "start", "to": "first"},
                {"from": "first", "to": "slow"},
                {"from": "slow", "to": "last"}
            ]
        }))
        .await;

    let shutdown = Shutdown::new();
    let crashed = world.workers(&shutdown);
    let execution_id = world.start(workflow_id, json!({})).await;
    while first.count() == 0 || slow.delay_ms.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // `slow` is running now: kill the workers as a crash would.
    tokio::time::sleep(Duration::from_millis(400)).await;
    crashed.abort();

    // A new process: a fresh (empty) queue on the same database.
    let dispatch: Arc<dyn Dispatch> = Arc::new(InProcessQueue::new(&BrokerConfig::default()));
    let restarted = world.reconnect(dispatch).await;
    let restart = Shutdown::new();
    let background = restarted.start_background(restart.clone());
    let workers = Workers::start(&restarted, &tyboo_engine::Pool::ALL, 4, restart.clone());
    slow.delay_ms.store(0, Ordering::SeqCst);
    let detail = world.finished(execution_id, Duration::from_secs(30)).await;
    assert_eq!(
        detail.execution.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        detail.execution.error
    );
    assert_eq!(first.count(), 1, "a completed node never runs again");
    assert_eq!(last.count(), 1);
    assert!(slow.count() >= 1);
    restart.trigger();
    workers.join().await;
    for task in background {
        let _ = task.await;
    }
}

async fn a_worker_that_lost_its_lease_cannot_commit(world: World) {
    let workflow_id = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "work", "type": "set", "parameters": {"values": {"done": true}}}
            ],
            "edges": [{"from": "start", "to": "work"}]
        }))
        .await;
    let execution_id = world.start(workflow_id, json!({})).await;
    let domain = world.executor.domain();
    let job = world.default_job(execution_id, "work");
    let ClaimOutcome::Claimed(stale) = domain.claim_step(&job, "worker-a").await.unwrap() else {
        panic!("the ready step can be claimed");
    };
    // While the lease holds nobody else takes the step.
    assert!(matches!(
        domain.claim_step(&job, "worker-b").await.unwrap(),
        ClaimOutcome::Nothing
    ));
    tokio::time::sleep(Duration::from_millis(world.config.lease_duration_ms + 200)).await;
    let ClaimOutcome::Claimed(fresh) = domain.claim_step(&job, "worker-b").await.unwrap() else {
        panic!("an expired lease can be taken over");
    };
    assert_eq!(fresh.step.attempt, 2);
    assert!(fresh.step.fencing > stale.step.fencing);
    let refused = domain
        .commit_success_and_continue(&stale, json!({"from": "a"}), "main".to_owned(), None, None)
        .await
        .unwrap()
        .0;
    assert_eq!(refused, Committed::Refused);
    let applied = domain
        .commit_success_and_continue(&fresh, json!({"from": "b"}), "main".to_owned(), None, None)
        .await
        .unwrap()
        .0;
    assert_eq!(applied, Committed::Applied);
    let detail = world.finished(execution_id, Duration::from_secs(5)).await;
    assert_eq!(detail.execution.status, ExecutionStatus::Succeeded);
    assert_eq!(
        super::harness::output_of(&detail, "work"),
        json!({"from": "b"})
    );
}

async fn a_step_that_loses_every_worker_is_dead_lettered_after_max_deliveries(world: World) {
    let workflow_id = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "work", "type": "set", "parameters": {"values": {"done": true}},
                 "retry": {"max_attempts": 1}}
            ],
            "edges": [{"from": "start", "to": "work"}]
        }))
        .await;
    let execution_id = world.start(workflow_id, json!({})).await;
    let domain = world.executor.domain();
    let job = world.default_job(execution_id, "work");
    let max_deliveries = world.config.max_deliveries;
    assert!(max_deliveries > 1);
    // Each delivery's worker dies holding the step: its lease runs out.
    // Lost deliveries don't spend the node's single attempt.
    for delivery in 1..=max_deliveries {
        let ClaimOutcome::Claimed(claimed) = domain
            .claim_step(&job, &format!("worker-{delivery}"))
            .await
            .unwrap()
        else {
            panic!("delivery {delivery} is claimed");
        };
        assert_eq!(claimed.step.attempt, delivery as i32);
        assert_eq!(claimed.step.lost_workers, delivery as i32 - 1);
        tokio::time::sleep(Duration::from_millis(world.config.lease_duration_ms + 200)).await;
    }
    // The next delivery finds the step poison and dead-letters it.
    assert!(matches!(
        domain.claim_step(&job, "worker-last").await.unwrap(),
        ClaimOutcome::Nothing
    ));
    let detail = world.finished(execution_id, Duration::from_secs(5)).await;
    assert_eq!(detail.execution.status, ExecutionStatus::Failed);
    assert_eq!(super::harness::state_of(&detail, "work"), "failed");
    let error = detail.execution.error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!("delivered {max_deliveries} times")),
        "{error}"
    );
    let lost_runs: Vec<_> = detail
        .runs
        .iter()
        .filter(|run| run.node_id == "work")
        .collect();
    assert_eq!(lost_runs.len(), max_deliveries as usize);
    assert!(lost_runs.iter().all(|run| {
        run.status == NodeRunStatus::Failed
            && run
                .error
                .as_deref()
                .is_some_and(|error| error.contains("stopped responding"))
    }));
    let (letters, _) = domain
        .list_dead_letters(&world.scope(), &Default::default(), 10, "")
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].node_id, "work");
    assert_eq!(letters[0].attempts, max_deliveries as i32);
    assert!(
        letters[0].error.contains("max_deliveries"),
        "{}",
        letters[0].error
    );
    // A stale worker coming back cannot overwrite the decision.
    assert!(matches!(
        domain.claim_step(&job, "worker-late").await.unwrap(),
        ClaimOutcome::Nothing
    ));
}

/// A failure the node reports after a lost delivery still gets the node's
/// whole retry budget: lost deliveries are counted apart.
async fn lost_deliveries_do_not_spend_the_retry_budget(world: World) {
    let workflow_id = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "work", "type": "set", "parameters": {"values": {"done": true}},
                 "retry": {"max_attempts": 2, "initial_backoff_ms": 1, "max_backoff_ms": 1}}
            ],
            "edges": [{"from": "start", "to": "work"}]
        }))
        .await;
    let execution_id = world.start(workflow_id, json!({})).await;
    let domain = world.executor.domain();
    let job = world.default_job(execution_id, "work");
    let ClaimOutcome::Claimed(_lost) = domain.claim_step(&job, "worker-a").await.unwrap() else {
        panic!("the ready step can be claimed");
    };
    tokio::time::sleep(Duration::from_millis(world.config.lease_duration_ms + 200)).await;
    let ClaimOutcome::Claimed(second) = domain.claim_step(&job, "worker-b").await.unwrap() else {
        panic!("the lost step is taken over");
    };
    assert_eq!((second.step.attempt, second.reported_attempts()), (2, 1));
    let committed = domain
        .commit_failure(
            &second,
            tyboo_engine::NodeError::transient("upstream hiccup"),
        )
        .await
        .unwrap();
    assert_eq!(committed, Some(Failure::Retried));
    let detail = world
        .finished(execution_id, Duration::from_millis(300))
        .await;
    assert_eq!(
        super::harness::state_of(&detail, "work"),
        "ready",
        "the node's first reported failure is retried"
    );
}

/// A commit that readies the next step of a pool the worker serves hands
/// that step to the same worker, claimed in the same transaction; a step of
/// another pool is left to the queue.
async fn a_commit_takes_the_next_step_of_the_workers_pools_on(world: World) {
    let workflow_id = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "a", "type": "set", "parameters": {"values": {"n": 1}}},
                {"id": "b", "type": "set", "parameters": {"values": {"n": 2}}},
                {"id": "c", "type": "set", "parameters": {"values": {"n": 3}}}
            ],
            "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "c"}]
        }))
        .await;
    let execution_id = world.start(workflow_id, json!({})).await;
    let domain = world.executor.domain();
    let job = |node_id: &str| world.default_job(execution_id, node_id);
    let ClaimOutcome::Claimed(a) = domain.claim_step(&job("a"), "worker-a").await.unwrap() else {
        panic!("a is ready");
    };
    let pools = ["default".to_owned()];
    let (committed, next) = domain
        .commit_success_and_continue(
            &a,
            json!({"n": 1}),
            "main".to_owned(),
            None,
            Some(crate::domain::steps::Continue {
                pools: &pools,
                owner: "worker-a",
            }),
        )
        .await
        .unwrap();
    assert_eq!(committed, Committed::Applied);
    let b = next.expect("b is taken on by the same worker");
    assert_eq!(b.step.node_id, "b");
    assert_eq!(b.step.state, StepState::Running);
    assert_eq!(b.inputs, vec![json!({"n": 1})]);
    // Nobody else can claim it while the lease holds.
    assert!(matches!(
        domain.claim_step(&job("b"), "worker-b").await.unwrap(),
        ClaimOutcome::Nothing
    ));
    // A worker of other pools leaves the next step to the queue.
    let other = ["ai".to_owned()];
    let (committed, next) = domain
        .commit_success_and_continue(
            &b,
            json!({"n": 2}),
            "main".to_owned(),
            None,
            Some(crate::domain::steps::Continue {
                pools: &other,
                owner: "worker-a",
            }),
        )
        .await
        .unwrap();
    assert_eq!(committed, Committed::Applied);
    assert!(next.is_none());
    let ClaimOutcome::Claimed(c) = domain.claim_step(&job("c"), "worker-b").await.unwrap() else {
        panic!("c was readied for the queue");
    };
    assert_eq!(c.inputs, vec![json!({"n": 2})]);
    // A stale copy of b cannot commit again.
    let (refused, _) = domain
        .commit_success_and_continue(&b, json!({"n": 9}), "main".to_owned(), None, None)
        .await
        .unwrap();
    assert_eq!(refused, Committed::Refused);
}

/// A worker takes at most `worker_steps_in_a_row` steps of one execution
/// on in a row, each claimed by the commit before it (so its run starts the
/// instant the previous one ended); the next goes through the queue, where
/// other executions get the slot too. 0 sends every step through the queue.
async fn a_worker_takes_at_most_the_configured_steps_in_a_row(world: World) {
    let nodes: Vec<_> = (1..=6)
        .map(|index| json!({"id": format!("s{index}"), "type": "set", "parameters": {"values": {"i": index}}}))
        .chain([json!({"id": "start", "type": "trigger.manual"})])
        .collect();
    let edges: Vec<_> = (1..=6)
        .map(|index| {
            let from = if index == 1 {
                "start".to_owned()
            } else {
                format!("s{}", index - 1)
            };
            json!({"from": from, "to": format!("s{index}")})
        })
        .collect();
    let workflow_id = world.create(json!({"nodes": nodes, "edges": edges})).await;
    // limit → the steps taken on from a commit, of s2..s6.
    for (limit, expected) in [
        (0, vec![]),
        (3, vec!["s2", "s3", "s4", "s6"]),
        (32, vec!["s2", "s3", "s4", "s5", "s6"]),
    ] {
        let config = crate::config::ExecutorConfig {
            worker_steps_in_a_row: limit,
            ..world.config.clone()
        };
        let executor = crate::Executor::connect(
            &world.url,
            config,
            world.keys.clone(),
            world.executor.domain().dispatch().clone(),
        )
        .await
        .unwrap();
        let shutdown = Shutdown::new();
        // One slot, so that nothing but the limit splits the chain.
        let workers = Workers::start(&executor, &tyboo_engine::Pool::ALL, 1, shutdown.clone());
        let execution_id = world.start(workflow_id, json!({})).await;
        let detail = world.finished(execution_id, Duration::from_secs(20)).await;
        assert_eq!(
            detail.execution.status,
            ExecutionStatus::Succeeded,
            "limit {limit}"
        );
        let run = |node: &str| {
            detail
                .runs
                .iter()
                .find(|run| run.node_id == node && run.status == NodeRunStatus::Succeeded)
                .unwrap_or_else(|| panic!("{node} ran"))
        };
        let taken_on: Vec<&str> = ["s2", "s3", "s4", "s5", "s6"]
            .into_iter()
            .enumerate()
            .filter(|(index, node)| {
                let before = run(&format!("s{}", index + 1));
                Some(run(node).start_time) == before.end_time
            })
            .map(|(_, node)| node)
            .collect();
        assert_eq!(taken_on, expected, "limit {limit}");
        shutdown.trigger();
        workers.join().await;
    }
}

conformance!(
    a_worker_takes_at_most_the_configured_steps_in_a_row,
    a_commit_takes_the_next_step_of_the_workers_pools_on,
    a_restart_finishes_executions_without_rerunning_completed_nodes,
    a_worker_that_lost_its_lease_cannot_commit,
    a_step_that_loses_every_worker_is_dead_lettered_after_max_deliveries,
    lost_deliveries_do_not_spend_the_retry_budget,
);
