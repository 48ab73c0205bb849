//! `tyboo`: the one binary of Tyboo Studio.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;
use tyboo::config::TybooConfig;
use tyboo::mesh::{self, Mesh, ServiceName};
use tyboo_engine::{ExpressionSandbox, Pool};

#[derive(Debug, Parser)]
#[command(
    name = "tyboo",
    version,
    about = "Tyboo Studio: multi-tenant workflow automation"
)]
struct Cli {
    /// A TOML configuration file (also `TYBOO_CONFIG`).
    #[arg(long, global = true, env = "TYBOO_CONFIG")]
    config: Option<PathBuf>,
    /// Where SQLite files live (`data_dir`).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// `postgres://…` to run on PostgreSQL (`database_url`).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Print the resolved configuration as TOML and exit.
    #[arg(long, global = true)]
    dump_config: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service and the edge in this process, each on its own port.
    Up,
    /// Run one service.
    Serve {
        #[arg(value_enum)]
        service: ServiceName,
    },
    /// Run workers: the nodes of the given pools (all pools by default).
    Worker {
        /// `default`, `ai` or `data`; repeat for several.
        #[arg(long = "pool", value_parser = parse_pool)]
        pools: Vec<Pool>,
    },
    /// Apply every service's database migrations and exit.
    Migrate,
    /// Evaluate jq for a worker under a memory cap, over stdin and stdout. Workers start
    /// it themselves (`executor.engine.limits.expression.sandbox = "process"`).
    #[command(hide = true)]
    ExpressionSandbox {
        /// Memory the process may take on top of what it holds when idle.
        #[arg(long)]
        memory_cap_bytes: u64,
        /// Stack of the evaluation thread.
        #[arg(long)]
        stack_bytes: usize,
    },
}

fn parse_pool(text: &str) -> Result<Pool, String> {
    Pool::parse(text).ok_or_else(|| format!("unknown pool `{text}`: use default, ai or data"))
}

/// The flags that override configuration keys; unset flags leave them be.
#[derive(Serialize)]
struct Flags {
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::ExpressionSandbox {
        memory_cap_bytes,
        stack_bytes,
    } = cli.command
    {
        // Before any configuration, logging or runtime: the process stays small so
        // that its memory cap measures the program, and stdout carries only frames.
        return tyboo_engine::serve_expression_sandbox(memory_cap_bytes, stack_bytes)
            .context("serving the expression sandbox");
    }
    let flags = Flags {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
    };
    let mut config: TybooConfig = tyboo_runtime::config::load(cli.config.as_deref(), &flags)?;
    config.validate().map_err(anyhow::Error::msg)?;
    let expression = &mut config.executor.engine.limits.expression;
    if expression.sandbox == ExpressionSandbox::Process && expression.evaluator_command.is_none() {
        // This binary serves `expression-sandbox` itself.
        expression.evaluator_command =
            Some(std::env::current_exe().context("locating the tyboo binary")?);
    }
    if cli.dump_config {
        print!("{}", config.to_redacted_toml());
        return Ok(());
    }
    tyboo_runtime::telemetry::init_logging(&config.log);
    // Every outbound HTTP client shares one TLS stack (ring), installed once.
    tyboo_engine::install_tls_provider();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(cli.command, config))
}

async fn run(command: Command, config: TybooConfig) -> anyhow::Result<()> {
    let reflection = Reflection {
        services: config.grpc.reflection,
        edge: config.edge.grpc_reflection,
    };
    let mesh = match command {
        Command::ExpressionSandbox { .. } => {
            anyhow::bail!("the expression sandbox runs without the async runtime")
        }
        Command::Migrate => {
            mesh::migrate(&config).await?;
            println!("migrations applied");
            return Ok(());
        }
        Command::Up => Mesh::start_embedded(config).await?,
        Command::Serve { service } => Mesh::start_one(config, service).await?,
        Command::Worker { pools } => {
            let pools = if pools.is_empty() {
                Pool::ALL.to_vec()
            } else {
                pools
            };
            Mesh::start_workers(config, &pools).await?
        }
    };
    announce(&mesh, reflection);
    mesh.shutdown().listen_for_signals();
    mesh.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Which servers answer gRPC reflection, for the address lines.
#[derive(Clone, Copy)]
struct Reflection {
    services: bool,
    edge: bool,
}

fn on_off(enabled: bool) -> &'static str {
    if enabled { "on" } else { "off" }
}

/// Prints every address, and the owner's API key once on first start.
fn announce(mesh: &Mesh, reflection: Reflection) {
    println!("Tyboo Studio is running.");
    if let Some(address) = mesh.edge_address {
        println!(
            "  edge      http://{address}  (HTTP/JSON and gRPC, reflection {})",
            on_off(reflection.edge)
        );
    }
    let services = on_off(reflection.services);
    if let Some(address) = mesh.tenancy_address {
        println!("  tenancy   {address}  (gRPC, reflection {services})");
    }
    if let Some(address) = mesh.vault_address {
        println!("  vault     {address}  (gRPC, reflection {services})");
    }
    if let Some(address) = mesh.executor_address {
        println!("  executor  {address}  (gRPC, reflection {services})");
    }
    println!("  metrics   http://{}/metrics", mesh.admin_address);
    if let Some(bootstrap) = &mesh.bootstrap {
        println!();
        println!("First start: created an organization, a workspace and its owner.");
        println!("  organization  {}", bootstrap.organization_id);
        println!("  workspace     {}", bootstrap.workspace_id);
        println!(
            "  owner         {} ({})",
            bootstrap.owner_email, bootstrap.user_id
        );
        println!("  API key       {}", bootstrap.api_key);
        println!("The API key is shown only this once; keep it.");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}
