//! `trigger.webhook`: an execution started by a call to the hook's URL. The executor
//! serves the URL; its parameters, with their defaults, are read here once, by the
//! validator and by the executor alike.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::kind::{NodeKind, object_schema};
use crate::catalog::{Category, NodeTypeInfo};
use crate::error::ValidationError;
use crate::graph::{NodeSpec, Pool, WorkflowGraph};

/// The type name of a webhook trigger.
pub const WEBHOOK_TRIGGER: &str = "trigger.webhook";

/// How a webhook answers its caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookMode {
    /// At once, with 202 and the execution id.
    #[default]
    Async,
    /// With the output of `respond_node`, once the execution has it.
    Sync,
}

/// The parameters of a `trigger.webhook` node; a parameter left out takes the default
/// the schema shows.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WebhookTriggerParameters {
    /// The path under `/hooks/{token}/`, as saved.
    pub path: String,
    /// The one method the hook takes.
    pub method: String,
    pub mode: WebhookMode,
    /// The node whose output is the sync reply.
    pub respond_node: Option<String>,
    /// How long a sync reply may take; unset, the executor's default applies.
    pub response_timeout_ms: Option<u64>,
    /// The request header whose value makes deliveries idempotent.
    pub delivery_id_header: Option<String>,
    /// The scheme every request must be signed with, if any.
    pub signature: Option<String>,
    /// How far a signed timestamp (stripe) may be from now.
    pub signature_tolerance_seconds: u64,
}

impl Default for WebhookTriggerParameters {
    fn default() -> WebhookTriggerParameters {
        WebhookTriggerParameters {
            path: String::new(),
            method: "POST".to_owned(),
            mode: WebhookMode::default(),
            respond_node: None,
            response_timeout_ms: None,
            delivery_id_header: None,
            signature: None,
            signature_tolerance_seconds: 300,
        }
    }
}

impl WebhookTriggerParameters {
    /// Reads a webhook trigger's saved parameters. Saved parameters have passed the
    /// schema, so an error means the graph was never validated.
    pub fn parse(parameters: &Value) -> Result<WebhookTriggerParameters, serde_json::Error> {
        WebhookTriggerParameters::deserialize(parameters)
    }

    fn of_node(node: &NodeSpec) -> Result<WebhookTriggerParameters, ValidationError> {
        WebhookTriggerParameters::parse(&node.parameters)
            .map_err(|error| ValidationError::node(&node.id, "parameters", error.to_string()))
    }
}

#[derive(Debug)]
pub(crate) struct WebhookTrigger;

impl NodeKind for WebhookTrigger {
    fn info(&'static self) -> NodeTypeInfo {
        let defaults = WebhookTriggerParameters::default();
        NodeTypeInfo {
            name: WEBHOOK_TRIGGER,
            title: "Webhook",
            description: "Starts an execution when its URL /hooks/{token}/{path} is called; replies at once (async) or with a chosen node's output (sync). With `signature` set, every request must be signed with the attached webhook_signing_secret credential.",
            category: Category::Trigger,
            pool: Pool::Default,
            parameters_schema: object_schema(
                json!({
                    "path": {"type": "string", "format": "webhook-path", "minLength": 1, "maxLength": 200,
                             "description": "Path under /hooks/{token}/"},
                    "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": defaults.method},
                    "mode": {"type": "string", "enum": ["async", "sync"], "default": defaults.mode,
                             "description": "async answers 202 with the execution id; sync answers with respond_node's output"},
                    "respond_node": {"type": "string", "format": "identifier",
                                     "description": "Node whose output is the sync reply"},
                    "response_timeout_ms": {"type": "integer", "minimum": 1, "maximum": 300000, "default": 30000},
                    "delivery_id_header": {"type": "string", "format": "header-name",
                                           "description": "Request header whose value makes deliveries idempotent"},
                    "signature": {"type": "string", "enum": ["github", "stripe"],
                                  "description": "github: X-Hub-Signature-256 = sha256=<hex HMAC-SHA256 of the body>; stripe: Stripe-Signature = t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">. Needs a credential."},
                    "signature_tolerance_seconds": {"type": "integer", "minimum": 1, "maximum": 86400, "default": defaults.signature_tolerance_seconds,
                                                    "description": "stripe: how far the signed timestamp may be from now"}
                }),
                &["path"],
            ),
            credential_type: Some("webhook"),
            kind: self,
        }
    }

    fn check_rules(&self, node: &NodeSpec) -> Result<(), ValidationError> {
        let parameters = WebhookTriggerParameters::of_node(node)?;
        let signed = parameters.signature.is_some();
        if signed && node.credential_id.is_none() {
            return Err(ValidationError::node(
                &node.id,
                "credential_id",
                "is required when `signature` is set: attach a webhook_signing_secret credential",
            ));
        }
        if !signed && node.credential_id.is_some() {
            return Err(ValidationError::node(
                &node.id,
                "parameters.signature",
                "is required when a credential is attached: name the scheme it signs with",
            ));
        }
        if parameters.mode == WebhookMode::Sync && parameters.respond_node.is_none() {
            return Err(ValidationError::node(
                &node.id,
                "parameters.respond_node",
                "is required when mode is `sync`",
            ));
        }
        Ok(())
    }

    fn check_references(
        &self,
        node: &NodeSpec,
        graph: &WorkflowGraph,
    ) -> Result<(), ValidationError> {
        let parameters = WebhookTriggerParameters::of_node(node)?;
        if let Some(respond_node) = parameters.respond_node
            && (graph.node(&respond_node).is_none() || respond_node == node.id)
        {
            return Err(ValidationError::node(
                &node.id,
                "parameters.respond_node",
                format!("`{respond_node}` is not a node of this workflow after the trigger"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_out_parameters_take_the_defaults_the_schema_shows() {
        let parameters = WebhookTriggerParameters::parse(&json!({"path": "orders"})).unwrap();
        let schema = WebhookTrigger.info().parameters_schema;
        let shown = &schema["properties"];
        assert_eq!(parameters.path, "orders");
        assert_eq!(shown["method"]["default"], json!(parameters.method));
        assert_eq!(shown["mode"]["default"], json!(parameters.mode));
        assert_eq!(
            shown["signature_tolerance_seconds"]["default"],
            json!(parameters.signature_tolerance_seconds)
        );
        assert_eq!(parameters.response_timeout_ms, None);
    }

    #[test]
    fn saved_parameters_are_read_as_typed() {
        let parameters = WebhookTriggerParameters::parse(&json!({
            "path": "orders", "method": "PUT", "mode": "sync", "respond_node": "reply",
            "response_timeout_ms": 5000, "delivery_id_header": "X-Delivery",
            "signature": "github", "signature_tolerance_seconds": 60
        }))
        .unwrap();
        assert_eq!(parameters.method, "PUT");
        assert_eq!(parameters.mode, WebhookMode::Sync);
        assert_eq!(parameters.respond_node.as_deref(), Some("reply"));
        assert_eq!(parameters.response_timeout_ms, Some(5000));
        assert_eq!(parameters.delivery_id_header.as_deref(), Some("X-Delivery"));
        assert_eq!(parameters.signature.as_deref(), Some("github"));
        assert_eq!(parameters.signature_tolerance_seconds, 60);
    }
}
