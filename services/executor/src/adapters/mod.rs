//! What the domain asks of other services, spoken over gRPC. The domain
//! names only its own ports (traits); these are their implementations.
//! The audit log's is shared with the vault (`tyboo_audit::TenancyAuditSink`).

pub mod metering;
pub mod vault;
