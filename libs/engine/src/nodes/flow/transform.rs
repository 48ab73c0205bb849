//! `transform`: a jq program over the expression document; its result is the output.

use serde::Deserialize;
use serde_json::json;

use super::evaluate;
use crate::catalog::{Category, NodeTypeInfo, PathSegment};
use crate::error::NodeError;
use crate::expr::{self, ProgramSource};
use crate::graph::Pool;
use crate::node::NodeOutcome;
use crate::nodes::kind::{NodeFuture, NodeKind, object_schema};
use crate::nodes::{NodeRun, completed};

#[derive(Debug)]
pub(crate) struct Transform;

impl NodeKind for Transform {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "transform",
            title: "Transform (jq)",
            description: "Runs a jq program over {trigger, nodes, input, inputs, execution}. One result is the output; several become an array.",
            category: Category::Action,
            pool: Pool::Default,
            parameters_schema: object_schema(
                json!({"program": {"type": "string", "format": "jq"}}),
                &["program"],
            ),
            credential_type: None,
            kind: self,
        }
    }

    fn is_program_parameter(&self, path: &[PathSegment<'_>]) -> bool {
        matches!(path, [PathSegment::Key("program")])
    }

    fn run<'r>(&self, run: NodeRun<'r>) -> NodeFuture<'r> {
        Box::pin(execute(run))
    }
}

#[derive(Deserialize)]
struct Parameters {
    program: String,
}

async fn execute(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: Parameters = run.parameters()?;
    let programs = vec![ProgramSource {
        parameter: "program".to_owned(),
        program: parameters.program,
    }];
    let mut results = evaluate(&run, programs).await?;
    Ok(completed(expr::single_value(
        results.pop().unwrap_or_default(),
    )))
}
