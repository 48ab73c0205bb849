//! The service's one error type, and the one place it becomes a gRPC status.

tyboo_runtime::service_error! {
    pub enum MeteringError, result MeteringResult, service "metering", backend "database" {
        extra {}
        code {}
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::DbErr;

    use super::*;

    #[test]
    fn client_errors_keep_their_message_and_faults_hide_theirs() {
        let status = tonic::Status::from(MeteringError::invalid("month", "must be YYYY-MM"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "month: must be YYYY-MM");

        let status = tonic::Status::from(MeteringError::NotFound("workspace"));
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(status.message(), "workspace not found");

        let status = tonic::Status::from(MeteringError::Database(DbErr::Custom(
            "relation usage_events: secret detail".to_owned(),
        )));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}
