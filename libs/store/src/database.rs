//! Opening a service's pool, and the transactions and locks writers use.

use std::path::Path;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

/// How long to wait for a new connection, and for a free one from the pool.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of connections to one service's database.
///
/// On a SQLite file, write transactions get a pool of their own with a
/// single connection: SQLite has one write lock per file, and connections
/// that race for it back off in sleeps of up to 100 ms, while writers
/// queued on the pool wait their turn without sleeping. Readers keep the
/// main pool (WAL lets them read while the writer writes).
#[derive(Clone, Debug)]
pub struct Database {
    connection: DatabaseConnection,
    writer: Option<DatabaseConnection>,
}

impl Database {
    /// Opens a pool on `database_url` (`sqlite://…` or `postgres://…`). On
    /// PostgreSQL every statement runs in `schema`, which is created when it
    /// does not exist yet; a SQLite file gets its folder created.
    pub async fn connect(
        database_url: &str,
        schema: &str,
        max_connections: u32,
    ) -> Result<Database, DbErr> {
        if !is_plain_schema_name(schema) {
            return Err(DbErr::Custom(format!(
                "schema name {schema:?} must be lowercase letters, digits and underscores"
            )));
        }
        let (database_url, synchronous) = sqlite_synchronous(database_url)?;
        let database_url = database_url.as_str();
        let mut options = ConnectOptions::new(database_url.to_owned());
        options
            .max_connections(max_connections)
            .connect_timeout(CONNECTION_TIMEOUT)
            .acquire_timeout(CONNECTION_TIMEOUT)
            // Statements are traced by our own spans; sqlx's per-query INFO
            // lines would drown everything else.
            .sqlx_logging(false)
            .set_schema_search_path(schema)
            // WAL lets readers proceed while one transaction writes, and the
            // default busy timeout makes writers queue instead of failing.
            .map_sqlx_sqlite_opts(move |sqlite| {
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(synchronous)
            });
        let writer = match sqlite_file_path(database_url) {
            Some(path) => {
                create_parent_directory(path);
                let mut writer_options = options.clone();
                writer_options.max_connections(1).min_connections(1);
                Some(sea_orm::Database::connect(writer_options).await?)
            }
            None => None,
        };
        let connection = sea_orm::Database::connect(options).await?;
        if connection.get_database_backend() == DbBackend::Postgres {
            ensure_postgres_schema(&connection, schema).await?;
        }
        Ok(Database { connection, writer })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    pub fn backend(&self) -> DbBackend {
        self.connection.get_database_backend()
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock
    /// up front (`BEGIN IMMEDIATE`): a deferred transaction that reads first
    /// and writes later can fail with a busy snapshot instead of waiting.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        self.writer
            .as_ref()
            .unwrap_or(&self.connection)
            .begin_with_options(options)
            .await
    }

    pub async fn close(self) -> Result<(), DbErr> {
        if let Some(writer) = self.writer {
            writer.close().await?;
        }
        self.connection.close().await
    }
}

/// Serializes writers that have no row to lock. PostgreSQL takes an advisory
/// lock released at commit; SQLite already holds its single write lock.
pub async fn lock_globally<C: ConnectionTrait>(db: &C, lock_id: i64) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [lock_id.into()],
    ))
    .await
    .map(|_| ())
}

/// The search path may name the schema before it exists; creating it makes
/// every later statement land in it. Checking first lets a role without the
/// CREATE privilege connect once an operator has made the schema.
async fn ensure_postgres_schema(
    connection: &DatabaseConnection,
    schema: &str,
) -> Result<(), DbErr> {
    let existing = connection
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_namespace WHERE nspname = $1",
            [schema.into()],
        ))
        .await?;
    if existing.is_none() {
        connection
            .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
    }
    Ok(())
}

/// The schema name is written into SQL unquoted and, by the search path,
/// quoted; a lowercase identifier means the same thing both ways and cannot
/// carry anything else into the statement.
fn is_plain_schema_name(schema: &str) -> bool {
    let mut characters = schema.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && characters.all(|rest| rest.is_ascii_lowercase() || rest.is_ascii_digit() || rest == '_')
}

