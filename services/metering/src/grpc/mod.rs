//! Thin gRPC adapters: authenticate, convert the request, call the domain,
//! convert the answer. No SQL and no rules live here.

mod conversions;
mod ingest_service;
mod usage_service;

pub use ingest_service::MeteringIngestGrpc;
pub use usage_service::UsageGrpc;
