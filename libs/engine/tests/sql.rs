//! sql.query on SQLite (a temporary directory) and, when `TYBOO_TEST_POSTGRES_URL` is
//! set, on PostgreSQL.

mod common;

use std::path::PathBuf;

use serde_json::{Value, json};
use tyboo_engine::{
    EgressConfig, Engine, EngineConfig, ErrorClass, NodeOutcome, PlatformStores, SqlConfig,
};
use uuid::Uuid;

use common::{context, node};

fn scratch_dir() -> PathBuf {
    let directory = std::env::temp_dir().join(format!("tyboo-engine-sql-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&directory).expect("create scratch directory");
    directory
}

fn engine(sqlite_dir: Option<PathBuf>) -> Engine {
    Engine::new(EngineConfig {
        egress: EgressConfig {
            allow_cidrs: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
            ..EgressConfig::default()
        },
        sql: SqlConfig { sqlite_dir },
        ..EngineConfig::default()
    })
    .expect("engine")
}

async fn query(
    engine: &Engine,
    driver: &str,
    url: &str,
    sql: &str,
    params: Value,
) -> Result<Value, tyboo_engine::NodeError> {
    let spec = node(
        "db",
        "sql.query",
        json!({"driver": driver, "url": url, "query": sql, "params": params, "max_rows": 50}),
    );
    match engine.run_node(&spec, &context("db", vec![])).await? {
        NodeOutcome::Completed { output, .. } => Ok(output),
        other => panic!("expected completion, got {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_round_trip_with_parameters() {
    let directory = scratch_dir();
    let engine = engine(Some(directory.clone()));
    let url = "sqlite:orders.db";
    query(&engine, "sqlite", url, "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL, paid BOOLEAN, note TEXT)", json!([]))
        .await
        .expect("create");
    let inserted = query(
        &engine,
        "sqlite",
        url,
        "INSERT INTO orders (customer, total, paid, note) VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
        json!(["Ada", 12.5, true, null, "Grace", 99, false, "rush"]),
    )
    .await
    .expect("insert");
    assert_eq!(inserted["rows_affected"], 2);

    let selected = query(
        &engine,
        "sqlite",
        url,
        "SELECT id, customer, total, paid, note FROM orders WHERE total > ? ORDER BY id",
        json!([10]),
    )
    .await
    .expect("select");
    assert_eq!(selected["row_count"], 2);
    assert_eq!(
        selected["rows"],
        json!([
            {"id": 1, "customer": "Ada", "total": 12.5, "paid": 1, "note": null},
            {"id": 2, "customer": "Grace", "total": 99.0, "paid": 0, "note": "rush"}
        ])
    );

    let error = query(&engine, "sqlite", url, "SELECT nope FROM orders", json!([]))
        .await
        .expect_err("bad column");
    assert_eq!(error.class, ErrorClass::Permanent);

    let many = query(&engine, "sqlite", url, "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100) SELECT x FROM n", json!([]))
        .await
        .expect_err("past max_rows");
    assert_eq!(many.parameter.as_deref(), Some("max_rows"));
    let _ = std::fs::remove_dir_all(directory);
}

#[tokio::test]
async fn sqlite_is_confined_to_its_directory() {
    let directory = scratch_dir();
    let engine = engine(Some(directory.clone()));
    for url in ["sqlite:///etc/passwd", "sqlite:../escape.db"] {
        let error = query(&engine, "sqlite", url, "SELECT 1", json!([]))
            .await
            .expect_err(url);
        assert_eq!(error.parameter.as_deref(), Some("url"), "{url}");
    }
    let error = query(
        &engine,
        "sqlite",
        "sqlite:a.db",
        "ATTACH DATABASE '/tmp/other.db' AS other",
        json!([]),
    )
    .await
    .expect_err("attach");
    assert_eq!(error.parameter.as_deref(), Some("query"));

    let disabled = self::engine(None);
    let error = query(&disabled, "sqlite", "sqlite:a.db", "SELECT 1", json!([]))
        .await
        .expect_err("disabled");
    assert!(
        error.message.contains("SQLite is disabled"),
        "{}",
        error.message
    );
    let _ = std::fs::remove_dir_all(directory);
}

#[tokio::test]
async fn postgres_hosts_follow_the_egress_policy() {
    let refusing = Engine::new(EngineConfig::default()).expect("engine");
    let error = query(
        &refusing,
        "postgres",
        "postgres://user:pw@127.0.0.1:5432/db",
        "SELECT 1",
        json!([]),
    )
    .await
    .expect_err("loopback refused");
    assert!(
        error.message.contains("egress refused"),
        "{}",
        error.message
    );
    assert!(!error.message.contains("pw@"), "{}", error.message);
}

/// The platform's own database is refused by name and by every local spelling of
/// its address, although the operator allowed loopback; so are socket overrides.
#[tokio::test]
async fn the_platform_database_is_unreachable_from_sql_query() {
    let engine = Engine::new(EngineConfig {
        egress: EgressConfig {
            allow_cidrs: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
            ..EgressConfig::default()
        },
        platform: PlatformStores {
            urls: vec!["postgres://root@127.0.0.1:5432/postgres".to_owned()],
            paths: Vec::new(),
        },
        ..EngineConfig::default()
    })
    .expect("engine");
    for url in [
        "postgres://root@127.0.0.1:5432/postgres",
        "postgres://root@localhost/postgres",
        "postgres://root@[::1]:5432/test",
        "postgres://root@127.0.0.9:5432/postgres",
        "postgresql://root@localhost:5432/root?sslmode=disable",
    ] {
        let error = query(&engine, "postgres", url, "SELECT 1", json!([]))
            .await
            .expect_err(url);
        assert_eq!(error.parameter.as_deref(), Some("url"), "{url}");
        assert!(
            error.message.contains("platform's own store"),
            "{url}: {}",
            error.message
        );
    }
    for url in [
        "postgres://root@example.invalid/postgres?host=/var/run/postgresql",
        "postgres://root@%2Fvar%2Frun%2Fpostgresql/postgres",
        "postgres://root@example.invalid/postgres?hostaddr=127.0.0.1",
        "postgres:///postgres",
    ] {
        let error = query(&engine, "postgres", url, "SELECT 1", json!([]))
            .await
            .expect_err(url);
        assert_eq!(error.parameter.as_deref(), Some("url"), "{url}");
    }
}

#[tokio::test]
async fn postgres_round_trip_when_configured() {
    let Ok(url) = std::env::var("TYBOO_TEST_POSTGRES_URL") else {
        eprintln!("TYBOO_TEST_POSTGRES_URL is not set; skipping the PostgreSQL round trip");
        return;
    };
    let engine = engine(None);
    let table = format!("engine_test_{}", Uuid::now_v7().simple());
    query(&engine, "postgres", &url, &format!("CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, score DOUBLE PRECISION, tags JSONB, seen TIMESTAMPTZ, ref UUID)"), json!([]))
        .await
        .expect("create");
    let inserted = query(
        &engine,
        "postgres",
        &url,
        &format!("INSERT INTO {table} (name, score, tags, seen, ref) VALUES ($1, $2, $3::jsonb, $4::timestamptz, $5::uuid)"),
        json!(["Ada", 3.5, "{\"vip\": true}", "2026-01-02T03:04:05Z", "0194f3b2-7c1e-7a2b-8c3d-4e5f60718293"]),
    )
    .await
    .expect("insert");
    assert_eq!(inserted["rows_affected"], 1);
    let selected = query(
        &engine,
        "postgres",
        &url,
        &format!("SELECT id, name, score, tags, seen, ref FROM {table} WHERE name = $1"),
        json!(["Ada"]),
    )
    .await
    .expect("select");
    assert_eq!(
        selected["rows"],
        json!([{"id": 1, "name": "Ada", "score": 3.5, "tags": {"vip": true}, "seen": "2026-01-02T03:04:05Z", "ref": "0194f3b2-7c1e-7a2b-8c3d-4e5f60718293"}])
    );
    query(
        &engine,
        "postgres",
        &url,
        &format!("DROP TABLE {table}"),
        json!([]),
    )
    .await
    .expect("drop");
}
