//! The workflow graph as users save it: nodes, edges and workflow settings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A versioned workflow's body. Unknown fields are rejected so that a typo in a saved
/// workflow fails loudly instead of being silently dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowGraph {
    pub nodes: Vec<NodeSpec>,
    pub edges: Vec<EdgeSpec>,
    #[serde(default)]
    pub settings: WorkflowSettings,
}

impl WorkflowGraph {
    pub fn node(&self, node_id: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|node| node.id == node_id)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSettings {
    /// Wall-clock budget of one execution; the executor applies its default when absent.
    #[serde(default)]
    pub max_duration_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: String,
    #[serde(rename = "type")]
    pub node_type: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "empty_object")]
    pub parameters: Value,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// Overrides the pool the node type declares.
    #[serde(default)]
    pub pool: Option<Pool>,
    #[serde(default)]
    pub credential_id: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    pub from: String,
    #[serde(default = "main_port")]
    pub from_port: String,
    pub to: String,
}

/// The port every node that does not branch emits on.
pub const MAIN_PORT: &str = "main";

fn main_port() -> String {
    MAIN_PORT.to_owned()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Total attempts including the first one; 1 means no retry.
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            multiplier: 2.0,
        }
    }
}

/// Worker pools: node types that hold scarce resources (LLM quota, database connections)
/// run on their own pools so they cannot starve ordinary nodes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    #[default]
    Default,
    Ai,
    Data,
}

impl Pool {
    pub const ALL: [Pool; 3] = [Pool::Default, Pool::Ai, Pool::Data];

    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Default => "default",
            Pool::Ai => "ai",
            Pool::Data => "data",
        }
    }

    pub fn parse(value: &str) -> Option<Pool> {
        match value {
            "default" => Some(Pool::Default),
            "ai" => Some(Pool::Ai),
            "data" => Some(Pool::Data),
            _ => None,
        }
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Pool {
    type Err = String;

    fn from_str(value: &str) -> Result<Pool, String> {
        Pool::parse(value)
            .ok_or_else(|| format!("unknown pool `{value}`; pools are default, ai, data"))
    }
}
