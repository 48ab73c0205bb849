//! What every Tyboo service is built from: typed configuration, telemetry,
//! request context carried across calls, the shared error table, and the gRPC
//! server with health, reflection, metrics and graceful shutdown.
#![forbid(unsafe_code)]

pub mod config;
pub mod context;
pub mod error;
pub mod grpc_metrics;
pub mod message_limits;
pub mod reflection;
pub mod server;
pub mod shutdown;
pub mod status_codes;
pub mod telemetry;
pub mod unserved;
