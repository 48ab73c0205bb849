//! The service's one error type, and the one place it becomes a gRPC status.

use sea_orm::DbErr;
use tyboo_auth::AuthError;

pub type VaultResult<T> = Result<T, VaultError>;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A request field is malformed; the message starts with the field path,
    /// for example "fields.token".
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// What was not found, e.g. "credential". Also the answer for anything
    /// the caller may not see or use, so existence never leaks.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A compare-and-set lost to a concurrent write.
    #[error("{0}")]
    Aborted(String),
    /// The audit record could not be written, so the action did not happen.
    #[error("audit log unavailable: {0}")]
    Audit(String),
    /// A sealed row failed authentication: tampered, or copied from another
    /// workspace or credential. The detail is logged, never shown.
    #[error("sealed credential does not open: {0}")]
    Sealed(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    /// A fault of ours; the message is logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl VaultError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        VaultError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> tonic::Code {
        match self {
            VaultError::InvalidArgument { .. } => tonic::Code::InvalidArgument,
            VaultError::Unauthenticated(_) => tonic::Code::Unauthenticated,
            VaultError::PermissionDenied(_) => tonic::Code::PermissionDenied,
            VaultError::NotFound(_) => tonic::Code::NotFound,
            VaultError::AlreadyExists(_) => tonic::Code::AlreadyExists,
            VaultError::FailedPrecondition(_) => tonic::Code::FailedPrecondition,
            VaultError::Aborted(_) => tonic::Code::Aborted,
            VaultError::Audit(_) => tonic::Code::Unavailable,
            VaultError::Sealed(_) => tonic::Code::DataLoss,
            VaultError::Config(_) | VaultError::Internal(_) => tonic::Code::Internal,
            VaultError::Database(error) if tyboo_store::is_unavailable(error) => {
                tonic::Code::Unavailable
            }
            VaultError::Database(_) => tonic::Code::Internal,
        }
    }
}

impl From<AuthError> for VaultError {
    fn from(error: AuthError) -> Self {
        match error.into_code_and_message() {
            (tonic::Code::Unauthenticated, message) => VaultError::Unauthenticated(message),
            (tonic::Code::PermissionDenied, message) => VaultError::PermissionDenied(message),
            (_, message) => VaultError::Internal(message),
        }
    }
}

impl From<VaultError> for tonic::Status {
    fn from(error: VaultError) -> Self {
        match &error {
            VaultError::Audit(_) => {
                tracing::warn!(error = %error, "vault action refused: audit write failed");
                tonic::Status::unavailable(
                    "audit log unavailable, nothing was changed; retry later",
                )
            }
            VaultError::Sealed(_) => {
                tracing::error!(error = %error, "a sealed credential failed authentication");
                tonic::Status::data_loss("credential cannot be decrypted")
            }
            _ => tyboo_runtime::error::service_status("vault", "database", error.code(), &error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_keep_their_message_and_faults_hide_theirs() {
        let status = tonic::Status::from(VaultError::invalid("fields.token", "must be set"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "fields.token: must be set");

        let status = tonic::Status::from(VaultError::NotFound("credential"));
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(status.message(), "credential not found");

        let status = tonic::Status::from(VaultError::Database(DbErr::Custom(
            "relation credentials: secret detail".to_owned(),
        )));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");

        let status = tonic::Status::from(VaultError::Sealed("wrapped key of row x".to_owned()));
        assert_eq!(status.code(), tonic::Code::DataLoss);
        assert!(!status.message().contains("row x"));

        let status = tonic::Status::from(VaultError::Audit("tenancy down".to_owned()));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(!status.message().contains("tenancy down"));
    }
}
