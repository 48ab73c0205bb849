//! Rows to domain records and back. Each table's row has the fields of its
//! record, so one list of field names per table makes both conversions.

use sea_orm::ActiveValue::Set;

use super::entities::{
    dead_letter, execution, node_run, schedule, step, webhook_delivery, webhook_route, workflow,
    workflow_version,
};
use crate::domain::model::{
    DeadLetter, Execution, NodeRun, Schedule, Step, WebhookDelivery, WebhookRoute, Workflow,
    WorkflowVersion,
};

macro_rules! mapped {
    ($record:ident <=> $table:ident { $($field:ident),+ $(,)? }) => {
        impl From<$table::Model> for $record {
            fn from(row: $table::Model) -> Self {
                $record { $($field: row.$field),+ }
            }
        }

        impl From<&$record> for $table::ActiveModel {
            fn from(record: &$record) -> Self {
                $table::ActiveModel { $($field: Set(record.$field.clone())),+ }
            }
        }
    };
}

mapped!(Workflow <=> workflow {
    id, workspace_id, name, description, latest_version, create_time, update_time, delete_time,
});

mapped!(WorkflowVersion <=> workflow_version {
    id, workspace_id, workflow_id, version, name, description, graph, created_by, create_time,
    restored_from_version, node_count,
});

mapped!(Execution <=> execution {
    id, workspace_id, workflow_id, workflow_version, status, trigger_type, input, error,
    error_class, failed_node_id, create_time, start_time, end_time, deadline, data_bytes,
    dead_letter_id, started_by, queue_reason,
});

mapped!(Step <=> step {
    id, workspace_id, execution_id, node_id, pool, state, attempt, fencing, lease_owner,
    lease_expires_at, available_at, dispatched_at, output, port, error, error_class, start_time,
    end_time, lost_workers,
});

mapped!(NodeRun <=> node_run {
    id, workspace_id, execution_id, node_id, attempt, status, input, output, port, error,
    error_class, start_time, end_time, resume_time, llm_model, prompt_tokens, completion_tokens,
    total_tokens,
});

mapped!(DeadLetter <=> dead_letter {
    id, workspace_id, execution_id, workflow_id, workflow_version, node_id, inputs, error_class,
    error, attempts, state, create_time, resolve_time, replay_execution_id,
});

mapped!(Schedule <=> schedule {
    id, workspace_id, workflow_id, node_id, cron, timezone, next_fire_at,
});

mapped!(WebhookRoute <=> webhook_route {
    id, workspace_id, path, workflow_id, node_id, token, create_time,
});

mapped!(WebhookDelivery <=> webhook_delivery {
    id, workspace_id, delivery_id, workflow_id, node_id, execution_id, create_time,
});

/// Maps what a query found to records.
pub(crate) fn all<R, M: Into<R>>(rows: Vec<M>) -> Vec<R> {
    rows.into_iter().map(Into::into).collect()
}
