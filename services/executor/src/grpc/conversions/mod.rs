//! Proto ↔ domain conversions. Proto structs are destructured in full so a
//! new field breaks the build until it is handled here.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tyboo_engine::{
    Category, EdgeSpec, ErrorClass, NodeSpec, NodeTypeInfo, Pool, RetryPolicy, WorkflowGraph,
    WorkflowSettings,
};
use tyboo_proto::executor as pb;
use uuid::Uuid;

use crate::domain::{
    DeadLetterState, ExecutionStatus, NodeRunStatus, ReplayMode, ReplayVersion, StepState,
    TriggerType, WorkflowVersion, WorkflowView,
};
use crate::error::{ExecutorError, ExecutorResult};

mod breakers;
mod records;
pub use breakers::*;
pub use records::*;

// ---- JSON ↔ google.protobuf.Value -------------------------------------

pub use tyboo_proto::convert::{json_to_struct, json_to_value, struct_to_json, value_to_json};

// ---- JSON as text (tyboo.common.v1.Json) -------------------------------

/// A stored JSON column as it leaves the service: its text, as written, so
/// that every number is exactly what was stored.
pub fn json_text(text: &str) -> tyboo_proto::common::Json {
    tyboo_proto::common::Json {
        text: text.to_owned(),
    }
}

/// A value as JSON text.
pub fn json_message(value: &Value) -> tyboo_proto::common::Json {
    tyboo_proto::common::Json {
        text: crate::domain::to_json_text(value),
    }
}

/// The value a request carries as JSON text; `field` names it when the
/// text is not JSON.
pub fn json_from_message(
    field: &'static str,
    json: Option<tyboo_proto::common::Json>,
) -> ExecutorResult<Value> {
    match json {
        None => Ok(Value::Null),
        Some(json) if json.text.trim().is_empty() => Ok(Value::Null),
        Some(json) => serde_json::from_str(&json.text).map_err(|error| {
            ExecutorError::invalid(field, format!("is not one JSON value: {error}"))
        }),
    }
}

pub(super) fn optional_json(text: Option<&str>) -> Option<tyboo_proto::common::Json> {
    text.map(json_text)
}

// ---- times and ids ------------------------------------------------------

pub use tyboo_proto::convert::timestamp;

/// A filter time from a request; negative nanos read as none (see
/// [`tyboo_proto::convert::datetime_lenient`]).
pub fn from_timestamp(
    field: &str,
    value: Option<prost_types::Timestamp>,
) -> ExecutorResult<Option<DateTime<Utc>>> {
    value
        .map(|value| {
            tyboo_proto::convert::datetime_lenient(&value)
                .ok_or_else(|| ExecutorError::invalid(field, "is not a valid time"))
        })
        .transpose()
}

/// An id from a request. A malformed id cannot name anything, so it answers
/// like a missing one.
pub fn parse_id(value: &str, what: &'static str) -> ExecutorResult<Uuid> {
    Uuid::parse_str(value.trim()).map_err(|_| ExecutorError::NotFound(what))
}

pub fn optional_id(field: &str, value: &str) -> ExecutorResult<Option<Uuid>> {
    if value.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(value.trim())
        .map(Some)
        .map_err(|_| ExecutorError::invalid(field, "is not a valid id"))
}

// ---- enums ----------------------------------------------------------------

pub fn pool_to_proto(pool: Pool) -> pb::NodePool {
    match pool {
        Pool::Default => pb::NodePool::Default,
        Pool::Ai => pb::NodePool::Ai,
        Pool::Data => pb::NodePool::Data,
    }
}

fn pool_from_proto(field: &str, value: i32) -> ExecutorResult<Option<Pool>> {
    match pb::NodePool::try_from(value) {
        Ok(pb::NodePool::Unspecified) => Ok(None),
        Ok(pb::NodePool::Default) => Ok(Some(Pool::Default)),
        Ok(pb::NodePool::Ai) => Ok(Some(Pool::Ai)),
        Ok(pb::NodePool::Data) => Ok(Some(Pool::Data)),
        Err(_) => Err(ExecutorError::invalid(field, "is not a known pool")),
    }
}

