//! Workflows end to end through the edge: webhooks, node types against
//! local servers speaking real wire formats, retries and the dead-letter
//! queue, timeouts, cancellation, caps and safe egress.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::sandbox::{Sandbox, node_runs};
use crate::upstreams::Upstreams;

fn orders_graph(upstreams: &Upstreams, mode: &str) -> Value {
    json!({
        "nodes": [
            {"id": "hook", "type": "trigger.webhook",
             "parameters": {"path": "orders", "method": "POST", "mode": mode, "respond_node": "shape"}},
            {"id": "fetch", "type": "http.request",
             "parameters": {"method": "GET",
                            "url": format!("{}/orders/{{{{ .trigger.body.order_id }}}}", upstreams.url(""))}},
            {"id": "shape", "type": "transform",
             "parameters": {"program": "{order: .input.body.id, total: .input.body.total, customer: .input.body.customer}"}},
            {"id": "big", "type": "if", "parameters": {"condition": ".input.total > 100"}},
            {"id": "notify", "type": "slack.message",
             "parameters": {"webhook_url": upstreams.url("/services/T000/B000/XXXX"),
                            "text": "Big order {{ .input.order }} from {{ .input.customer }}: {{ .input.total }} EUR"}}
        ],
        "edges": [
            {"from": "hook", "to": "fetch"},
            {"from": "fetch", "to": "shape"},
            {"from": "shape", "to": "big"},
            {"from": "big", "fromPort": "true", "to": "notify"}
        ]
    })
}

