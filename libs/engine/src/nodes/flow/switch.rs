//! `switch`: its input on the port of the first case whose condition holds, else on
//! `default`.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{evaluate, holds};
use crate::catalog::{Category, NodeTypeInfo, PathSegment};
use crate::error::{NodeError, ValidationError};
use crate::expr::ProgramSource;
use crate::graph::{NodeSpec, Pool};
use crate::node::NodeOutcome;
use crate::nodes::NodeRun;
use crate::nodes::kind::{NodeFuture, NodeKind, object_schema};

/// The port a `switch` emits on when no case matches.
pub const SWITCH_DEFAULT_PORT: &str = "default";

#[derive(Debug)]
pub(crate) struct Switch;

impl NodeKind for Switch {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "switch",
            title: "Switch",
            description: "Emits its input on the port of the first case whose condition holds, else on default.",
            category: Category::Flow,
            pool: Pool::Default,
            parameters_schema: object_schema(
                json!({
                    "cases": {"type": "array", "minItems": 1, "maxItems": 50, "items": object_schema(json!({
                        "name": {"type": "string", "format": "identifier", "maxLength": 64},
                        "condition": {"type": "string", "format": "jq"}
                    }), &["name", "condition"])}
                }),
                &["cases"],
            ),
            credential_type: None,
            kind: self,
        }
    }

    fn output_ports(&self, parameters: &Value) -> Vec<String> {
        let mut ports: Vec<String> = saved_case_names(parameters)
            .map(|(_, name)| name.to_owned())
            .collect();
        ports.push(SWITCH_DEFAULT_PORT.to_owned());
        ports
    }

    fn is_program_parameter(&self, path: &[PathSegment<'_>]) -> bool {
        matches!(
            path,
            [
                PathSegment::Key("cases"),
                PathSegment::Index(_),
                PathSegment::Key("condition")
            ]
        )
    }

    fn check_rules(&self, node: &NodeSpec) -> Result<(), ValidationError> {
        let mut seen = HashSet::new();
        for (index, name) in saved_case_names(&node.parameters) {
            if name == SWITCH_DEFAULT_PORT {
                return Err(ValidationError::node(
                    &node.id,
                    format!("parameters.cases[{index}].name"),
                    "`default` is the port for no match and cannot name a case",
                ));
            }
            if !seen.insert(name) {
                return Err(ValidationError::node(
                    &node.id,
                    format!("parameters.cases[{index}].name"),
                    format!("case name `{name}` is used twice"),
                ));
            }
        }
        Ok(())
    }

    fn run<'r>(&self, run: NodeRun<'r>) -> NodeFuture<'r> {
        Box::pin(execute(run))
    }
}

/// The names of the saved cases with their indexes; a case whose name is not text (a
/// template may stand anywhere before rendering) is left out.
fn saved_case_names(parameters: &Value) -> impl Iterator<Item = (usize, &str)> {
    parameters
        .get("cases")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(index, case)| Some((index, case.get("name")?.as_str()?)))
}

#[derive(Deserialize)]
struct SwitchCase {
    name: String,
    condition: String,
}

#[derive(Deserialize)]
struct Parameters {
    cases: Vec<SwitchCase>,
}

async fn execute(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: Parameters = run.parameters()?;
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
