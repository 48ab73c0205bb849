//! The baselines our figures are judged against, measured on the same
//! servers in the same run: Redis stream appends and PostgreSQL single-row
//! inserts, each with its own standard tool.

use std::process::Command;

use anyhow::{Context, bail};

pub struct Baselines {
    pub redis_xadd_per_second: f64,
    pub postgres_inserts_per_second: f64,
}

pub async fn measure(redis: &str, postgres_url: &str) -> anyhow::Result<Baselines> {
    let redis = redis.to_owned();
    let postgres_url = postgres_url.to_owned();
    tokio::task::spawn_blocking(move || {
        Ok(Baselines {
            redis_xadd_per_second: redis_xadd(&redis)?,
            postgres_inserts_per_second: pgbench_inserts(&postgres_url)?,
        })
    })
    .await?
}

fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `redis-benchmark` appending to a stream of its own, 16 clients.
fn redis_xadd(address: &str) -> anyhow::Result<f64> {
    let (host, port) = address
        .rsplit_once(':')
        .context("--baseline-redis is host:port")?;
    let stream = format!("tyboo-load-baseline-{}", uuid::Uuid::now_v7().simple());
    let output = run(Command::new("redis-benchmark")
        .args(["-h", host, "-p", port, "-n", "50000", "-c", "16", "-q"])
        .args(["XADD", &stream, "*", "field", "value"]))?;
    run(Command::new("redis-cli").args(["-h", host, "-p", port, "DEL", &stream]))?;
    // "XADD …: 81234.56 requests per second, p50=…"
    output
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(3)
        .find(|words| words[1] == "requests" && words[2].starts_with("per"))
        .and_then(|words| words[0].parse().ok())
        .with_context(|| format!("unexpected redis-benchmark output: {output}"))
}

/// `pgbench` inserting one row per transaction into a table of its own, in a
/// database of its own, 8 clients for 5 seconds.
fn pgbench_inserts(url: &str) -> anyhow::Result<f64> {
    let database = format!("tyboo_load_baseline_{}", uuid::Uuid::now_v7().simple());
    run(Command::new("psql").args([url, "-qc", &format!("CREATE DATABASE {database}")]))?;
    let base = url.rsplit_once('/').map(|(base, _)| base).unwrap_or(url);
    let target = format!("{base}/{database}");
    let script = std::env::temp_dir().join(format!("{database}.sql"));
    std::fs::write(&script, "INSERT INTO baseline (payload) VALUES ('{}');\n")?;
    let result = (|| {
        run(Command::new("psql").args([
            &target,
            "-qc",
            "CREATE TABLE baseline (id bigserial PRIMARY KEY, payload jsonb NOT NULL)",
        ]))?;
        run(Command::new("pgbench")
            .args(["-n", "-c", "8", "-j", "2", "-T", "5", "-f"])
            .arg(&script)
            .arg(&target))
    })();
    std::fs::remove_file(&script).ok();
    run(Command::new("psql").args([
        url,
        "-qc",
        &format!("DROP DATABASE {database} WITH (FORCE)"),
    ]))?;
    let output = result?;
    // "tps = 1234.567890 (without initial connection time)"
    output
        .lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| line.split_whitespace().nth(2))
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("unexpected pgbench output: {output}"))
}
