//! `delay`: passes its input on after a while or at a time, without holding a worker:
//! the executor parks the step until then and records the input as the output.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::catalog::{Category, NodeTypeInfo};
use crate::error::{NodeError, ValidationError};
use crate::graph::{NodeSpec, Pool};
use crate::node::NodeOutcome;
use crate::nodes::kind::{NodeFuture, NodeKind, object_schema};
use crate::nodes::{NodeRun, completed};

#[derive(Debug)]
pub(crate) struct Delay;

impl NodeKind for Delay {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "delay",
            title: "Delay",
            description: "Passes its input on after ms milliseconds, or at the time until; exactly one of them.",
            category: Category::Flow,
            pool: Pool::Default,
            parameters_schema: object_schema(
                json!({
                    "ms": {"type": "integer", "minimum": 0},
                    "until": {"type": "string", "format": "rfc3339"}
                }),
                &[],
            ),
            credential_type: None,
            kind: self,
        }
    }

    fn check_rules(&self, node: &NodeSpec) -> Result<(), ValidationError> {
        let has_ms = node.parameters.get("ms").is_some();
        let has_until = node.parameters.get("until").is_some();
        if has_ms == has_until {
            return Err(ValidationError::node(
                &node.id,
                "parameters.ms",
                "give exactly one of `ms` and `until`",
            ));
        }
        Ok(())
    }

    fn run<'r>(&self, run: NodeRun<'r>) -> NodeFuture<'r> {
        Box::pin(std::future::ready(execute(run)))
    }
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    ms: Option<u64>,
    #[serde(default)]
    until: Option<String>,
}

fn execute(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: Parameters = run.parameters()?;
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
