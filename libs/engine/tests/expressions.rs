//! `{{ jq }}` templates and jq programs: values, interpolation, errors that name node and
//! parameter, and the bounds on runaway programs.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tyboo_engine::{ErrorClass, ExpressionLimits, NodeOutcome, render_parameters};

use common::{context, loopback_engine, node};

fn document() -> serde_json::Value {
    let mut context = context("greet", vec![json!({"count": 3})]);
    context.nodes.insert(
        "lookup".to_owned(),
        json!({"ids": [1, 2, 3], "label": "team"}),
    );
    context.expression_document()
}

#[test]
fn a_whole_template_is_a_value_and_mixed_text_interpolates() {
    let spec = node(
        "greet",
        "set",
        json!({"values": {
            "ids": "{{ .nodes.lookup.ids }}",
            "count": "{{ .input.count + 1 }}",
            "line": "Hello {{ .trigger.customer.name }}, ids {{ .nodes.lookup.ids }}, {{ .input.count }} items",
            "nothing": "{{ empty }}",
            "several": "{{ .nodes.lookup.ids[] }}",
            "node": "{{ .execution.node_id }}",
            "plain": "no template here"
        }}),
    );
    let rendered =
        render_parameters(&spec, &document(), &ExpressionLimits::default()).expect("renders");
    assert_eq!(
        rendered["values"],
        json!({
            "ids": [1, 2, 3],
            "count": 4,
            "line": "Hello Ada, ids [1,2,3], 3 items",
            "nothing": null,
            "several": [1, 2, 3],
            "node": "greet",
            "plain": "no template here"
        })
    );
}

#[test]
fn errors_name_the_node_and_parameter() {
    let spec = node(
        "greet",
        "set",
        json!({"values": {"broken": "{{ .trigger.amount | ascii_downcase }}"}}),
    );
    let error =
        render_parameters(&spec, &document(), &ExpressionLimits::default()).expect_err("fails");
    assert_eq!(error.class, ErrorClass::Permanent);
    assert_eq!(error.parameter.as_deref(), Some("values.broken"));
    assert!(
        error
            .message
            .starts_with("node `greet` parameter `values.broken`:"),
        "{}",
        error.message
    );
}

#[test]
fn runaway_programs_are_stopped_within_the_budget() {
    let limits = ExpressionLimits {
        timeout_ms: 500,
        ..ExpressionLimits::default()
    };
    for program in [
        "last(range(1e15))",
        "[limit(1e12; repeat(1))] | length",
        "reduce range(1e12) as $x (0; . + $x)",
        ".input | last(recurse(. + 1))",
        // Deep nesting: dropping the value recurses, which the evaluator's stack must hold.
        "reduce range(3000000) as $x (null; [.]) | length",
        "\"[\" * 1000000 | fromjson",
    ] {
        let spec = node(
            "loop",
            "set",
            json!({"values": {"x": format!("{{{{ {program} }}}}")}}),
        );
        let started = Instant::now();
        let error = render_parameters(&spec, &json!({"input": 0}), &limits).expect_err(program);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{program} took {:?}",
            started.elapsed()
        );
        assert_eq!(error.class, ErrorClass::Permanent, "{program}");
        let bounded =
            error.message.contains("exceeded its") || error.message.contains("recursion limit");
        assert!(bounded, "{program}: {}", error.message);
    }
}

#[test]
fn outputs_past_the_cap_are_refused() {
    let limits = ExpressionLimits {
        max_output_bytes: 1_000,
        ..ExpressionLimits::default()
    };
    let spec = node(
        "big",
        "set",
        json!({"values": {"x": "{{ [range(1000)] }}"}}),
    );
    let error = render_parameters(&spec, &json!({}), &limits).expect_err("too big");
    assert!(error.message.contains("1000-byte cap"), "{}", error.message);
}

#[test]
fn the_process_environment_is_not_readable() {
    let spec = node("peek", "set", json!({"values": {"x": "{{ env }}"}}));
    assert!(render_parameters(&spec, &json!({}), &ExpressionLimits::default()).is_err());
    let spec = node("peek", "set", json!({"values": {"x": "{{ $ENV }}"}}));
    assert!(render_parameters(&spec, &json!({}), &ExpressionLimits::default()).is_err());
}

#[tokio::test]
async fn run_node_renders_and_reports_expression_errors_as_permanent() {
    let engine = loopback_engine();
    let spec = node(
        "greet",
        "set",
        json!({"values": {"who": "{{ .trigger.customer.name }}"}}),
    );
    let outcome = engine
        .run_node(&spec, &context("greet", vec![]))
        .await
        .expect("runs");
    assert_eq!(
        outcome,
        NodeOutcome::Completed {
            port: "main".to_owned(),
            output: json!({"who": "Ada"}),
            usage: None
        }
    );

    let typed = node(
        "wait",
        "delay",
        json!({"ms": "{{ .trigger.customer.name }}"}),
    );
    let error = engine
        .run_node(&typed, &context("wait", vec![]))
        .await
        .expect_err("not a number");
    assert_eq!(error.parameter.as_deref(), Some("ms"));
    assert!(
        error.message.contains("must be an integer"),
        "{}",
        error.message
    );
}