pub fn execution_status_to_proto(status: ExecutionStatus) -> pb::ExecutionStatus {
    match status {
        ExecutionStatus::Queued => pb::ExecutionStatus::Queued,
        ExecutionStatus::Running => pb::ExecutionStatus::Running,
        ExecutionStatus::Succeeded => pb::ExecutionStatus::Succeeded,
        ExecutionStatus::Failed => pb::ExecutionStatus::Failed,
        ExecutionStatus::Cancelled => pb::ExecutionStatus::Cancelled,
        ExecutionStatus::TimedOut => pb::ExecutionStatus::TimedOut,
        ExecutionStatus::Held => pb::ExecutionStatus::Held,
    }
}

pub fn execution_status_from_proto(value: i32) -> ExecutorResult<Option<ExecutionStatus>> {
    match pb::ExecutionStatus::try_from(value) {
        Ok(pb::ExecutionStatus::Unspecified) => Ok(None),
        Ok(pb::ExecutionStatus::Queued) => Ok(Some(ExecutionStatus::Queued)),
        Ok(pb::ExecutionStatus::Running) => Ok(Some(ExecutionStatus::Running)),
        Ok(pb::ExecutionStatus::Succeeded) => Ok(Some(ExecutionStatus::Succeeded)),
        Ok(pb::ExecutionStatus::Failed) => Ok(Some(ExecutionStatus::Failed)),
        Ok(pb::ExecutionStatus::Cancelled) => Ok(Some(ExecutionStatus::Cancelled)),
        Ok(pb::ExecutionStatus::TimedOut) => Ok(Some(ExecutionStatus::TimedOut)),
        Ok(pb::ExecutionStatus::Held) => Ok(Some(ExecutionStatus::Held)),
        Err(_) => Err(ExecutorError::invalid("status", "is not a known status")),
    }
}

pub(super) fn node_run_status_to_proto(status: NodeRunStatus) -> pb::NodeRunStatus {
    match status {
        NodeRunStatus::Running => pb::NodeRunStatus::Running,
        NodeRunStatus::Waiting => pb::NodeRunStatus::Waiting,
        NodeRunStatus::Succeeded => pb::NodeRunStatus::Succeeded,
        NodeRunStatus::Failed => pb::NodeRunStatus::Failed,
        NodeRunStatus::TimedOut => pb::NodeRunStatus::TimedOut,
        NodeRunStatus::Cancelled => pb::NodeRunStatus::Cancelled,
        NodeRunStatus::Skipped => pb::NodeRunStatus::Skipped,
    }
}

/// The run status a step without run rows shows.
pub(super) fn step_status_to_proto(state: StepState) -> pb::NodeRunStatus {
    match state {
        StepState::Ready => pb::NodeRunStatus::Queued,
        StepState::Running => pb::NodeRunStatus::Running,
        StepState::Waiting => pb::NodeRunStatus::Waiting,
        StepState::Succeeded => pb::NodeRunStatus::Succeeded,
        StepState::Failed => pb::NodeRunStatus::Failed,
        StepState::TimedOut => pb::NodeRunStatus::TimedOut,
        StepState::Skipped => pb::NodeRunStatus::Skipped,
        StepState::Cancelled => pb::NodeRunStatus::Cancelled,
    }
}

pub fn error_class_to_proto(text: Option<&str>) -> pb::ErrorClass {
    match text.and_then(ErrorClass::parse) {
        Some(ErrorClass::Transient) => pb::ErrorClass::Transient,
        Some(ErrorClass::Permanent) => pb::ErrorClass::Permanent,
        Some(ErrorClass::Timeout) => pb::ErrorClass::Timeout,
        None => pb::ErrorClass::Unspecified,
    }
}

pub fn error_class_from_proto(field: &str, value: i32) -> ExecutorResult<Option<ErrorClass>> {
    match pb::ErrorClass::try_from(value) {
        Ok(pb::ErrorClass::Unspecified) => Ok(None),
        Ok(pb::ErrorClass::Transient) => Ok(Some(ErrorClass::Transient)),
        Ok(pb::ErrorClass::Permanent) => Ok(Some(ErrorClass::Permanent)),
        Ok(pb::ErrorClass::Timeout) => Ok(Some(ErrorClass::Timeout)),
        Err(_) => Err(ExecutorError::invalid(field, "is not a known error class")),
    }
}

