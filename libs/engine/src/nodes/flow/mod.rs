//! Nodes that compute or route without I/O: transform, if, switch, merge, delay, set.

mod delay;
mod if_node;
mod merge;
mod set;
mod switch;
mod transform;

use serde_json::Value;

use super::NodeRun;
use crate::error::NodeError;
use crate::expr::{self, ProgramSource};

pub(crate) use delay::Delay;
pub(crate) use if_node::If;
pub(crate) use merge::Merge;
pub(crate) use set::Set;
pub use switch::SWITCH_DEFAULT_PORT;
pub(crate) use switch::Switch;
pub(crate) use transform::Transform;

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

/// Whether a condition's outputs hold: its first output is jq-truthy.
fn holds(outputs: &[Value]) -> bool {
    outputs.first().is_some_and(expr::is_truthy)
}
