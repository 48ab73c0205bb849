//! Schedules fire once per tick across replicas; webhooks are idempotent on
//! their delivery id and sync hooks answer with the chosen node's output.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tonic::Code;
use tyboo_broker::{BrokerConfig, Dispatch, InProcessQueue};
use tyboo_runtime::shutdown::Shutdown;

use super::conformance;
use super::harness::World;
use crate::domain::executions::ListExecutions;
use crate::domain::webhooks::{WebhookMode, WebhookRequest};
use crate::work::scheduler;

async fn schedules_fire_once_per_tick_across_replicas(world: World) {
    let workflow_id = world
        .create(json!({
            "nodes": [
                {"id": "tick", "type": "trigger.schedule", "parameters": {"cron": "* * * * * *", "timezone": "UTC"}},
                {"id": "mark", "type": "set", "parameters": {"values": {"ok": true}}}
            ],
            "edges": [{"from": "tick", "to": "mark"}]
        }))
        .await;
    let dispatch: Arc<dyn Dispatch> = Arc::new(InProcessQueue::new(&BrokerConfig::default()));
    let replica = world.reconnect(dispatch).await;
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_millis(3_200) {
        let (left, right) = tokio::join!(
            scheduler::fire_due(world.executor.domain()),
            scheduler::fire_due(replica.domain())
        );
        left.unwrap();
        right.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (executions, _) = world
        .executor
        .domain()
        .list_executions(
            &world.scope(),
            ListExecutions {
                workflow_id: Some(workflow_id),
                status: None,
                created_after: None,
                created_before: None,
                page_size: 100,
                page_token: String::new(),
            },
        )
        .await
        .unwrap();
    let ticks: HashSet<String> = executions
        .iter()
        .map(|execution| {
            let input: serde_json::Value = serde_json::from_str(&execution.input).unwrap();
            assert_eq!(execution.trigger_type, "schedule");
            input["scheduled_time"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(executions.len() >= 2, "{} ticks fired", executions.len());
    assert_eq!(
        ticks.len(),
        executions.len(),
        "every tick fired exactly once"
    );
}

fn hook(workspace_id: uuid::Uuid, path: &str, delivery_id: &str) -> WebhookRequest {
    WebhookRequest {
        workspace_id: workspace_id.to_string(),
        path: path.to_owned(),
        method: "POST".to_owned(),
        headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
        query: [("source".to_owned(), "test".to_owned())].into(),
        body: br#"{"order": 42}"#.to_vec(),
        delivery_id: delivery_id.to_owned(),
    }
}

async fn webhooks_are_idempotent_and_sync_hooks_reply(world: World) {
    let shutdown = Shutdown::new();
    let workers = world.workers(&shutdown);
    let domain = world.executor.domain();
    world
        .create(json!({
            "nodes": [
                {"id": "hook", "type": "trigger.webhook", "parameters": {"path": "orders"}},
                {"id": "mark", "type": "set", "parameters": {"values": {"ok": true}}}
            ],
            "edges": [{"from": "hook", "to": "mark"}]
        }))
        .await;
    let first = domain
        .deliver_webhook(hook(world.workspace_id, "/orders", "d-1"))
        .await
        .unwrap();
    assert_eq!(first.mode, WebhookMode::Async);
    assert!(!first.duplicate);
    let second = domain
        .deliver_webhook(hook(world.workspace_id, "orders", "d-1"))
        .await
        .unwrap();
    assert!(second.duplicate);
    assert_eq!(second.execution_id, first.execution_id);
    let third = domain
        .deliver_webhook(hook(world.workspace_id, "orders", "d-2"))
        .await
        .unwrap();
    assert_ne!(third.execution_id, first.execution_id);
    let detail = world
        .finished(first.execution_id, Duration::from_secs(10))
        .await;
    let input: serde_json::Value = serde_json::from_str(&detail.execution.input).unwrap();
    assert_eq!(input["body"], json!({"order": 42}));
    assert_eq!(input["query"]["source"], "test");

    let mut wrong_method = hook(world.workspace_id, "orders", "");
    wrong_method.method = "GET".to_owned();
    let error = domain.deliver_webhook(wrong_method).await.unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition);
    let error = domain
        .deliver_webhook(hook(uuid::Uuid::now_v7(), "orders", ""))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);

    world
        .create(json!({
            "nodes": [
                {"id": "hook", "type": "trigger.webhook",
                 "parameters": {"path": "echo", "mode": "sync", "respond_node": "reply"}},
                {"id": "reply", "type": "transform", "parameters": {"program": "{echo: .trigger.body.order}"}}
            ],
            "edges": [{"from": "hook", "to": "reply"}]
        }))
        .await;
    let reply = domain
        .deliver_webhook(hook(world.workspace_id, "echo", ""))
        .await
        .unwrap();
    assert_eq!(reply.mode, WebhookMode::Sync);
    let sync = reply.sync.unwrap();
    assert_eq!(sync.status_code, 200);
    assert_eq!(sync.body, json!({"echo": 42}));
    shutdown.trigger();
    workers.join().await;
}

conformance!(
    schedules_fire_once_per_tick_across_replicas,
    webhooks_are_idempotent_and_sync_hooks_reply,
);
