//! Crash recovery and fencing: a process killed mid-execution finishes every
//! execution after a restart without re-running completed nodes, and a
//! worker that lost its lease cannot commit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tyboo_broker::{BrokerConfig, Dispatch, InProcessQueue, Job};
use tyboo_runtime::shutdown::Shutdown;

use super::conformance;
use super::harness::{Sink, World};
use crate::Workers;
use crate::domain::steps::{ClaimOutcome, Committed};

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
        detail.execution.status, "succeeded",
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
    let job = Job {
        pool: "default".to_owned(),
        execution_id,
        node_id: "work".to_owned(),
        attempt: 1,
        workspace_id: world.workspace_id,
    };
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
        .commit_success(&stale, json!({"from": "a"}), "main".to_owned(), None)
        .await
        .unwrap();
    assert_eq!(refused, Committed::Refused);
    let applied = domain
        .commit_success(&fresh, json!({"from": "b"}), "main".to_owned(), None)
        .await
        .unwrap();
    assert_eq!(applied, Committed::Applied);
    let detail = world.finished(execution_id, Duration::from_secs(5)).await;
    assert_eq!(detail.execution.status, "succeeded");
    assert_eq!(
        super::harness::output_of(&detail, "work"),
        json!({"from": "b"})
    );
}

conformance!(
    a_restart_finishes_executions_without_rerunning_completed_nodes,
    a_worker_that_lost_its_lease_cannot_commit,
);
