//! The service's one error type, and the one place it becomes a gRPC status.

tyboo_runtime::service_error! {
    pub enum TenancyError, result TenancyResult, service "tenancy", backend "database" {
        extra {}
        code {}
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::DbErr;
    use tyboo_auth::AuthError;

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
