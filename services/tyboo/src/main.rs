//! `tyboo`: the one binary of Tyboo Studio.
// One call into the C library needs `unsafe` (`keep_large_blocks_returnable`).
#![deny(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use serde::Serialize;
use tyboo::admin::AdminArgs;
use tyboo::config::{Role, TybooConfig};
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
    command: Option<Command>,
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
    /// Operator commands on the configured database: organizations,
    /// workspaces, members, recovery keys and operator tokens.
    Admin(AdminArgs),
}

/// `tyboo expression-sandbox …`, which workers start themselves
/// (`executor.engine.limits.expression.sandbox = "process"`). It is parsed
/// apart from [`Cli`] so that no help text, error or "similar command" tip
/// ever names it.
#[derive(Debug, Parser)]
#[command(name = "tyboo expression-sandbox")]
struct SandboxCli {
    /// Memory the process may take on top of what it holds when idle.
    #[arg(long)]
    memory_cap_bytes: u64,
    /// Stack of the evaluation thread.
    #[arg(long)]
    stack_bytes: usize,
}

const SANDBOX_COMMAND: &str = "expression-sandbox";

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

/// Memory freed after a burst of large requests goes back to the system.
/// glibc's malloc serves blocks of 128 KiB and more from their own mappings,
/// returned when freed, but raises that threshold (up to 32 MiB) whenever
/// such a block is freed: after the first megabyte-sized webhook, later
/// ones came from heap arenas that glibc rarely trims, and rounds of 1 MB
/// bodies took a `tyboo up` from 200 to 334 MiB that it never gave back.
/// A fixed threshold turns that adjustment off (`tests/load/memory.py`
/// measures both).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_large_blocks_returnable() {
    // SAFETY: mallopt only changes a parameter of the allocator; it is
    // called once, first thing, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_blocks_returnable() {}

/// Exit status of a configuration the process cannot run with.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|first| first == SANDBOX_COMMAND)
    {
        let sandbox = SandboxCli::parse_from(
            std::env::args_os()
                .enumerate()
                .filter_map(|(index, argument)| (index != 1).then_some(argument)),
        );
        // Before any configuration, logging or runtime: the process stays small so
        // that its memory cap measures the program, and stdout carries only frames.
        return report(
            tyboo_engine::serve_expression_sandbox(sandbox.memory_cap_bytes, sandbox.stack_bytes)
                .context("serving the expression sandbox"),
        );
    }
    keep_large_blocks_returnable();
    let cli = Cli::parse();
    let flags = Flags {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
    };
    // A configuration error is the operator's to fix: it is printed once,
    // as it stands, naming keys and variables, and nothing else.
    let loaded: Result<TybooConfig, _> = tyboo_runtime::config::load(cli.config.as_deref(), &flags);
    let role = match &cli.command {
        Some(Command::Serve { service }) => match service {
            ServiceName::Tenancy => Role::Tenancy,
            ServiceName::Vault => Role::Vault,
            ServiceName::Executor => Role::Executor,
            ServiceName::Metering => Role::Metering,
            ServiceName::Edge => Role::Edge,
        },
        Some(Command::Worker { .. }) => Role::Worker,
        Some(Command::Up | Command::Migrate | Command::Admin(_)) | None => Role::Embedded,
    };
    let mut config = match loaded.and_then(|config| config.validate_for(role).map(|()| config)) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let expression = &mut config.executor.engine.limits.expression;
    if expression.sandbox == ExpressionSandbox::Process && expression.evaluator_command.is_none() {
        // This binary serves `expression-sandbox` itself.
        match std::env::current_exe() {
            Ok(path) => expression.evaluator_command = Some(path),
            Err(error) => return report(Err(error).context("locating the tyboo binary")),
        }
    }
    if cli.dump_config {
        print!("{}", config.to_redacted_toml());
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        // Clap's own help, which lists no hidden command.
        let _ = Cli::command().print_help();
        return ExitCode::from(EXIT_CONFIG);
    };
    tyboo_runtime::telemetry::init_logging(&config.log);
    // Every outbound HTTP client shares one TLS stack (ring), installed once.
    tyboo_engine::install_tls_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return report(Err(error).context("starting the async runtime")),
    };
    report(runtime.block_on(run(command, config)))
}

/// Prints a failure once, as one line of causes, with no backtrace and no
/// debug dump. A cause whose text its parent already quoted (database
/// errors repeat their source in their own message) is left out.
fn report(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if parts
            .last()
            .is_some_and(|previous| previous.contains(&text))
        {
            continue;
        }
        // A message that repeats its own tail (`a: b: b`) is cut back.
        let mut text = text;
        while let Some((head, tail)) = text.rsplit_once(": ") {
            if head.ends_with(tail) {
                text = head.to_owned();
            } else {
                break;
            }
        }
        parts.push(text);
    }
    parts.join(": ")
}

async fn run(command: Command, config: TybooConfig) -> anyhow::Result<()> {
    let reflection = Reflection {
        services: config.grpc.reflection,
        edge: config.edge.grpc_reflection,
    };
    let mesh = match command {
        Command::Migrate => {
            mesh::migrate(&config).await?;
            println!("migrations applied");
            return Ok(());
        }
        Command::Admin(args) => {
            let what = tyboo::admin::describe(&args);
            return tyboo::admin::run(&config, args).await.context(what);
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
    // Signals are handled before the banner tells anyone the process is up.
    mesh.shutdown().listen_for_signals();
    announce(&mesh, reflection);
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

/// Prints every address, and the owner's API key on first start.
///
/// Logs go to stderr and this block to stdout, after every start-up log line
/// (each server logs as it is spawned, before this runs), as one write that
/// is flushed at once: on a terminal that shows both, the block is never
/// split by a log line, and a script can read stdout alone.
fn announce(mesh: &Mesh, reflection: Reflection) {
    let mut lines = vec!["Tyboo Studio is running.".to_owned()];
    if let Some(address) = mesh.address(ServiceName::Edge) {
        lines.push(format!(
            "  edge      http://{address}  (HTTP/JSON and gRPC, reflection {})",
            on_off(reflection.edge)
        ));
    }
    let services = on_off(reflection.services);
    for service in [
        ServiceName::Tenancy,
        ServiceName::Vault,
        ServiceName::Executor,
        ServiceName::Metering,
    ] {
        if let Some(address) = mesh.address(service) {
            lines.push(format!(
                "  {:<10}{address}  (gRPC, reflection {services})",
                service.as_str()
            ));
        }
    }
    lines.push(format!("  metrics   http://{}/metrics", mesh.admin_address));
    if let Some(bootstrap) = &mesh.bootstrap {
        lines.push(String::new());
        if bootstrap.renewed {
            lines.push(
                "First start, again: the owner's API key was never used, so it was replaced \
                 by this one."
                    .to_owned(),
            );
        } else {
            lines.push(
                "First start: created an organization, a workspace and its owner.".to_owned(),
            );
        }
        lines.push(format!("  organization  {}", bootstrap.organization_id));
        lines.push(format!("  workspace     {}", bootstrap.workspace_id));
        lines.push(format!(
            "  owner         {} ({})",
            bootstrap.owner_email, bootstrap.user_id
        ));
        lines.push(format!("  API key       {}", bootstrap.api_key));
        lines.push(
            "Until it is first used, each restart replaces it and shows the new one; after \
             that, `tyboo admin keys issue` gives a member a new key."
                .to_owned(),
        );
        lines.push("The API key is shown only this once; keep it.".to_owned());
    }
    let mut block = lines.join("\n");
    block.push('\n');
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(block.as_bytes());
    let _ = stdout.flush();
}
