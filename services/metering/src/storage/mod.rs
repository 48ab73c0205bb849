//! Tables, migrations and queries. Nothing here knows about requests or
//! callers: functions take plain values and a session, so the domain decides
//! what runs in one transaction and in whose scope.

pub mod entities;
pub mod events;
mod migrations;

use sea_orm::DbErr;
pub use tyboo_store::{Session, now};

/// On PostgreSQL every table of the service lives in this schema.
pub const POSTGRES_SCHEMA: &str = "metering";

/// A pool of connections to the metering database, with its migrations.
pub type Store = tyboo_store::Store<migrations::Migrator>;

/// Opens a pool on `database_url` (`sqlite://…` or `postgres://…`), with
/// every table in [`POSTGRES_SCHEMA`] on PostgreSQL.
pub async fn connect(database_url: &str, max_connections: u32) -> Result<Store, DbErr> {
    Store::connect(database_url, POSTGRES_SCHEMA, max_connections).await
}

/// Applies every pending migration at `database_url`, then closes the pool.
pub async fn migrate(database_url: &str, max_connections: u32) -> Result<(), DbErr> {
    Store::migrate_at(database_url, POSTGRES_SCHEMA, max_connections).await
}
