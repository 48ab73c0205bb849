//! Schedules fire once per tick across replicas; webhooks are idempotent on
//! their delivery id and sync hooks answer with the chosen node's output.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tonic::Code;
use tyboo_broker::{BrokerConfig, Dispatch, InProcessQueue};
use tyboo_runtime::shutdown::Shutdown;
use uuid::Uuid;

use super::conformance;
use super::harness::World;
use crate::domain::TriggerType;
use crate::domain::executions::ListExecutions;
use crate::domain::webhooks::{WebhookMode, WebhookRequest};
use crate::domain::workflows::Draft;

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
            world.executor.domain().fire_due_schedules(),
            replica.domain().fire_due_schedules()
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
            assert_eq!(execution.trigger_type, TriggerType::Schedule);
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

/// The URL token of `node` in `workflow_id`, as its editors see it.
async fn token_of(world: &World, workflow_id: Uuid, node: &str) -> String {
    let hooks = world
        .executor
        .domain()
        .list_webhooks(&world.scope(), workflow_id)
        .await
        .unwrap();
    let hook = hooks.iter().find(|hook| hook.node_id == node).unwrap();
    assert_eq!(
        hook.url_path(),
        format!("/hooks/{}/{}", hook.token, hook.path)
    );
    hook.token.clone()
}

fn hook(token: &str, path: &str, delivery_id: &str) -> WebhookRequest {
    WebhookRequest {
        token: token.to_owned(),
        path: path.to_owned(),
        method: "POST".to_owned(),
        headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
        query: [("source".to_owned(), "test".to_owned())].into(),
        body: br#"{"order": 42}"#.to_vec(),
        delivery_id: delivery_id.to_owned(),
        deadline: None,
    }
}

fn one_hook(path: &str) -> serde_json::Value {
    json!({
        "nodes": [
            {"id": "hook", "type": "trigger.webhook", "parameters": {"path": path}},
            {"id": "mark", "type": "set", "parameters": {"values": {"ok": true}}}
        ],
        "edges": [{"from": "hook", "to": "mark"}]
    })
}

async fn webhooks_are_idempotent_and_sync_hooks_reply(world: World) {
    let shutdown = Shutdown::new();
    let workers = world.workers(&shutdown);
    let domain = world.executor.domain();
    let orders = world.create(one_hook("orders")).await;
    let token = token_of(&world, orders, "hook").await;
    assert!(token.starts_with("whk_") && token.len() == 47, "{token}");
    let first = domain
        .deliver_webhook(hook(&token, "/orders", "d-1"))
        .await
        .unwrap();
    assert_eq!(first.mode, WebhookMode::Async);
    assert!(!first.duplicate);
    let second = domain
        .deliver_webhook(hook(&token, "orders", "d-1"))
        .await
        .unwrap();
    assert!(second.duplicate);
    assert_eq!(second.execution_id, first.execution_id);
    let third = domain
        .deliver_webhook(hook(&token, "orders", "d-2"))
        .await
        .unwrap();
    assert_ne!(third.execution_id, first.execution_id);
    let detail = world
        .finished(first.execution_id, Duration::from_secs(10))
        .await;
    let input: serde_json::Value = serde_json::from_str(&detail.execution.input).unwrap();
    assert_eq!(input["body"], json!({"order": 42}));
    assert_eq!(input["query"]["source"], "test");

    let echo = world
        .create(json!({
            "nodes": [
                {"id": "hook", "type": "trigger.webhook",
                 "parameters": {"path": "echo", "mode": "sync", "respond_node": "reply"}},
                {"id": "reply", "type": "transform", "parameters": {"program": "{echo: .trigger.body.order}"}}
            ],
            "edges": [{"from": "hook", "to": "reply"}]
        }))
        .await;
    let echo_token = token_of(&world, echo, "hook").await;
    let reply = domain
        .deliver_webhook(hook(&echo_token, "echo", ""))
        .await
        .unwrap();
    assert_eq!(reply.mode, WebhookMode::Sync);
    let sync = reply.sync.unwrap();
    assert_eq!(sync.status_code, 200);
    assert_eq!(sync.body, json!({"echo": 42}));
    shutdown.trigger();
    workers.join().await;
}

