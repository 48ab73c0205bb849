//! The node types, one module each (the flow nodes grouped under `flow`), and the one
//! registry that lists them. A type's module implements [`NodeKind`]: its catalog
//! entry, ports, programs, save-time rules and run. A new type is a new module and a
//! line in [`KINDS`].

mod flow;
mod http_client;
mod http_request;
mod kind;
mod llm_chat;
mod manual_trigger;
mod schedule_trigger;
mod slack_message;
mod sql_query;
mod sql_values;
mod target;
mod webhook_trigger;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tyboo_breaker::CircuitBreakers;

use crate::config::EngineConfig;
use crate::egress::{AllowedHosts, EgressPolicy};
use crate::error::NodeError;
use crate::expr::Evaluator;
use crate::graph::{MAIN_PORT, NodeSpec};
use crate::node::{NodeContext, NodeOutcome};
use crate::redact::Redactor;

pub use flow::SWITCH_DEFAULT_PORT;
pub(crate) use kind::NodeKind;
pub use schedule_trigger::{SCHEDULE_TRIGGER, ScheduleTriggerParameters};
pub use target::BREAKER_ERRORS_TOTAL;
pub(crate) use target::{FAIL_FAST_PARAMETER, fail_fast_schema};
pub use webhook_trigger::{WEBHOOK_TRIGGER, WebhookMode, WebhookTriggerParameters};

/// Every node type, in the order the catalog lists them.
pub(crate) static KINDS: &[&dyn NodeKind] = &[
    &manual_trigger::ManualTrigger,
    &webhook_trigger::WebhookTrigger,
    &schedule_trigger::ScheduleTrigger,
    &http_request::HttpRequest,
    &llm_chat::LlmChat,
    &flow::Transform,
    &flow::If,
    &flow::Switch,
    &flow::Merge,
    &flow::Delay,
    &slack_message::SlackMessage,
    &sql_query::SqlQuery,
    &flow::Set,
];

/// Where the executor puts a credential's allowed hosts, next to its fields.
pub(crate) const CREDENTIAL_ALLOWED_HOSTS: &str = "allowed_hosts";

/// One run of one node: what the engine lends it and what the run is about.
pub(crate) struct NodeRun<'r> {
    pub config: &'r EngineConfig,
    pub egress: &'r Arc<EgressPolicy>,
    pub http: &'r reqwest::Client,
    pub evaluator: &'r Evaluator,
    pub node: &'r NodeSpec,
    pub parameters: Value,
    pub context: &'r NodeContext,
    pub document: Arc<Value>,
    /// Every form of the credential's secrets; text that may echo them is
    /// redacted with it before it is cut to an excerpt.
    pub redactor: &'r Redactor,
    /// The circuit breakers outside calls go through, when the caller has
    /// them (see `target`).
    pub breakers: Option<&'r Arc<dyn CircuitBreakers>>,
    /// When the node's timeout ends the run.
    pub deadline: tokio::time::Instant,
}

impl NodeRun<'_> {
    /// Typed parameters. The schema check has passed, so a failure here means the
    /// schema and the type disagree; it is reported, not hidden.
    pub fn parameters<T: DeserializeOwned>(&self) -> Result<T, NodeError> {
        serde_json::from_value(self.parameters.clone()).map_err(|error| {
            NodeError::permanent(format!(
                "node `{}`: invalid parameters: {error}",
                self.node.id
            ))
        })
    }

    /// The first input, which flow nodes pass through.
    pub fn input(&self) -> Value {
        self.context.inputs.first().cloned().unwrap_or(Value::Null)
    }

    /// A string field of the credential, if one is attached.
    pub fn credential_string(&self, field: &str) -> Option<String> {
        self.context
            .credential
            .as_ref()
            .and_then(|credential| credential.get(field))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// The attached credential's allowed hosts, if it lists any.
    pub fn credential_hosts(&self) -> Option<Arc<AllowedHosts>> {
        let allowed = self
            .context
            .credential
            .as_ref()
            .and_then(|credential| credential.get(CREDENTIAL_ALLOWED_HOSTS))
            .and_then(Value::as_array)?;
        Some(Arc::new(AllowedHosts::new(
            allowed
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        )))
    }

    /// Refuses `url` when the attached credential lists allowed hosts and
    /// none matches: a workflow must not be able to send a secret anywhere
    /// its owner did not name. Redirect hops are checked by the client's
    /// redirect policy against the same list.
    pub fn check_credential_host(&self, url: &url::Url) -> Result<(), NodeError> {
        match self.credential_hosts() {
            Some(hosts) => hosts.check(url).map_err(|refusal| self.fail(refusal)),
            None => Ok(()),
        }
    }

    pub fn fail(&self, message: impl std::fmt::Display) -> NodeError {
        NodeError::permanent(format!("node `{}`: {message}", self.node.id))
    }

    pub fn fail_parameter(&self, parameter: &str, message: impl std::fmt::Display) -> NodeError {
        NodeError::permanent(format!(
            "node `{}` parameter `{parameter}`: {message}",
            self.node.id
        ))
        .with_parameter(parameter)
    }
}

pub(crate) fn completed(output: Value) -> NodeOutcome {
    NodeOutcome::Completed {
        port: MAIN_PORT.to_owned(),
        output,
        usage: None,
    }
}
