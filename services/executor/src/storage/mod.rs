//! Tables, migrations and queries. Nothing here knows about requests or
//! callers: functions take domain records and a [`Session`] (a read or a
//! transaction opened in a scope), limit what they touch to that scope, and
//! the domain decides what runs in one transaction.

pub mod dead_letters;
pub mod entities;
pub mod executions;
pub(crate) mod migrations;
pub mod monthly_usage;
pub mod node_runs;
mod records;
pub mod steps;
pub mod triggers;
pub mod usage_outbox;
pub mod workflows;

use sea_orm::DbErr;
pub use tyboo_store::{Scope, Session, is_unique_violation, now, truncate};
use uuid::Uuid;

/// On PostgreSQL every table of the service lives in this schema.
pub const POSTGRES_SCHEMA: &str = "executor";

/// The executor's database.
pub type Store = tyboo_store::Store<migrations::Migrator>;

/// Opens a pool on `database_url` (`sqlite://…` or `postgres://…`).
pub async fn connect(database_url: &str, max_connections: u32) -> Result<Store, DbErr> {
    Store::connect(database_url, POSTGRES_SCHEMA, max_connections).await
}

/// Applies every pending migration at `database_url`, then closes the pool.
pub async fn migrate(database_url: &str, max_connections: u32) -> Result<(), DbErr> {
    Store::migrate_at(database_url, POSTGRES_SCHEMA, max_connections).await
}

/// Refuses to write a row of another workspace than the session's: a fault
/// of ours, caught before it lands.
fn ensure_in_scope<S: Session>(db: &S, workspace_id: Uuid) -> Result<(), DbErr> {
    if db.scope().admits(workspace_id) {
        return Ok(());
    }
    Err(DbErr::Custom(format!(
        "a row of workspace {workspace_id} written in {}",
        db.scope()
    )))
}
