//! `sql.query`: one parameterized statement on PostgreSQL (`$1, $2, …`) or SQLite
//! (`?`), returning `{rows, row_count, rows_affected}`.
//!
//! A connection is opened per run and closed after it: a worker serves many workspaces
//! with different databases and credentials, and holding pools for them would keep
//! connections (and secrets) alive beyond the node that needed them.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use futures::TryStreamExt;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sea_orm::sqlx::{self, AssertSqlSafe, ConnectOptions, Connection, Database, Either, Executor};
use serde::Deserialize;
use serde_json::{Value, json};

use super::kind::{NodeFuture, NodeKind, object_schema};
use super::sql_values::{AffectedRows, RowToJson};
use super::{FAIL_FAST_PARAMETER, fail_fast_schema};
use super::{NodeRun, completed};
use crate::catalog::{Category, NodeTypeInfo};
use crate::egress::SafeResolver;
use crate::error::{NodeError, ValidationError};
use crate::graph::{NodeSpec, Pool};
use crate::node::NodeOutcome;

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

#[derive(Debug)]
pub(crate) struct SqlQuery;

impl NodeKind for SqlQuery {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "sql.query",
            title: "SQL query",
            description: "Runs one parameterized statement on PostgreSQL ($1, $2, …) or SQLite (?). Output: {rows, row_count, rows_affected}.",
            category: Category::Action,
            pool: Pool::Data,
            parameters_schema: object_schema(
                json!({
                    "driver": {"type": "string", "enum": ["postgres", "sqlite"]},
                    "url": {"type": "string", "maxLength": 4096, "description": "Used when no credential is attached"},
                    "query": {"type": "string", "minLength": 1, "maxLength": 100000},
                    "params": {"type": "array", "maxItems": 1000,
                               "items": {"type": ["string", "number", "integer", "boolean", "null"]}},
                    "max_rows": {"type": "integer", "minimum": 1, "maximum": 1000000},
                    FAIL_FAST_PARAMETER: fail_fast_schema()
                }),
                &["driver", "query"],
            ),
            credential_type: Some("database"),
            kind: self,
        }
    }

    fn check_rules(&self, node: &NodeSpec) -> Result<(), ValidationError> {
        if node.parameters.get("url").is_none() && node.credential_id.is_none() {
            return Err(ValidationError::node(
                &node.id,
                "parameters.url",
                "is required when no credential is attached",
            ));
        }
        Ok(())
    }

    fn run<'r>(&self, run: NodeRun<'r>) -> NodeFuture<'r> {
        Box::pin(execute(run))
    }
}

async fn execute(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: Parameters = run.parameters()?;
    let limit = run.config.limits.sql_max_rows;
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
    let timeout = Duration::from_millis(run.config.egress.connect_timeout_ms);
    match tokio::time::timeout(timeout, connect).await {
        Ok(result) => result.map_err(|error| classify(run, error)),
        Err(_) => Err(NodeError::transient(format!(
            "node `{}`: connecting to the database timed out after {} ms",
            run.node.id,
            timeout.as_millis()
        ))),
    }
}

/// What a PostgreSQL URL may choose: each part checked, nothing else.
#[derive(Debug)]
struct PgTarget {
    host: String,
    port: u16,
    username: String,
    password: String,
    database: String,
    ssl_mode: PgSslMode,
}

/// Query parameters that would choose another host, port, socket, user or
/// database, or make the worker read its own files or send server options.
const PG_REFUSED_PARAMETERS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "options",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "passfile",
    "service",
];