pub(super) fn trigger_type_to_proto(trigger: TriggerType) -> pb::TriggerType {
    match trigger {
        TriggerType::Manual => pb::TriggerType::Manual,
        TriggerType::Webhook => pb::TriggerType::Webhook,
        TriggerType::Schedule => pb::TriggerType::Schedule,
        TriggerType::Replay => pb::TriggerType::Replay,
    }
}

pub fn dead_letter_state_from_proto(value: i32) -> ExecutorResult<Option<DeadLetterState>> {
    match pb::DeadLetterState::try_from(value) {
        Ok(pb::DeadLetterState::Unspecified) => Ok(None),
        Ok(pb::DeadLetterState::Pending) => Ok(Some(DeadLetterState::Pending)),
        Ok(pb::DeadLetterState::Replayed) => Ok(Some(DeadLetterState::Replayed)),
        Ok(pb::DeadLetterState::Discarded) => Ok(Some(DeadLetterState::Discarded)),
        Err(_) => Err(ExecutorError::invalid("state", "is not a known state")),
    }
}

pub(super) fn dead_letter_state_to_proto(state: DeadLetterState) -> pb::DeadLetterState {
    match state {
        DeadLetterState::Pending => pb::DeadLetterState::Pending,
        DeadLetterState::Replayed => pb::DeadLetterState::Replayed,
        DeadLetterState::Discarded => pb::DeadLetterState::Discarded,
    }
}

pub fn replay_mode_from_proto(value: i32) -> ExecutorResult<ReplayMode> {
    match pb::ReplayMode::try_from(value) {
        Ok(pb::ReplayMode::Unspecified | pb::ReplayMode::FromFailedNode) => {
            Ok(ReplayMode::FromFailedNode)
        }
        Ok(pb::ReplayMode::FromStart) => Ok(ReplayMode::FromStart),
        Err(_) => Err(ExecutorError::invalid("mode", "is not a known replay mode")),
    }
}

pub fn replay_version_from_proto(value: i32) -> ExecutorResult<ReplayVersion> {
    match pb::ReplayVersion::try_from(value) {
        Ok(pb::ReplayVersion::Unspecified | pb::ReplayVersion::Pinned) => Ok(ReplayVersion::Pinned),
        Ok(pb::ReplayVersion::Latest) => Ok(ReplayVersion::Latest),
        Err(_) => Err(ExecutorError::invalid(
            "version",
            "is not a known replay version",
        )),
    }
}

// ---- workflows ------------------------------------------------------------

/// A graph from a request; faults name their path under `graph`.
pub fn graph_from_proto(graph: Option<pb::WorkflowGraph>) -> ExecutorResult<WorkflowGraph> {
    let pb::WorkflowGraph {
        nodes,
        edges,
        settings,
    } = graph.ok_or_else(|| ExecutorError::invalid("graph", "must be set"))?;
    let nodes = nodes
        .into_iter()
        .enumerate()
        .map(|(index, node)| node_from_proto(index, node))
        .collect::<ExecutorResult<Vec<_>>>()?;
    let edges = edges
        .into_iter()
        .map(|edge| {
            let pb::Edge {
                from,
                from_port,
                to,
            } = edge;
            EdgeSpec {
                from,
                from_port: if from_port.is_empty() {
                    tyboo_engine::MAIN_PORT.to_owned()
                } else {
                    from_port
                },
                to,
            }
        })
        .collect();
    let settings = match settings {
        Some(pb::WorkflowSettings { max_duration_ms }) => WorkflowSettings { max_duration_ms },
        None => WorkflowSettings::default(),
    };
    Ok(WorkflowGraph {
        nodes,
        edges,
        settings,
    })
}

