//! transform, if, switch, set, merge and delay through `Engine::run_node`.

mod common;

use chrono::Utc;
use serde_json::json;
use tyboo_engine::{EngineConfig, NodeOutcome, RunLimits};

use common::{context, loopback_engine, node};

fn completed(outcome: NodeOutcome) -> (String, serde_json::Value) {
    match outcome {
        NodeOutcome::Completed { port, output, .. } => (port, output),
        other => panic!("expected completion, got {other:?}"),
    }
}

#[tokio::test]
async fn transform_reshapes_with_jq() {
    let engine = loopback_engine();
    let mut run_context = context(
        "shape",
        vec![json!({"items": [{"price": 2, "qty": 3}, {"price": 5, "qty": 1}]})],
    );
    run_context
        .nodes
        .insert("fetch".to_owned(), json!({"status": 200}));
    let spec = node(
        "shape",
        "transform",
        json!({"program": "{total: (.input.items | map(.price * .qty) | add), status: .nodes.fetch.status, who: .trigger.customer.name}"}),
    );
    let (port, output) = completed(engine.run_node(&spec, &run_context).await.expect("runs"));
    assert_eq!(port, "main");
    assert_eq!(output, json!({"total": 11, "status": 200, "who": "Ada"}));

    let several = node(
        "many",
        "transform",
        json!({"program": ".input.items[].price"}),
    );
    let (_, output) = completed(
        engine
            .run_node(
                &several,
                &context("many", vec![json!({"items": [{"price": 1}, {"price": 2}]})]),
            )
            .await
            .expect("runs"),
    );
    assert_eq!(output, json!([1, 2]));
}

#[tokio::test]
async fn if_picks_a_port_and_passes_its_input_on() {
    let engine = loopback_engine();
    let spec = node("big", "if", json!({"condition": ".input.total > 100"}));
    let (port, output) = completed(
        engine
            .run_node(&spec, &context("big", vec![json!({"total": 250})]))
            .await
            .expect("runs"),
    );
    assert_eq!((port.as_str(), output), ("true", json!({"total": 250})));
    let (port, _) = completed(
        engine
            .run_node(&spec, &context("big", vec![json!({"total": 5})]))
            .await
            .expect("runs"),
    );
    assert_eq!(port, "false");
}

#[tokio::test]
async fn switch_takes_the_first_matching_case_else_default() {
    let engine = loopback_engine();
    let spec = node(
        "route",
        "switch",
        json!({"cases": [
            {"name": "gold", "condition": ".trigger.customer.tier == \"gold\""},
            {"name": "rich", "condition": ".trigger.amount > 10"}
        ]}),
    );
    let (port, _) = completed(
        engine
            .run_node(&spec, &context("route", vec![]))
            .await
            .expect("runs"),
    );
    assert_eq!(port, "gold");

    let none = node(
        "route",
        "switch",
        json!({"cases": [{"name": "never", "condition": "false"}]}),
    );
    let (port, _) = completed(
        engine
            .run_node(&none, &context("route", vec![]))
            .await
            .expect("runs"),
    );
    assert_eq!(port, "default");
}

#[tokio::test]
async fn set_lays_values_over_its_input_when_asked() {
    let engine = loopback_engine();
    let spec = node(
        "set",
        "set",
        json!({"values": {"b": 2, "a": "{{ .input.a * 10 }}"}, "include_input": true}),
    );
    let (_, output) = completed(
        engine
            .run_node(&spec, &context("set", vec![json!({"a": 1, "c": 3})]))
            .await
            .expect("runs"),
    );
    assert_eq!(output, json!({"a": 10, "b": 2, "c": 3}));
}

#[tokio::test]
async fn merge_modes() {
    let engine = loopback_engine();
    let inputs = vec![json!({"a": 1}), json!({"b": 2})];
    let (_, output) = completed(
        engine
            .run_node(
                &node("m", "merge", json!({})),
                &context("m", inputs.clone()),
            )
            .await
            .expect("runs"),
    );
    assert_eq!(output, json!({"inputs": [{"a": 1}, {"b": 2}]}));
    let (_, output) = completed(
        engine
            .run_node(
                &node("m", "merge", json!({"mode": "merge_objects"})),
                &context("m", inputs.clone()),
            )
            .await
            .expect("runs"),
    );
    assert_eq!(output, json!({"a": 1, "b": 2}));
    let (_, output) = completed(
        engine
            .run_node(
                &node("m", "merge", json!({"mode": "concat"})),
                &context("m", vec![json!([1]), json!([2, 3])]),
            )
            .await
            .expect("runs"),
    );
    assert_eq!(output, json!([1, 2, 3]));
    let error = engine
        .run_node(
            &node("m", "merge", json!({"mode": "concat"})),
            &context("m", inputs),
        )
        .await
        .expect_err("objects cannot be concatenated");
    assert!(error.message.contains("concat needs array inputs"));
}

#[tokio::test]
async fn delay_asks_the_executor_to_wait_without_holding_the_worker() {
    let engine = loopback_engine();
    let before = Utc::now();
    let outcome = engine
        .run_node(
            &node("wait", "delay", json!({"ms": 60_000})),
            &context("wait", vec![json!({"x": 1})]),
        )
        .await
        .expect("runs");
    let NodeOutcome::Wait { until, output } = outcome else {
        panic!("expected a wait")
    };
    assert!(
        until >= before + chrono::Duration::seconds(59)
            && until <= Utc::now() + chrono::Duration::seconds(61)
    );
    assert_eq!(output, json!({"x": 1}));

    let (port, _) = completed(
        engine
            .run_node(
                &node("wait", "delay", json!({"until": "2001-01-01T00:00:00Z"})),
                &context("wait", vec![]),
            )
            .await
            .expect("a past time completes at once"),
    );
    assert_eq!(port, "main");

    let limited = tyboo_engine::Engine::new(EngineConfig {
        limits: RunLimits {
            delay_max_ms: 1_000,
            ..RunLimits::default()
        },
        ..EngineConfig::default()
    })
    .expect("engine");
    let error = limited
        .run_node(
            &node("wait", "delay", json!({"ms": 5_000})),
            &context("wait", vec![]),
        )
        .await
        .expect_err("too long");
    assert_eq!(error.parameter.as_deref(), Some("ms"));
}

#[tokio::test]
async fn outputs_past_the_node_cap_fail_permanently() {
    let engine = tyboo_engine::Engine::new(EngineConfig {
        limits: RunLimits {
            node_output_bytes: 100,
            ..RunLimits::default()
        },
        ..EngineConfig::default()
    })
    .expect("engine");
    let spec = node("big", "transform", json!({"program": "[range(100)]"}));
    let error = engine
        .run_node(&spec, &context("big", vec![]))
        .await
        .expect_err("too big");
    assert_eq!(error.class, tyboo_engine::ErrorClass::Permanent);
    assert!(
        error.message.ends_with("exceeds the 100-byte cap"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn triggers_are_not_run_by_the_engine() {
    let engine = loopback_engine();
    let error = engine
        .run_node(
            &node("t", "trigger.manual", json!({})),
            &context("t", vec![]),
        )
        .await
        .expect_err("triggers are recorded, not run");
    assert!(error.message.contains("trigger"));
}