/// Reads a PostgreSQL URL into checked parts. The driver's own URL parser is not
/// used: it connects to a Unix socket when the host (or a `host` parameter) starts
/// with `/` or `%2F`, takes `hostaddr` over the host that was checked, and fills
/// whatever the URL leaves out from the worker's `PG*` environment and `.pgpass`.
fn pg_target(raw: &str) -> Result<PgTarget, String> {
    let url = url::Url::parse(raw).map_err(|_| "is not a PostgreSQL URL".to_owned())?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err("must start with postgres:// or postgresql://".to_owned());
    }
    let decode = |part: &str, what: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map(|decoded| decoded.into_owned())
            .map_err(|_| format!("has a {what} that is not UTF-8"))
    };
    let host = match url.host() {
        None => {
            return Err(
                "names no host (a local socket is not reachable from workflows)".to_owned(),
            );
        }
        Some(url::Host::Ipv4(address)) => address.to_string(),
        Some(url::Host::Ipv6(address)) => address.to_string(),
        Some(url::Host::Domain(name)) => {
            let name = decode(name, "host")?;
            let plain = |character: char| {
                character.is_ascii_alphanumeric() || matches!(character, '-' | '.' | '_')
            };
            if name.is_empty() || !name.chars().all(plain) {
                return Err(
                    "must name a host by DNS name or IP address; Unix sockets are not reachable from workflows"
                        .to_owned(),
                );
            }
            name
        }
    };
    let username = match url.username() {
        "" => "postgres".to_owned(),
        name => decode(name, "user")?,
    };
    let password = match url.password() {
        Some(password) => decode(password, "password")?,
        None => String::new(),
    };
    let database = match url.path().trim_start_matches('/') {
        "" => username.clone(),
        path => decode(path, "database name")?,
    };
    if database.contains('/') {
        return Err("must name one database after the host".to_owned());
    }
    let mut ssl_mode = PgSslMode::Prefer;
    for (key, value) in url.query_pairs() {
        match &*key {
            "sslmode" | "ssl-mode" => {
                ssl_mode = value
                    .parse()
                    .map_err(|_| format!("has an unknown sslmode `{value}`"))?;
            }
            "application_name" => {}
            refused if PG_REFUSED_PARAMETERS.contains(&refused) => {
                return Err(format!(
                    "sets `{refused}` in the query string; host, port, user, password and database come only from the URL itself, and files, sockets and server options cannot be chosen"
                ));
            }
            unknown => return Err(format!("has an unknown parameter `{unknown}`")),
        }
    }
    Ok(PgTarget {
        host,
        port: url.port().unwrap_or(5432),
        username,
        password,
        database,
        ssl_mode,
    })
}

/// The worker's environment variables the driver would read into every connection
/// without a setter to clear them: a client key or certificate, or server options,
/// would go to whatever server a workflow names.
const PG_INHERITED_ENVIRONMENT: &[&str] = &["PGSSLCERT", "PGSSLKEY", "PGOPTIONS"];

/// Connect options from checked parts only, to the checked `address`. Every field
/// the driver would otherwise take from the environment is set explicitly.
fn pg_options(
    target: &PgTarget,
    address: &str,
    statement_timeout_ms: u64,
) -> Result<PgConnectOptions, String> {
    if let Some(name) = PG_INHERITED_ENVIRONMENT
        .iter()
        .find(|name| std::env::var_os(name).is_some())
    {
        return Err(format!(
            "the worker's environment sets {name}, which would be sent to every server a workflow names; the operator unsets it"
        ));
    }
    let options = PgConnectOptions::new_without_pgpass()
        .host(address)
        .port(target.port)
        .username(&target.username)
        .password(&target.password)
        .database(&target.database)
        .ssl_mode(target.ssl_mode)
        .application_name("tyboo-sql-query")
        // The node's timeout drops the connection; this makes the server stop the statement too.
        .options([("statement_timeout", statement_timeout_ms.to_string())]);
    // Nothing but the checked parts may decide where the connection goes.
    let expected_options = format!("-c statement_timeout={statement_timeout_ms}");
    if options.get_socket().is_some()
        || options.get_host() != address
        || options.get_port() != target.port
        || options.get_options() != Some(expected_options.as_str())
    {
        return Err("resolves to connect options other than the checked ones".to_owned());
    }
    Ok(options)
}

