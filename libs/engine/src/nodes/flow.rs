//! Nodes that compute or route without I/O: transform, if, switch, merge, delay, set.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{NodeRun, completed};
use crate::catalog::SWITCH_DEFAULT_PORT;
use crate::error::NodeError;
use crate::expr::{self, ProgramSource};
use crate::node::NodeOutcome;

/// Evaluates programs on a blocking thread: jq evaluation is synchronous and bounded
/// by the expression limits, and must not stall the async runtime meanwhile.
async fn evaluate(
    run: &NodeRun<'_>,
    programs: Vec<ProgramSource>,
) -> Result<Vec<Vec<Value>>, NodeError> {
    let node_id = run.node.id.clone();
    let document = run.document.clone();
    let limits = run.config.limits.expression.clone();
    let evaluator = run.evaluator.clone();
    tokio::task::spawn_blocking(move || evaluator.evaluate(&node_id, programs, document, &limits))
        .await
        .map_err(|_| run.fail("jq evaluation stopped unexpectedly"))?
}

#[derive(Deserialize)]
struct TransformParameters {
    program: String,
}

pub(super) async fn transform(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: TransformParameters = run.parameters()?;
    let programs = vec![ProgramSource {
        parameter: "program".to_owned(),
        program: parameters.program,
    }];
    let mut results = evaluate(&run, programs).await?;
    Ok(completed(expr::single_value(
        results.pop().unwrap_or_default(),
    )))
}

#[derive(Deserialize)]
struct IfParameters {
    condition: String,
}

fn holds(outputs: &[Value]) -> bool {
    outputs.first().is_some_and(expr::is_truthy)
}

pub(super) async fn if_node(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: IfParameters = run.parameters()?;
    let programs = vec![ProgramSource {
        parameter: "condition".to_owned(),
        program: parameters.condition,
    }];
    let results = evaluate(&run, programs).await?;
    let port = if results.first().is_some_and(|outputs| holds(outputs)) {
        "true"
    } else {
        "false"
    };
    Ok(NodeOutcome::Completed {
        port: port.to_owned(),
        output: run.input(),
        usage: None,
    })
}

#[derive(Deserialize)]
struct SwitchCase {
    name: String,
    condition: String,
}

#[derive(Deserialize)]
struct SwitchParameters {
    cases: Vec<SwitchCase>,
}

pub(super) async fn switch(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: SwitchParameters = run.parameters()?;
    let programs = parameters
        .cases
        .iter()
        .enumerate()
        .map(|(index, case)| ProgramSource {
            parameter: format!("cases[{index}].condition"),
            program: case.condition.clone(),
        })
        .collect();
    let results = evaluate(&run, programs).await?;
    let port = parameters
        .cases
        .iter()
        .zip(&results)
        .find(|(_, outputs)| holds(outputs))
        .map(|(case, _)| case.name.clone())
        .unwrap_or_else(|| SWITCH_DEFAULT_PORT.to_owned());
    Ok(NodeOutcome::Completed {
        port,
        output: run.input(),
        usage: None,
    })
}

#[derive(Deserialize)]
struct MergeParameters {
    #[serde(default)]
    mode: Option<String>,
}

pub(super) fn merge(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: MergeParameters = run.parameters()?;
    let inputs = run.context.inputs.clone();
    let output = match parameters.mode.as_deref().unwrap_or("inputs") {
        "concat" => {
            let mut joined = Vec::new();
            for (index, input) in inputs.into_iter().enumerate() {
                match input {
                    Value::Array(items) => joined.extend(items),
                    other => {
                        return Err(run.fail_parameter(
                            "mode",
                            format!(
                                "concat needs array inputs, input {index} is {}",
                                type_name(&other)
                            ),
                        ));
                    }
                }
            }
            Value::Array(joined)
        }
        "merge_objects" => {
            let mut merged = serde_json::Map::new();
            for (index, input) in inputs.into_iter().enumerate() {
                match input {
                    Value::Object(fields) => merged.extend(fields),
                    other => {
                        return Err(run.fail_parameter(
                            "mode",
                            format!(
                                "merge_objects needs object inputs, input {index} is {}",
                                type_name(&other)
                            ),
                        ));
                    }
                }
            }
            Value::Object(merged)
        }
        _ => serde_json::json!({ "inputs": inputs }),
    };
    Ok(completed(output))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Deserialize)]
struct DelayParameters {
    #[serde(default)]
    ms: Option<u64>,
    #[serde(default)]
    until: Option<String>,
}

/// Delays do not hold a worker: the executor parks the step until `until` and then
/// records the input as the node's output.
pub(super) fn delay(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: DelayParameters = run.parameters()?;
    let max_ms = run.config.limits.delay_max_ms;
    let now = Utc::now();
    let until = match (parameters.ms, parameters.until) {
        (Some(ms), None) => {
            if ms > max_ms {
                return Err(
                    run.fail_parameter("ms", format!("{ms} ms exceeds the {max_ms}-ms limit"))
                );
            }
            now + chrono::Duration::milliseconds(ms as i64)
        }
        (None, Some(until)) => {
            let until = DateTime::parse_from_rfc3339(&until)
                .map_err(|_| run.fail_parameter("until", "must be an RFC 3339 time"))?
                .with_timezone(&Utc);
            if until - now > chrono::Duration::milliseconds(max_ms as i64) {
                return Err(run.fail_parameter("until", format!("is more than {max_ms} ms away")));
            }
            until
        }
        _ => return Err(run.fail_parameter("ms", "give exactly one of `ms` and `until`")),
    };
    if until <= now {
        return Ok(completed(run.input()));
    }
    Ok(NodeOutcome::Wait {
        until,
        output: run.input(),
    })
}

#[derive(Deserialize)]
struct SetParameters {
    values: serde_json::Map<String, Value>,
    #[serde(default)]
    include_input: bool,
}

pub(super) fn set(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: SetParameters = run.parameters()?;
    let mut output = match (parameters.include_input, run.input()) {
        (true, Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    output.extend(parameters.values);
    Ok(completed(Value::Object(output)))
}
