//! What one node run receives and returns, shared by the engine that runs nodes and
//! the node implementations, so that neither imports the other for it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::redact::REDACTED;

/// Everything a node run may read: identifiers, the trigger data, the outputs of earlier
/// nodes, the outputs that fired into this node, and its decrypted credential.
///
/// `Debug` leaves the credential out: a context that ends up in a log line or a panic
/// message must not carry the plaintext with it.
#[derive(Clone, PartialEq)]
pub struct NodeContext {
    pub execution_id: Uuid,
    pub workflow_id: Uuid,
    pub workflow_version: i64,
    pub workspace_id: Uuid,
    pub node_id: String,
    pub attempt: u32,
    /// `<execution>:<node>`, sent as `Idempotency-Key` on outbound HTTP.
    pub idempotency_key: String,
    pub trigger: Value,
    pub nodes: serde_json::Map<String, Value>,
    pub inputs: Vec<Value>,
    pub credential: Option<Value>,
}

impl std::fmt::Debug for NodeContext {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NodeContext")
            .field("execution_id", &self.execution_id)
            .field("workflow_id", &self.workflow_id)
            .field("workflow_version", &self.workflow_version)
            .field("workspace_id", &self.workspace_id)
            .field("node_id", &self.node_id)
            .field("attempt", &self.attempt)
            .field("idempotency_key", &self.idempotency_key)
            .field("trigger", &self.trigger)
            .field("nodes", &self.nodes)
            .field("inputs", &self.inputs)
            .field("credential", &self.credential.as_ref().map(|_| REDACTED))
            .finish()
    }
}

impl NodeContext {
    /// The document expressions see.
    pub fn expression_document(&self) -> Value {
        serde_json::json!({
            "trigger": self.trigger,
            "nodes": self.nodes,
            "input": self.inputs.first().cloned().unwrap_or(Value::Null),
            "inputs": self.inputs,
            "execution": {
                "id": self.execution_id.to_string(),
                "workflow_id": self.workflow_id.to_string(),
                "workflow_version": self.workflow_version,
                "workspace_id": self.workspace_id.to_string(),
                "attempt": self.attempt,
                "node_id": self.node_id,
            },
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmUsage {
    /// The API's host, as metered ("api.openai.com").
    pub provider_host: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeOutcome {
    Completed {
        port: String,
        output: Value,
        usage: Option<LlmUsage>,
    },
    /// Resume at `until` and then complete on the main port with `output` (delay).
    Wait { until: DateTime<Utc>, output: Value },
}
