//! The records the domain works with and hands to its callers, and the
//! states they move through. Storage maps its rows to and from these; nothing
//! here knows how they are stored.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tyboo_engine::WorkflowGraph;
use uuid::Uuid;

pub use crate::states::{
    DeadLetterState, ExecutionStatus, NodeRunStatus, ReplayMode, ReplayVersion, StepState,
    TriggerType,
};

/// A workflow's identity; its graphs are its versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workflow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub description: String,
    pub latest_version: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Set when deleted: versions stay for the executions that pinned them.
    pub delete_time: Option<DateTime<Utc>>,
}

/// One immutable saved graph of a workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowVersion {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub version: i64,
    pub name: String,
    pub description: String,
    /// The validated graph as JSON.
    pub graph: String,
    pub created_by: String,
    pub create_time: DateTime<Utc>,
    pub restored_from_version: Option<i64>,
    pub node_count: i32,
}

/// One run of one pinned workflow version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub workflow_version: i64,
    pub status: ExecutionStatus,
    pub trigger_type: TriggerType,
    /// The trigger data as JSON text.
    pub input: String,
    pub error: Option<String>,
    pub error_class: Option<String>,
    pub failed_node_id: Option<String>,
    pub create_time: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub deadline: DateTime<Utc>,
    /// Bytes of node output stored so far, against the execution data cap.
    pub data_bytes: i64,
    /// For a replay, the dead letter it came from.
    pub dead_letter_id: Option<Uuid>,
    /// The person who started it; `None` for webhooks, schedules and the
    /// mesh. Their running executions count against their own limit.
    pub started_by: Option<Uuid>,
    /// Why a queued execution has not started yet, e.g. "waiting for a
    /// concurrency slot: 5 of 5 running in this workspace".
    pub queue_reason: Option<String>,
}

/// The state of one node in one execution: what workers lease, fence and
/// commit to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub execution_id: Uuid,
    pub node_id: String,
    pub pool: String,
    pub state: StepState,
    /// The attempt running now, or the next one to run; from 1.
    pub attempt: i32,
    /// Bumped by every claim; a result commits only under the number its
    /// worker claimed with.
    pub fencing: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Not to be run before this (backoff, a waiting node).
    pub available_at: DateTime<Utc>,
    /// When a message for this step was last sent.
    pub dispatched_at: Option<DateTime<Utc>>,
    /// JSON output once succeeded, or held while waiting. None for a
    /// succeeded trigger: its output is the execution's input.
    pub output: Option<String>,
    pub port: Option<String>,
    pub error: Option<String>,
    pub error_class: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// Deliveries whose worker stopped responding before a result.
    pub lost_workers: i32,
}

impl Step {
    /// The job that runs this step's current attempt: the one place a job
    /// is made from a step.
    pub fn job(&self) -> tyboo_broker::Job {
        tyboo_broker::Job {
            pool: self.pool.clone(),
            execution_id: self.execution_id,
            node_id: self.node_id.clone(),
            attempt: u32::try_from(self.attempt).unwrap_or(1),
            workspace_id: self.workspace_id,
        }
    }
}

/// One attempt of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRun {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub execution_id: Uuid,
    pub node_id: String,
    pub attempt: i32,
    pub status: NodeRunStatus,
    /// JSON array of the inputs the attempt ran on, or empty
    /// (`DERIVED_INPUT`): read back from the predecessors' steps.
    pub input: String,
    pub output: Option<String>,
    pub port: Option<String>,
    pub error: Option<String>,
    pub error_class: Option<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub resume_time: Option<DateTime<Utc>>,
    pub llm_model: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
}

/// A step that failed for good, with what is needed to replay it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub execution_id: Uuid,
    pub workflow_id: Uuid,
    pub workflow_version: i64,
    pub node_id: String,
    /// JSON array of the inputs the node failed on.
    pub inputs: String,
    pub error_class: String,
    pub error: String,
    pub attempts: i32,
    pub state: DeadLetterState,
    pub create_time: DateTime<Utc>,
    pub resolve_time: Option<DateTime<Utc>>,
    pub replay_execution_id: Option<Uuid>,
}

/// A schedule trigger of a workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub node_id: String,
    pub cron: String,
    pub timezone: String,
    pub next_fire_at: DateTime<Utc>,
}

/// Which workflow node listens on a webhook path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRoute {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub path: String,
    pub workflow_id: Uuid,
    pub node_id: String,
    /// The unguessable part of the hook URL; kept across saves, rotatable.
    pub token: String,
    pub create_time: DateTime<Utc>,
}

/// A delivery id (or start idempotency key) already seen, and the
/// execution it started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub delivery_id: String,
    pub workflow_id: Uuid,
    pub node_id: String,
    pub execution_id: Uuid,
    pub create_time: DateTime<Utc>,
}

/// A workflow at one of its versions.
#[derive(Clone, Debug)]
pub struct WorkflowView {
    pub workflow: Workflow,
    pub version: WorkflowVersion,
    pub graph: WorkflowGraph,
}

/// An execution with every step and node run.
#[derive(Clone, Debug)]
pub struct ExecutionDetail {
    pub execution: Execution,
    pub steps: Vec<Step>,
    pub runs: Vec<NodeRun>,
}

/// A stored JSON column. A value that does not parse is a fault of ours:
/// it fails the call loudly rather than coming back as another type.
pub fn json_column(text: &str) -> crate::error::ExecutorResult<Value> {
    serde_json::from_str(text).map_err(|error| {
        crate::error::ExecutorError::Internal(format!(
            "a stored JSON value does not parse: {error}"
        ))
    })
}

/// How many arrays and objects deep a value nests (a scalar is 0).
pub fn json_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A JSON value as stored.
pub fn to_json_text(value: &Value) -> String {
    value.to_string()
}
