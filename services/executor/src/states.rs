//! The states the executor moves things through. Each is stored as its
//! `as_str` text; the columns that hold one are typed with it (sea-orm active
//! enums), so storage and the domain share one spelling of every state and
//! no state is written as a literal anywhere else.

use sea_orm::entity::prelude::*;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
        pub enum $name { $(#[sea_orm(string_value = $text)] $variant),+ }

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
        // Over the workspace's monthly quota: admitted and kept, waiting
        // for the quota to allow it (an upgrade, the month's turn).
        Held = "held",
    }
);

impl ExecutionStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            ExecutionStatus::Queued | ExecutionStatus::Running | ExecutionStatus::Held
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_text() {
        for status in ExecutionStatus::ALL {
            assert_eq!(ExecutionStatus::parse(status.as_str()), Some(*status));
            assert_eq!(status.to_value(), status.as_str());
        }
        for state in StepState::ALL {
            assert_eq!(StepState::parse(state.as_str()), Some(*state));
            assert_eq!(state.to_value(), state.as_str());
        }
        assert!(ExecutionStatus::TimedOut.is_terminal());
        assert!(!ExecutionStatus::Queued.is_terminal());
        assert_eq!(ExecutionStatus::parse("paused"), None);
    }
}
