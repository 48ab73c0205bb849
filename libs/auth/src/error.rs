#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing credentials: send `authorization: Bearer <token>`")]
    MissingCredentials,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("token expired")]
    Expired,
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("signing keys unavailable: {0}")]
    KeySource(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// The code and message a service's own error takes for this one: the
    /// caller's fault (`Unauthenticated`, `PermissionDenied`) with the message
    /// to show, or a fault of ours (`Internal`, never any other code) with the
    /// message to log. Signing keys that cannot be fetched count as ours here.
    pub fn into_code_and_message(self) -> (tonic::Code, String) {
        match self {
            AuthError::MissingCredentials | AuthError::InvalidToken(_) | AuthError::Expired => {
                (tonic::Code::Unauthenticated, self.to_string())
            }
            AuthError::PermissionDenied(message) => (tonic::Code::PermissionDenied, message),
            AuthError::KeySource(_) => (tonic::Code::Internal, self.to_string()),
            AuthError::Internal(message) => (tonic::Code::Internal, message),
        }
    }
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        match &error {
            AuthError::MissingCredentials | AuthError::InvalidToken(_) | AuthError::Expired => {
                tonic::Status::unauthenticated(error.to_string())
            }
            AuthError::PermissionDenied(_) => tonic::Status::permission_denied(error.to_string()),
            AuthError::KeySource(_) => {
                tracing::warn!(%error, "cannot verify tokens");
                tonic::Status::unavailable("cannot verify credentials right now")
            }
            AuthError::Internal(_) => {
                tracing::error!(%error, "authentication failed internally");
                tonic::Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_sees_the_callers_fault_or_its_own() {
        assert_eq!(
            AuthError::MissingCredentials.into_code_and_message(),
            (
                tonic::Code::Unauthenticated,
                "missing credentials: send `authorization: Bearer <token>`".to_owned()
            )
        );
        assert_eq!(
            AuthError::InvalidToken("bad signature".to_owned()).into_code_and_message(),
            (
                tonic::Code::Unauthenticated,
                "invalid token: bad signature".to_owned()
            )
        );
        assert_eq!(
            AuthError::Expired.into_code_and_message(),
            (tonic::Code::Unauthenticated, "token expired".to_owned())
        );
        assert_eq!(
            AuthError::PermissionDenied("needs workflow.write".to_owned()).into_code_and_message(),
            (
                tonic::Code::PermissionDenied,
                "needs workflow.write".to_owned()
            )
        );
        assert_eq!(
            AuthError::KeySource("tenancy down".to_owned()).into_code_and_message(),
            (
                tonic::Code::Internal,
                "signing keys unavailable: tenancy down".to_owned()
            )
        );
        assert_eq!(
            AuthError::Internal("clock skew".to_owned()).into_code_and_message(),
            (tonic::Code::Internal, "clock skew".to_owned())
        );
    }
}
