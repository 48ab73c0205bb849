//! sea-orm entities, one per table. JSON values are stored as text so both
//! backends read them back byte for byte.

pub mod dead_letter;
pub mod execution;
pub mod monthly_usage;
pub mod node_run;
pub mod schedule;
pub mod step;
pub mod usage_outbox;
pub mod webhook_delivery;
pub mod webhook_route;
pub mod workflow;
pub mod workflow_version;
