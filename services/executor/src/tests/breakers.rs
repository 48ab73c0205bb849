//! Circuit breakers on outside calls: a failing upstream opens its breaker,
//! steps aimed at it wait for the probe time without spending attempts and
//! all complete once it recovers; a tenant's own 4xx never opens one; a node
//! may fail fast; operators (and only they) list, read and change breakers,
//! each change audited.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tonic::{Code, Request};
use tyboo_auth::{Principal, Role};
use tyboo_breaker::{BreakerConfig, BreakerKey, CircuitState};
use tyboo_engine::Pool;
use tyboo_proto::executor as pb;
use tyboo_proto::executor::circuit_breaker_service_server::CircuitBreakerService;
use tyboo_runtime::shutdown::Shutdown;
use uuid::Uuid;

use super::conformance;
use super::harness::{World, create_in, start_in, test_config};
use crate::domain::ExecutionStatus;
use crate::domain::dead_letters::DeadLetterFilter;
use crate::domain::{StepState, WorkspaceScope};
use crate::{CircuitBreakerGrpc, Executor, ExecutorConfig, Workers};

const PATIENCE: Duration = Duration::from_secs(60);
const WORKER_SLOTS: usize = 4;

/// A local upstream that answers every path with the status the test sets
/// (except `/deny`, always 401) and counts requests per idempotency key
/// (`execution:node`), so a test sees every call each step made.
#[derive(Clone)]
struct Upstream {
    url: String,
    host: String,
    status: Arc<AtomicU16>,
    calls: Arc<AtomicUsize>,
    per_key: Arc<Mutex<HashMap<String, usize>>>,
}

type UpstreamState = (
    Arc<AtomicU16>,
    Arc<AtomicUsize>,
    Arc<Mutex<HashMap<String, usize>>>,
);

impl Upstream {
    async fn start() -> Upstream {
        let upstream_state: UpstreamState = (
            Arc::new(AtomicU16::new(200)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(Mutex::new(HashMap::new())),
        );
        let (status, calls, per_key) = upstream_state.clone();
        let app = axum::Router::new()
            .fallback(
                |axum::extract::State((status, calls, per_key)): axum::extract::State<
                    UpstreamState,
                >,
                 uri: http::Uri,
                 headers: http::HeaderMap| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    *per_key.lock().unwrap().entry(key).or_default() += 1;
                    let code = if uri.path() == "/deny" {
                        401
                    } else {
                        status.load(Ordering::SeqCst)
                    };
                    (
                        http::StatusCode::from_u16(code).unwrap(),
                        axum::Json(json!({"ok": code < 400})),
                    )
                },
            )
            .with_state(upstream_state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream {
            url: format!("http://{host}"),
            host,
            status,
            calls,
            per_key,
        }
    }

    fn count(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn calls_of(&self, execution_id: Uuid, node_id: &str) -> usize {
        self.per_key
            .lock()
            .unwrap()
            .get(&format!("{execution_id}:{node_id}"))
            .copied()
            .unwrap_or(0)
    }
}

/// Breakers that open after a few calls and cool down quickly.
fn breaker_config() -> ExecutorConfig {
    ExecutorConfig {
        breakers: BreakerConfig {
            window_ms: 10_000,
            window_buckets: 10,
            minimum_calls: 5,
            failure_rate_threshold_percent: 50,
            cool_down_base_ms: 250,
            cool_down_max_ms: 1_000,
            half_open_probes: 2,
            successes_to_close: 2,
            probe_timeout_ms: 5_000,
            idle_expiry_ms: 60_000,
            ..BreakerConfig::default()
        },
        ..test_config()
    }
}

fn call_graph(url: &str, extra: Value) -> Value {
    let mut parameters = json!({"url": url});
    if let (Some(parameters), Some(extra)) = (parameters.as_object_mut(), extra.as_object()) {
        parameters.extend(extra.clone());
    }
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "call", "type": "http.request", "parameters": parameters,
             "retry": {"max_attempts": 10, "initial_backoff_ms": 10, "max_backoff_ms": 50, "multiplier": 2.0}},
        ],
        "edges": [{"from": "start", "to": "call"}]
    })
}

