//! The service's one error type, and the one place it becomes a gRPC status.

use tyboo_broker::BrokerError;

tyboo_runtime::service_error! {
    pub enum ExecutorError, result ExecutorResult, service "executor", backend "backend" {
        extra {
            #[error("queue: {0}")]
            Queue(#[from] BrokerError),
        }
        code {
            ExecutorError::Queue(BrokerError::Unavailable(_)) => tonic::Code::Unavailable,
            ExecutorError::Queue(BrokerError::Invalid(_)) => tonic::Code::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::DbErr;

    use super::*;

    #[test]
    fn client_errors_keep_their_message_and_faults_hide_theirs() {
        let status = tonic::Status::from(ExecutorError::invalid(
            "nodes[fetch].parameters.url",
            "must be set",
        ));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "nodes[fetch].parameters.url: must be set");

        let status = tonic::Status::from(ExecutorError::NotFound("workflow"));
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(status.message(), "workflow not found");

        let status = tonic::Status::from(ExecutorError::Database(DbErr::Custom(
            "relation steps: secret detail".to_owned(),
        )));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");

        let status = tonic::Status::from(ExecutorError::Database(DbErr::ConnectionAcquire(
            sea_orm::ConnAcquireErr::Timeout,
        )));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), "backend unavailable, retry later");

        let status = tonic::Status::from(ExecutorError::Queue(BrokerError::Unavailable(
            "redis down".to_owned(),
        )));
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }
}
