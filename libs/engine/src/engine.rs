//! Running one node: render its parameters, run it under its timeout and caps, and
//! classify what went wrong.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tyboo_breaker::CircuitBreakers;

use crate::catalog::{Catalog, Category, NodeTypeInfo};
use crate::config::EngineConfig;
use crate::egress::{self, EgressPolicy};
use crate::error::{EngineError, EngineResult, NodeError};
use crate::expr::{self, Evaluator};
use crate::graph::{NodeSpec, RetryPolicy};
use crate::node::{NodeContext, NodeOutcome};
use crate::nodes;
use crate::redact::Redactor;
use crate::schema::{self, SchemaMode};

/// A cheap, cloneable handle; one per worker process.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub config: EngineConfig,
    pub catalog: Catalog,
    pub egress: Arc<EgressPolicy>,
    pub http: reqwest::Client,
    pub evaluator: Evaluator,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(config: EngineConfig) -> EngineResult<Engine> {
        if config.limits.default_node_timeout_ms == 0
            || config.limits.default_node_timeout_ms > config.limits.max_node_timeout_ms
        {
            return Err(EngineError::InvalidConfig(
                "limits.default_node_timeout_ms must be between 1 and limits.max_node_timeout_ms"
                    .to_owned(),
            ));
        }
        config.limits.expression.validate()?;
        let egress =
            Arc::new(EgressPolicy::from_config(&config.egress)?.with_platform(&config.platform));
        let http = egress::build_client(&config.egress, egress.clone(), &config.user_agent)?;
        let evaluator = Evaluator::from_limits(&config.limits.expression);
        Ok(Engine {
            inner: Arc::new(EngineInner {
                evaluator,
                config,
                catalog: Catalog::standard(),
                egress,
                http,
            }),
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The timeout a node runs under: its own, else the default, never past the maximum.
    pub fn node_timeout(&self, node: &NodeSpec) -> Duration {
        let limits = &self.inner.config.limits;
        let millis = node
            .timeout_ms
            .unwrap_or(limits.default_node_timeout_ms)
            .min(limits.max_node_timeout_ms);
        Duration::from_millis(millis)
    }

    /// Renders expressions, runs the node under its timeout (the run is dropped at the
    /// deadline: `ErrorClass::Timeout`), and enforces the output cap. Trigger nodes are
    /// not run here: the executor records the trigger data as their output.
    ///
    /// The context is borrowed so the caller keeps the decrypted credential and can
    /// zeroize it however the run ends, including when this future is dropped.
    pub async fn run_node(
        &self,
        node: &NodeSpec,
        context: &NodeContext,
    ) -> Result<NodeOutcome, NodeError> {
        self.run_node_guarded(node, context, None).await
    }

    /// [`Engine::run_node`], with every call the node makes to an outside
    /// target (an HTTP API, a database) going through `breakers`: a call an
    /// open breaker holds back fails with [`NodeError::park_until`] set (or,
    /// for a node with `fail_fast_on_open_breaker`, as a transient error).
    pub async fn run_node_guarded(
        &self,
        node: &NodeSpec,
        context: &NodeContext,
        breakers: Option<&Arc<dyn CircuitBreakers>>,
    ) -> Result<NodeOutcome, NodeError> {
        let Some(info) = self.inner.catalog.get(&node.node_type) else {
            return Err(NodeError::permanent(format!(
                "node `{}`: unknown node type `{}`",
                node.id, node.node_type
            )));
        };
        if info.category == Category::Trigger {
            return Err(NodeError::permanent(format!(
                "node `{}`: trigger nodes are not run; their output is the trigger data",
                node.id
            )));
        }
        let timeout = self.node_timeout(node);
        let deadline = tokio::time::Instant::now() + timeout;
        let redactor = Redactor::new(context.credential.as_ref());
        let guard = Guard { breakers, deadline };
        let unbounded = self.run_unbounded(node, info, context, &redactor, guard);
        let outcome = match tokio::time::timeout_at(deadline, unbounded).await {
            Ok(outcome) => outcome,
            Err(_) => Err(NodeError::timeout(format!(
                "node `{}` timed out after {} ms",
                node.id,
                timeout.as_millis()
            ))),
        };
        match outcome {
            Ok(outcome) => self.check_output(node, redact_outcome(outcome, &redactor)),
            Err(mut error) => {
                error.message = redactor.text(&error.message);
                Err(error)
            }
        }
    }

    async fn run_unbounded(
        &self,
        node: &NodeSpec,
        info: &NodeTypeInfo,
        context: &NodeContext,
        redactor: &Redactor,
        guard: Guard<'_>,
    ) -> Result<NodeOutcome, NodeError> {
        let document = Arc::new(context.expression_document());
        let parameters = self.render(node, document.clone()).await?;
        let mode = SchemaMode {
            templates: false,
            compile_programs: false,
            max_program_bytes: self.inner.config.limits.expression.max_program_bytes,
        };
        schema::check_parameters(info, &parameters, mode).map_err(|violation| {
            NodeError::permanent(format!(
                "node `{}` parameter `{}`: {}",
                node.id, violation.path, violation.message
            ))
            .with_parameter(violation.path)
        })?;
        let run = nodes::NodeRun {
            config: &self.inner.config,
            egress: &self.inner.egress,
            http: &self.inner.http,
            evaluator: &self.inner.evaluator,
            node,
            parameters,
            context,
            document,
            redactor,
            breakers: guard.breakers,
            deadline: guard.deadline,
        };
        info.kind.run(run).await
    }

    /// Checks, before any credential is decrypted for it, that the node could
    /// send anything at all: the URL it calls (`url` of http.request,
    /// `webhook_url` of slack.message, `base_url` of llm.chat), rendered for
    /// this run, must pass the egress policy (scheme, addresses, every
    /// address a name resolves to, the platform's own stores) and
    /// `allowed_hosts`, the credential's list (empty: any host). A URL that
    /// does not render or parse is left to the run itself to report.
    pub async fn preflight(
        &self,
        node: &NodeSpec,
        context: &NodeContext,
        allowed_hosts: &[String],
    ) -> Result<(), NodeError> {
        let Some(parameter) = self
            .inner
            .catalog
            .get(&node.node_type)
            .and_then(|info| info.kind.egress_parameter())
        else {
            return Ok(());
        };
        let Some(raw) = node.parameters.get(parameter) else {
            return Ok(());
        };
        let mut only_the_url = node.clone();
        only_the_url.parameters = serde_json::json!({ parameter: raw });
        let document = Arc::new(context.expression_document());
        let Ok(rendered) = self.render(&only_the_url, document).await else {
            return Ok(());
        };
        let Some(Ok(url)) = rendered
            .get(parameter)
            .and_then(Value::as_str)
            .map(url::Url::parse)
        else {
            return Ok(());
        };
        let refuse = |reason: String| {
            NodeError::permanent(format!(
                "node `{}` parameter `{parameter}`: {reason}",
                node.id
            ))
            .with_parameter(parameter.to_owned())
        };
        self.inner
            .egress
            .check_url(&url)
            .map_err(|refusal| refuse(refusal.to_string()))?;
        if let (Some(url::Host::Domain(name)), Some(port)) =
            (url.host(), url.port_or_known_default())
            && let Ok(addresses) = tokio::net::lookup_host((name, port)).await
        {
            for address in addresses {
                self.inner.egress.check_socket(address).map_err(|refusal| {
                    refuse(format!(
                        "egress refused: `{name}` resolves to {}",
                        refusal.0
                    ))
                })?;
            }
        }
        if !allowed_hosts.is_empty() {
            crate::egress::AllowedHosts::new(allowed_hosts.to_vec())
                .check(&url)
                .map_err(|refusal| refuse(refusal.to_string()))?;
        }
        Ok(())
    }

    async fn render(&self, node: &NodeSpec, document: Arc<Value>) -> Result<Value, NodeError> {
        if !expr::contains_template(&node.parameters) {
            return Ok(node.parameters.clone());
        }
        let node = node.clone();
        let limits = self.inner.config.limits.expression.clone();
        let evaluator = self.inner.evaluator.clone();
        tokio::task::spawn_blocking(move || evaluator.render(&node, &document, &limits))
            .await
            .map_err(|_| NodeError::permanent("expression rendering stopped unexpectedly"))?
    }

    fn check_output(
        &self,
        node: &NodeSpec,
        outcome: NodeOutcome,
    ) -> Result<NodeOutcome, NodeError> {
        let output = match &outcome {
            NodeOutcome::Completed { output, .. } | NodeOutcome::Wait { output, .. } => output,
        };
        let cap = self.inner.config.limits.node_output_bytes;
        let size = serde_json::to_vec(output)
            .map(|bytes| bytes.len())
            .unwrap_or(usize::MAX);
        if size > cap {
            return Err(NodeError::permanent(format!(
                "node `{}`: output of {size} bytes exceeds the {cap}-byte cap",
                node.id
            )));
        }
        Ok(outcome)
    }
}

/// What a run's outside calls go through, and when the run ends.
#[derive(Clone, Copy)]
struct Guard<'r> {
    breakers: Option<&'r Arc<dyn CircuitBreakers>>,
    deadline: tokio::time::Instant,
}

/// A live secret never leaves a node run in its output or error.
fn redact_outcome(outcome: NodeOutcome, redactor: &Redactor) -> NodeOutcome {
    if redactor.is_empty() {
        return outcome;
    }
    match outcome {
        NodeOutcome::Completed {
            port,
            output,
            usage,
        } => NodeOutcome::Completed {
            port,
            output: redactor.value(output),
            usage,
        },
        NodeOutcome::Wait { until, output } => NodeOutcome::Wait {
            until,
            output: redactor.value(output),
        },
    }
}

/// The wait before retry number `attempt` (1 after the first failure): exponential in
/// the attempt with full jitter (uniform in zero..=ceiling, which spreads retries of many
/// failing steps apart), capped at `max_backoff_ms`. A `Retry-After` from the upstream
/// wins when longer, within the same cap.
pub fn backoff(policy: &RetryPolicy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let cap_ms = policy.max_backoff_ms as f64;
    let exponent = attempt.saturating_sub(1).min(64) as i32;
    let ceiling_ms =
        (policy.initial_backoff_ms as f64 * policy.multiplier.max(1.0).powi(exponent)).min(cap_ms);
    let fraction = (getrandom::u64().unwrap_or(u64::MAX / 2) >> 11) as f64 / (1u64 << 53) as f64;
    let jittered = Duration::from_millis((ceiling_ms * fraction).round() as u64);
    let chosen = match retry_after {
        Some(requested) => jittered.max(requested),
        None => jittered,
    };
    chosen.min(Duration::from_millis(policy.max_backoff_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_the_exponential_ceiling_and_the_cap() {
        let policy = RetryPolicy::default();
        for attempt in 1..=12 {
            let ceiling = (500.0 * 2f64.powi(attempt as i32 - 1)).min(30_000.0);
            for _ in 0..50 {
                let wait = backoff(&policy, attempt, None);
                assert!(
                    wait.as_millis() as f64 <= ceiling,
                    "attempt {attempt}: {wait:?}"
                );
            }
        }
    }

    #[test]
    fn backoff_is_jittered() {
        let policy = RetryPolicy::default();
        let waits: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff(&policy, 5, None)).collect();
        assert!(waits.len() > 1);
    }

    #[test]
    fn retry_after_wins_when_longer_but_stays_capped() {
        let policy = RetryPolicy::default();
        assert!(backoff(&policy, 1, Some(Duration::from_secs(7))) >= Duration::from_secs(7));
        assert_eq!(
            backoff(&policy, 1, Some(Duration::from_secs(600))),
            Duration::from_millis(30_000)
        );
    }

    #[test]
    fn secrets_are_redacted_from_outputs() {
        let redactor = Redactor::new(Some(&serde_json::json!({"api_key": "sk-live-123456"})));
        let outcome = redact_outcome(
            NodeOutcome::Completed {
                port: "main".to_owned(),
                output: serde_json::json!({"echo": "key=sk-live-123456"}),
                usage: None,
            },
            &redactor,
        );
        let NodeOutcome::Completed { output, .. } = outcome else {
            panic!("completed")
        };
        assert_eq!(output, serde_json::json!({"echo": "key=[redacted]"}));
    }
}
