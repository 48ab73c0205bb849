//! The service's one error type, and the one place it becomes a gRPC status.

use sea_orm::DbErr;
use tyboo_auth::AuthError;
use tyboo_broker::BrokerError;

pub type ExecutorResult<T> = Result<T, ExecutorError>;

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// A request field is malformed; the message starts with the path at
    /// fault, such as `nodes[fetch].parameters.url`.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// What was not found, e.g. "workflow". Also the answer for another
    /// workspace's rows, so existence never leaks.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A concurrent change won, e.g. an `expected_version` that is stale.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    ResourceExhausted(String),
    /// A service this call depends on (the vault) cannot be reached now.
    #[error("{0}")]
    Unavailable(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("queue: {0}")]
    Queue(#[from] BrokerError),
    /// A fault of ours; the message is logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl ExecutorError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ExecutorError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> tonic::Code {
        match self {
            ExecutorError::InvalidArgument { .. } => tonic::Code::InvalidArgument,
            ExecutorError::Unauthenticated(_) => tonic::Code::Unauthenticated,
            ExecutorError::PermissionDenied(_) => tonic::Code::PermissionDenied,
            ExecutorError::NotFound(_) => tonic::Code::NotFound,
            ExecutorError::FailedPrecondition(_) => tonic::Code::FailedPrecondition,
            ExecutorError::Aborted(_) => tonic::Code::Aborted,
            ExecutorError::ResourceExhausted(_) => tonic::Code::ResourceExhausted,
            ExecutorError::Unavailable(_) => tonic::Code::Unavailable,
            ExecutorError::Config(_) | ExecutorError::Internal(_) => tonic::Code::Internal,
            ExecutorError::Queue(error) => match error {
                BrokerError::Unavailable(_) => tonic::Code::Unavailable,
                BrokerError::Invalid(_) => tonic::Code::Internal,
            },
            ExecutorError::Database(error) if tyboo_store::is_unavailable(error) => {
                tonic::Code::Unavailable
            }
            ExecutorError::Database(_) => tonic::Code::Internal,
        }
    }
}

impl From<AuthError> for ExecutorError {
    fn from(error: AuthError) -> Self {
        match error.into_code_and_message() {
            (tonic::Code::Unauthenticated, message) => ExecutorError::Unauthenticated(message),
            (tonic::Code::PermissionDenied, message) => ExecutorError::PermissionDenied(message),
            (_, message) => ExecutorError::Internal(message),
        }
    }
}

impl From<ExecutorError> for tonic::Status {
    fn from(error: ExecutorError) -> Self {
        tyboo_runtime::error::service_status("executor", "backend", error.code(), &error)
    }
}

#[cfg(test)]
mod tests {
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
