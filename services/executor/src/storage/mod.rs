//! Tables, migrations and queries. Nothing here knows about requests or
//! callers: functions take plain values and a connection (the pool or an
//! open transaction), so the domain decides what runs in one transaction.

pub mod dead_letters;
pub mod entities;
pub mod executions;
pub(crate) mod migrations;
pub mod node_runs;
pub mod steps;
pub mod triggers;
pub mod workflows;

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;
use tyboo_store::Database;
pub use tyboo_store::{is_unique_violation, now, truncate};

/// On PostgreSQL every table of the service lives in this schema.
pub const POSTGRES_SCHEMA: &str = "executor";

/// A pool of connections to the executor database.
#[derive(Clone, Debug)]
pub struct Store {
    database: Database,
}

impl Store {
    /// Opens a pool on `database_url` (`sqlite://…` or `postgres://…`).
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Store, DbErr> {
        let database = Database::connect(database_url, POSTGRES_SCHEMA, max_connections).await?;
        Ok(Store { database })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        self.database.connection()
    }

    pub fn backend(&self) -> DbBackend {
        self.database.backend()
    }

    /// Applies every pending migration; running it again changes nothing.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        migrations::Migrator::up(self.database.connection(), None).await
    }

    /// Starts a transaction that will write; see [`Database::begin_write`].
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        self.database.begin_write().await
    }

    pub async fn close(self) -> Result<(), DbErr> {
        self.database.close().await
    }
}
