//! `slack.message`: post to a Slack incoming webhook (`{"text", "blocks"}`); Slack
//! answers `ok` on success and a short error code such as `invalid_payload` otherwise.

use serde::Deserialize;
use serde_json::Value;

use super::{NodeRun, completed, http_client};
use crate::error::NodeError;
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

pub(super) async fn run(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
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
