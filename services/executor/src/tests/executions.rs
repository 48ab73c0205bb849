//! Executions end to end on the in-process queue with real workers:
//! branching, retries, the dead-letter queue and replays, timeouts, cancel
//! and caps.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tonic::Code;
use tyboo_runtime::shutdown::Shutdown;

use super::conformance;
use super::harness::{Sink, World, output_of, state_of};
use crate::domain::dead_letters::DeadLetterFilter;
use crate::domain::{DeadLetterState, ReplayMode, ReplayVersion};
use crate::domain::{ExecutionStatus, NodeRunStatus};

const PATIENCE: Duration = Duration::from_secs(20);

fn fast_retry(max_attempts: u32) -> serde_json::Value {
    json!({"max_attempts": max_attempts, "initial_backoff_ms": 10, "max_backoff_ms": 50, "multiplier": 2.0})
}

async fn branches_run_and_untaken_ones_are_skipped(world: World) {
    let shutdown = Shutdown::new();
    let workers = world.workers(&shutdown);
    let workflow_id = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "double", "type": "transform", "parameters": {"program": "{n: (.trigger.n * 2)}"}},
                {"id": "big", "type": "if", "parameters": {"condition": ".input.n > 5"}},
                {"id": "yes", "type": "set", "parameters": {"values": {"size": "big"}, "include_input": true}},
                {"id": "no", "type": "set", "parameters": {"values": {"size": "small"}}},
                {"id": "after_no", "type": "set", "parameters": {"values": {"after": true}}}
            ],
            "edges": [
                {"from": "start", "to": "double"},
                {"from": "double", "to": "big"},
                {"from": "big", "from_port": "true", "to": "yes"},
                {"from": "big", "from_port": "false", "to": "no"},
                {"from": "no", "to": "after_no"}
            ]
        }))
        .await;
    let execution_id = world.start(workflow_id, json!({"n": 4})).await;
    let detail = world.finished(execution_id, PATIENCE).await;
    assert_eq!(
        detail.execution.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        detail.execution.error
    );
    assert_eq!(output_of(&detail, "double"), json!({"n": 8}));
    assert_eq!(output_of(&detail, "yes"), json!({"n": 8, "size": "big"}));
    assert_eq!(state_of(&detail, "no"), "skipped");
    assert_eq!(state_of(&detail, "after_no"), "skipped");
    let run = detail.runs.iter().find(|run| run.node_id == "yes").unwrap();
    assert_eq!(run.status, NodeRunStatus::Succeeded);
    assert_eq!(run.attempt, 1);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&run.input).unwrap(),
        json!([{"n": 8}])
    );

    // The execution ran the version it started with, whatever came after.
    let (executions, _) = world
        .executor
        .domain()
        .list_executions(
            &world.scope(),
            crate::domain::executions::ListExecutions {
                workflow_id: Some(workflow_id),
                status: Some(crate::domain::ExecutionStatus::Succeeded),
                created_after: None,
                created_before: None,
                page_size: 0,
                page_token: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(executions.len(), 1);
    shutdown.trigger();
    workers.join().await;
}

async fn transient_failures_retry_then_dead_letter_and_replay(world: World) {
    let shutdown = Shutdown::new();
    let workers = world.workers(&shutdown);
    let sink = Sink::start().await;
    let workflow_id = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "call", "type": "http.request",
                 "parameters": {"method": "POST", "url": format!("{}/call", sink.url), "body": {"x": 1}},
                 "retry": fast_retry(3)},
                {"id": "done", "type": "set", "parameters": {"values": {"ok": true}}}
            ],
            "edges": [{"from": "start", "to": "call"}, {"from": "call", "to": "done"}]
        }))
        .await;

    // Every attempt fails with 503: three attempts, then the dead-letter queue.
    sink.status.store(503, Ordering::SeqCst);
    let execution_id = world.start(workflow_id, json!({"order": 7})).await;
    let detail = world.finished(execution_id, PATIENCE).await;
    assert_eq!(detail.execution.status, ExecutionStatus::Failed);
    assert_eq!(detail.execution.failed_node_id.as_deref(), Some("call"));
    assert_eq!(detail.execution.error_class.as_deref(), Some("transient"));
    assert_eq!(sink.count(), 3);
    let attempts: Vec<i32> = detail
        .runs
        .iter()
        .filter(|run| run.node_id == "call")
        .map(|run| run.attempt)
        .collect();
    assert_eq!(attempts, vec![1, 2, 3]);

    let domain = world.executor.domain();
    let scope = world.scope();
    let (letters, _) = domain
        .list_dead_letters(&scope, &DeadLetterFilter::default(), 0, "")
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.node_id, "call");
    assert_eq!(letter.attempts, 3);
    assert_eq!(letter.error_class, "transient");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&letter.inputs).unwrap(),
        json!([{"order": 7}])
    );

    // The upstream is fixed: a replay from the failed node succeeds without
    // running the trigger's successors that had completed.
    sink.status.store(200, Ordering::SeqCst);
    let (replayed, execution) = domain
        .replay_dead_letter(
            &scope,
            letter.id,
            ReplayMode::FromFailedNode,
            ReplayVersion::Pinned,
        )
        .await
        .unwrap();
    assert_eq!(replayed.state, DeadLetterState::Replayed);
    let detail = world.finished(execution.id, PATIENCE).await;
    assert_eq!(
        detail.execution.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        detail.execution.error
    );
    assert_eq!(detail.execution.dead_letter_id, Some(letter.id));
    assert_eq!(sink.count(), 4);
    let again = domain
        .replay_dead_letter(
            &scope,
            letter.id,
            ReplayMode::FromStart,
            ReplayVersion::Latest,
        )
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    // A flaky upstream: the first attempt fails, the retry succeeds.
    sink.status.store(500, Ordering::SeqCst);
    let execution_id = world.start(workflow_id, json!({"order": 8})).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    while sink.count() < 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sink.status.store(200, Ordering::SeqCst);
    let detail = world.finished(execution_id, PATIENCE).await;
    assert_eq!(
        detail.execution.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        detail.execution.error
    );
    assert!(
        detail
            .runs
            .iter()
            .any(|run| run.node_id == "call" && run.status == NodeRunStatus::Failed)
    );
    shutdown.trigger();
    workers.join().await;
}

