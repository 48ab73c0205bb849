//! `merge`: waits for all its inputs and joins them the way `mode` says.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalog::{Category, NodeTypeInfo};
use crate::error::NodeError;
use crate::graph::Pool;
use crate::node::NodeOutcome;
use crate::nodes::kind::{NodeFuture, NodeKind, object_schema};
use crate::nodes::{NodeRun, completed};

const DEFAULT_MODE: &str = "inputs";

#[derive(Debug)]
pub(crate) struct Merge;

impl NodeKind for Merge {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "merge",
            title: "Merge",
            description: "Waits for all its inputs. inputs: {inputs: [...]}; concat: the input arrays joined; merge_objects: the input objects merged, later ones winning.",
            category: Category::Flow,
            pool: Pool::Default,
            parameters_schema: object_schema(
                json!({"mode": {"type": "string", "enum": ["inputs", "concat", "merge_objects"], "default": DEFAULT_MODE}}),
                &[],
            ),
            credential_type: None,
            kind: self,
        }
    }

    fn run<'r>(&self, run: NodeRun<'r>) -> NodeFuture<'r> {
        Box::pin(std::future::ready(execute(run)))
    }
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    mode: Option<String>,
}

fn execute(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: Parameters = run.parameters()?;
    let inputs = run.context.inputs.clone();
    let output = match parameters.mode.as_deref().unwrap_or(DEFAULT_MODE) {
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
        _ => json!({ "inputs": inputs }),
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
