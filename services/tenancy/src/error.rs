//! The service's one error type, and the one place it becomes a gRPC status.

use sea_orm::DbErr;
use tyboo_auth::AuthError;

pub type TenancyResult<T> = Result<T, TenancyError>;

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// A request field is malformed; the message starts with the field name.
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// What was not found, e.g. "workspace". Also the answer for things the
    /// caller may not see, so existence never leaks.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    /// A fault of ours; the message is logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl TenancyError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        TenancyError::InvalidArgument {
            field,
            message: message.into(),
        }
    }

    pub fn code(&self) -> tonic::Code {
        match self {
            TenancyError::InvalidArgument { .. } => tonic::Code::InvalidArgument,
            TenancyError::Unauthenticated(_) => tonic::Code::Unauthenticated,
            TenancyError::PermissionDenied(_) => tonic::Code::PermissionDenied,
            TenancyError::NotFound(_) => tonic::Code::NotFound,
            TenancyError::AlreadyExists(_) => tonic::Code::AlreadyExists,
            TenancyError::FailedPrecondition(_) => tonic::Code::FailedPrecondition,
            TenancyError::Config(_) | TenancyError::Internal(_) => tonic::Code::Internal,
            TenancyError::Database(error) if tyboo_store::is_unavailable(error) => {
                tonic::Code::Unavailable
            }
            TenancyError::Database(_) => tonic::Code::Internal,
        }
    }
}

impl From<AuthError> for TenancyError {
    fn from(error: AuthError) -> Self {
        match error.into_code_and_message() {
            (tonic::Code::Unauthenticated, message) => TenancyError::Unauthenticated(message),
            (tonic::Code::PermissionDenied, message) => TenancyError::PermissionDenied(message),
            (_, message) => TenancyError::Internal(message),
        }
    }
}

impl From<TenancyError> for tonic::Status {
    fn from(error: TenancyError) -> Self {
        tyboo_runtime::error::service_status("tenancy", "database", error.code(), &error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_keep_their_message_and_faults_hide_theirs() {
        let status = tonic::Status::from(TenancyError::invalid("email", "must be set"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "email: must be set");

        let status = tonic::Status::from(TenancyError::NotFound("workspace"));
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(status.message(), "workspace not found");

        let status = tonic::Status::from(TenancyError::Database(DbErr::Custom(
            "relation audit_events: secret detail".to_owned(),
        )));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");

        let status = tonic::Status::from(TenancyError::Database(DbErr::ConnectionAcquire(
            sea_orm::ConnAcquireErr::Timeout,
        )));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), "database unavailable, retry later");
    }

    #[test]
    fn auth_errors_map_to_the_right_codes() {
        let status = tonic::Status::from(TenancyError::from(AuthError::Expired));
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let status = tonic::Status::from(TenancyError::from(AuthError::PermissionDenied(
            "no".to_owned(),
        )));
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }
}
