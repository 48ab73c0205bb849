//! The load generator against an embedded mesh of its own: small batches of
//! each workflow, started over JSON and over native gRPC, flat out and at
//! half of peak, must all succeed and be reported.

use std::process::Command;

/// Runs `tyboo-load` on SQLite, or, in the suite's PostgreSQL pass
/// (`TYBOO_TEST_BACKEND=postgres`), on a database of its own and Redis.
fn run(args: &[&str]) -> String {
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let data_dir = std::env::temp_dir().join(format!("tyboo-load-smoke-{unique}"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_tyboo-load"));
    command.args(args).arg("--data-dir").arg(&data_dir);
    let postgres = (std::env::var("TYBOO_TEST_BACKEND").as_deref() == Ok("postgres")).then(|| {
        let admin = std::env::var("TYBOO_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".to_owned());
        let database = format!("tyboo_load_smoke_{unique}");
        psql(&admin, &format!("CREATE DATABASE {database}"));
        let base = admin
            .rsplit_once('/')
            .map(|(base, _)| base)
            .unwrap_or(&admin);
        let redis = std::env::var("TYBOO_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        command
            .arg("--database-url")
            .arg(format!("{base}/{database}"))
            .arg("--queue-url")
            .arg(redis);
        (admin, database)
    });
    let output = command.output().expect("tyboo-load runs");
    std::fs::remove_dir_all(&data_dir).ok();
    if let Some((admin, database)) = postgres {
        psql(&admin, &format!("DROP DATABASE {database} WITH (FORCE)"));
    }
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "tyboo-load {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn psql(url: &str, sql: &str) {
    let status = Command::new("psql")
        .args([url, "-qc", sql])
        .status()
        .expect("psql runs");
    assert!(status.success(), "psql: {sql}");
}

#[test]
fn every_workflow_runs_over_json_and_grpc_flat_out_and_at_half_of_peak() {
    let noop = run(&["--workflow", "noop", "--executions", "12", "--via", "grpc"]);
    assert!(noop.contains("12 (12 succeeded)"), "{noop}");
    assert!(noop.contains("enqueue-to-start    p50"), "{noop}");

    let webhook = run(&["--workflow", "webhook3", "--executions", "8", "--half-peak"]);
    assert_eq!(webhook.matches("8 (8 succeeded)").count(), 2, "{webhook}");
    assert!(webhook.contains("Webhook3 at half of peak"), "{webhook}");

    let chain = run(&["--workflow", "chain40", "--executions", "2"]);
    assert!(chain.contains("2 (2 succeeded)"), "{chain}");
    assert!(chain.contains("40 per execution"), "{chain}");
    assert!(chain.contains("sequential"), "{chain}");
}