fn node_from_proto(index: usize, node: pb::Node) -> ExecutorResult<NodeSpec> {
    let pb::Node {
        id,
        r#type,
        name,
        parameters,
        timeout_ms,
        retry,
        pool,
        credential_id,
    } = node;
    let label = if id.is_empty() {
        index.to_string()
    } else {
        id.clone()
    };
    let retry = retry.map(|policy| {
        let pb::RetryPolicy {
            max_attempts,
            initial_backoff_ms,
            max_backoff_ms,
            multiplier,
        } = policy;
        // Zero means "the default" for every field but the first wait, where
        // zero (retry at once) is a meaningful choice.
        let defaults = RetryPolicy::default();
        RetryPolicy {
            max_attempts: if max_attempts == 0 {
                defaults.max_attempts
            } else {
                max_attempts
            },
            initial_backoff_ms,
            max_backoff_ms: if max_backoff_ms == 0 {
                defaults.max_backoff_ms
            } else {
                max_backoff_ms
            },
            multiplier: if multiplier == 0.0 {
                defaults.multiplier
            } else {
                multiplier
            },
        }
    });
    Ok(NodeSpec {
        id,
        node_type: r#type,
        name,
        parameters: parameters.map_or_else(|| Value::Object(Map::new()), struct_to_json),
        timeout_ms,
        retry,
        pool: pool_from_proto(&format!("nodes[{label}].pool"), pool)?,
        credential_id: (!credential_id.is_empty()).then_some(credential_id),
    })
}

pub fn graph_to_proto(graph: &WorkflowGraph) -> pb::WorkflowGraph {
    let WorkflowGraph {
        nodes,
        edges,
        settings,
    } = graph;
    pb::WorkflowGraph {
        nodes: nodes.iter().map(node_to_proto).collect(),
        edges: edges
            .iter()
            .map(|edge| pb::Edge {
                from: edge.from.clone(),
                from_port: edge.from_port.clone(),
                to: edge.to.clone(),
            })
            .collect(),
        settings: Some(pb::WorkflowSettings {
            max_duration_ms: settings.max_duration_ms,
        }),
    }
}

fn node_to_proto(node: &NodeSpec) -> pb::Node {
    let NodeSpec {
        id,
        node_type,
        name,
        parameters,
        timeout_ms,
        retry,
        pool,
        credential_id,
    } = node;
    pb::Node {
        id: id.clone(),
        r#type: node_type.clone(),
        name: name.clone(),
        parameters: Some(json_to_struct(parameters)),
        timeout_ms: *timeout_ms,
        retry: retry.as_ref().map(|policy| pb::RetryPolicy {
            max_attempts: policy.max_attempts,
            initial_backoff_ms: policy.initial_backoff_ms,
            max_backoff_ms: policy.max_backoff_ms,
            multiplier: policy.multiplier,
        }),
        pool: pool.map_or(pb::NodePool::Unspecified, pool_to_proto) as i32,
        credential_id: credential_id.clone().unwrap_or_default(),
    }
}

pub fn workflow_to_proto(view: &WorkflowView) -> pb::Workflow {
    pb::Workflow {
        id: view.workflow.id.to_string(),
        workspace_id: view.workflow.workspace_id.to_string(),
        name: view.version.name.clone(),
        description: view.version.description.clone(),
        version: view.version.version,
        latest_version: view.workflow.latest_version,
        graph: Some(graph_to_proto(&view.graph)),
        create_time: Some(timestamp(view.workflow.create_time)),
        update_time: Some(timestamp(view.version.create_time)),
        updated_by: view.version.created_by.clone(),
    }
}

pub fn version_to_proto(version: &WorkflowVersion) -> pb::WorkflowVersion {
    pb::WorkflowVersion {
        workflow_id: version.workflow_id.to_string(),
        version: version.version,
        name: version.name.clone(),
        description: version.description.clone(),
        create_time: Some(timestamp(version.create_time)),
        created_by: version.created_by.clone(),
        restored_from_version: version.restored_from_version,
        node_count: version.node_count,
    }
}

pub fn node_type_to_proto(info: &NodeTypeInfo) -> pb::NodeType {
    let category = match info.category {
        Category::Trigger => pb::NodeCategory::Trigger,
        Category::Action => pb::NodeCategory::Action,
        Category::Flow => pb::NodeCategory::Flow,
    };
    pb::NodeType {
        name: info.name.to_string(),
        title: info.title.to_string(),
        description: info.description.to_string(),
        category: category as i32,
        pool: pool_to_proto(info.pool) as i32,
        parameters_schema: Some(json_to_struct(&info.parameters_schema)),
        credential_type: info.credential_type.map(str::to_owned).unwrap_or_default(),
    }
}
