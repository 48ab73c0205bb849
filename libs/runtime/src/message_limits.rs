//! The generated `*Server` types each have their own pair of message-size
//! setters and no trait in common; this gives them one, so a server applies
//! its one configured limit to every service it serves.

use tyboo_proto::executor::circuit_breaker_service_server::CircuitBreakerServiceServer;
use tyboo_proto::executor::dead_letter_service_server::DeadLetterServiceServer;
use tyboo_proto::executor::execution_service_server::ExecutionServiceServer;
use tyboo_proto::executor::webhook_service_server::WebhookServiceServer;
use tyboo_proto::executor::workflow_service_server::WorkflowServiceServer;
use tyboo_proto::metering::metering_ingest_service_server::MeteringIngestServiceServer;
use tyboo_proto::metering::usage_service_server::UsageServiceServer;
use tyboo_proto::tenancy::audit_service_server::AuditServiceServer;
use tyboo_proto::tenancy::auth_service_server::AuthServiceServer;
use tyboo_proto::tenancy::limits_service_server::LimitsServiceServer;
use tyboo_proto::tenancy::tenancy_service_server::TenancyServiceServer;
use tyboo_proto::vault::credential_access_service_server::CredentialAccessServiceServer;
use tyboo_proto::vault::credential_service_server::CredentialServiceServer;
use tyboo_proto::vault::key_management_service_server::KeyManagementServiceServer;

/// A generated server whose largest decoded and encoded message are set
/// together.
pub trait MessageLimits {
    fn limit_messages(self, max_message_bytes: usize) -> Self;
}

macro_rules! message_limits {
    ($($server:ident),+ $(,)?) => {$(
        impl<T> MessageLimits for $server<T> {
            fn limit_messages(self, max_message_bytes: usize) -> Self {
                self.max_decoding_message_size(max_message_bytes)
                    .max_encoding_message_size(max_message_bytes)
            }
        }
    )+};
}

message_limits!(
    TenancyServiceServer,
    AuthServiceServer,
    AuditServiceServer,
    LimitsServiceServer,
    CredentialServiceServer,
    CredentialAccessServiceServer,
    KeyManagementServiceServer,
    WorkflowServiceServer,
    ExecutionServiceServer,
    DeadLetterServiceServer,
    WebhookServiceServer,
    CircuitBreakerServiceServer,
    UsageServiceServer,
    MeteringIngestServiceServer,
);
