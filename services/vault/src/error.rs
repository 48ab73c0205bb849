//! The service's one error type, and the one place it becomes a gRPC status.

tyboo_runtime::service_error! {
    pub enum VaultError, result VaultResult, service "vault", backend "database" {
        extra {
            /// The audit record could not be written, so the action did not
            /// happen.
            #[error("audit log unavailable: {0}")]
            Audit(String),
            /// A sealed row failed authentication: tampered, or copied from
            /// another workspace or credential. The detail is logged, never
            /// shown.
            #[error("sealed credential does not open: {0}")]
            Sealed(String),
        }
        code {
            VaultError::Audit(_) => tonic::Code::Unavailable,
            VaultError::Sealed(_) => tonic::Code::DataLoss,
        }
        status(error) {
            VaultError::Audit(_) => {
                tracing::warn!(error = %error, "vault action refused: audit write failed");
                tonic::Status::unavailable(
                    "audit log unavailable, nothing was changed; retry later",
                )
            },
            VaultError::Sealed(_) => {
                tracing::error!(error = %error, "a sealed credential failed authentication");
                tonic::Status::data_loss("credential cannot be decrypted")
            },
        }
    }
}

impl From<tyboo_audit::AuditError> for VaultError {
    fn from(error: tyboo_audit::AuditError) -> Self {
        VaultError::Audit(error.0)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::DbErr;

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
