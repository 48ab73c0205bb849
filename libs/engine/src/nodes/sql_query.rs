//! `sql.query`: one parameterized statement on PostgreSQL (`$1, $2, …`) or SQLite
//! (`?`), returning `{rows, row_count, rows_affected}`.
//!
//! A connection is opened per run and closed after it: a worker serves many workspaces
//! with different databases and credentials, and holding pools for them would keep
//! connections (and secrets) alive beyond the node that needed them.

use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use futures::TryStreamExt;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sea_orm::sqlx::{self, AssertSqlSafe, ConnectOptions, Connection, Database, Either, Executor};
use serde::Deserialize;
use serde_json::Value;

use super::sql_values::{AffectedRows, RowToJson};
use super::{NodeRun, completed};
use crate::egress::SafeResolver;
use crate::engine::NodeOutcome;
use crate::error::NodeError;

#[derive(Deserialize)]
struct Parameters {
    driver: String,
    #[serde(default)]
    url: Option<String>,
    query: String,
    #[serde(default)]
    params: Vec<Value>,
    #[serde(default)]
    max_rows: Option<usize>,
}

struct QueryResult {
    rows: Vec<Value>,
    rows_affected: u64,
}

pub(super) async fn run(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: Parameters = run.parameters()?;
    let limit = run.engine.config.limits.sql_max_rows;
    let max_rows = parameters.max_rows.unwrap_or(limit).min(limit);
    let url = match (run.credential_string("url"), parameters.url.clone()) {
        (Some(from_credential), _) => from_credential,
        (None, Some(from_parameter)) => from_parameter,
        (None, None) => {
            return Err(run.fail_parameter("url", "is required when no credential is attached"));
        }
    };
    // A database URL with a host (PostgreSQL) is held to the credential's
    // allowed hosts like any HTTP URL; a SQLite path has none to check.
    if let Ok(parsed) = url::Url::parse(&url)
        && parsed.host_str().is_some_and(|host| !host.is_empty())
    {
        run.check_credential_host(&parsed)?;
    }
    let result = match parameters.driver.as_str() {
        "postgres" => run_postgres(&run, &url, &parameters, max_rows).await?,
        "sqlite" => run_sqlite(&run, &url, &parameters, max_rows).await?,
        other => return Err(run.fail_parameter("driver", format!("unknown driver `{other}`"))),
    };
    Ok(completed(serde_json::json!({
        "row_count": result.rows.len(),
        "rows": result.rows,
        "rows_affected": result.rows_affected,
    })))
}

fn classify(run: &NodeRun<'_>, error: sqlx::Error) -> NodeError {
    let message = format!("node `{}`: {error}", run.node.id);
    match error {
        // The statement itself is at fault (syntax, constraint, types): retrying repeats it.
        sqlx::Error::Database(_)
        | sqlx::Error::Configuration(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::Encode(_)
        | sqlx::Error::Decode(_) => NodeError::permanent(message),
        _ => NodeError::transient(message),
    }
}

async fn with_connect_timeout<T>(
    run: &NodeRun<'_>,
    connect: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, NodeError> {
    let timeout = Duration::from_millis(run.engine.config.egress.connect_timeout_ms);
    match tokio::time::timeout(timeout, connect).await {
        Ok(result) => result.map_err(|error| classify(run, error)),
        Err(_) => Err(NodeError::transient(format!(
            "node `{}`: connecting to the database timed out after {} ms",
            run.node.id,
            timeout.as_millis()
        ))),
    }
}

async fn run_postgres(
    run: &NodeRun<'_>,
    url: &str,
    parameters: &Parameters,
    max_rows: usize,
) -> Result<QueryResult, NodeError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|_| run.fail_parameter("url", "is not a PostgreSQL URL"))?;
    let host = options.get_host().to_owned();
    if host.starts_with('/') {
        return Err(run.fail_parameter("url", "Unix sockets are not reachable from workflows"));
    }
    // Resolve once, check the addresses like any egress, and connect to the checked
    // address, so the name cannot resolve elsewhere in between.
    let resolver = SafeResolver::new(run.engine.egress.clone());
    let addresses = resolver
        .resolve_checked(&host, options.get_port())
        .await
        .map_err(|refusal| run.fail_parameter("url", refusal))?;
    let address = addresses[0].ip().to_string();
    let statement_timeout = run.engine.config.limits.max_node_timeout_ms.min(
        run.node
            .timeout_ms
            .unwrap_or(run.engine.config.limits.default_node_timeout_ms),
    );
    let options = options
        .host(&address)
        // The node's timeout drops the connection; this makes the server stop the statement too.
        .options([("statement_timeout", statement_timeout.to_string())]);
    let mut connection: PgConnection = with_connect_timeout(run, options.connect()).await?;
    let query = bind_all(
        sqlx::query::<sqlx::Postgres>(AssertSqlSafe(parameters.query.clone())),
        &parameters.params,
    );
    let result = collect(run, &mut connection, query, max_rows).await;
    let _ = connection.close().await;
    result
}

