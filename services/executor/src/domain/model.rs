//! The states the executor moves things through, and the records the domain
//! hands to its callers. States are stored as their `as_str` text.

use serde_json::Value;
use tyboo_engine::WorkflowGraph;

use crate::storage::entities::{execution, node_run, step, workflow, workflow_version};

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    ExecutionStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        TimedOut = "timed_out",
    }
);

impl ExecutionStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, ExecutionStatus::Queued | ExecutionStatus::Running)
    }
}

text_enum!(
    /// A step's place in its execution.
    StepState {
        Ready = "ready",
        Running = "running",
        Waiting = "waiting",
        Succeeded = "succeeded",
        Failed = "failed",
        TimedOut = "timed_out",
        Skipped = "skipped",
        Cancelled = "cancelled",
    }
);

text_enum!(
    NodeRunStatus {
        Running = "running",
        Waiting = "waiting",
        Succeeded = "succeeded",
        Failed = "failed",
        TimedOut = "timed_out",
        Cancelled = "cancelled",
        Skipped = "skipped",
    }
);

text_enum!(
    TriggerType {
        Manual = "manual",
        Webhook = "webhook",
        Schedule = "schedule",
        Replay = "replay",
    }
);

text_enum!(
    DeadLetterState {
        Pending = "pending",
        Replayed = "replayed",
        Discarded = "discarded",
    }
);

text_enum!(
    ReplayMode {
        FromFailedNode = "from_failed_node",
        FromStart = "from_start",
    }
);

text_enum!(
    ReplayVersion {
        Pinned = "pinned",
        Latest = "latest",
    }
);

/// A workflow at one of its versions.
#[derive(Clone, Debug)]
pub struct WorkflowView {
    pub workflow: workflow::Model,
    pub version: workflow_version::Model,
    pub graph: WorkflowGraph,
}

/// An execution with every step and node run.
#[derive(Clone, Debug)]
pub struct ExecutionDetail {
    pub execution: execution::Model,
    pub steps: Vec<step::Model>,
    pub runs: Vec<node_run::Model>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_text() {
        for status in ExecutionStatus::ALL {
            assert_eq!(ExecutionStatus::parse(status.as_str()), Some(*status));
        }
        for state in StepState::ALL {
            assert_eq!(StepState::parse(state.as_str()), Some(*state));
        }
        assert!(ExecutionStatus::TimedOut.is_terminal());
        assert!(!ExecutionStatus::Queued.is_terminal());
        assert_eq!(ExecutionStatus::parse("paused"), None);
    }
}
