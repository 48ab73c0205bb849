//! `trigger.manual`: an execution started from the API or the editor.

use serde_json::json;

use super::kind::{NodeKind, object_schema};
use crate::catalog::{Category, NodeTypeInfo};
use crate::graph::Pool;

#[derive(Debug)]
pub(crate) struct ManualTrigger;

impl NodeKind for ManualTrigger {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "trigger.manual",
            title: "Manual or API trigger",
            description: "Starts an execution from the API or the editor, with the caller's input as trigger data.",
            category: Category::Trigger,
            pool: Pool::Default,
            parameters_schema: object_schema(json!({}), &[]),
            credential_type: None,
            kind: self,
        }
    }
}
