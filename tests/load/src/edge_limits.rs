//! `--scenario edge-limits`: what the edge's request rate limits cost.
//!
//! Starts an embedded mesh with the limits on and one with them off (each on
//! SQLite in a folder of its own, and on Redis for the limiter and the queue
//! with `--queue-url`), and drives `GET /v1/me` with one API key through
//! each for `--duration-seconds`, `--concurrency` requests in flight, twice in
//! alternation (on, off, on, off) so that drift of the machine hits both.
//! The quotas are set so high that nothing is refused: what is measured is
//! the price of checking. Prints req/s and p50 of each mode, best round,
//! and on/off ratios.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tyboo::config::TybooConfig;
use tyboo::mesh::{Mesh, ServiceName};

use crate::Args;

/// Rounds per mode, alternating.
const ROUNDS: usize = 2;
/// Requests before the measured part of a round: connections, the key's
/// exchange and the workspace's limits are in place.
const WARM_UP: usize = 200;

struct Figures {
    requests_per_second: f64,
    p50: Duration,
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let duration = Duration::from_secs(args.duration_seconds.max(1));
    let mut on: Option<Figures> = None;
    let mut off: Option<Figures> = None;
    for round in 0..ROUNDS * 2 {
        let enabled = round % 2 == 0;
        let figures = measure(args, enabled, duration).await?;
        println!(
            "round {}: limits {:<3} {:>9.0} req/s  p50 {:>7.3} ms",
            round / 2 + 1,
            if enabled { "on" } else { "off" },
            figures.requests_per_second,
            figures.p50.as_secs_f64() * 1_000.0
        );
        let best = if enabled { &mut on } else { &mut off };
        if best
            .as_ref()
            .is_none_or(|best| figures.requests_per_second > best.requests_per_second)
        {
            *best = Some(figures);
        }
    }
    let (on, off) = (on.context("no round on")?, off.context("no round off")?);
    let limiter = if args.queue_url.is_some() {
        "Redis"
    } else {
        "in-process"
    };
    println!();
    println!(
        "edge-limits ({limiter} limiter, {} in flight, best of {ROUNDS} rounds of {} s)",
        args.concurrency,
        duration.as_secs()
    );
    println!(
        "  limits off: {:>9.0} req/s  p50 {:.3} ms",
        off.requests_per_second,
        off.p50.as_secs_f64() * 1_000.0
    );
    println!(
        "  limits on:  {:>9.0} req/s  p50 {:.3} ms",
        on.requests_per_second,
        on.p50.as_secs_f64() * 1_000.0
    );
    println!(
        "  on / off: throughput {:.3}, p50 {:+.3} ms",
        on.requests_per_second / off.requests_per_second,
        (on.p50.as_secs_f64() - off.p50.as_secs_f64()) * 1_000.0
    );
    Ok(())
}

async fn measure(args: &Args, enabled: bool, duration: Duration) -> anyhow::Result<Figures> {
    let data_dir =
        std::env::temp_dir().join(format!("tyboo-load-edge-{}", uuid::Uuid::now_v7().simple()));
    let prefix = format!("tyboo-load-{}", uuid::Uuid::now_v7().simple());
    let mut config = TybooConfig {
        data_dir: data_dir.clone(),
        queue_url: args.queue_url.clone().unwrap_or_default(),
        ..TybooConfig::default()
    };
    config.executor.broker.key_prefix = prefix.clone();
    config.edge.rate_limits.redis.key_prefix = prefix.clone();
    config.edge.rate_limits_enabled = enabled;
    // Checked on every request, refused never.
    let limits = &mut config.limits.defaults;
    limits.api_key_requests_per_minute = 6_000_000;
    limits.api_key_burst = 1_000_000;
    limits.workspace_requests_per_minute = 6_000_000;
    limits.workspace_burst = 1_000_000;
    config.edge.max_in_flight_requests = args.concurrency.max(1) * 4;
    let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.listen.edge = any_port;
    config.listen.tenancy = any_port;
    config.listen.executor = any_port;
    config.listen.vault = any_port;
    config.listen.metering = any_port;
    config.listen.admin = any_port;
    // Tenancy's limits lookups may warn (once per cache period); the
    // figures are what counts here.
    config.log.filter = "error".to_owned();
    let mesh = Mesh::start_embedded(config).await?;
    let api_key = mesh
        .bootstrap
        .clone()
        .context("a fresh data folder has a bootstrap key")?
        .api_key;
    let edge = format!(
        "http://{}/v1/me",
        mesh.address(ServiceName::Edge).context("no edge")?
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(1))
        .build()?;
    for _ in 0..WARM_UP {
        get(&http, &edge, &api_key).await?;
    }
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (http, edge, api_key) = (http.clone(), edge.clone(), api_key.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    get(&http, &edge, &api_key).await?;
                    latencies.push(sent.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    mesh.stop().await?;
    std::fs::remove_dir_all(&data_dir).ok();
    if let Some(url) = &args.queue_url {
        crate::scenario::delete_redis_keys(url, &prefix)?;
    }
    latencies.sort_unstable();
    let p50 = latencies
        .get(latencies.len() / 2)
        .copied()
        .context("no request finished")?;
    Ok(Figures {
        requests_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50,
    })
}

async fn get(http: &reqwest::Client, url: &str, api_key: &str) -> anyhow::Result<()> {
    let response = http.get(url).bearer_auth(api_key).send().await?;
    if !response.status().is_success() {
        bail!(
            "GET /v1/me answered {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    response.bytes().await?;
    Ok(())
}
