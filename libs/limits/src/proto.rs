//! Conversions between the limits and their messages in
//! `tyboo.tenancy.v1`.

use tyboo_proto::tenancy as pb;

use crate::{LimitOverrides, Limits};

impl Limits {
    pub fn to_proto(&self) -> pb::WorkspaceLimits {
        pb::WorkspaceLimits {
            api_key_requests_per_minute: self.api_key_requests_per_minute,
            api_key_burst: self.api_key_burst,
            workspace_requests_per_minute: self.workspace_requests_per_minute,
            workspace_burst: self.workspace_burst,
            running_executions_per_workspace: self.running_executions_per_workspace,
            running_executions_per_user: self.running_executions_per_user,
            queue_wait_limit_seconds: self.queue_wait_limit_seconds,
            executions_per_month: self.executions_per_month,
            tasks_per_month: self.tasks_per_month,
        }
    }

    pub fn from_proto(limits: &pb::WorkspaceLimits) -> Limits {
        Limits {
            api_key_requests_per_minute: limits.api_key_requests_per_minute,
            api_key_burst: limits.api_key_burst,
            workspace_requests_per_minute: limits.workspace_requests_per_minute,
            workspace_burst: limits.workspace_burst,
            running_executions_per_workspace: limits.running_executions_per_workspace,
            running_executions_per_user: limits.running_executions_per_user,
            queue_wait_limit_seconds: limits.queue_wait_limit_seconds,
            executions_per_month: limits.executions_per_month,
            tasks_per_month: limits.tasks_per_month,
        }
    }
}

impl LimitOverrides {
    pub fn to_proto(&self) -> pb::LimitOverrides {
        pb::LimitOverrides {
            api_key_requests_per_minute: self.api_key_requests_per_minute,
            api_key_burst: self.api_key_burst,
            workspace_requests_per_minute: self.workspace_requests_per_minute,
            workspace_burst: self.workspace_burst,
            running_executions_per_workspace: self.running_executions_per_workspace,
            running_executions_per_user: self.running_executions_per_user,
            queue_wait_limit_seconds: self.queue_wait_limit_seconds,
            executions_per_month: self.executions_per_month,
            tasks_per_month: self.tasks_per_month,
        }
    }

    pub fn from_proto(overrides: &pb::LimitOverrides) -> LimitOverrides {
        LimitOverrides {
            api_key_requests_per_minute: overrides.api_key_requests_per_minute,
            api_key_burst: overrides.api_key_burst,
            workspace_requests_per_minute: overrides.workspace_requests_per_minute,
            workspace_burst: overrides.workspace_burst,
            running_executions_per_workspace: overrides.running_executions_per_workspace,
            running_executions_per_user: overrides.running_executions_per_user,
            queue_wait_limit_seconds: overrides.queue_wait_limit_seconds,
            executions_per_month: overrides.executions_per_month,
            tasks_per_month: overrides.tasks_per_month,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_overrides_survive_the_wire() {
        let limits = Limits {
            running_executions_per_user: 3,
            ..Limits::default()
        };
        assert_eq!(Limits::from_proto(&limits.to_proto()), limits);
        let overrides = LimitOverrides {
            queue_wait_limit_seconds: Some(9),
            ..LimitOverrides::default()
        };
        assert_eq!(LimitOverrides::from_proto(&overrides.to_proto()), overrides);
    }
}