async fn run_postgres(
    run: &NodeRun<'_>,
    url: &str,
    parameters: &Parameters,
    max_rows: usize,
) -> Result<QueryResult, NodeError> {
    let target = pg_target(url).map_err(|reason| run.fail_parameter("url", reason))?;
    // Resolve once, check the addresses like any egress (and against the platform's
    // own stores), and connect to the checked address, so the name cannot resolve
    // elsewhere in between.
    let resolver = SafeResolver::new(run.egress.clone());
    let addresses = resolver
        .resolve_checked(&target.host, target.port)
        .await
        .map_err(|refusal| run.fail_parameter("url", refusal))?;
    let address = addresses[0].ip().to_string();
    let statement_timeout = run.config.limits.max_node_timeout_ms.min(
        run.node
            .timeout_ms
            .unwrap_or(run.config.limits.default_node_timeout_ms),
    );
    let options = pg_options(&target, &address, statement_timeout)
        .map_err(|reason| run.fail_parameter("url", reason))?;
    // The database is an outside target like any API: connecting goes
    // through its breaker; what the statement then does is the tenant's.
    let host = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let mut connection: PgConnection = super::target::call_target(
        run,
        &host.to_ascii_lowercase(),
        with_connect_timeout(run, options.connect()),
        |_| None,
    )
    .await?;
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
/// workflow cannot open files elsewhere on the worker. A query string or fragment
/// is refused too: SQLite's URI parameters (`mode`, `vfs`, `immutable`…) are not a
/// workflow's to choose.
fn sqlite_path(root: &Path, url: &str) -> Option<PathBuf> {
    let without_scheme = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if without_scheme.contains(['?', '#']) || without_scheme.starts_with("file:") {
        return None;
    }
    let relative = Path::new(without_scheme);
    if relative.as_os_str().is_empty()
        || !relative
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
    {
        return None;
    }
    Some(root.join(relative))
}

/// The path with its existing part resolved (symbolic links followed), so a link
/// inside the directory cannot lead anywhere else.
fn resolve_existing(path: &Path) -> std::io::Result<PathBuf> {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(resolved) => {
                return Ok(rest
                    .iter()
                    .rev()
                    .fold(resolved, |path, part| path.join(part)));
            }
            Err(error) => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(error);
                };
                rest.push(name.to_owned());
                existing = parent;
            }
        }
    }
}