#[tokio::test]
async fn webhook_to_http_transform_if_and_slack() {
    let sandbox = Sandbox::start().await;
    let upstreams = Upstreams::start().await;
    let workflow_id = sandbox
        .create_workflow("Big orders to Slack", orders_graph(&upstreams, "async"))
        .await;
    let hook = sandbox.hook_url(&workflow_id, "hook").await;

    // A big order goes all the way to Slack.
    let response = sandbox
        .http
        .post(&hook)
        .header("idempotency-key", "delivery-1")
        .json(&json!({"order_id": "big-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    let execution_id = accepted["executionId"].as_str().unwrap().to_owned();
    let execution = sandbox.wait_for_execution(&execution_id).await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    assert_eq!(execution["triggerType"], "TRIGGER_TYPE_WEBHOOK");
    for node in ["fetch", "shape", "big", "notify"] {
        let runs = node_runs(&execution, node);
        assert_eq!(runs.len(), 1, "{node}: {execution}");
        assert_eq!(runs[0]["status"], "NODE_RUN_STATUS_SUCCEEDED", "{node}");
    }
    assert_eq!(node_runs(&execution, "shape")[0]["output"]["total"], 1250.0);
    assert_eq!(node_runs(&execution, "big")[0]["outputPort"], "true");
    let messages = upstreams.seen.slack_messages.lock().await.clone();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["text"], "Big order big-7 from Ada: 1250 EUR");

    // The same delivery again starts nothing new.
    let again: Value = sandbox
        .http
        .post(&hook)
        .header("idempotency-key", "delivery-1")
        .json(&json!({"order_id": "big-7"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["executionId"], execution_id.as_str());
    assert_eq!(again["duplicate"], true);

    // A small order takes the false branch: Slack is skipped.
    let small: Value = sandbox
        .http
        .post(&hook)
        .json(&json!({"order_id": "small-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let execution = sandbox
        .wait_for_execution(small["executionId"].as_str().unwrap())
        .await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    let notify = node_runs(&execution, "notify");
    assert!(
        notify.is_empty() || notify[0]["status"] == "NODE_RUN_STATUS_SKIPPED",
        "{execution}"
    );
    assert_eq!(upstreams.seen.slack_messages.lock().await.len(), 1);
    assert_eq!(upstreams.seen.orders_hits.load(Ordering::SeqCst), 2);

    // The old spelling (workspace and path) and unknown hooks answer 404.
    let missing = sandbox
        .http
        .post(sandbox.url(&format!("/hooks/{}/orders", sandbox.workspace_id)))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    sandbox.stop().await;
}

#[tokio::test]
async fn synchronous_webhook_answers_with_the_chosen_node_output() {
    let sandbox = Sandbox::start().await;
    let upstreams = Upstreams::start().await;
    let workflow_id = sandbox
        .create_workflow("Order lookup", orders_graph(&upstreams, "sync"))
        .await;
    let response = sandbox
        .http
        .post(sandbox.hook_url(&workflow_id, "hook").await)
        .json(&json!({"order_id": "small-3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-tyboo-execution-id"));
    // Whole numbers come back as they were sent, not as `12.0`.
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#""total":12"#) && !text.contains("12.0"),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({"order": "small-3", "total": 12, "customer": "Ada"})
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn llm_chat_against_an_openai_compatible_api_records_usage() {
    let sandbox = Sandbox::start().await;
    let upstreams = Upstreams::start().await;
    let workflow = sandbox
        .create_workflow(
            "Summarize",
            json!({
                "nodes": [
                    {"id": "start", "type": "trigger.manual"},
                    {"id": "ask", "type": "llm.chat",
                     "parameters": {"base_url": upstreams.url("/v1"), "model": "tiny-1",
                                    "api_key": "sk-test-local",
                                    "temperature": 0.2,
                                    "messages": [
                                        {"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "{{ .trigger.text }}"}]}}
                ],
                "edges": [{"from": "start", "to": "ask"}]
            }),
        )
        .await;
    let execution_id = sandbox
        .start_execution(&workflow, json!({"text": "three apples and a pear"}))
        .await;
    let execution = sandbox.wait_for_execution(&execution_id).await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    let ask = node_runs(&execution, "ask")[0];
    assert_eq!(ask["output"]["text"], "Summary: three apples and a pear");
    assert_eq!(ask["usage"]["totalTokens"], "28", "{ask}");
    assert_eq!(ask["usage"]["promptTokens"], "21");
    assert_eq!(ask["usage"]["model"], "tiny-1");
    let requests = upstreams.seen.chat_requests.lock().await.clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0]["messages"][1]["content"],
        "three apples and a pear"
    );
    sandbox.stop().await;
}

fn one_call_graph(url: String, retry: Value, timeout_ms: Option<u64>) -> Value {
    let mut call = json!({"id": "call", "type": "http.request",
                          "parameters": {"method": "GET", "url": url},
                          "retry": retry});
    if let Some(timeout) = timeout_ms {
        call["timeoutMs"] = json!(timeout);
    }
    json!({
        "nodes": [{"id": "start", "type": "trigger.manual"}, call],
        "edges": [{"from": "start", "to": "call"}]
    })
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_dead_lettered_then_replayed() {
    let sandbox = Sandbox::start().await;
    let upstreams = Upstreams::start().await;
    let retry =
        json!({"maxAttempts": 4, "initialBackoffMs": 20, "maxBackoffMs": 100, "multiplier": 2.0});

    // Two 503s, then success: three attempts, one execution.
    upstreams
        .seen
        .flaky_failures_left
        .store(2, Ordering::SeqCst);
    let flaky = sandbox
        .create_workflow(
            "Flaky",
            one_call_graph(upstreams.url("/flaky"), retry.clone(), None),
        )
        .await;
    let execution = sandbox
        .wait_for_execution(&sandbox.start_execution(&flaky, json!({})).await)
        .await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    let runs = node_runs(&execution, "call");
    assert_eq!(runs.len(), 3, "{execution}");
    assert_eq!(runs[0]["errorClass"], "ERROR_CLASS_TRANSIENT");
    assert_eq!(upstreams.seen.flaky_hits.load(Ordering::SeqCst), 3);

    // A 400 is permanent: one attempt, execution failed, a dead letter.
    upstreams.seen.broken_status.store(400, Ordering::SeqCst);
    let broken = sandbox
        .create_workflow(
            "Broken",
            one_call_graph(upstreams.url("/broken"), retry, None),
        )
        .await;
    let execution = sandbox
        .wait_for_execution(&sandbox.start_execution(&broken, json!({"n": 1})).await)
        .await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_FAILED",
        "{execution}"
    );
    assert_eq!(node_runs(&execution, "call").len(), 1);
    assert_eq!(execution["failedNodeId"], "call");
    let (status, letters) = sandbox
        .get(
            &format!("/v1/dead-letters?workflowId={broken}"),
            &sandbox.owner_key,
        )
        .await;
    assert_eq!(status, 200, "{letters}");
    let letter = letters["deadLetters"][0].clone();
    assert_eq!(letter["nodeId"], "call", "{letters}");
    assert_eq!(letter["errorClass"], "ERROR_CLASS_PERMANENT");

    // Fixed upstream: replaying from the failed node succeeds.
    upstreams.seen.broken_status.store(0, Ordering::SeqCst);
    let letter_id = letter["id"].as_str().unwrap();
    let (status, replayed) = sandbox
        .post(
            &format!("/v1/dead-letters/{letter_id}:replay"),
            Some(&sandbox.owner_key),
            json!({"mode": "REPLAY_MODE_FROM_FAILED_NODE"}),
        )
        .await;
    assert_eq!(status, 200, "{replayed}");
    let replay_id = replayed["execution"]["id"]
        .as_str()
        .or_else(|| replayed["executionId"].as_str())
        .expect("replay names its execution")
        .to_owned();
    let execution = sandbox.wait_for_execution(&replay_id).await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    assert_eq!(
        node_runs(&execution, "call")[0]["output"]["body"]["fixed"],
        true
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn node_and_workflow_timeouts_and_cancel() {
    let sandbox = Sandbox::start().await;
    let upstreams = Upstreams::start().await;
    let no_retry =
        json!({"maxAttempts": 1, "initialBackoffMs": 10, "maxBackoffMs": 10, "multiplier": 1.0});

    let slow_node = sandbox
        .create_workflow(
            "Slow node",
            one_call_graph(upstreams.url("/slow/3000"), no_retry.clone(), Some(200)),
        )
        .await;
    let execution = sandbox
        .wait_for_execution(&sandbox.start_execution(&slow_node, json!({})).await)
        .await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_TIMED_OUT",
        "{execution}"
    );
    assert_eq!(
        node_runs(&execution, "call")[0]["status"],
        "NODE_RUN_STATUS_TIMED_OUT"
    );

    let mut graph = one_call_graph(upstreams.url("/slow/3000"), no_retry.clone(), Some(10_000));
    graph["settings"] = json!({"maxDurationMs": 300});
    let slow_workflow = sandbox.create_workflow("Slow workflow", graph).await;
    let execution = sandbox
        .wait_for_execution(&sandbox.start_execution(&slow_workflow, json!({})).await)
        .await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_TIMED_OUT",
        "{execution}"
    );

    let cancellable = sandbox
        .create_workflow(
            "Cancellable",
            one_call_graph(upstreams.url("/slow/5000"), no_retry, Some(10_000)),
        )
        .await;
    let execution_id = sandbox.start_execution(&cancellable, json!({})).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, cancelled) = sandbox
        .post(
            &format!("/v1/executions/{execution_id}:cancel"),
            Some(&sandbox.owner_key),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    let started = std::time::Instant::now();
    let execution = sandbox.wait_for_execution(&execution_id).await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_CANCELLED",
        "{execution}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "cancel did not interrupt"
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn payload_caps_and_validation_errors_name_what_is_wrong() {
    let sandbox = Sandbox::start_with(|config| {
        config.executor.max_trigger_payload_bytes = 2048;
    })
    .await;
    let upstreams = Upstreams::start().await;
    let workflow_id = sandbox
        .create_workflow("Orders", orders_graph(&upstreams, "async"))
        .await;
    let hook = sandbox.hook_url(&workflow_id, "hook").await;
    let big = json!({"order_id": "x", "pad": "y".repeat(4096)});
    let response = sandbox.http.post(&hook).json(&big).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("cap"),
        "{error}"
    );

    // Validation names the node and field at fault.
    let (status, error) = sandbox
        .post(
            "/v1/workflows",
            Some(&sandbox.owner_key),
            json!({"name": "bad", "graph": {
                "nodes": [{"id": "start", "type": "trigger.manual"},
                          {"id": "fetch", "type": "http.request", "parameters": {"url": 42}}],
                "edges": [{"from": "start", "to": "fetch"}]}}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("fetch") && message.contains("url"),
        "{message}"
    );

    let (status, error) = sandbox
        .post(
            "/v1/workflows",
            Some(&sandbox.owner_key),
            json!({"name": "cycle", "graph": {
                "nodes": [{"id": "start", "type": "trigger.manual"},
                          {"id": "a", "type": "set", "parameters": {"values": {}}},
                          {"id": "b", "type": "set", "parameters": {"values": {}}}],
                "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "a"}]}}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("cycle"),
        "{error}"
    );

    let (status, error) = sandbox
        .post(
            "/v1/workflows",
            Some(&sandbox.owner_key),
            json!({"name": "unknown", "graph": {
                "nodes": [{"id": "start", "type": "trigger.manual"},
                          {"id": "x", "type": "teleport"}],
                "edges": [{"from": "start", "to": "x"}]}}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("teleport"),
        "{error}"
    );
    sandbox.stop().await;
}

/// A manual trigger into one transform running `program`, tried once.
fn transform_graph(program: &str) -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "compute", "type": "transform", "parameters": {"program": program},
             "retry": {"maxAttempts": 1, "initialBackoffMs": 10, "maxBackoffMs": 10, "multiplier": 1.0}}
        ],
        "edges": [{"from": "start", "to": "compute"}]
    })
}

#[tokio::test]
async fn a_jq_program_past_its_memory_cap_fails_its_node_and_the_worker_lives_on() {
    let cap = 64 * 1024 * 1024;
    let sandbox = Sandbox::start_with(|config| {
        let expression = &mut config.executor.engine.limits.expression;
        expression.memory_cap_bytes = cap;
        // Time enough that only the memory cap can stop these programs, even on a
        // loaded machine.
        expression.timeout_ms = 20_000;
    })
    .await;
    // Each of these asks the allocator for more than the cap in one operation; in
    // the worker's own process the failed allocation would abort it.
    let hungry_programs = [
        r#""x" * 1000000000000"#,
        "reduce range(40) as $i ([1]; . + .) | length",
        "[1] | until(length > 1e12; . + .) | length",
    ];
    for program in hungry_programs {
        let workflow = sandbox
            .create_workflow("Hungry", transform_graph(program))
            .await;
        let execution = sandbox
            .wait_for_execution(&sandbox.start_execution(&workflow, json!({})).await)
            .await;
        assert_eq!(
            execution["status"], "EXECUTION_STATUS_FAILED",
            "{program}: {execution}"
        );
        let run = node_runs(&execution, "compute")[0];
        assert_eq!(
            run["errorClass"], "ERROR_CLASS_PERMANENT",
            "{program}: {run}"
        );
        let error = run["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("exceeded its memory cap of {cap} bytes")),
            "{program}: {error}"
        );

        // The same worker runs the next workflow.
        let healthy = sandbox
            .create_workflow("Healthy", transform_graph("{doubled: (.trigger.n * 2)}"))
            .await;
        let execution = sandbox
            .wait_for_execution(&sandbox.start_execution(&healthy, json!({"n": 21})).await)
            .await;
        assert_eq!(
            execution["status"], "EXECUTION_STATUS_SUCCEEDED",
            "{execution}"
        );
        let output = &node_runs(&execution, "compute")[0]["output"];
        assert_eq!(output["doubled"].as_f64(), Some(42.0), "{output}");
    }
    sandbox.stop().await;
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused_by_default() {
    // No allow list: the production default.
    let sandbox = Sandbox::start_with(|config| {
        config.executor.engine.egress.allow_cidrs = Vec::new();
    })
    .await;
    let targets = [
        "http://127.0.0.1:9/",
        "http://[::1]:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://2130706433:9/",
        "http://0177.0.0.1:9/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
    ];
    let no_retry =
        json!({"maxAttempts": 1, "initialBackoffMs": 10, "maxBackoffMs": 10, "multiplier": 1.0});
    for target in targets {
        let workflow = sandbox
            .create_workflow(
                target,
                one_call_graph(target.to_owned(), no_retry.clone(), None),
            )
            .await;
        let execution = sandbox
            .wait_for_execution(&sandbox.start_execution(&workflow, json!({})).await)
            .await;
        assert_eq!(
            execution["status"], "EXECUTION_STATUS_FAILED",
            "{target}: {execution}"
        );
        let run = node_runs(&execution, "call")[0];
        assert_eq!(
            run["errorClass"], "ERROR_CLASS_PERMANENT",
            "{target}: {run}"
        );
    }
    sandbox.stop().await;
}

#[tokio::test]
async fn a_redirect_to_loopback_is_refused() {
    let upstreams = Upstreams::start().await;
    // Allow exactly the test server's address, then redirect elsewhere on
    // loopback: the hop must be checked again and refused.
    let redirector = {
        let target = "http://127.0.0.2:9/secret".to_owned();
        let router = axum::Router::new().route(
            "/go",
            axum::routing::get(move || {
                let target = target.clone();
                async move { axum::response::Redirect::temporary(&target) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        address
    };
    drop(upstreams);
    let sandbox = Sandbox::start_with(|config| {
        config.executor.engine.egress.allow_cidrs = vec!["127.0.0.1/32".to_owned()];
    })
    .await;
    let no_retry =
        json!({"maxAttempts": 1, "initialBackoffMs": 10, "maxBackoffMs": 10, "multiplier": 1.0});
    let workflow = sandbox
        .create_workflow(
            "Redirect",
            one_call_graph(format!("http://{redirector}/go"), no_retry, None),
        )
        .await;
    let execution = sandbox
        .wait_for_execution(&sandbox.start_execution(&workflow, json!({})).await)
        .await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_FAILED",
        "{execution}"
    );
    let run = node_runs(&execution, "call")[0];
    assert!(
        run["error"].as_str().unwrap().contains("127.0.0.2"),
        "{run}"
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn a_schedule_fires_its_workflow_every_tick() {
    let sandbox = Sandbox::start_with(|config| {
        config.executor.scheduler_interval_ms = 100;
    })
    .await;
    let workflow = sandbox
        .create_workflow(
            "Every second",
            json!({
                "nodes": [
                    {"id": "tick", "type": "trigger.schedule",
                     "parameters": {"cron": "* * * * * *", "timezone": "Europe/Paris"}},
                    {"id": "note", "type": "set", "parameters": {"values": {"ok": true}}}
                ],
                "edges": [{"from": "tick", "to": "note"}]
            }),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let (status, listed) = sandbox
        .get(
            &format!("/v1/executions?workflowId={workflow}&pageSize=100"),
            &sandbox.owner_key,
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    let executions = listed["executions"].as_array().cloned().unwrap_or_default();
    // Three or four ticks in 3.5 s, each fired once.
    assert!(
        (2..=5).contains(&executions.len()),
        "{} executions: {listed}",
        executions.len()
    );
    assert!(
        executions
            .iter()
            .all(|execution| execution["triggerType"] == "TRIGGER_TYPE_SCHEDULE")
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn a_delay_waits_without_holding_a_worker_and_the_execution_data_cap_holds() {
    let sandbox = Sandbox::start_with(|config| {
        // One worker slot: if the delay held it, the second execution could
        // not run while the first one waits.
        config.executor.worker_concurrency = 1;
        config.executor.max_trigger_payload_bytes = 16 * 1024;
        config.executor.max_execution_data_bytes = 64 * 1024;
    })
    .await;
    let delayed = sandbox
        .create_workflow(
            "Delayed",
            json!({
                "nodes": [
                    {"id": "start", "type": "trigger.manual"},
                    {"id": "pause", "type": "delay", "parameters": {"ms": 4000}},
                    {"id": "after", "type": "set", "parameters": {"values": {"done": true}}}
                ],
                "edges": [{"from": "start", "to": "pause"}, {"from": "pause", "to": "after"}]
            }),
        )
        .await;
    let quick = sandbox
        .create_workflow(
            "Quick",
            json!({
                "nodes": [
                    {"id": "start", "type": "trigger.manual"},
                    {"id": "note", "type": "set", "parameters": {"values": {"ok": true}}}
                ],
                "edges": [{"from": "start", "to": "note"}]
            }),
        )
        .await;
    let started = std::time::Instant::now();
    let waiting = sandbox.start_execution(&delayed, json!({})).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let quick_execution = sandbox
        .wait_for_execution(&sandbox.start_execution(&quick, json!({})).await)
        .await;
    assert_eq!(quick_execution["status"], "EXECUTION_STATUS_SUCCEEDED");
    let execution = sandbox.wait_for_execution(&waiting).await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    // Ordering, not durations: the quick execution ended while the delay
    // was still waiting, so the one worker slot was free meanwhile.
    let ended = |execution: &Value| {
        chrono::DateTime::parse_from_rfc3339(execution["endTime"].as_str().unwrap()).unwrap()
    };
    let delay_over = chrono::DateTime::parse_from_rfc3339(execution["startTime"].as_str().unwrap())
        .unwrap()
        + chrono::Duration::milliseconds(4000);
    assert!(
        ended(&quick_execution) < delay_over,
        "the quick execution waited behind the delay"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(4000));
    assert_eq!(
        node_runs(&execution, "after")[0]["status"],
        "NODE_RUN_STATUS_SUCCEEDED"
    );

    // Node outputs adding up past the execution's data cap fail it.
    let hungry = sandbox
        .create_workflow(
            "Hungry",
            json!({
                "nodes": [
                    {"id": "start", "type": "trigger.manual"},
                    {"id": "a", "type": "transform", "parameters": {"program": "\"x\" * 40000"}},
                    {"id": "b", "type": "transform", "parameters": {"program": "\"y\" * 40000"}}
                ],
                "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "b"}]
            }),
        )
        .await;
    let execution = sandbox
        .wait_for_execution(&sandbox.start_execution(&hungry, json!({})).await)
        .await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_FAILED",
        "{execution}"
    );
    let error = execution["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("cap") || error.contains("exceeds"),
        "{execution}"
    );
    sandbox.stop().await;
}

fn sql_graph(credential_id: Option<&str>, steps: &[(&str, Value)]) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "trigger.manual"})];
    let mut edges = Vec::new();
    let mut previous = "start".to_owned();
    for (id, parameters) in steps {
        let mut node = json!({"id": id, "type": "sql.query", "parameters": parameters,
                              "retry": {"maxAttempts": 1, "initialBackoffMs": 10,
                                        "maxBackoffMs": 10, "multiplier": 1.0}});
        if let Some(credential) = credential_id {
            node["credentialId"] = json!(credential);
        }
        nodes.push(node);
        edges.push(json!({"from": previous, "to": id}));
        previous = (*id).to_owned();
    }
    json!({"nodes": nodes, "edges": edges})
}

/// A stored `database` credential drives `sql.query` against a SQLite file in the
/// operator's SQLite directory: the URL comes from the vault, not the workflow.
#[tokio::test]
async fn sql_query_runs_on_a_stored_database_credential() {
    let sqlite_dir = std::env::temp_dir().join(format!("tyboo-e2e-sql-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&sqlite_dir).unwrap();
    let dir = sqlite_dir.clone();
    let sandbox = Sandbox::start_with(move |config| {
        config.executor.engine.sql.sqlite_dir = Some(dir);
    })
    .await;
    let (status, created) = sandbox
        .post(
            "/v1/credentials",
            Some(&sandbox.owner_key),
            json!({"name": "Shop database", "type": "database",
                   "fields": {"driver": "sqlite", "url": "sqlite:shop.db"}}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let credential_id = created["credential"]["id"].as_str().unwrap().to_owned();
    let graph = sql_graph(
        Some(&credential_id),
        &[
            (
                "create",
                json!({"driver": "sqlite",
                              "query": "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total REAL)"}),
            ),
            (
                "insert",
                json!({"driver": "sqlite",
                              "query": "INSERT INTO orders (total) VALUES (?), (?)",
                              "params": [12.5, 30]}),
            ),
            (
                "select",
                json!({"driver": "sqlite",
                              "query": "SELECT id, total FROM orders ORDER BY id"}),
            ),
        ],
    );
    let workflow = sandbox.create_workflow("Orders in SQLite", graph).await;
    let execution = sandbox
        .wait_for_execution(&sandbox.start_execution(&workflow, json!({})).await)
        .await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    assert_eq!(
        node_runs(&execution, "insert")[0]["output"]["rows_affected"].as_f64(),
        Some(2.0)
    );
    let selected = &node_runs(&execution, "select")[0]["output"];
    // A float column's 30 is 30.0 on one database and 30 on another: the
    // value is what counts.
    let rows: Vec<(Option<i64>, Option<f64>)> = selected["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["id"].as_i64(), row["total"].as_f64()))
        .collect();
    assert_eq!(
        rows,
        vec![(Some(1), Some(12.5)), (Some(2), Some(30.0))],
        "{selected}"
    );
    assert!(
        sqlite_dir.join("shop.db").is_file(),
        "the file is in the SQLite directory"
    );
    sandbox.stop().await;
    let _ = std::fs::remove_dir_all(sqlite_dir);
}

/// A tenant's `sql.query` never reaches the platform's own database: not by its
/// URL (loopback is allowed in tests, as an operator might), not through a socket
/// override, and not as a SQLite file when the SQLite directory is the data folder.
#[tokio::test]
async fn sql_query_cannot_reach_the_platform_database_or_its_files() {
    let store_dir = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = store_dir.clone();
    let sandbox = Sandbox::start_with(move |config| {
        // An operator mistake: the tenants' SQLite directory is the platform's data folder.
        config.executor.engine.sql.sqlite_dir = Some(config.data_dir.clone());
        *seen.lock().unwrap() = Some(config.database_url.clone());
    })
    .await;
    let database_url = store_dir.lock().unwrap().clone().unwrap();
    let mut attempts = vec![
        json!({"driver": "sqlite", "url": "sqlite:executor.db", "query": "SELECT * FROM workflows"}),
        json!({"driver": "sqlite", "url": "sqlite:tenancy.db", "query": "SELECT * FROM api_keys"}),
        json!({"driver": "postgres",
               "url": "postgres://root@127.0.0.1:5432/postgres?host=/var/run/postgresql",
               "query": "SELECT 1"}),
        json!({"driver": "postgres", "url": "postgres://root@%2Fvar%2Frun%2Fpostgresql/postgres",
               "query": "SELECT 1"}),
        json!({"driver": "postgres", "url": "postgres://root@example.invalid/postgres?hostaddr=127.0.0.1",
               "query": "SELECT 1"}),
    ];
    if sandbox.store.as_ref().unwrap().is_postgres() {
        attempts.push(json!({"driver": "postgres", "url": database_url,
                             "query": "SELECT key_hash FROM tenancy.api_keys"}));
        attempts.push(json!({"driver": "postgres",
                             "url": database_url.replace("127.0.0.1", "localhost"),
                             "query": "SELECT 1"}));
    }
    for parameters in attempts {
        let graph = sql_graph(None, &[("db", parameters.clone())]);
        let workflow = sandbox.create_workflow("Platform probe", graph).await;
        let execution = sandbox
            .wait_for_execution(&sandbox.start_execution(&workflow, json!({})).await)
            .await;
        assert_eq!(
            execution["status"], "EXECUTION_STATUS_FAILED",
            "{parameters}: {execution}"
        );
        let run = node_runs(&execution, "db")[0];
        assert_eq!(
            run["errorClass"], "ERROR_CLASS_PERMANENT",
            "{parameters}: {run}"
        );
        assert!(run["output"]["rows"].is_null(), "{parameters}: {run}");
    }
    sandbox.stop().await;
}

/// The parts of an error a caller can compare: everything but its request id.
fn comparable(mut error: Value) -> Value {
    if let Some(object) = error.as_object_mut() {
        object.remove("request_id");
    }
    error
}

#[tokio::test]
async fn hook_urls_are_unguessable_rotatable_and_wrong_ones_look_missing() {
    let sandbox = Sandbox::start().await;
    let upstreams = Upstreams::start().await;
    let workflow_id = sandbox
        .create_workflow("Orders", orders_graph(&upstreams, "async"))
        .await;
    let hook = sandbox.hook_url(&workflow_id, "hook").await;
    let token = hook
        .split("/hooks/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    assert!(token.starts_with("whk_") && token.len() == 47, "{hook}");

    // Unknown token, a forged one, the workspace in its place, another path,
    // another method: one answer, byte for byte but the request id.
    let mut forged = token.clone();
    forged.replace_range(10..14, "AAAA");
    let workspace = sandbox.workspace_id.clone();
    let wrong = [
        (reqwest::Method::POST, format!("/hooks/{forged}/orders")),
        (reqwest::Method::POST, format!("/hooks/{workspace}/orders")),
        (reqwest::Method::POST, format!("/hooks/{token}/other")),
        (reqwest::Method::POST, format!("/hooks/{token}/orders/x")),
        (reqwest::Method::GET, format!("/hooks/{token}/orders")),
        (reqwest::Method::PUT, format!("/hooks/{token}/orders")),
        (reqwest::Method::DELETE, format!("/hooks/{token}/orders")),
    ];
    let mut answers = Vec::new();
    for (method, path) in wrong {
        let response = sandbox
            .http
            .request(method.clone(), sandbox.url(&path))
            .json(&json!({"order_id": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        answers.push(comparable(response.json().await.unwrap()));
    }
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "{answers:?}"
    );
    assert_eq!(upstreams.seen.orders_hits.load(Ordering::SeqCst), 0);

    // Only editors read hook URLs: a viewer's key is refused.
    let (_, viewer) = sandbox
        .add_member("viewer@example.com", "ROLE_VIEWER")
        .await;
    let (status, _) = sandbox
        .get(&format!("/v1/workflows/{workflow_id}/webhooks"), &viewer)
        .await;
    assert_eq!(status, 403);

    // Rotation kills the old URL at once; the new one works.
    let (status, rotated) = sandbox
        .post(
            &format!("/v1/workflows/{workflow_id}/webhooks/hook:rotate"),
            Some(&sandbox.owner_key),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_hook = sandbox.url(rotated["webhook"]["urlPath"].as_str().unwrap());
    assert_ne!(new_hook, hook);
    assert_eq!(sandbox.hook_url(&workflow_id, "hook").await, new_hook);
    let old = sandbox
        .http
        .post(&hook)
        .json(&json!({"order_id": "small-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 404);
    let fresh = sandbox
        .http
        .post(&new_hook)
        .json(&json!({"order_id": "small-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 202);
    let (status, _) = sandbox
        .post(
            &format!("/v1/workflows/{workflow_id}/webhooks/fetch:rotate"),
            Some(&sandbox.owner_key),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    sandbox.stop().await;
}

#[tokio::test]
async fn delivery_ids_belong_to_one_hook() {
    let sandbox = Sandbox::start().await;
    let graph = |path: &str, value: &str| {
        json!({
            "nodes": [
                {"id": "hook", "type": "trigger.webhook",
                 "parameters": {"path": path, "mode": "sync", "respond_node": "reply"}},
                {"id": "reply", "type": "set", "parameters": {"values": {"hook": value}}}
            ],
            "edges": [{"from": "hook", "to": "reply"}]
        })
    };
    let x = sandbox.create_workflow("X", graph("x", "x")).await;
    let y = sandbox.create_workflow("Y", graph("y", "y")).await;
    let fire = |url: String| {
        let http = sandbox.http.clone();
        async move {
            let response = http
                .post(url)
                .header("idempotency-key", "shared-delivery")
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let id = response.headers()["x-tyboo-execution-id"]
                .to_str()
                .unwrap()
                .to_owned();
            (id, response.json::<Value>().await.unwrap())
        }
    };
    let (on_x, x_body) = fire(sandbox.hook_url(&x, "hook").await).await;
    let (on_y, y_body) = fire(sandbox.hook_url(&y, "hook").await).await;
    assert_eq!(x_body, json!({"hook": "x"}));
    // Y runs its own workflow and answers with its own output, not X's.
    assert_eq!(y_body, json!({"hook": "y"}));
    assert_ne!(on_x, on_y);
    let (again, _) = fire(sandbox.hook_url(&y, "hook").await).await;
    assert_eq!(again, on_y);
    sandbox.stop().await;
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn stripe_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[tokio::test]
async fn signed_hooks_refuse_what_their_secret_did_not_sign() {
    let sandbox = Sandbox::start().await;
    let secret = "whsec_shared-with-the-sender";
    let (status, created) = sandbox
        .post(
            "/v1/credentials",
            Some(&sandbox.owner_key),
            json!({"name": "GitHub hook secret", "type": "webhook_signing_secret",
                   "fields": {"secret": secret}}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let credential_id = created["credential"]["id"].as_str().unwrap().to_owned();
    let graph = |path: &str, scheme: &str| {
        json!({
            "nodes": [
                {"id": "hook", "type": "trigger.webhook", "credentialId": credential_id,
                 "parameters": {"path": path, "signature": scheme}},
                {"id": "done", "type": "set", "parameters": {"values": {"ok": true}}}
            ],
            "edges": [{"from": "hook", "to": "done"}]
        })
    };
    let github = sandbox
        .create_workflow("GitHub pushes", graph("github", "github"))
        .await;
    let stripe = sandbox
        .create_workflow("Stripe events", graph("stripe", "stripe"))
        .await;
    let (status, listed) = sandbox
        .get(
            &format!("/v1/workflows/{github}/webhooks"),
            &sandbox.owner_key,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["webhooks"][0]["signature"], "github");

    // A signature scheme needs a credential, and a credential a scheme.
    let (status, error) = sandbox
        .post(
            "/v1/workflows",
            Some(&sandbox.owner_key),
            json!({"name": "unsigned", "graph": {
                "nodes": [
                    {"id": "hook", "type": "trigger.webhook",
                     "parameters": {"path": "nosecret", "signature": "github"}},
                    {"id": "done", "type": "set", "parameters": {"values": {}}}
                ],
                "edges": [{"from": "hook", "to": "done"}]}}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("nodes[hook].credential_id"),
        "{error}"
    );

    let github_url = sandbox.hook_url(&github, "hook").await;
    let body = br#"{"ref":"refs/heads/main"}"#.to_vec();
    let send = |url: String, headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let http = sandbox.http.clone();
        async move {
            let mut request = http
                .post(url)
                .header("content-type", "application/json")
                .header("idempotency-key", "push-1")
                .body(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // Unsigned, signed with another secret, signed over another body.
    for headers in [
        vec![],
        vec![(
            "x-hub-signature-256",
            github_signature("another-secret", &body),
        )],
        vec![(
            "x-hub-signature-256",
            github_signature(secret, br#"{"ref":"refs/heads/evil"}"#),
        )],
    ] {
        let (status, answer) = send(github_url.clone(), headers, body.clone()).await;
        assert_eq!(status, 401, "{answer}");
        assert!(!answer.to_string().contains(secret), "{answer}");
    }
    let signed = vec![("x-hub-signature-256", github_signature(secret, &body))];
    let (status, accepted) = send(github_url.clone(), signed.clone(), body.clone()).await;
    assert_eq!(status, 202, "{accepted}");
    let execution = sandbox
        .wait_for_execution(accepted["executionId"].as_str().unwrap())
        .await;
    assert_eq!(execution["status"], "EXECUTION_STATUS_SUCCEEDED");
    // A forger who knows the delivery id learns nothing: still 401.
    let (status, answer) = send(github_url.clone(), vec![], body.clone()).await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer.get("executionId").is_none(), "{answer}");
    let (status, again) = send(github_url, signed, body.clone()).await;
    assert_eq!(status, 202);
    assert_eq!(again["duplicate"], true);

    // Stripe: the timestamp is signed too, and old ones are refused.
    let stripe_url = sandbox.hook_url(&stripe, "hook").await;
    let now = chrono::Utc::now().timestamp();
    let (status, answer) = send(
        stripe_url.clone(),
        vec![(
            "stripe-signature",
            stripe_signature(secret, now - 600, &body),
        )],
        body.clone(),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = send(
        stripe_url,
        vec![("stripe-signature", stripe_signature(secret, now, &body))],
        body,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    sandbox.stop().await;
}

#[tokio::test]
async fn a_sync_hook_past_the_edge_deadline_answers_504_with_its_execution() {
    let sandbox = Sandbox::start_with(|config| {
        config.edge.request_timeout_ms = 1_500;
    })
    .await;
    let workflow_id = sandbox
        .create_workflow(
            "Slow reply",
            json!({
                "nodes": [
                    {"id": "hook", "type": "trigger.webhook",
                     "parameters": {"path": "slow", "mode": "sync", "respond_node": "after",
                                    "response_timeout_ms": 30000}},
                    {"id": "pause", "type": "delay", "parameters": {"ms": 4000}},
                    {"id": "after", "type": "set", "parameters": {"values": {"done": true}}}
                ],
                "edges": [{"from": "hook", "to": "pause"}, {"from": "pause", "to": "after"}]
            }),
        )
        .await;
    let response = sandbox
        .http
        .post(sandbox.hook_url(&workflow_id, "hook").await)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    let header = response.headers()["x-tyboo-execution-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["execution_id"], header.as_str(), "{body}");
    // The execution keeps running and finishes on its own.
    let execution = sandbox.wait_for_execution(&header).await;
    assert_eq!(execution["status"], "EXECUTION_STATUS_SUCCEEDED");
    sandbox.stop().await;
}

#[tokio::test]
async fn json_numbers_leave_the_platform_as_they_were_sent() {
    let sandbox = Sandbox::start().await;
    let workflow_id = sandbox
        .create_workflow(
            "Numbers",
            json!({
                "nodes": [
                    {"id": "hook", "type": "trigger.webhook", "parameters": {"path": "numbers"}},
                    {"id": "shape", "type": "transform",
                     "parameters": {"program": "{qty: .trigger.body.qty, total: (.trigger.body.qty * .trigger.body.price), half: (.trigger.body.qty / 2)}"}}
                ],
                "edges": [{"from": "hook", "to": "shape"}]
            }),
        )
        .await;
    let accepted: Value = sandbox
        .http
        .post(sandbox.hook_url(&workflow_id, "hook").await)
        .header("content-type", "application/json")
        .body(r#"{"qty": 3, "price": 2.5, "big": 9007199254740991, "negative": -12}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let execution_id = accepted["executionId"].as_str().unwrap().to_owned();
    sandbox.wait_for_execution(&execution_id).await;
    let text = sandbox
        .get_text(&format!("/v1/executions/{execution_id}"))
        .await;
    for expected in [
        r#""qty":3"#,
        r#""price":2.5"#,
        r#""big":9007199254740991"#,
        r#""negative":-12"#,
        r#""total":7.5"#,
        r#""half":1.5"#,
    ] {
        assert!(text.contains(expected), "{expected} missing in {text}");
    }
    // Not the number with a fraction (timestamps may hold "3.0" themselves).
    for unexpected in [r#""qty":3.0"#, r#""negative":-12.0"#, r#""big":9.0"#] {
        assert!(!text.contains(unexpected), "{unexpected} in {text}");
    }
    sandbox.stop().await;
}

/// Integers past ±2^53, which a double cannot hold, come back exactly as
/// sent: in a sync webhook's answer, in the execution's input and in node
/// outputs, whether they came in a webhook body or an API start.
#[tokio::test]
async fn integers_beyond_two_to_the_53_stay_exact() {
    let sandbox = Sandbox::start().await;
    let hooked = sandbox
        .create_workflow(
            "Big integers",
            json!({
                "nodes": [
                    {"id": "hook", "type": "trigger.webhook",
                     "parameters": {"path": "ids", "mode": "sync", "respond_node": "echo"}},
                    {"id": "echo", "type": "set", "parameters": {"values": {"seen": true}, "include_input": true}}
                ],
                "edges": [{"from": "hook", "to": "echo"}]
            }),
        )
        .await;
    let sent = r#"{"id": 9007199254740993, "max": 18446744073709551615, "min": -9223372036854775808, "ratio": 3.0}"#;
    let expected = [
        r#""id":9007199254740993"#,
        r#""max":18446744073709551615"#,
        r#""min":-9223372036854775808"#,
        r#""ratio":3.0"#,
    ];
    let answer = sandbox
        .http
        .post(sandbox.hook_url(&hooked, "hook").await)
        .header("content-type", "application/json")
        .body(sent)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let execution_id = answer.headers()["x-tyboo-execution-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = answer.text().await.unwrap();
    for number in expected {
        assert!(
            text.contains(number),
            "{number} missing in the answer {text}"
        );
    }
    let text = sandbox
        .get_text(&format!("/v1/executions/{execution_id}"))
        .await;
    for number in expected {
        // The input, the trigger's output, the echo's input and output.
        assert!(
            text.matches(number).count() >= 4,
            "{number} not everywhere in {text}"
        );
    }

    // Through the API: the request's input is read exactly too.
    let manual = sandbox
        .create_workflow(
            "Big integers by API",
            json!({
                "nodes": [
                    {"id": "start", "type": "trigger.manual"},
                    {"id": "echo", "type": "set", "parameters": {"values": {}, "include_input": true}}
                ],
                "edges": [{"from": "start", "to": "echo"}]
            }),
        )
        .await;
    let started = sandbox
        .http
        .post(sandbox.url(&format!("/v1/workflows/{manual}/executions")))
        .bearer_auth(&sandbox.owner_key)
        .header("content-type", "application/json")
        .body(format!(r#"{{"input": {sent}}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let text = started.text().await.unwrap();
    for number in expected {
        assert!(text.contains(number), "{number} missing in {text}");
    }
    let execution_id = serde_json::from_str::<Value>(&text).unwrap()["execution"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sandbox.wait_for_execution(&execution_id).await;
    let text = sandbox
        .get_text(&format!("/v1/executions/{execution_id}/node-runs"))
        .await;
    for number in expected {
        assert!(
            text.contains(number),
            "{number} missing in the node runs {text}"
        );
    }

    // Over native gRPC the value is its text, exact as well.
    use tyboo_proto::executor::execution_service_client::ExecutionServiceClient;
    let mut client = ExecutionServiceClient::new(sandbox.edge_channel().await);
    let started = client
        .start_execution(crate::sandbox::with_key(
            tyboo_proto::executor::StartExecutionRequest {
                workflow_id: manual.clone(),
                input: Some(tyboo_proto::common::Json {
                    text: r#"{"id":9007199254740993}"#.to_owned(),
                }),
                ..Default::default()
            },
            &sandbox.owner_key,
        ))
        .await
        .unwrap()
        .into_inner();
    let input = started.execution.unwrap().input.unwrap().text;
    assert_eq!(input, r#"{"id":9007199254740993}"#);
    let refused = client
        .start_execution(crate::sandbox::with_key(
            tyboo_proto::executor::StartExecutionRequest {
                workflow_id: manual.clone(),
                input: Some(tyboo_proto::common::Json {
                    text: "{not json".to_owned(),
                }),
                ..Default::default()
            },
            &sandbox.owner_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("input"), "{refused:?}");
    sandbox.stop().await;
}

/// `depth` levels of objects around a number.
fn nested(depth: usize) -> String {
    let mut text = "1".to_owned();
    for _ in 0..depth {
        text = format!("{{\"a\":{text}}}");
    }
    text
}

#[tokio::test]
async fn deep_json_is_refused_where_it_enters_and_never_breaks_a_listing() {
    let sandbox = Sandbox::start().await;
    let limit = sandbox_limit();
    let hook_workflow = sandbox
        .create_workflow(
            "Deep hook",
            json!({
                "nodes": [
                    {"id": "hook", "type": "trigger.webhook", "parameters": {"path": "deep"}},
                    {"id": "done", "type": "set", "parameters": {"values": {"ok": true}}}
                ],
                "edges": [{"from": "hook", "to": "done"}]
            }),
        )
        .await;
    let hook = sandbox.hook_url(&hook_workflow, "hook").await;
    let post_hook = |body: String| {
        let http = sandbox.http.clone();
        let hook = hook.clone();
        async move {
            let response = http
                .post(hook)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // The body sits under `body`: one level less than the limit is the most.
    let (status, accepted) = post_hook(nested(limit - 1)).await;
    assert_eq!(status, 202, "{accepted}");
    for depth in [limit, 50, 127, 200] {
        let (status, error) = post_hook(nested(depth)).await;
        assert_eq!(status, 400, "depth {depth}: {error}");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("body"),
            "depth {depth}: {error}"
        );
    }

    // API input: exactly the limit is accepted, one more refused.
    let manual = sandbox
        .create_workflow(
            "Deep input",
            json!({
                "nodes": [
                    {"id": "start", "type": "trigger.manual"},
                    {"id": "echo", "type": "transform", "parameters": {"program": ".trigger"}}
                ],
                "edges": [{"from": "start", "to": "echo"}]
            }),
        )
        .await;
    let input: Value = serde_json::from_str(&nested(limit)).unwrap();
    let deepest = sandbox.start_execution(&manual, input).await;
    let too_deep: Value = serde_json::from_str(&nested(limit + 1)).unwrap();
    let (status, error) = sandbox
        .post(
            &format!("/v1/workflows/{manual}/executions"),
            Some(&sandbox.owner_key),
            json!({"input": too_deep}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("max_json_depth"),
        "{error}"
    );
    // A node whose output would nest deeper fails, and says why.
    let deeper = sandbox
        .create_workflow(
            "Deeper output",
            json!({
                "nodes": [
                    {"id": "start", "type": "trigger.manual"},
                    {"id": "wrap", "type": "transform", "parameters": {"program": "{wrapped: .trigger}"}}
                ],
                "edges": [{"from": "start", "to": "wrap"}]
            }),
        )
        .await;
    let input: Value = serde_json::from_str(&nested(limit)).unwrap();
    let failed = sandbox
        .wait_for_execution(&sandbox.start_execution(&deeper, input).await)
        .await;
    assert_eq!(failed["status"], "EXECUTION_STATUS_FAILED", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("max_json_depth"),
        "{failed}"
    );

    // Whatever was stored stays readable: the deepest execution, and every
    // listing of the workspace.
    let execution = sandbox.wait_for_execution(&deepest).await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    let (status, listed) = sandbox.get("/v1/executions", &sandbox.owner_key).await;
    assert_eq!(status, 200, "{listed}");
    let (status, _) = sandbox.get("/v1/dead-letters", &sandbox.owner_key).await;
    assert_eq!(status, 200);
    sandbox.stop().await;
}

fn sandbox_limit() -> usize {
    tyboo_executor::config::DEFAULT_MAX_JSON_DEPTH
}

#[tokio::test]
async fn a_retried_start_with_an_idempotency_key_starts_one_execution() {
    let sandbox = Sandbox::start().await;
    let workflow_id = sandbox
        .create_workflow(
            "Retried",
            json!({
                "nodes": [
                    {"id": "start", "type": "trigger.manual"},
                    {"id": "done", "type": "set", "parameters": {"values": {"ok": true}}}
                ],
                "edges": [{"from": "start", "to": "done"}]
            }),
        )
        .await;
    let start = |key: Option<&'static str>, body: Value| {
        let http = sandbox.http.clone();
        let url = sandbox.url(&format!("/v1/workflows/{workflow_id}/executions"));
        let owner = sandbox.owner_key.clone();
        async move {
            let mut request = http.post(url).bearer_auth(owner).json(&body);
            if let Some(key) = key {
                request = request.header("idempotency-key", key);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            let started: Value = response.json().await.unwrap();
            started["execution"]["id"].as_str().unwrap().to_owned()
        }
    };
    // A client that lost the answer retries with the same header.
    let first = start(Some("checkout-42"), json!({"input": {}})).await;
    let retried = start(Some("checkout-42"), json!({"input": {}})).await;
    assert_eq!(first, retried);
    // The field in the body works the same, for gRPC-minded clients.
    let by_field = start(None, json!({"input": {}, "idempotencyKey": "checkout-43"})).await;
    assert_eq!(
        start(None, json!({"input": {}, "idempotencyKey": "checkout-43"})).await,
        by_field
    );
    assert_ne!(by_field, first);
    // Without a key every call is a new execution.
    assert_ne!(
        start(None, json!({"input": {}})).await,
        start(None, json!({"input": {}})).await
    );
    let (_, listed) = sandbox
        .get(
            &format!("/v1/executions?workflowId={workflow_id}"),
            &sandbox.owner_key,
        )
        .await;
    assert_eq!(
        listed["executions"].as_array().unwrap().len(),
        4,
        "{listed}"
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn large_inputs_never_break_a_workspaces_listing() {
    let sandbox = Sandbox::start().await;
    let workflow_id = sandbox
        .create_workflow(
            "Big inputs",
            json!({
                "nodes": [
                    {"id": "hook", "type": "trigger.webhook", "parameters": {"path": "big"}},
                    {"id": "done", "type": "set", "parameters": {"values": {"ok": true}}}
                ],
                "edges": [{"from": "hook", "to": "done"}]
            }),
        )
        .await;
    let hook = sandbox.hook_url(&workflow_id, "hook").await;
    // Five bodies of 900 KB: together past the 4 MiB message cap.
    let body = json!({"blob": "x".repeat(900_000)});
    let mut ids = Vec::new();
    for _ in 0..5 {
        let response = sandbox.http.post(&hook).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 202);
        let accepted: Value = response.json().await.unwrap();
        ids.push(accepted["executionId"].as_str().unwrap().to_owned());
    }
    let (status, listed) = sandbox.get("/v1/executions", &sandbox.owner_key).await;
    assert_eq!(
        status,
        200,
        "{}",
        &listed.to_string()[..200.min(listed.to_string().len())]
    );
    let listed = listed["executions"].as_array().unwrap();
    assert_eq!(listed.len(), 5);
    assert!(
        listed
            .iter()
            .all(|execution| execution.get("input").is_none())
    );
    // One execution still carries its whole input.
    let (status, one) = sandbox
        .get(&format!("/v1/executions/{}", ids[0]), &sandbox.owner_key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        one["execution"]["input"]["body"]["blob"]
            .as_str()
            .map(str::len),
        Some(900_000)
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn an_execution_bigger_than_one_message_stays_readable() {
    let sandbox = Sandbox::start().await;
    // Six nodes each copying a 900 KB string: with their inputs, about
    // 11 MB of node runs, well past the 4 MiB message cap.
    let mut nodes = vec![json!({"id": "start", "type": "trigger.manual"})];
    let mut edges = Vec::new();
    let mut previous = "start".to_owned();
    for index in 0..6 {
        let id = format!("copy{index}");
        nodes.push(json!({"id": id, "type": "transform",
                          "parameters": {"program": "{blob: .trigger.blob}"}}));
        edges.push(json!({"from": previous, "to": id}));
        previous = id;
    }
    let workflow_id = sandbox
        .create_workflow("Big data", json!({"nodes": nodes, "edges": edges}))
        .await;
    let execution_id = sandbox
        .start_execution(&workflow_id, json!({"blob": "x".repeat(900_000)}))
        .await;
    let execution = sandbox.wait_for_execution(&execution_id).await;
    assert_eq!(execution["status"], "EXECUTION_STATUS_SUCCEEDED");
    let runs = execution["nodeRuns"].as_array().unwrap();
    assert_eq!(runs.len(), 7);
    assert!(
        runs.iter().any(|run| run["dataOmitted"] == true),
        "some runs should have been left without data"
    );
    // Paging gives every run with its data.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let (status, page) = sandbox
            .get(
                &format!("/v1/executions/{execution_id}/node-runs?pageToken={token}"),
                &sandbox.owner_key,
            )
            .await;
        assert_eq!(
            status,
            200,
            "{}",
            &page.to_string()[..page.to_string().len().min(300)]
        );
        for run in page["nodeRuns"].as_array().unwrap() {
            assert_ne!(run["dataOmitted"], true, "one run fits a page on its own");
            seen.push((
                run["nodeId"].as_str().unwrap().to_owned(),
                run["output"]["blob"].as_str().map(str::len),
            ));
        }
        token = page["nextPageToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            break;
        }
    }
    let copies: Vec<_> = seen
        .iter()
        .filter(|(node, _)| node.starts_with("copy"))
        .collect();
    assert_eq!(copies.len(), 6, "{seen:?}");
    assert!(
        copies.iter().all(|(_, blob)| *blob == Some(900_000)),
        "{seen:?}"
    );
    // Another workspace sees no such execution.
    let (status, created) = sandbox
        .post(
            "/v1/workspaces",
            Some(&sandbox.owner_key),
            json!({"name": "Other"}),
        )
        .await;
    assert_eq!(status, 200);
    let other = created["ownerApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = sandbox
        .get(&format!("/v1/executions/{execution_id}/node-runs"), &other)
        .await;
    assert_eq!(status, 404);
    let (status, _) = sandbox
        .get(
            &format!("/v1/executions/{execution_id}/node-runs?pageToken=garbage"),
            &sandbox.owner_key,
        )
        .await;
    assert_eq!(status, 400);
    sandbox.stop().await;
}