async fn permanent_failures_fail_at_once_and_bulk_operations_apply(world: World) {
    let shutdown = Shutdown::new();
    let workers = world.workers(&shutdown);
    let sink = Sink::start().await;
    sink.status.store(400, Ordering::SeqCst);
    let workflow_id = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "call", "type": "http.request", "parameters": {"url": sink.url.clone()},
                 "retry": fast_retry(5)}
            ],
            "edges": [{"from": "start", "to": "call"}]
        }))
        .await;
    let mut executions = Vec::new();
    for order in 0..3 {
        executions.push(world.start(workflow_id, json!({"order": order})).await);
    }
    for execution_id in &executions {
        let detail = world.finished(*execution_id, PATIENCE).await;
        assert_eq!(detail.execution.status, ExecutionStatus::Failed);
        assert_eq!(detail.execution.error_class.as_deref(), Some("permanent"));
    }
    assert_eq!(sink.count(), 3, "permanent errors are not retried");

    let domain = world.executor.domain();
    let scope = world.scope();
    let filter = DeadLetterFilter {
        workflow_id: Some(workflow_id),
        ..DeadLetterFilter::default()
    };
    let (letters, _) = domain
        .list_dead_letters(&scope, &filter, 0, "")
        .await
        .unwrap();
    assert_eq!(letters.len(), 3);
    let discarded = domain
        .discard_dead_letter(&scope, letters[0].id)
        .await
        .unwrap();
    assert_eq!(discarded.state, DeadLetterState::Discarded);

    // Fixed in a new version: bulk replay from the start on the latest version.
    sink.status.store(200, Ordering::SeqCst);
    let results = domain
        .bulk_replay_dead_letters(
            &scope,
            &filter,
            ReplayMode::FromStart,
            ReplayVersion::Latest,
            1,
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    let replay = results[0].result.clone().unwrap();
    assert_eq!(
        world.finished(replay, PATIENCE).await.execution.status,
        ExecutionStatus::Succeeded
    );
    let discarded = domain
        .bulk_discard_dead_letters(&scope, &filter, 0)
        .await
        .unwrap();
    assert_eq!(discarded.len(), 1);
    let pending = DeadLetterFilter {
        state: Some(DeadLetterState::Pending),
        ..filter
    };
    assert!(
        domain
            .list_dead_letters(&scope, &pending, 0, "")
            .await
            .unwrap()
            .0
            .is_empty()
    );
    // Another workspace cannot touch them.
    let error = domain
        .get_dead_letter(&world.other_scope(), letters[1].id)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    shutdown.trigger();
    workers.join().await;
}

