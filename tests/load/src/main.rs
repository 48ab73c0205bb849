//! `tyboo-load`: drives N executions of a chosen workflow through the edge,
//! at a fixed rate or flat out, against an embedded mesh it starts itself or
//! a running deployment, and prints throughput, enqueue-to-start and
//! end-to-end latency (p50, p99) and CPU per execution. With `--baselines`
//! it measures, in the same run and on the same servers, what it is judged
//! against — `redis-benchmark` XADD and `pgbench` single-row inserts — and
//! prints our figures as ratios of them.
#![forbid(unsafe_code)]

mod baselines;
mod edge_limits;
mod metering;
mod noisy;
mod report;
mod scenario;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};

use crate::scenario::{Scenario, Target};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkflowKind {
    /// A manual trigger and one `set` node.
    Noop,
    /// An async webhook, a jq transform and a `set` node.
    Webhook3,
    /// A manual trigger and 40 `set` nodes in a chain (per-step overhead).
    Chain40,
}

/// What a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LoadScenario {
    /// Executions of `--workflow` through the edge (the default).
    Executions,
    /// `GET /v1/me` through an edge with its rate limits on and off, on
    /// embedded meshes of its own (`--queue-url` puts the limiter on Redis).
    EdgeLimits,
    /// Workspace B's enqueue-to-start alone and while workspace A floods
    /// with `--concurrency` clients flat out.
    NoisyNeighbour,
    /// noop and webhook3 with metering on and off, alternately on fresh
    /// embedded meshes, then the ledger's write rate alone.
    Metering,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SqliteSync {
    Full,
    Normal,
}

/// How executions are started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// `POST /v1/workflows/{id}/executions` with JSON through the edge.
    Http,
    /// `ExecutionService.StartExecution` as native gRPC through the edge.
    Grpc,
}

#[derive(Clone, Debug, Parser)]
#[command(name = "tyboo-load", about = "Load generator for Tyboo Studio")]
pub struct Args {
    #[arg(long, value_enum, default_value = "executions")]
    scenario: LoadScenario,
    /// `edge-limits`: seconds each round drives requests.
    #[arg(long, default_value_t = 5)]
    duration_seconds: u64,
    /// Edge URL of a running deployment; without it an embedded mesh is started.
    #[arg(long)]
    edge: Option<String>,
    /// API key for `--edge` (required with it).
    #[arg(long, env = "TYBOO_LOAD_API_KEY")]
    api_key: Option<String>,
    /// Embedded mesh: PostgreSQL URL (default: SQLite in a temporary folder).
    #[arg(long)]
    database_url: Option<String>,
    /// Embedded mesh on SQLite: sync the log at every commit (`full`) or at
    /// checkpoints (`normal`), as the `sqlite_synchronous` key does.
    #[arg(long, value_enum, default_value = "full")]
    sqlite_synchronous: SqliteSync,
    /// Embedded mesh: Redis URL for the step queue (default: in-process).
    #[arg(long)]
    queue_url: Option<String>,
    #[arg(long, value_enum, default_value = "noop")]
    workflow: WorkflowKind,
    #[arg(long, default_value_t = 200)]
    executions: usize,
    /// Executions started per second; 0 starts them as fast as the edge takes them.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// How API-started workflows (noop, chain40) are started; webhook3 is
    /// always delivered as an HTTP webhook.
    #[arg(long, value_enum, default_value = "http")]
    via: Via,
    /// Run twice: flat out to find the peak, then at half of that rate, and
    /// print both (latency targets are judged at half of peak load).
    #[arg(long)]
    half_peak: bool,
    /// Requests in flight at once while starting executions.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Process ids whose CPU time counts (distributed mode); the embedded
    /// mesh counts this process.
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
    /// Also measure redis-benchmark XADD and pgbench single-row inserts.
    #[arg(long)]
    baselines: bool,
    /// Embedded mesh: keep the default per-key and per-workspace request
    /// limits instead of lifting them out of reach (`noisy-neighbour` with
    /// this shows what a flooding tenant meets in a default deployment).
    #[arg(long)]
    default_request_limits: bool,
    /// Embedded mesh: no usage outbox (`executor.usage.enabled = false`),
    /// so nothing is metered.
    #[arg(long)]
    no_metering: bool,
    /// PostgreSQL server for the pgbench baseline.
    #[arg(long, default_value = "postgres://root@127.0.0.1:5432/postgres")]
    baseline_postgres: String,
    /// Redis server for the XADD baseline.
    #[arg(long, default_value = "127.0.0.1:6379")]
    baseline_redis: String,
    /// Where an embedded mesh keeps its SQLite files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.edge.is_some() && args.api_key.is_none() {
        bail!("--api-key (or TYBOO_LOAD_API_KEY) is required with --edge");
    }
    if args.executions == 0 {
        bail!("--executions must be at least 1");
    }
    tyboo_engine::install_tls_provider();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.scenario == LoadScenario::EdgeLimits {
        return edge_limits::run(&args).await;
    }
    if args.scenario == LoadScenario::NoisyNeighbour {
        return noisy::run(&args).await;
    }
    if args.scenario == LoadScenario::Metering {
        return metering::run(&args).await;
    }
    let target = Target::open(&args).await?;
    let scenario = Scenario::prepare(&target, args.workflow).await?;
    let figures = measure(&target, &scenario, &args, args.rate).await?;
    figures.print(&args, "");
    if args.half_peak {
        let rate = figures.throughput / 2.0;
        println!();
        let half = measure(&target, &scenario, &args, rate).await?;
        half.print(&args, &format!(" at half of peak ({rate:.1}/s)"));
    }
    if args.baselines {
        let measured = baselines::measure(&args.baseline_redis, &args.baseline_postgres).await?;
        report::print_ratios(&figures, &measured);
    }
    target.stop().await
}

/// One measured batch of `args.executions`, started at `rate` per second
/// (0: flat out).
async fn measure(
    target: &Target,
    scenario: &Scenario,
    args: &Args,
    rate: f64,
) -> anyhow::Result<report::Figures> {
    let cpu_before = report::cpu_seconds(&target.cpu_pids(&args.pids));
    let started = Instant::now();
    let execution_ids = scenario
        .start_all(target, args.executions, rate, args.concurrency)
        .await?;
    let submitted = started.elapsed();
    scenario
        .wait_until_finished(target, &execution_ids, Duration::from_secs(600))
        .await?;
    let wall = started.elapsed();
    let cpu = report::cpu_seconds(&target.cpu_pids(&args.pids)) - cpu_before;
    let executions = scenario.fetch_all(target, &execution_ids).await?;
    Ok(report::Figures::from_executions(
        &executions,
        args.workflow,
        wall,
        submitted,
        cpu,
    ))
}