/// Waits until every execution is terminal; returns them with their steps.
async fn all_finished(
    executor: &Executor,
    scope: &WorkspaceScope,
    execution_ids: &[Uuid],
) -> Vec<crate::domain::ExecutionDetail> {
    let give_up = tokio::time::Instant::now() + PATIENCE;
    let mut details = Vec::new();
    for execution_id in execution_ids {
        loop {
            let detail = executor
                .domain()
                .get_execution(scope, *execution_id)
                .await
                .unwrap();
            if detail.execution.status.is_terminal() || tokio::time::Instant::now() >= give_up {
                details.push(detail);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    details
}

fn http_key(upstream: &Upstream) -> BreakerKey {
    BreakerKey::new("http.request", upstream.host.clone())
}

async fn a_failing_upstream_opens_its_breaker_and_waiting_steps_keep_their_attempts(world: World) {
    const EXECUTIONS: usize = 200;
    let config = breaker_config();
    let executor = world.executor_with(config.clone()).await;
    let breakers = executor.domain().breakers().unwrap().clone();
    let shutdown = Shutdown::new();
    let workers = Workers::start(&executor, &Pool::ALL, WORKER_SLOTS, shutdown.clone());
    let upstream = Upstream::start().await;
    upstream.status.store(503, Ordering::SeqCst);
    let scope = world.scope();
    let workflow_id = create_in(
        &executor,
        &scope,
        call_graph(&format!("{}/flaky", upstream.url), json!({})),
    )
    .await;
    let mut execution_ids = Vec::new();
    for _ in 0..EXECUTIONS {
        execution_ids.push(start_in(&executor, &scope, workflow_id).await);
    }

    // The breaker opens once the window holds the minimum calls.
    let key = http_key(&upstream);
    let give_up = tokio::time::Instant::now() + PATIENCE;
    loop {
        let state = breakers.get(&key).await.unwrap();
        if state.trips > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "the breaker never opened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let calls_at_open = upstream.count();
    // Calls in flight when it opened were admitted before; at most one per
    // worker slot (a step's retry waits its backoff first). On a loaded
    // machine the cool-down may already have ended by the time the count is
    // read, so each round seen so far may add its half-open probes.
    let rounds = breakers.get(&key).await.unwrap().trips as usize;
    assert!(
        calls_at_open
            <= config.breakers.minimum_calls as usize
                + WORKER_SLOTS
                + config.breakers.half_open_probes as usize * rounds,
        "{calls_at_open} calls before the breaker opened ({rounds} rounds)"
    );

    // While the upstream keeps failing and the executions wait, it sees no
    // more than the probes of each half-open round (each failed round is one
    // more trip), besides those in flight at the opening.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let state = breakers.get(&key).await.unwrap();
    let calls_while_open = upstream.count() - calls_at_open;
    let probes = config.breakers.half_open_probes as usize * state.trips as usize;
    assert!(
        calls_while_open <= probes + WORKER_SLOTS,
        "{calls_while_open} calls while open, {} trips",
        state.trips
    );
    let waiting = all_waiting(&executor, &scope, &execution_ids).await;
    assert!(
        waiting >= EXECUTIONS - upstream.count(),
        "only {waiting} executions wait"
    );

    // The upstream recovers: a probe round closes the breaker and every
    // execution completes.
    upstream.status.store(200, Ordering::SeqCst);
    let details = all_finished(&executor, &scope, &execution_ids).await;
    let mut attempts_total = 0;
    for detail in &details {
        assert_eq!(
            detail.execution.status,
            ExecutionStatus::Succeeded,
            "{:?}",
            detail.execution.error
        );
        let step = detail
            .steps
            .iter()
            .find(|step| step.node_id == "call")
            .unwrap();
        // Every attempt is a call the upstream saw: waiting spent none.
        let calls = upstream.calls_of(detail.execution.id, "call");
        assert_eq!(
            step.attempt as usize, calls,
            "attempts of {}",
            detail.execution.id
        );
        attempts_total += calls;
    }
    assert_eq!(attempts_total, upstream.count());
    assert!(
        attempts_total < EXECUTIONS + 40,
        "{attempts_total} calls for {EXECUTIONS} executions"
    );
    let (letters, _) = executor
        .domain()
        .list_dead_letters(&scope, &DeadLetterFilter::default(), 0, "")
        .await
        .unwrap();
    assert!(letters.is_empty(), "{} dead letters", letters.len());
    assert!(matches!(
        breakers.get(&key).await.unwrap().state,
        CircuitState::Closed
    ));
    shutdown.trigger();
    workers.join().await;
}

/// Executions whose call step is ready (parked) or running, not finished.
async fn all_waiting(executor: &Executor, scope: &WorkspaceScope, execution_ids: &[Uuid]) -> usize {
    let mut waiting = 0;
    for execution_id in execution_ids {
        let detail = executor
            .domain()
            .get_execution(scope, *execution_id)
            .await
            .unwrap();
        let parked = detail.steps.iter().any(|step| {
            step.node_id == "call" && matches!(step.state, StepState::Ready | StepState::Running)
        });
        waiting += usize::from(parked && !detail.execution.status.is_terminal());
    }
    waiting
}

async fn a_tenants_401_storm_opens_nothing_and_others_keep_calling(world: World) {
    let executor = world.executor_with(breaker_config()).await;
    let breakers = executor.domain().breakers().unwrap().clone();
    let shutdown = Shutdown::new();
    let workers = Workers::start(&executor, &Pool::ALL, WORKER_SLOTS, shutdown.clone());
    let upstream = Upstream::start().await;
    let noisy = world.scope();
    let denied = create_in(
        &executor,
        &noisy,
        call_graph(&format!("{}/deny", upstream.url), json!({})),
    )
    .await;
    let mut storm = Vec::new();
    for _ in 0..20 {
        storm.push(start_in(&executor, &noisy, denied).await);
    }
    for detail in all_finished(&executor, &noisy, &storm).await {
        // The tenant's own fault: failed at once, its retry budget unspent.
        assert_eq!(detail.execution.status, ExecutionStatus::Failed);
        assert_eq!(detail.execution.error_class.as_deref(), Some("permanent"));
    }
    assert_eq!(upstream.count(), 20);
    let state = breakers.get(&http_key(&upstream)).await.unwrap();
    assert_eq!(state.state, CircuitState::Closed);
    assert_eq!(state.calls_in_window, 20);
    assert_eq!(state.failures_in_window, 0);
    assert_eq!(state.trips, 0);

    // Another workspace calls the same host and flows.
    let other = world.other_scope();
    let fine = create_in(
        &executor,
        &other,
        call_graph(&format!("{}/fine", upstream.url), json!({})),
    )
    .await;
    let mut calm = Vec::new();
    for _ in 0..10 {
        calm.push(start_in(&executor, &other, fine).await);
    }
    for detail in all_finished(&executor, &other, &calm).await {
        assert_eq!(detail.execution.status, ExecutionStatus::Succeeded);
        let step = detail.steps.iter().find(|step| step.node_id == "call");
        assert_eq!(step.map(|step| step.attempt), Some(1));
    }
    assert_eq!(upstream.count(), 30);
    shutdown.trigger();
    workers.join().await;
}

async fn a_node_that_fails_fast_fails_its_attempt_on_an_open_breaker(world: World) {
    let executor = world.executor_with(breaker_config()).await;
    let breakers = executor.domain().breakers().unwrap().clone();
    let shutdown = Shutdown::new();
    let workers = Workers::start(&executor, &Pool::ALL, WORKER_SLOTS, shutdown.clone());
    let upstream = Upstream::start().await;
    breakers.force_open(&http_key(&upstream)).await.unwrap();
    let scope = world.scope();
    let mut graph = call_graph(
        &format!("{}/fast", upstream.url),
        json!({"fail_fast_on_open_breaker": true}),
    );
    graph["nodes"][1]["retry"] =
        json!({"max_attempts": 2, "initial_backoff_ms": 10, "max_backoff_ms": 20});
    let workflow_id = create_in(&executor, &scope, graph).await;
    let execution_id = start_in(&executor, &scope, workflow_id).await;
    let detail = all_finished(&executor, &scope, &[execution_id])
        .await
        .remove(0);
    assert_eq!(detail.execution.status, ExecutionStatus::Failed);
    let error = detail.execution.error.clone().unwrap_or_default();
    assert!(
        error.contains("circuit breaker") && error.contains(&upstream.host),
        "{error}"
    );
    assert_eq!(detail.execution.error_class.as_deref(), Some("transient"));
    let step = detail
        .steps
        .iter()
        .find(|step| step.node_id == "call")
        .unwrap();
    // Both attempts of the policy were spent, and the upstream saw none.
    assert_eq!(step.attempt, 2);
    assert_eq!(upstream.count(), 0);
    let (letters, _) = executor
        .domain()
        .list_dead_letters(&scope, &DeadLetterFilter::default(), 0, "")
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    shutdown.trigger();
    workers.join().await;
}

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn proto_key(node_type: &str, host: &str) -> Option<pb::CircuitBreakerKey> {
    Some(pb::CircuitBreakerKey {
        node_type: node_type.to_owned(),
        host: host.to_owned(),
    })
}

async fn operators_list_read_and_change_breakers_and_each_change_is_audited(world: World) {
    let executor = world.executor_with(breaker_config()).await;
    let breakers = executor.domain().breakers().unwrap().clone();
    let service = CircuitBreakerGrpc::new(executor.domain().clone());
    let operator = world.sign(&Principal::operator("cli"));
    let admin = world.token(Role::Admin);
    let owner = world.token(Role::Owner);
    let host = "api.example.test";
    let key = BreakerKey::new("http.request", host);
    breakers
        .record(&key, tyboo_breaker::Outcome::Success)
        .await
        .unwrap();

    // Workspace roles are refused every operation, reads included.
    for token in [&admin, &owner] {
        let denied = service
            .list_circuit_breakers(authorized(pb::ListCircuitBreakersRequest {}, token))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        let denied = service
            .get_circuit_breaker(authorized(
                pb::GetCircuitBreakerRequest {
                    key: proto_key("http.request", host),
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        let denied = service
            .force_open_circuit_breaker(authorized(
                pb::ForceOpenCircuitBreakerRequest {
                    key: proto_key("http.request", host),
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
    }
    let unauthenticated = service
        .list_circuit_breakers(Request::new(pb::ListCircuitBreakersRequest {}))
        .await
        .unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    assert!(world.audit.records().is_empty());

    let listed = service
        .list_circuit_breakers(authorized(pb::ListCircuitBreakersRequest {}, &operator))
        .await
        .unwrap()
        .into_inner()
        .circuit_breakers;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, proto_key("http.request", host));
    assert_eq!(listed[0].state(), pb::CircuitBreakerState::Closed);
    assert_eq!(listed[0].calls_in_window, 1);
    assert_eq!(listed[0].successes_in_window, 1);

    let opened = service
        .force_open_circuit_breaker(authorized(
            pb::ForceOpenCircuitBreakerRequest {
                key: proto_key("http.request", host),
            },
            &operator,
        ))
        .await
        .unwrap()
        .into_inner()
        .circuit_breaker
        .unwrap();
    assert_eq!(opened.state(), pb::CircuitBreakerState::ForcedOpen);
    assert!(matches!(
        breakers.admit(&key).await.unwrap(),
        tyboo_breaker::Admission::Rejected { .. }
    ));
    let read = service
        .get_circuit_breaker(authorized(
            pb::GetCircuitBreakerRequest {
                key: proto_key("http.request", host),
            },
            &operator,
        ))
        .await
        .unwrap()
        .into_inner()
        .circuit_breaker
        .unwrap();
    assert_eq!(read.state(), pb::CircuitBreakerState::ForcedOpen);
    let closed = service
        .force_close_circuit_breaker(authorized(
            pb::ForceCloseCircuitBreakerRequest {
                key: proto_key("http.request", host),
            },
            &operator,
        ))
        .await
        .unwrap()
        .into_inner()
        .circuit_breaker
        .unwrap();
    assert_eq!(closed.state(), pb::CircuitBreakerState::ForcedClosed);
    let reset = service
        .reset_circuit_breaker(authorized(
            pb::ResetCircuitBreakerRequest {
                key: proto_key("http.request", host),
            },
            &operator,
        ))
        .await
        .unwrap()
        .into_inner()
        .circuit_breaker
        .unwrap();
    assert_eq!(reset.state(), pb::CircuitBreakerState::Closed);
    assert_eq!(reset.trip_count, 0);

    let records = world.audit.records();
    let actions: Vec<&str> = records
        .iter()
        .map(|record| record.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "executor.breaker.forced_open",
            "executor.breaker.forced_closed",
            "executor.breaker.reset"
        ]
    );
    for record in &records {
        assert_eq!(record.workspace_id, None);
        assert_eq!(record.actor, "operator:cli");
        assert_eq!(record.target, format!("breaker:http.request/{host}"));
        assert_eq!(record.details["host"], host);
    }
    assert_eq!(records[0].details["state_before"], "closed");
    assert_eq!(records[1].details["state_before"], "forced_open");

    // An audit log that cannot be written refuses the change.
    world.audit.set_failing(true);
    let refused = service
        .force_open_circuit_breaker(authorized(
            pb::ForceOpenCircuitBreakerRequest {
                key: proto_key("http.request", host),
            },
            &operator,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    world.audit.set_failing(false);
    assert_eq!(
        breakers.get(&key).await.unwrap().state,
        CircuitState::Closed
    );
    assert_eq!(world.audit.records().len(), 3);

    // Bad input, and keys nothing is known of.
    let unknown = service
        .get_circuit_breaker(authorized(
            pb::GetCircuitBreakerRequest {
                key: proto_key("http.request", "never.called.test"),
            },
            &operator,
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    for (node_type, host, field) in [
        ("", "api.example.test", "key.node_type"),
        ("http.request", "", "key.host"),
        (&"t".repeat(65) as &str, "api.example.test", "key.node_type"),
        ("http|request", "api.example.test", "key.node_type"),
        ("http.request", &"h".repeat(262) as &str, "key.host"),
        ("http.request", "has space", "key.host"),
    ] {
        let invalid = service
            .reset_circuit_breaker(authorized(
                pb::ResetCircuitBreakerRequest {
                    key: proto_key(node_type, host),
                },
                &operator,
            ))
            .await
            .unwrap_err();
        assert_eq!(invalid.code(), Code::InvalidArgument, "{node_type} {host}");
        assert!(
            invalid.message().starts_with(field),
            "{}",
            invalid.message()
        );
    }
    let missing = service
        .get_circuit_breaker(authorized(
            pb::GetCircuitBreakerRequest { key: None },
            &operator,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert_eq!(world.audit.records().len(), 3);
}

async fn switched_off_breakers_guard_nothing_and_say_so(world: World) {
    let config = ExecutorConfig {
        breakers_enabled: false,
        ..breaker_config()
    };
    let dispatch: Arc<dyn tyboo_broker::Dispatch> = Arc::new(tyboo_broker::InProcessQueue::new(
        &tyboo_broker::BrokerConfig::default(),
    ));
    let executor = Executor::connect(&world.url, config, world.keys.clone(), dispatch)
        .await
        .unwrap();
    assert!(executor.domain().breakers().is_none());
    let service = CircuitBreakerGrpc::new(executor.domain().clone());
    let operator = world.sign(&Principal::operator("cli"));
    let refused = service
        .list_circuit_breakers(authorized(pb::ListCircuitBreakersRequest {}, &operator))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);

    // Failures go to the retry policy as before, however many.
    let shutdown = Shutdown::new();
    let workers = Workers::start(&executor, &Pool::ALL, WORKER_SLOTS, shutdown.clone());
    let upstream = Upstream::start().await;
    upstream.status.store(503, Ordering::SeqCst);
    let scope = world.scope();
    let mut graph = call_graph(&format!("{}/off", upstream.url), json!({}));
    graph["nodes"][1]["retry"] =
        json!({"max_attempts": 2, "initial_backoff_ms": 1, "max_backoff_ms": 2});
    let workflow_id = create_in(&executor, &scope, graph).await;
    let mut execution_ids = Vec::new();
    for _ in 0..8 {
        execution_ids.push(start_in(&executor, &scope, workflow_id).await);
    }
    for detail in all_finished(&executor, &scope, &execution_ids).await {
        assert_eq!(detail.execution.status, ExecutionStatus::Failed);
    }
    assert_eq!(upstream.count(), 16);
    shutdown.trigger();
    workers.join().await;
}

conformance!(
    a_failing_upstream_opens_its_breaker_and_waiting_steps_keep_their_attempts,
    a_tenants_401_storm_opens_nothing_and_others_keep_calling,
    a_node_that_fails_fast_fails_its_attempt_on_an_open_breaker,
    operators_list_read_and_change_breakers_and_each_change_is_audited,
    switched_off_breakers_guard_nothing_and_say_so,
);
