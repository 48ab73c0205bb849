//! Databases for test suites: a SQLite file in the temporary folder, or a
//! fresh database on the PostgreSQL server that `TYBOO_TEST_POSTGRES_URL`
//! names. Each test gets its own and discards it afterwards, so tests never
//! see each other's rows. [`on_sqlite`] and [`on_postgres`] run a suite's
//! case on a [`TestWorld`] opened on one.
//!
//! Compiled into every build: it needs nothing the crate does not already
//! depend on, and a test-only feature would make `cargo test` rebuild the
//! crates above it.

use std::future::Future;
use std::path::PathBuf;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::Scope;

/// The scope of a test that reaches past the domain to read or tamper with
/// rows of any workspace.
pub const TEST: Scope = Scope::System("test");

/// Names the server on which PostgreSQL runs of the suites create their
/// databases, as a URL whose role may create and drop databases.
pub const POSTGRES_URL_VARIABLE: &str = "TYBOO_TEST_POSTGRES_URL";

/// One test's database.
pub struct TestDatabase {
    url: String,
    place: Place,
}

/// Where a test database lives, and so how it is removed.
enum Place {
    SqliteFile(PathBuf),
    Postgres {
        admin: DatabaseConnection,
        name: String,
    },
}

impl TestDatabase {
    /// A SQLite file `<prefix>-<uuid>.db` in the temporary folder, created on
    /// first connection.
    pub fn sqlite(prefix: &str) -> TestDatabase {
        let path = std::env::temp_dir().join(format!("{prefix}-{}.db", Uuid::now_v7().simple()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        TestDatabase {
            url,
            place: Place::SqliteFile(path),
        }
    }

    /// A new database `<prefix>_<uuid>` on the server that
    /// [`POSTGRES_URL_VARIABLE`] names; `None`, after saying so, when the
    /// variable is not set. Panics when the server refuses, since the test
    /// cannot run.
    pub async fn postgres(prefix: &str) -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VARIABLE) else {
            eprintln!("{POSTGRES_URL_VARIABLE} is not set; skipping the PostgreSQL run");
            return None;
        };
        let name = format!("{prefix}_{}", Uuid::now_v7().simple());
        let admin = sea_orm::Database::connect(admin_url.as_str())
            .await
            .expect("the test PostgreSQL server accepts connections");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("the test PostgreSQL role may create databases");
        let url = with_database(&admin_url, &name);
        Some(TestDatabase {
            url,
            place: Place::Postgres { admin, name },
        })
    }

    /// The URL to connect the code under test to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Removes the database. Close every pool on it first: SQLite keeps its
    /// WAL files while connections are open, and PostgreSQL drops the
    /// database even then (`WITH (FORCE)`), failing their next statement.
    pub async fn discard(self) {
        match self.place {
            Place::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Place::Postgres { admin, name } => {
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .expect("the test database can be dropped");
                admin.close().await.expect("the admin connection closes");
            }
        }
    }
}

/// What a suite's cases run on: the service under test (and whatever the
/// suite keeps with it), opened on a migrated test database.
pub trait TestWorld: Clone + Send + 'static {
    /// Names the SQLite file of each test, e.g. "tyboo-vault".
    const SQLITE_PREFIX: &'static str;
    /// Names the PostgreSQL database of each test, e.g. "tyboo_v".
    const POSTGRES_PREFIX: &'static str;

    /// The world on the database at `url`, migrated.
    fn open(url: &str) -> impl Future<Output = Self> + Send;

    /// Closes every pool on the database, so that it can be discarded.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Runs `case` against a migrated SQLite database in a temporary file.
pub async fn on_sqlite<W, F, Fut>(case: F)
where
    W: TestWorld,
    F: FnOnce(W) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_on(TestDatabase::sqlite(W::SQLITE_PREFIX), case).await;
}

/// Runs `case` against a fresh PostgreSQL database, dropped afterwards; does
/// nothing when no server is configured.
pub async fn on_postgres<W, F, Fut>(case: F)
where
    W: TestWorld,
    F: FnOnce(W) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(database) = TestDatabase::postgres(W::POSTGRES_PREFIX).await else {
        return;
    };
    run_on(database, case).await;
}

/// Runs `case` on its own task, so that a failing case still leaves the
/// database to be discarded, and fails afterwards as the case did.
async fn run_on<W, F, Fut>(database: TestDatabase, case: F)
where
    W: TestWorld,
    F: FnOnce(W) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let world = W::open(database.url()).await;
    let outcome = tokio::spawn(case(world.clone())).await;
    world.close().await;
    database.discard().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// `postgres://user@host:port/name?options` with the database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| base[start..].find('/').map(|slash| start + slash))
        .unwrap_or(base.len());
    let mut replaced = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        replaced.push('?');
        replaced.push_str(query);
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://root@127.0.0.1:5432/postgres", "t1"),
            "postgres://root@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://root@localhost", "t1"),
            "postgres://root@localhost/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
    }

    #[test]
    fn credentials_ports_and_options_survive_the_replacement() {
        assert_eq!(
            with_database(
                "postgres://user:secret@db.internal:6432/postgres?sslmode=disable&application_name=suite",
                "tyboo_x_2"
            ),
            "postgres://user:secret@db.internal:6432/tyboo_x_2?sslmode=disable&application_name=suite"
        );
        assert_eq!(
            with_database(
                "postgres://root@localhost?application_name=suite",
                "tyboo_t_4"
            ),
            "postgres://root@localhost/tyboo_t_4?application_name=suite"
        );
    }

    #[test]
    fn sqlite_databases_are_distinct_files_in_the_temporary_folder() {
        let first = TestDatabase::sqlite("tyboo-store");
        let second = TestDatabase::sqlite("tyboo-store");
        assert_ne!(first.url(), second.url());
        let Place::SqliteFile(path) = &first.place else {
            panic!("a SQLite database");
        };
        assert!(path.starts_with(std::env::temp_dir()));
        assert_eq!(first.url(), format!("sqlite://{}?mode=rwc", path.display()));
        assert!(first.url().ends_with(".db?mode=rwc"));
    }
}
