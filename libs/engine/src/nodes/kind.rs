//! What the engine knows of one node type, said once: its catalog entry, the ports it
//! emits on, which of its parameters are jq programs, the save-time rules its schema
//! cannot say, the URL preflight checks, and how it runs. Each type implements
//! [`NodeKind`] in its own module; the catalog, validation, rendering and the engine
//! ask the kind instead of matching on type names.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::NodeRun;
use crate::catalog::{NodeTypeInfo, PathSegment};
use crate::error::{NodeError, ValidationError};
use crate::graph::{MAIN_PORT, NodeSpec, WorkflowGraph};
use crate::node::NodeOutcome;

/// What [`NodeKind::run`] returns: boxed, so that kinds can sit behind one registry.
pub(crate) type NodeFuture<'r> = BoxFuture<'r, Result<NodeOutcome, NodeError>>;

pub(crate) trait NodeKind: std::fmt::Debug + Send + Sync {
    /// The catalog entry, whose `kind` is this type.
    fn info(&'static self) -> NodeTypeInfo;

    /// The ports a node of this type can emit on, given its saved parameters (which may
    /// still hold templates).
    fn output_ports(&self, _parameters: &Value) -> Vec<String> {
        vec![MAIN_PORT.to_owned()]
    }

    /// Parameters that are jq programs evaluated by the node itself; they are compiled at
    /// save time and never rendered as `{{ }}` templates.
    fn is_program_parameter(&self, _path: &[PathSegment<'_>]) -> bool {
        false
    }

    /// Save-time rules a schema cannot say: choices between parameters and uniqueness.
    /// The parameters have passed the schema, with templates where the type allows them.
    fn check_rules(&self, _node: &NodeSpec) -> Result<(), ValidationError> {
        Ok(())
    }

    /// Save-time check of parameters that name other nodes of the graph.
    fn check_references(
        &self,
        _node: &NodeSpec,
        _graph: &WorkflowGraph,
    ) -> Result<(), ValidationError> {
        Ok(())
    }

    /// The parameter holding the URL the node sends to, which preflight checks before
    /// any credential is decrypted for the node.
    fn egress_parameter(&self) -> Option<&'static str> {
        None
    }

    /// Runs a node of this type on its rendered parameters, already checked against the
    /// type's schema. Triggers are not run: their output is the trigger data.
    fn run<'r>(&self, run: NodeRun<'r>) -> NodeFuture<'r> {
        Box::pin(async move {
            Err(NodeError::permanent(format!(
                "node type `{}` cannot be run",
                run.node.node_type
            )))
        })
    }
}

/// The schema of a parameters object that takes only `properties`.
pub(super) fn object_schema(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}
