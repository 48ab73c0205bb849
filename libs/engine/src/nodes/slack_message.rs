//! `slack.message`: post to a Slack incoming webhook (`{"text", "blocks"}`); Slack
//! answers `ok` on success and a short error code such as `invalid_payload` otherwise.

use serde::Deserialize;
use serde_json::{Value, json};

use super::kind::{NodeFuture, NodeKind, object_schema};
use super::{FAIL_FAST_PARAMETER, fail_fast_schema};
use super::{NodeRun, completed, http_client};
use crate::catalog::{Category, NodeTypeInfo};
use crate::error::{NodeError, ValidationError};
use crate::graph::{NodeSpec, Pool};
use crate::node::NodeOutcome;

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    webhook_url: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    blocks: Option<Vec<Value>>,
}

#[derive(Debug)]
pub(crate) struct SlackMessage;

impl NodeKind for SlackMessage {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "slack.message",
            title: "Slack message",
            description: "Posts to a Slack incoming webhook. The webhook URL comes from the credential or webhook_url.",
            category: Category::Action,
            pool: Pool::Default,
            parameters_schema: object_schema(
                json!({
                    "webhook_url": {"type": "string", "format": "http-url"},
                    "text": {"type": "string", "maxLength": 40000},
                    "blocks": {"type": "array", "maxItems": 50, "items": {"type": "object"}},
                    FAIL_FAST_PARAMETER: fail_fast_schema()
                }),
                &[],
            ),
            credential_type: Some("slack"),
            kind: self,
        }
    }

    fn check_rules(&self, node: &NodeSpec) -> Result<(), ValidationError> {
        let parameters = &node.parameters;
        if parameters.get("text").is_none() && parameters.get("blocks").is_none() {
            return Err(ValidationError::node(
                &node.id,
                "parameters.text",
                "give `text`, `blocks` or both",
            ));
        }
        if parameters.get("webhook_url").is_none() && node.credential_id.is_none() {
            return Err(ValidationError::node(
                &node.id,
                "parameters.webhook_url",
                "is required when no credential is attached",
            ));
        }
        Ok(())
    }

    fn egress_parameter(&self) -> Option<&'static str> {
        Some("webhook_url")
    }

    fn run<'r>(&self, run: NodeRun<'r>) -> NodeFuture<'r> {
        Box::pin(execute(run))
    }
}

async fn execute(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: Parameters = run.parameters()?;
    let (parameter, webhook_url) =
        match (run.credential_string("webhook_url"), parameters.webhook_url) {
            (Some(from_credential), _) => ("credential.webhook_url", from_credential),
            (None, Some(from_parameter)) => ("webhook_url", from_parameter),
            (None, None) => {
                return Err(
                    run.fail_parameter("webhook_url", "is required when no credential is attached")
                );
            }
        };
    let url = http_client::checked_url(&run, parameter, &webhook_url)?;
    if parameters.text.is_none() && parameters.blocks.is_none() {
        return Err(run.fail_parameter("text", "give `text`, `blocks` or both"));
    }
    let mut payload = serde_json::Map::new();
    if let Some(text) = parameters.text {
        payload.insert("text".to_owned(), Value::String(text));
    }
    if let Some(blocks) = parameters.blocks {
        payload.insert("blocks".to_owned(), Value::Array(blocks));
    }
    let response = http_client::send(&run, run.http.post(url).json(&payload)).await?;
    if !(200..=299).contains(&response.status) {
        return Err(response.status_error(&run));
    }
    Ok(completed(serde_json::json!({
        "ok": true,
        "status": response.status,
        "response": response.body_excerpt(&run),
    })))
}
