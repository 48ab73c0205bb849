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
