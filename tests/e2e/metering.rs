//! Usage as a workspace sees it through the edge: each execution and each
//! successful non-trigger node run counted once however many retries it
//! took, LLM tokens priced from the configured table, the month's events
//! paged, bad input refused, and — with separate processes — metering
//! stopped mid-batch delays the counts and loses none.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tyboo_metering::ModelPrice;

use crate::sandbox::{Backend, Sandbox, TestStore, test_config};
use crate::topology::{EVERY_POOL, Topology};
use crate::upstreams::Upstreams;

fn priced(config: &mut tyboo::config::TybooConfig) {
    config.metering.price_version = "2026-12-test".to_owned();
    config.metering.prices = vec![ModelPrice {
        model: "tiny".to_owned(),
        input_micros_per_million_tokens: 1_000_000,
        output_micros_per_million_tokens: 3_000_000,
    }];
}

/// trigger → flaky GET (retried) → llm.chat.
fn metered_graph(upstreams: &Upstreams) -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "fetch", "type": "http.request",
             "parameters": {"method": "GET", "url": upstreams.url("/flaky")},
             "retry": {"maxAttempts": 5, "initialBackoffMs": 50, "maxBackoffMs": 100}},
            {"id": "ask", "type": "llm.chat",
             "parameters": {"base_url": upstreams.url("/v1"), "model": "tiny-1",
                            "api_key": "sk-test-local",
                            "messages": [{"role": "user", "content": "hello"}]}}
        ],
        "edges": [{"from": "start", "to": "fetch"}, {"from": "fetch", "to": "ask"}]
    })
}

