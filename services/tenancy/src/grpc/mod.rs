//! Thin gRPC adapters: authenticate, validate the request, call the domain,
//! convert the answer. No SQL and no rules live here.

mod audit_service;
mod auth_service;
pub mod conversions;
mod limits_service;
mod tenancy_service;

pub use audit_service::AuditGrpc;
pub use auth_service::AuthGrpc;
pub use limits_service::LimitsGrpc;
pub use tenancy_service::TenancyGrpc;