/// Takes our `synchronous` parameter off a `sqlite:` URL (sqlx does not
/// know it): `full`, the default, syncs the log at every commit; `normal`
/// syncs it at checkpoints only, which survives a crashed process but may
/// lose the last commits on power loss.
fn sqlite_synchronous(database_url: &str) -> Result<(String, SqliteSynchronous), DbErr> {
    let Some((base, query)) = database_url
        .starts_with("sqlite:")
        .then(|| database_url.split_once('?'))
        .flatten()
    else {
        return Ok((database_url.to_owned(), SqliteSynchronous::Full));
    };
    let mut synchronous = SqliteSynchronous::Full;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("synchronous", "full")) => synchronous = SqliteSynchronous::Full,
            Some(("synchronous", "normal")) => synchronous = SqliteSynchronous::Normal,
            Some(("synchronous", other)) => {
                return Err(DbErr::Custom(format!(
                    "synchronous={other}: expected full or normal"
                )));
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, synchronous))
}

/// The file a `sqlite:` URL names; `None` for other schemes and for
/// in-memory databases.
fn sqlite_file_path(database_url: &str) -> Option<&str> {
    if !database_url.starts_with("sqlite:") {
        return None;
    }
    let path = database_url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') {
        return None;
    }
    Some(path)
}

/// SQLite creates the database file but not its folder.
fn create_parent_directory(path: &str) {
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
        && let Err(error) = std::fs::create_dir_all(parent)
    {
        tracing::warn!(%error, path = %parent.display(), "cannot create the database folder");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file_path("sqlite://data/tenancy.db?mode=rwc"),
            Some("data/tenancy.db")
        );
        assert_eq!(
            sqlite_file_path("sqlite:///var/lib/tyboo/executor.db"),
            Some("/var/lib/tyboo/executor.db")
        );
        assert_eq!(sqlite_file_path("sqlite:relative.db"), Some("relative.db"));
    }

    #[test]
    fn the_synchronous_parameter_is_ours_and_checked() {
        let (url, mode) =
            sqlite_synchronous("sqlite:///d/x.db?mode=rwc&synchronous=normal").unwrap();
        assert_eq!(url, "sqlite:///d/x.db?mode=rwc");
        assert!(matches!(mode, SqliteSynchronous::Normal));
        let (url, mode) = sqlite_synchronous("sqlite:///d/x.db?synchronous=full").unwrap();
        assert_eq!(url, "sqlite:///d/x.db");
        assert!(matches!(mode, SqliteSynchronous::Full));
        let (url, mode) = sqlite_synchronous("sqlite:///d/x.db?mode=rwc").unwrap();
        assert_eq!(url, "sqlite:///d/x.db?mode=rwc");
        assert!(matches!(mode, SqliteSynchronous::Full));
        let refused = sqlite_synchronous("sqlite:///d/x.db?synchronous=off").unwrap_err();
        assert!(refused.to_string().contains("synchronous=off"), "{refused}");
        let postgres = "postgres://root@127.0.0.1/x?synchronous=normal";
        assert_eq!(sqlite_synchronous(postgres).unwrap().0, postgres);
    }

    #[test]
    fn memory_databases_and_other_schemes_have_no_file() {
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
        assert_eq!(sqlite_file_path("sqlite://:memory:?cache=shared"), None);
        assert_eq!(sqlite_file_path("sqlite://?mode=memory"), None);
        assert_eq!(
            sqlite_file_path("postgres://root@127.0.0.1:5432/tyboo"),
            None
        );
    }

    #[test]
    fn schema_names_are_plain_lowercase_identifiers() {
        for accepted in ["tenancy", "executor", "_private", "store_2"] {
            assert!(is_plain_schema_name(accepted), "{accepted}");
        }
        for refused in [
            "",
            "Tenancy",
            "2fast",
            "a-b",
            "x; DROP SCHEMA y",
            "\"quoted\"",
        ] {
            assert!(!is_plain_schema_name(refused), "{refused}");
        }
    }
}
