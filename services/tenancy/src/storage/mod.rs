//! Tables, migrations and queries. Nothing here knows about requests or
//! callers: functions take plain values and a session (a scoped read on the
//! pool or an open transaction), so the domain decides what runs in one
//! transaction and in whose scope.

pub mod access_changes;
pub mod api_keys;
pub mod audit;
pub mod entities;
pub mod first_start;
pub mod invitations;
pub mod limits;
pub mod members;
mod migrations;
pub mod signing_keys;
pub mod workspaces;

use sea_orm::DbErr;
pub use tyboo_store::{Session, is_unique_violation, lock_globally, now};

/// On PostgreSQL every table of the service lives in this schema.
pub const POSTGRES_SCHEMA: &str = "tenancy";

/// Lock ids for `pg_advisory_xact_lock`, which serializes the few writes that
/// have no row to lock (first start, the signing key set).
pub const LOCK_BOOTSTRAP: i64 = 0x7479_626f_0001;
pub const LOCK_SIGNING_KEYS: i64 = 0x7479_626f_0002;
/// Serializes writers of the access-change log, so ids commit in order.
pub const LOCK_ACCESS_CHANGES: i64 = 0x7479_626f_0003;

/// A pool of connections to the tenancy database, with its migrations.
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