/// Unknown tokens, another hook's path and a method the trigger does not
/// take all look the same; only the token opens a hook.
async fn hook_urls_cannot_be_guessed_and_wrong_ones_look_missing(world: World) {
    let domain = world.executor.domain();
    let orders = world.create(one_hook("orders")).await;
    let other = world.create(one_hook("other")).await;
    let token = token_of(&world, orders, "hook").await;
    let other_token = token_of(&world, other, "hook").await;
    assert_ne!(token, other_token);

    let mut wrong_method = hook(&token, "orders", "");
    wrong_method.method = "GET".to_owned();
    let forged = {
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        forged
    };
    let cases = [
        wrong_method,
        hook(&forged, "orders", ""),
        hook("whk_", "orders", ""),
        hook("", "orders", ""),
        hook(&format!("{token}x"), "orders", ""),
        hook(&world.workspace_id.to_string(), "orders", ""),
        // The right token with another hook's path, and the other way round.
        hook(&token, "other", ""),
        hook(&other_token, "orders", ""),
        hook(&token, "", ""),
    ];
    for case in cases {
        let label = format!("{} {} {}", case.method, case.token, case.path);
        let error = domain.deliver_webhook(case).await.unwrap_err();
        assert_eq!(error.code(), Code::NotFound, "{label}");
        assert_eq!(error.to_string(), "webhook not found", "{label}");
    }

    // The token stays across saves, so the URL a sender holds keeps working.
    domain
        .update_workflow(
            &world.scope(),
            orders,
            Draft {
                name: "renamed".to_owned(),
                description: String::new(),
                graph: serde_json::from_value(one_hook("orders")).unwrap(),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(token_of(&world, orders, "hook").await, token);

    // Rotation: the old URL is dead at once, the new one works.
    let rotated = domain
        .rotate_webhook_token(&world.scope(), orders, "hook")
        .await
        .unwrap();
    assert_ne!(rotated.token, token);
    assert_eq!(token_of(&world, orders, "hook").await, rotated.token);
    assert_eq!(
        domain
            .deliver_webhook(hook(&token, "orders", ""))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    domain
        .deliver_webhook(hook(&rotated.token, "orders", ""))
        .await
        .unwrap();
    for node in ["mark", "missing"] {
        assert_eq!(
            domain
                .rotate_webhook_token(&world.scope(), orders, node)
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
    }
    // Another workspace sees no such workflow, and cannot rotate its hook.
    assert_eq!(
        domain
            .list_webhooks(&world.other_scope(), orders)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        domain
            .rotate_webhook_token(&world.other_scope(), orders, "hook")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // A deleted workflow's URL is dead.
    domain.delete_workflow(&world.scope(), other).await.unwrap();
    assert_eq!(
        domain
            .deliver_webhook(hook(&other_token, "other", ""))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}

/// A delivery id belongs to one trigger: hook Y never answers with hook X's
/// execution, and Y's own delivery still runs.
async fn delivery_ids_are_deduplicated_per_trigger(world: World) {
    let domain = world.executor.domain();
    let x = world.create(one_hook("x")).await;
    let y = world.create(one_hook("y")).await;
    let x_token = token_of(&world, x, "hook").await;
    let y_token = token_of(&world, y, "hook").await;
    let on_x = domain
        .deliver_webhook(hook(&x_token, "x", "shared-id"))
        .await
        .unwrap();
    let on_y = domain
        .deliver_webhook(hook(&y_token, "y", "shared-id"))
        .await
        .unwrap();
    assert!(!on_y.duplicate, "Y's delivery was suppressed by X's");
    assert_ne!(on_y.execution_id, on_x.execution_id);
    let again = domain
        .deliver_webhook(hook(&y_token, "y", "shared-id"))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.execution_id, on_y.execution_id);
    let detail = domain
        .get_execution(&world.scope(), on_y.execution_id)
        .await
        .unwrap();
    assert_eq!(detail.execution.workflow_id, y);
}

/// A sync hook whose execution cannot finish before the caller's deadline
/// answers 504 with the execution id just before it, not after.
async fn sync_hooks_answer_before_the_callers_deadline(world: World) {
    let domain = world.executor.domain();
    // No workers run, so the execution stays queued.
    let slow = world
        .create(json!({
            "nodes": [
                {"id": "hook", "type": "trigger.webhook",
                 "parameters": {"path": "slow", "mode": "sync", "respond_node": "reply",
                                "response_timeout_ms": 30000}},
                {"id": "reply", "type": "set", "parameters": {"values": {"ok": true}}}
            ],
            "edges": [{"from": "hook", "to": "reply"}]
        }))
        .await;
    let token = token_of(&world, slow, "hook").await;
    let mut request = hook(&token, "slow", "");
    let started = std::time::Instant::now();
    request.deadline = Some(started + Duration::from_millis(1_500));
    let reply = domain.deliver_webhook(request).await.unwrap();
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(1_500), "{waited:?}");
    let sync = reply.sync.unwrap();
    assert!(sync.timed_out);
    assert_eq!(sync.status_code, 504);
    assert_eq!(sync.body["execution_id"], reply.execution_id.to_string());
}

/// Past `webhook_sync_max_waiters` waiting callers, one more is refused
/// before its execution is admitted, and its place frees with the answer.
async fn sync_callers_past_the_cap_are_refused_before_anything_starts(world: World) {
    let slow = world
        .create(json!({
            "nodes": [
                {"id": "hook", "type": "trigger.webhook",
                 "parameters": {"path": "slow", "mode": "sync", "respond_node": "reply"}},
                {"id": "reply", "type": "set", "parameters": {"values": {"ok": true}}}
            ],
            "edges": [{"from": "hook", "to": "reply"}]
        }))
        .await;
    let token = token_of(&world, slow, "hook").await;
    // No workers run, so every execution stays queued and its caller waits.
    let config = crate::config::ExecutorConfig {
        webhook_sync_max_waiters: 1,
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
    let waiting = {
        let domain = executor.domain().clone();
        let mut request = hook(&token, "slow", "");
        request.deadline = Some(std::time::Instant::now() + Duration::from_millis(1_500));
        tokio::spawn(async move { domain.deliver_webhook(request).await })
    };
    let domain = executor.domain();
    let started = tokio::time::Instant::now();
    let admitted = || async {
        let request = ListExecutions {
            workflow_id: Some(slow),
            status: None,
            created_after: None,
            created_before: None,
            page_size: 0,
            page_token: String::new(),
        };
        domain
            .list_executions(&world.scope(), request)
            .await
            .unwrap()
            .0
            .len()
    };
    while admitted().await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the first caller never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = domain
        .deliver_webhook(hook(&token, "slow", ""))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert!(
        refused.to_string().contains("webhook_sync_max_waiters"),
        "{refused}"
    );
    assert_eq!(admitted().await, 1, "the refused caller started nothing");
    let first = waiting.await.unwrap().unwrap();
    assert!(first.sync.unwrap().timed_out);
    // The answered caller's place is free again.
    let mut request = hook(&token, "slow", "");
    request.deadline = Some(std::time::Instant::now() + Duration::from_millis(300));
    let again = domain.deliver_webhook(request).await.unwrap();
    assert!(again.sync.unwrap().timed_out);
    assert_eq!(admitted().await, 2);
}

conformance!(
    schedules_fire_once_per_tick_across_replicas,
    sync_callers_past_the_cap_are_refused_before_anything_starts,
    webhooks_are_idempotent_and_sync_hooks_reply,
    hook_urls_cannot_be_guessed_and_wrong_ones_look_missing,
    delivery_ids_are_deduplicated_per_trigger,
    sync_hooks_answer_before_the_callers_deadline,
    the_payload_cap_counts_the_body_alone,
    starts_with_an_idempotency_key_happen_once,
);

/// Routes and deliveries stored before hook tokens existed survive the
/// migration: every route gets its own token, every delivery its trigger.
async fn upgrade_keeps_routes_and_deliveries(url: &str) {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    use sea_orm::{ConnectionTrait, Database, EntityTrait};
    use sea_orm_migration::MigratorTrait;

    use crate::storage::entities::{webhook_delivery, webhook_route};
    use crate::storage::migrations::Migrator;

    let db = Database::connect(url).await.unwrap();
    Migrator::up(&db, Some(2)).await.unwrap();
    let (workspace, workflow) = (Uuid::now_v7(), Uuid::now_v7());
    let now = chrono::Utc::now();
    for path in ["a", "b"] {
        let insert = Query::insert()
            .into_table(webhook_route::Entity)
            .columns([
                webhook_route::Column::Id,
                webhook_route::Column::WorkspaceId,
                webhook_route::Column::Path,
                webhook_route::Column::WorkflowId,
                webhook_route::Column::NodeId,
                webhook_route::Column::CreateTime,
            ])
            .values_panic([
                Uuid::now_v7().into(),
                workspace.into(),
                path.into(),
                workflow.into(),
                format!("hook_{path}").into(),
                now.into(),
            ])
            .to_owned();
        db.execute(&insert).await.unwrap();
    }
    let insert = Query::insert()
        .into_table(webhook_delivery::Entity)
        .columns([
            webhook_delivery::Column::Id,
            webhook_delivery::Column::WorkspaceId,
            webhook_delivery::Column::DeliveryId,
            webhook_delivery::Column::WorkflowId,
            webhook_delivery::Column::ExecutionId,
            webhook_delivery::Column::CreateTime,
        ])
        .values_panic([
            Uuid::now_v7().into(),
            workspace.into(),
            "seen-before".into(),
            workflow.into(),
            Uuid::now_v7().into(),
            now.into(),
        ])
        .to_owned();
    db.execute(&insert).await.unwrap();

    Migrator::up(&db, None).await.unwrap();
    let routes = webhook_route::Entity::find().all(&db).await.unwrap();
    assert_eq!(routes.len(), 2);
    assert!(routes.iter().all(|route| route.token.starts_with("whk_")));
    assert_ne!(routes[0].token, routes[1].token);
    let deliveries = webhook_delivery::Entity::find().all(&db).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].node_id, "hook_a");
    // Tokens are unique: a second route cannot take one already used.
    let clash = Query::update()
        .table(webhook_route::Entity)
        .value(webhook_route::Column::Token, routes[0].token.clone())
        .and_where(Expr::col(webhook_route::Column::Id).eq(routes[1].id))
        .to_owned();
    assert!(db.execute(&clash).await.is_err());
    db.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_upgrade_keeps_routes_and_deliveries() {
    let database = tyboo_store::testing::TestDatabase::sqlite("tyboo-executor-upgrade");
    upgrade_keeps_routes_and_deliveries(database.url()).await;
    database.discard().await;
}

#[tokio::test]
async fn postgres_upgrade_keeps_routes_and_deliveries() {
    let Some(database) = tyboo_store::testing::TestDatabase::postgres("tyboo_xu").await else {
        return;
    };
    upgrade_keeps_routes_and_deliveries(database.url()).await;
    database.discard().await;
}

/// `max_trigger_payload_bytes` caps the body as received: a body of exactly
/// the cap is accepted however many headers come with it, one byte more is
/// refused.
async fn the_payload_cap_counts_the_body_alone(world: World) {
    let domain = world.executor.domain();
    let orders = world.create(one_hook("orders")).await;
    let token = token_of(&world, orders, "hook").await;
    let cap = world.config.max_trigger_payload_bytes;
    let body_of = |length: usize| format!("\"{}\"", "x".repeat(length - 2)).into_bytes();
    let mut exact = hook(&token, "orders", "");
    exact.body = body_of(cap);
    for index in 0..20 {
        exact
            .headers
            .insert(format!("x-padding-{index}"), "p".repeat(200));
    }
    assert_eq!(exact.body.len(), cap);
    domain.deliver_webhook(exact.clone()).await.unwrap();
    let mut over = exact;
    over.body = body_of(cap + 1);
    let error = domain.deliver_webhook(over).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.to_string().contains("max_trigger_payload_bytes"),
        "{error}"
    );
}

/// A start with an idempotency key is safe to retry: the same key on the
/// same workflow answers with the first execution, even when the retries
/// race; other keys and other workflows are other starts.
async fn starts_with_an_idempotency_key_happen_once(world: World) {
    let domain = world.executor.domain().clone();
    let manual = json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "done", "type": "set", "parameters": {"values": {"ok": true}}}
        ],
        "edges": [{"from": "start", "to": "done"}]
    });
    let first_workflow = world.create(manual.clone()).await;
    let second_workflow = world.create(manual).await;
    let start = |workflow_id: Uuid, key: Option<&'static str>| {
        let domain = domain.clone();
        let scope = world.scope();
        async move {
            domain
                .start_execution(&scope, workflow_id, None, json!({"n": 1}), key)
                .await
        }
    };
    let first = start(first_workflow, Some("order-1")).await.unwrap();
    let again = start(first_workflow, Some("order-1")).await.unwrap();
    assert_eq!(again.id, first.id);
    let other_key = start(first_workflow, Some("order-2")).await.unwrap();
    assert_ne!(other_key.id, first.id);
    let other_workflow = start(second_workflow, Some("order-1")).await.unwrap();
    assert_ne!(other_workflow.id, first.id);
    let unkeyed = [
        start(first_workflow, None).await.unwrap(),
        start(first_workflow, None).await.unwrap(),
    ];
    assert_ne!(unkeyed[0].id, unkeyed[1].id);

    // Eight retries at once start one execution.
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..8 {
        racing.spawn(start(second_workflow, Some("burst")));
    }
    let ids: HashSet<Uuid> = racing
        .join_all()
        .await
        .into_iter()
        .map(|started| started.unwrap().id)
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");

    for bad in ["two words", "\u{e9}t\u{e9}"] {
        let error = domain
            .start_execution(&world.scope(), first_workflow, None, json!({}), Some(bad))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument, "{bad}");
    }
    let long = "k".repeat(201);
    let error = domain
        .start_execution(&world.scope(), first_workflow, None, json!({}), Some(&long))
        .await
        .unwrap_err();
    assert!(error.to_string().starts_with("idempotency_key"), "{error}");
    let longest = "k".repeat(200);
    domain
        .start_execution(
            &world.scope(),
            first_workflow,
            None,
            json!({}),
            Some(&longest),
        )
        .await
        .unwrap();
}