/// Whether the database file stays inside the SQLite directory once links are
/// followed, and away from the platform's own files.
fn sqlite_confined(root: &Path, path: &Path, platform: &[PathBuf]) -> Result<(), &'static str> {
    let root = resolve_existing(root).map_err(|_| "the SQLite directory cannot be resolved")?;
    let path = resolve_existing(path).map_err(|_| "the database path cannot be resolved")?;
    if !path.starts_with(&root) {
        return Err("must stay inside the SQLite directory");
    }
    let platform_files = platform
        .iter()
        .filter_map(|own| resolve_existing(own).ok())
        .any(|own| path.starts_with(own));
    if platform_files {
        return Err("names one of the platform's own database files");
    }
    Ok(())
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
    let Some(root) = run.config.sql.sqlite_dir.as_deref() else {
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
    sqlite_confined(root, &path, &run.config.platform.paths)
        .map_err(|reason| run.fail_parameter("url", reason))?;
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
            sqlite_path(root, "sqlite://team/app.db"),
            Some(root.join("team/app.db"))
        );
        for switching in [
            "sqlite://team/app.db?mode=rwc",
            "sqlite:app.db?mode=memory&cache=shared",
            "sqlite:app.db?vfs=unix-none",
            "sqlite:app.db#x",
            "sqlite:file:app.db",
        ] {
            assert_eq!(sqlite_path(root, switching), None, "{switching}");
        }
        assert_eq!(sqlite_path(root, "sqlite:///etc/passwd"), None);
        assert_eq!(sqlite_path(root, "../escape.db"), None);
        assert_eq!(sqlite_path(root, "sqlite:"), None);
    }

    #[test]
    fn sqlite_links_and_platform_files_are_refused() {
        let scratch = std::env::temp_dir().join(format!("tyboo-sql-{}", uuid::Uuid::now_v7()));
        let root = scratch.join("sqlite");
        let platform = scratch.join("data");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&platform).unwrap();
        std::fs::write(platform.join("executor.db"), b"").unwrap();
        let platform_paths = vec![platform.clone()];
        assert_eq!(
            sqlite_confined(&root, &root.join("app.db"), &platform_paths),
            Ok(())
        );
        std::os::unix::fs::symlink(platform.join("executor.db"), root.join("link.db")).unwrap();
        std::os::unix::fs::symlink(&platform, root.join("linked")).unwrap();
        for through_link in ["link.db", "linked/executor.db", "linked/new.db"] {
            assert!(
                sqlite_confined(&root, &root.join(through_link), &platform_paths).is_err(),
                "{through_link}"
            );
        }
        // The operator pointed the SQLite directory at the platform's own folder.
        assert_eq!(
            sqlite_confined(&platform, &platform.join("executor.db"), &platform_paths),
            Err("names one of the platform's own database files")
        );
        let _ = std::fs::remove_dir_all(scratch);
    }

    #[test]
    fn postgres_urls_choose_nothing_but_their_checked_parts() {
        let target = pg_target("postgres://ada:p%40ss@db.example.com:6543/sales?sslmode=require")
            .expect("a plain URL");
        assert_eq!(
            (
                target.host.as_str(),
                target.port,
                target.username.as_str(),
                target.password.as_str(),
                target.database.as_str()
            ),
            ("db.example.com", 6543, "ada", "p@ss", "sales")
        );
        assert!(matches!(target.ssl_mode, PgSslMode::Require));
        let defaults = pg_target("postgres://10.1.2.3").expect("host only");
        assert_eq!(
            (
                defaults.port,
                defaults.username.as_str(),
                defaults.database.as_str()
            ),
            (5432, "postgres", "postgres")
        );
        assert_eq!(defaults.password, "", "no password is sent, not PGPASSWORD");
        for hostile in [
            "postgres://user@db.example.com/db?host=/var/run/postgresql",
            "postgres://user@db.example.com/db?host=%2Fvar%2Frun%2Fpostgresql",
            "postgres://user@db.example.com/db?hostaddr=127.0.0.1",
            "postgres://user@db.example.com/db?port=5433",
            "postgres://user@db.example.com/db?dbname=other",
            "postgres://user@db.example.com/db?user=postgres",
            "postgres://user@db.example.com/db?password=x",
            "postgres://user@db.example.com/db?options=-c%20search_path%3Dtenancy",
            "postgres://user@db.example.com/db?options[search_path]=tenancy",
            "postgres://user@db.example.com/db?sslkey=/etc/shadow",
            "postgres://user@db.example.com/db?sslrootcert=/etc/passwd",
            "postgres://user@db.example.com/db?passfile=/root/.pgpass",
            "postgres://user@db.example.com/db?unknown=1",
            "postgres://user@%2Fvar%2Frun%2Fpostgresql/db",
            "postgres://user@%2fvar%2frun%2fpostgresql:5432/db",
            "postgres://user@/db",
            "postgres:///db",
            "postgres:///db?host=/tmp",
            "postgres://user@db%20x/db",
            "postgres://user@db.example.com/db/extra",
            "mysql://user@db.example.com/db",
            "postgres://user@db.example.com/db?sslmode=sometimes",
        ] {
            assert!(pg_target(hostile).is_err(), "{hostile} must be refused");
        }
    }

    #[test]
    fn postgres_options_connect_only_to_the_checked_address() {
        let target = pg_target("postgres://ada:secret@db.example.com:6543/sales").unwrap();
        let options = pg_options(&target, "203.0.113.7", 5000).expect("options");
        assert_eq!(options.get_socket(), None);
        assert_eq!(options.get_host(), "203.0.113.7");
        assert_eq!(options.get_port(), 6543);
        assert_eq!(options.get_username(), "ada");
        assert_eq!(options.get_database(), Some("sales"));
        assert_eq!(options.get_options(), Some("-c statement_timeout=5000"));
    }

    #[test]
    fn attach_and_vacuum_are_refused() {
        assert!(touches_other_files("attach database '/tmp/x' as x"));
        assert!(touches_other_files("VACUUM INTO '/tmp/copy.db'"));
        assert!(!touches_other_files("select attached_at from vacuums"));
    }
}
