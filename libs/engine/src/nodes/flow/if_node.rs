//! `if`: its input on port `true` or `false`, by the jq truthiness of a condition.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{evaluate, holds};
use crate::catalog::{Category, NodeTypeInfo, PathSegment};
use crate::error::NodeError;
use crate::expr::ProgramSource;
use crate::graph::Pool;
use crate::node::NodeOutcome;
use crate::nodes::NodeRun;
use crate::nodes::kind::{NodeFuture, NodeKind, object_schema};

#[derive(Debug)]
pub(crate) struct If;

impl NodeKind for If {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "if",
            title: "If",
            description: "Emits its input on port true or false, by the jq truthiness of condition.",
            category: Category::Flow,
            pool: Pool::Default,
            parameters_schema: object_schema(
                json!({"condition": {"type": "string", "format": "jq"}}),
                &["condition"],
            ),
            credential_type: None,
            kind: self,
        }
    }

    fn output_ports(&self, _parameters: &Value) -> Vec<String> {
        vec!["true".to_owned(), "false".to_owned()]
    }

    fn is_program_parameter(&self, path: &[PathSegment<'_>]) -> bool {
        matches!(path, [PathSegment::Key("condition")])
    }

    fn run<'r>(&self, run: NodeRun<'r>) -> NodeFuture<'r> {
        Box::pin(execute(run))
    }
}

#[derive(Deserialize)]
struct Parameters {
    condition: String,
}

async fn execute(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: Parameters = run.parameters()?;
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
