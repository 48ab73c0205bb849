//! `llm.chat`: an OpenAI-compatible chat-completions call returning the text and the
//! token usage the API reported.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::kind::{NodeFuture, NodeKind, object_schema};
use super::{FAIL_FAST_PARAMETER, fail_fast_schema};
use super::{NodeRun, http_client};
use crate::catalog::{Category, NodeTypeInfo};
use crate::error::NodeError;
use crate::graph::{MAIN_PORT, Pool};
use crate::node::{LlmUsage, NodeOutcome};

const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

#[derive(Deserialize, Serialize, Clone)]
struct Message {
    role: String,
    content: String,
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    base_url: Option<String>,
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    api_key: Option<String>,
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
}

#[derive(Debug)]
pub(crate) struct LlmChat;

impl NodeKind for LlmChat {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "llm.chat",
            title: "LLM chat",
            description: "Calls an OpenAI-compatible chat-completions API. Output: {text, usage, model}.",
            category: Category::Action,
            pool: Pool::Ai,
            parameters_schema: object_schema(
                json!({
                    "base_url": {"type": "string", "format": "http-url", "default": DEFAULT_BASE_URL},
                    "model": {"type": "string", "minLength": 1, "maxLength": 200},
                    "messages": {"type": "array", "minItems": 1, "maxItems": 500, "items": object_schema(json!({
                        "role": {"type": "string", "enum": ["system", "user", "assistant"]},
                        "content": {"type": "string"}
                    }), &["role", "content"])},
                    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                    "max_tokens": {"type": "integer", "minimum": 1, "maximum": 1000000},
                    "api_key": {"type": "string", "description": "Used when no credential is attached"},
                    FAIL_FAST_PARAMETER: fail_fast_schema()
                }),
                &["model", "messages"],
            ),
            credential_type: Some("llm"),
            kind: self,
        }
    }

    fn egress_parameter(&self) -> Option<&'static str> {
        Some("base_url")
    }

    fn run<'r>(&self, run: NodeRun<'r>) -> NodeFuture<'r> {
        Box::pin(execute(run))
    }
}

async fn execute(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: Parameters = run.parameters()?;
    // The key belongs to the API its credential names; the parameter only
    // applies when the credential names none.
    let base_url = run
        .credential_string("base_url")
        .or(parameters.base_url.clone())
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    let endpoint = format!("{}/chat/completions", base_url.trim_end_matches('/'));
    let url = http_client::checked_url(&run, "base_url", &endpoint)?;
    let provider_host = url::Url::parse(&endpoint)
        .ok()
        .and_then(|parsed| parsed.host_str().map(str::to_owned))
        .unwrap_or_default();

    let mut body = serde_json::json!({
        "model": parameters.model,
        "messages": parameters.messages,
    });
    if let Some(temperature) = parameters.temperature {
        body["temperature"] = Value::from(temperature);
    }
    if let Some(max_tokens) = parameters.max_tokens {
        body["max_tokens"] = Value::from(max_tokens);
    }

    let mut request = run.http.post(url).json(&body);
    // A credential wins over the parameter: the parameter only bridges the time before
    // a workspace stores its key in the vault.
    if let Some(api_key) = run.credential_string("api_key").or(parameters.api_key) {
        request = request.bearer_auth(api_key);
    }
    let response = http_client::send(&run, request).await?;
    if !(200..=299).contains(&response.status) {
        return Err(response.status_error(&run));
    }
    let completion: Completion = serde_json::from_slice(&response.body).map_err(|error| {
        NodeError::transient(format!(
            "node `{}`: malformed chat completion: {error}",
            run.node.id
        ))
    })?;
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(NodeError::transient(format!(
            "node `{}`: the chat completion has no choices",
            run.node.id
        )));
    };
    let model = completion.model.unwrap_or(parameters.model);
    let usage = completion.usage.unwrap_or_default();
    let text = choice.message.content.unwrap_or_default();
    let output = serde_json::json!({
        "text": text,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
        "model": model,
        "finish_reason": choice.finish_reason,
    });
    Ok(NodeOutcome::Completed {
        port: MAIN_PORT.to_owned(),
        output,
        usage: Some(LlmUsage {
            provider_host,
            model,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
        }),
    })
}