/// Maps a SQLite URL (`sqlite:name.db`, `sqlite://dir/name.db` or a bare relative path)
/// into the operator's SQLite directory; absolute paths and `..` are refused, so a
/// workflow cannot open files elsewhere on the worker.
fn sqlite_path(root: &Path, url: &str) -> Option<PathBuf> {
    let without_scheme = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let relative = without_scheme.split('?').next().unwrap_or_default();
    let relative = Path::new(relative);
    if relative.as_os_str().is_empty()
        || !relative
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
    {
        return None;
    }
    Some(root.join(relative))
}

/// Statements that make SQLite open or write other files.
fn touches_other_files(query: &str) -> bool {
    let upper = query.to_ascii_uppercase();
    upper
        .split(|character: char| !character.is_ascii_alphanumeric() && character != '_')
        .any(|word| word == "ATTACH" || word == "VACUUM")
}

async fn run_sqlite(
    run: &NodeRun<'_>,
    url: &str,
    parameters: &Parameters,
    max_rows: usize,
) -> Result<QueryResult, NodeError> {
    let Some(root) = run.engine.config.sql.sqlite_dir.as_deref() else {
        return Err(run.fail_parameter(
            "driver",
            "SQLite is disabled on this worker; the operator enables it by setting sql.sqlite_dir",
        ));
    };
    let path = sqlite_path(root, url).ok_or_else(|| {
        run.fail_parameter(
            "url",
            "must name a database file relative to the SQLite directory",
        )
    })?;
    if touches_other_files(&parameters.query) {
        return Err(run.fail_parameter("query", "ATTACH and VACUUM are not allowed"));
    }
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut connection: SqliteConnection = with_connect_timeout(run, options.connect()).await?;
    let query = bind_all(
        sqlx::query::<sqlx::Sqlite>(AssertSqlSafe(parameters.query.clone())),
        &parameters.params,
    );
    let result = collect(run, &mut connection, query, max_rows).await;
    let _ = connection.close().await;
    result
}

fn bind_all<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as Database>::Arguments>,
    params: &[Value],
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for param in params {
        query = match param {
            Value::Null => query.bind(None::<String>),
            Value::Bool(flag) => query.bind(*flag),
            Value::Number(number) => match number.as_i64() {
                Some(integer) => query.bind(integer),
                None => query.bind(number.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(text) => query.bind(text.clone()),
            other => query.bind(other.to_string()),
        };
    }
    query
}

async fn collect<'c, 'q, DB, C>(
    run: &NodeRun<'_>,
    connection: &'c mut C,
    query: sqlx::query::Query<'q, DB, <DB as Database>::Arguments>,
    max_rows: usize,
) -> Result<QueryResult, NodeError>
where
    DB: Database,
    DB::Row: RowToJson,
    DB::QueryResult: AffectedRows,
    sqlx::query::Query<'q, DB, <DB as Database>::Arguments>: sqlx::Execute<'q, DB>,
    &'c mut C: Executor<'c, Database = DB>,
    'q: 'c,
{
    let mut stream = connection.fetch_many(query);
    let mut rows = Vec::new();
    let mut rows_affected = 0u64;
    while let Some(item) = stream
        .try_next()
        .await
        .map_err(|error| classify(run, error))?
    {
        match item {
            Either::Left(done) => rows_affected += done.affected(),
            Either::Right(row) => {
                if rows.len() == max_rows {
                    return Err(run.fail_parameter(
                        "max_rows",
                        format!("the query returned more than {max_rows} rows; add a LIMIT or raise max_rows"),
                    ));
                }
                rows.push(row.to_json().map_err(|message| run.fail(message))?);
            }
        }
    }
    Ok(QueryResult {
        rows,
        rows_affected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_stay_inside_the_directory() {
        let root = Path::new("/data/sqlite");
        assert_eq!(
            sqlite_path(root, "sqlite:app.db"),
            Some(root.join("app.db"))
        );
        assert_eq!(
            sqlite_path(root, "sqlite://team/app.db?mode=rwc"),
            Some(root.join("team/app.db"))
        );
        assert_eq!(sqlite_path(root, "sqlite:///etc/passwd"), None);
        assert_eq!(sqlite_path(root, "../escape.db"), None);
        assert_eq!(sqlite_path(root, "sqlite:"), None);
    }

    #[test]
    fn attach_and_vacuum_are_refused() {
        assert!(touches_other_files("attach database '/tmp/x' as x"));
        assert!(touches_other_files("VACUUM INTO '/tmp/copy.db'"));
        assert!(!touches_other_files("select attached_at from vacuums"));
    }
}