async fn timeouts_cancel_and_caps(world: World) {
    let shutdown = Shutdown::new();
    let workers = world.workers(&shutdown);
    let sink = Sink::start().await;
    sink.delay_ms.store(3_000, Ordering::SeqCst);
    let domain = world.executor.domain();
    let scope = world.scope();

    // Node timeout with no retry left: the execution times out.
    let node_timeout = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "slow", "type": "http.request", "parameters": {"url": sink.url.clone()},
                 "timeout_ms": 200, "retry": fast_retry(1)}
            ],
            "edges": [{"from": "start", "to": "slow"}]
        }))
        .await;
    let detail = world
        .finished(world.start(node_timeout, json!({})).await, PATIENCE)
        .await;
    assert_eq!(detail.execution.status, ExecutionStatus::TimedOut);
    assert!(
        detail
            .runs
            .iter()
            .any(|run| run.node_id == "slow" && run.status == NodeRunStatus::TimedOut)
    );

    // The workflow's max_duration stops a node that would run longer.
    let max_duration = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "slow", "type": "http.request", "parameters": {"url": sink.url.clone()}}
            ],
            "edges": [{"from": "start", "to": "slow"}],
            "settings": {"max_duration_ms": 300}
        }))
        .await;
    let detail = world
        .finished(world.start(max_duration, json!({})).await, PATIENCE)
        .await;
    assert_eq!(detail.execution.status, ExecutionStatus::TimedOut);
    // The node was cut off before the sink would have answered: its own
    // record ends sooner than the sink's delay after it began.
    let slow = detail
        .runs
        .iter()
        .find(|run| run.node_id == "slow")
        .expect("the slow node ran");
    let ran_for = slow.end_time.expect("the run ended") - slow.start_time;
    assert!(
        ran_for < chrono::Duration::milliseconds(3_000),
        "the node ran {ran_for} past its workflow's max_duration"
    );

    // Cancel interrupts the running node and refuses its result.
    let cancellable = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "slow", "type": "http.request", "parameters": {"url": sink.url.clone()}},
                {"id": "after", "type": "set", "parameters": {"values": {"ran": true}}}
            ],
            "edges": [{"from": "start", "to": "slow"}, {"from": "slow", "to": "after"}]
        }))
        .await;
    let execution_id = world.start(cancellable, json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled = domain.cancel_execution(&scope, execution_id).await.unwrap();
    assert_eq!(cancelled.status, ExecutionStatus::Cancelled);
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let detail = world.finished(execution_id, PATIENCE).await;
    assert_eq!(detail.execution.status, ExecutionStatus::Cancelled);
    assert_eq!(state_of(&detail, "slow"), "cancelled");
    assert!(detail.steps.iter().all(|step| step.node_id != "after"));

    // The trigger payload cap is checked before anything is written.
    let big = json!({"blob": "x".repeat(world.config.max_trigger_payload_bytes)});
    let error = domain
        .start_execution(&scope, cancellable, None, big, None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.to_string().contains("max_trigger_payload_bytes"),
        "{error}"
    );
    shutdown.trigger();
    workers.join().await;
}

/// The trigger's data is stored once, in the execution's row; a node run
/// keeps no copy of its inputs. Both read back as before.
async fn every_value_is_stored_once(world: World) {
    let shutdown = Shutdown::new();
    let workers = world.workers(&shutdown);
    let workflow_id = world
        .create(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "first", "type": "set", "parameters": {"values": {"seen": true}, "include_input": true}},
                {"id": "second", "type": "set", "parameters": {"values": {"again": 1}, "include_input": true}}
            ],
            "edges": [{"from": "start", "to": "first"}, {"from": "first", "to": "second"}]
        }))
        .await;
    let input = json!({"blob": "x".repeat(10_000), "n": 3});
    let execution_id = world.start(workflow_id, input.clone()).await;
    let detail = world.finished(execution_id, PATIENCE).await;
    assert_eq!(
        detail.execution.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        detail.execution.error
    );

    // Read back as if every copy were stored.
    assert_eq!(output_of(&detail, "start"), input);
    let mut first = input.clone();
    first["seen"] = json!(true);
    let run_input = |node: &str| {
        let run = detail.runs.iter().find(|run| run.node_id == node).unwrap();
        serde_json::from_str::<serde_json::Value>(&run.input).unwrap()
    };
    assert_eq!(run_input("first"), json!([input]));
    assert_eq!(run_input("second"), json!([first]));
    let (page, _) = world
        .executor
        .domain()
        .list_node_runs(&world.scope(), execution_id, 0, "")
        .await
        .unwrap();
    assert!(
        page.iter().all(|run| !run.input.is_empty()),
        "paged runs are read back too"
    );

    // Stored once.
    let db = world
        .executor
        .domain()
        .read(crate::domain::Scope::Workspace(world.workspace_id));
    let steps = crate::storage::steps::list_for_execution(&db, execution_id)
        .await
        .unwrap();
    let trigger = steps.iter().find(|row| row.node_id == "start").unwrap();
    assert_eq!(
        trigger.output, None,
        "the trigger keeps no copy of the input"
    );
    let runs = crate::storage::node_runs::list_for_execution(&db, execution_id)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter().all(|run| run.input.is_empty()),
        "runs keep no copy of their inputs"
    );
    let stored: usize = steps
        .iter()
        .filter_map(|row| row.output.as_ref())
        .map(String::len)
        .sum::<usize>()
        + detail.execution.input.len();
    // The input once, then the two outputs that each include it.
    assert!(stored < 3 * 10_000 + 1_000, "{stored} bytes stored");
    shutdown.trigger();
    workers.join().await;
}

conformance!(
    every_value_is_stored_once,
    branches_run_and_untaken_ones_are_skipped,
    transient_failures_retry_then_dead_letter_and_replay,
    permanent_failures_fail_at_once_and_bulk_operations_apply,
    timeouts_cancel_and_caps,
);