/// The month's usage once it shows `executions` executions and twice as
/// many tasks (every graph here has two non-trigger nodes), waiting for the
/// outbox.
async fn usage_reaching(
    get: impl AsyncFn() -> (u16, Value),
    executions: i64,
    within: Duration,
) -> Value {
    let give_up = Instant::now() + within;
    loop {
        let (status, usage) = get().await;
        let totals = &usage["totals"];
        if status == 200
            && count(&totals["executions"]) >= executions
            && count(&totals["tasks"]) >= 2 * executions
        {
            return usage;
        }
        assert!(Instant::now() < give_up, "usage stayed at {status} {usage}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .or_else(|| value.as_i64())
        .unwrap_or(0)
}

#[tokio::test]
async fn usage_counts_each_execution_and_node_once_and_prices_llm_calls() {
    let sandbox = Sandbox::start_with(priced).await;
    let upstreams = Upstreams::start().await;
    let workflow = sandbox
        .create_workflow("Metered", metered_graph(&upstreams))
        .await;
    // Each execution's fetch fails twice before it succeeds.
    const RUNS: usize = 3;
    let mut execution_ids = Vec::new();
    for _ in 0..RUNS {
        upstreams
            .seen
            .flaky_failures_left
            .store(2, Ordering::SeqCst);
        let id = sandbox.start_execution(&workflow, json!({})).await;
        let execution = sandbox.wait_for_execution(&id).await;
        assert_eq!(
            execution["status"], "EXECUTION_STATUS_SUCCEEDED",
            "{execution}"
        );
        execution_ids.push(id);
    }
    assert_eq!(upstreams.seen.flaky_hits.load(Ordering::SeqCst), RUNS * 3);

    let path = format!("/v1/workspaces/{}/usage", sandbox.workspace_id);
    let usage = usage_reaching(
        async || sandbox.get(&path, &sandbox.owner_key).await,
        RUNS as i64,
        Duration::from_secs(20),
    )
    .await;
    // Nothing more arrives: each was counted once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, settled) = sandbox.get(&path, &sandbox.owner_key).await;
    assert_eq!(settled["totals"], usage["totals"]);
    let totals = &usage["totals"];
    assert_eq!(count(&totals["executions"]), RUNS as i64, "{usage}");
    // fetch and ask, once each however many attempts fetch took; the
    // trigger is not a task.
    assert_eq!(count(&totals["tasks"]), 2 * RUNS as i64, "{usage}");
    assert_eq!(count(&totals["llmCalls"]), RUNS as i64);
    assert_eq!(count(&totals["inputTokens"]), 21 * RUNS as i64);
    assert_eq!(count(&totals["outputTokens"]), 7 * RUNS as i64);
    // 21 × 1.00 + 7 × 3.00 per million tokens = 42 micros a call.
    assert_eq!(count(&totals["costMicros"]), 42 * RUNS as i64);
    assert_eq!(usage["byWorkflow"][0]["workflowId"], workflow.as_str());
    assert_eq!(usage["byModel"][0]["model"], "tiny-1");
    assert_eq!(usage["byModel"][0]["providerHost"], "127.0.0.1");
    let month = usage["month"].as_str().unwrap().to_owned();

    // The raw ledger, a page at a time through the edge.
    let mut events = Vec::new();
    let mut token = String::new();
    loop {
        let (status, page) = sandbox
            .get(
                &format!("{path}/events?month={month}&pageSize=4&pageToken={token}"),
                &sandbox.owner_key,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        events.extend(page["events"].as_array().cloned().unwrap_or_default());
        match page["nextPageToken"].as_str() {
            Some(next) if !next.is_empty() => token = next.to_owned(),
            _ => break,
        }
    }
    assert_eq!(events.len(), RUNS * 4, "{events:?}");
    let llm: Vec<&Value> = events
        .iter()
        .filter(|event| event["kind"] == "USAGE_KIND_LLM_CALL")
        .collect();
    assert_eq!(llm.len(), RUNS);
    assert!(
        llm.iter()
            .all(|event| event["priceVersion"] == "2026-12-test")
    );

    // Bad input: the edge's 400 with the field named, before metering.
    for query in ["?month=2026-13", "?month=december"] {
        let (status, body) = sandbox
            .get(&format!("{path}{query}"), &sandbox.owner_key)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.to_string().contains("month"), "{body}");
    }
    let (status, body) = sandbox
        .get(&format!("{path}/events?pageToken=nope"), &sandbox.owner_key)
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = sandbox
        .get(
            &format!("{path}/events?pageToken={}", uuid::Uuid::now_v7()),
            &sandbox.owner_key,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // Without a key, and for another workspace.
    let (status, _) = sandbox.call(reqwest::Method::GET, &path, None, None).await;
    assert_eq!(status, 401);
    let (status, body) = sandbox
        .get(
            &format!("/v1/workspaces/{}/usage", uuid::Uuid::now_v7()),
            &sandbox.owner_key,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    sandbox.stop().await;
}

#[tokio::test]
async fn metering_stopped_mid_batch_delays_counts_and_loses_none() {
    if !matches!(Backend::from_env(), Backend::Postgres { .. }) {
        println!(
            "metering_stopped_mid_batch_delays_counts_and_loses_none: needs PostgreSQL and \
             Redis (TYBOO_TEST_BACKEND=postgres); skipped"
        );
        return;
    }
    let upstreams = Upstreams::start().await;
    let store = TestStore::create().await;
    let mut config = test_config(&store);
    priced(&mut config);
    // Small batches, so that the stop falls between deliveries of one run.
    config.executor.usage.batch_size = 5;
    config.executor.usage.poll_interval_ms = 50;
    config.executor.usage.retry_max_ms = 500;
    let mut topology = Topology::start(config, &EVERY_POOL).await;
    let workflow_id = topology.create_workflow(metered_graph(&upstreams)).await;

    const BEFORE: usize = 10;
    const WHILE_DOWN: usize = 10;
    let mut execution_ids = Vec::new();
    for _ in 0..BEFORE {
        execution_ids.push(topology.start_execution(&workflow_id).await);
    }
    // Mid-batch: executions are still running and the outbox delivering.
    tokio::time::sleep(Duration::from_millis(300)).await;
    topology.kill_metering().await;
    for _ in 0..WHILE_DOWN {
        execution_ids.push(topology.start_execution(&workflow_id).await);
    }
    let executions = topology
        .wait_for_all(&execution_ids, Duration::from_secs(40))
        .await;
    for execution in &executions {
        assert_eq!(
            execution["status"], "EXECUTION_STATUS_SUCCEEDED",
            "{execution}"
        );
    }
    // Down for a while longer: the outbox keeps retrying.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    topology.restart_metering().await;

    let total = (BEFORE + WHILE_DOWN) as i64;
    let path = format!("/v1/workspaces/{}/usage", topology.owner.workspace_id);
    let usage = usage_reaching(
        async || topology.get(&path).await,
        total,
        Duration::from_secs(30),
    )
    .await;
    // Settled: nothing more arrives, and nothing counted twice.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let (_, usage_after) = topology.get(&path).await;
    assert_eq!(usage["totals"], usage_after["totals"]);
    let totals = &usage_after["totals"];
    assert_eq!(count(&totals["executions"]), total, "{usage_after}");
    assert_eq!(count(&totals["tasks"]), 2 * total, "{usage_after}");
    assert_eq!(count(&totals["llmCalls"]), total);
    assert_eq!(count(&totals["costMicros"]), 42 * total);
    topology.stop().await;
    store.remove().await;
}
