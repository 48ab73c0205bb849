//! Tables, migrations and queries. Nothing here knows about requests or
//! callers: functions take plain values and a connection (the pool or an
//! open transaction), so the domain decides what runs in one transaction.

pub mod dead_letters;
pub mod entities;
pub mod executions;
mod migrations;
pub mod node_runs;
pub mod steps;
pub mod triggers;
pub mod workflows;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

/// On PostgreSQL every table of the service lives in this schema.
pub const POSTGRES_SCHEMA: &str = "executor";

/// The current time, truncated to microseconds: PostgreSQL keeps no more, and
/// values that round-trip exactly make compare-and-set on times work on both
/// backends.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// A time as the database keeps it.
pub fn truncate(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

/// A pool of connections to the executor database.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Opens a pool on `database_url` (`sqlite://…` or `postgres://…`).
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Store, DbErr> {
        let mut options = ConnectOptions::new(database_url.to_owned());
        options
            .max_connections(max_connections)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            // Statements are traced by our own spans; sqlx's per-query INFO
            // lines would drown everything else.
            .sqlx_logging(false)
            .set_schema_search_path(POSTGRES_SCHEMA)
            // WAL lets readers proceed while one transaction writes, and the
            // default busy timeout makes writers queue instead of failing.
            .map_sqlx_sqlite_opts(|sqlite| sqlite.journal_mode(SqliteJournalMode::Wal));
        if database_url.starts_with("sqlite:") {
            create_sqlite_parent_directory(database_url);
        }
        let db = Database::connect(options).await?;
        if db.get_database_backend() == DbBackend::Postgres {
            ensure_postgres_schema(&db).await?;
        }
        Ok(Store { db })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Applies every pending migration; running it again changes nothing.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        migrations::Migrator::up(&self.db, None).await
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock
    /// up front (`BEGIN IMMEDIATE`): a deferred transaction that reads first
    /// and writes later can fail with a busy snapshot instead of waiting.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        self.db.begin_with_options(options).await
    }

    pub async fn close(self) -> Result<(), DbErr> {
        self.db.close().await
    }
}

/// The search path may name the schema before it exists; creating it makes
/// every later statement land in it. Checking first lets a role without the
/// CREATE privilege connect once an operator has made the schema.
async fn ensure_postgres_schema(db: &DatabaseConnection) -> Result<(), DbErr> {
    let existing = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_namespace WHERE nspname = $1",
            [POSTGRES_SCHEMA.into()],
        ))
        .await?;
    if existing.is_none() {
        db.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {POSTGRES_SCHEMA}"))
            .await?;
    }
    Ok(())
}

/// Whether `error` is a unique-index violation, which some writes turn into
/// a domain answer ("already exists") rather than a failure.
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// SQLite creates the database file but not its folder.
fn create_sqlite_parent_directory(database_url: &str) {
    let path = database_url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') {
        return;
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
        && let Err(error) = std::fs::create_dir_all(parent)
    {
        tracing::warn!(%error, path = %parent.display(), "cannot create the database folder");
    }
}
