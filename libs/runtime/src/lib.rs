//! What every Tyboo service is built from: typed configuration, telemetry,
//! request context carried across calls, the shared error table and the error
//! type every service declares with [`service_error!`], and the gRPC
//! server with health, reflection, metrics and graceful shutdown.
#![forbid(unsafe_code)]

pub mod config;
pub mod context;
pub mod error;
pub mod grpc_metrics;
pub mod message_limits;
pub mod pagination;
pub mod reflection;
pub mod server;
mod service_error;
pub mod shutdown;
pub mod status_codes;
pub mod telemetry;
pub mod unserved;
