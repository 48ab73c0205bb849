//! `set`: outputs fixed values, laid over its input object when asked.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalog::{Category, NodeTypeInfo};
use crate::error::NodeError;
use crate::graph::Pool;
use crate::node::NodeOutcome;
use crate::nodes::kind::{NodeFuture, NodeKind, object_schema};
use crate::nodes::{NodeRun, completed};

#[derive(Debug)]
pub(crate) struct Set;

impl NodeKind for Set {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "set",
            title: "Set",
            description: "Outputs values; with include_input, the input object with values laid over it.",
            category: Category::Action,
            pool: Pool::Default,
            parameters_schema: object_schema(
                json!({
                    "values": {"type": "object"},
                    "include_input": {"type": "boolean", "default": false}
                }),
                &["values"],
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
    values: serde_json::Map<String, Value>,
    #[serde(default)]
    include_input: bool,
}

fn execute(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: Parameters = run.parameters()?;
    let mut output = match (parameters.include_input, run.input()) {
        (true, Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    output.extend(parameters.values);
    Ok(completed(Value::Object(output)))
}
