//! The background work of the executor: workers that run steps, the
//! reconciler that repairs lost dispatches and late executions, and the
//! scheduler that fires cron triggers.

pub mod breaker_gauges;
pub mod leases;
pub mod quota;
pub mod reconciler;
mod runner;
pub mod scheduler;
pub mod usage;
mod workers;

pub use workers::{WorkerHandle, Workers};
