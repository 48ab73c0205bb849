//! The workflow engine: the graph model and its validation, the node catalog, jq
//! expressions, safe outbound HTTP, and running one node. It holds no state between
//! calls; the executor owns executions and calls in here for each step.
#![forbid(unsafe_code)]

mod catalog;
mod config;
mod egress;
mod engine;
mod error;
mod expr;
mod graph;
mod node;
mod nodes;
mod progress;
mod redact;
mod schedule;
mod schema;
mod validate;

pub use catalog::{Catalog, Category, NodeTypeInfo, PathSegment, TRIGGER_PREFIX};
pub use config::{EngineConfig, RunLimits, SqlConfig};
pub use egress::{
    AllowedHosts, CredentialHostRefused, EgressConfig, EgressPolicy, EgressRefused, PlatformStores,
    SafeResolver, canonicalize, install_tls_provider,
};
pub use engine::{Engine, backoff};
pub use error::{EngineError, EngineResult, ErrorClass, NodeError, ValidationError};
pub use expr::{
    ExpressionLimits, ExpressionSandbox, ProgramSource, check_program, check_template,
    evaluate_programs, has_template, render_parameters, serve_expression_sandbox,
};
pub use graph::{
    EdgeSpec, MAIN_PORT, NodeSpec, Pool, RetryPolicy, WorkflowGraph, WorkflowSettings,
};
pub use node::{LlmUsage, NodeContext, NodeOutcome};
pub use nodes::{
    BREAKER_ERRORS_TOTAL, SCHEDULE_TRIGGER, SWITCH_DEFAULT_PORT, ScheduleTriggerParameters,
    WEBHOOK_TRIGGER, WebhookMode, WebhookTriggerParameters,
};
pub use progress::{
    Decision, Terminal, advance, edge_fired, fired_sources, incoming, trigger_node,
};
pub use schedule::{next_fire, parse_cron, parse_timezone};
pub use validate::{ValidationLimits, validate};
