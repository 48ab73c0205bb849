//! Starting the mesh: every service embedded in one process (`tyboo up`),
//! one service on its own (`tyboo serve <service>`), or only migrations.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};
use tyboo_auth::{GrpcKeySource, ServiceTokenSource};
use tyboo_edge::{Edge, RateLimits, Upstream};
use tyboo_engine::Pool;
use tyboo_executor::{Executor, Workers};
use tyboo_limits::{CachedLimits, GrpcLimits};
use tyboo_metering::Metering;
use tyboo_proto::executor::dead_letter_service_server::SERVICE_NAME as DEAD_LETTER_SERVICE;
use tyboo_proto::executor::execution_service_server::SERVICE_NAME as EXECUTION_SERVICE;
use tyboo_proto::executor::workflow_service_server::SERVICE_NAME as WORKFLOW_SERVICE;
use tyboo_proto::metering::usage_service_server::SERVICE_NAME as USAGE_SERVICE;
use tyboo_proto::tenancy::limits_service_server::SERVICE_NAME as LIMITS_SERVICE;
use tyboo_proto::tenancy::tenancy_service_server::SERVICE_NAME as TENANCY_SERVICE;
use tyboo_proto::vault::credential_service_server::SERVICE_NAME as CREDENTIAL_SERVICE;
use tyboo_runtime::server::GrpcServer;
use tyboo_runtime::shutdown::Shutdown;
use tyboo_tenancy::{Bootstrap, Tenancy};
use tyboo_vault::Vault;

use crate::config::TybooConfig;
use crate::ports::{PortKey, Ports};

/// The services that exist so far and can be served alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum ServiceName {
    Tenancy,
    Vault,
    Executor,
    Metering,
    Edge,
}

impl ServiceName {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Tenancy => "tenancy",
            ServiceName::Vault => "vault",
            ServiceName::Executor => "executor",
            ServiceName::Metering => "metering",
            ServiceName::Edge => "edge",
        }
    }

    /// The `listen.*` key the service is served on.
    fn port(self) -> PortKey {
        match self {
            ServiceName::Tenancy => PortKey::Tenancy,
            ServiceName::Vault => PortKey::Vault,
            ServiceName::Executor => PortKey::Executor,
            ServiceName::Metering => PortKey::Metering,
            ServiceName::Edge => PortKey::Edge,
        }
    }
}

/// A running mesh (or part of one) in this process.
pub struct Mesh {
    /// Where each service this process serves listens.
    addresses: BTreeMap<ServiceName, SocketAddr>,
    pub admin_address: SocketAddr,
    /// What the first start created, when this start was the first.
    pub bootstrap: Option<Bootstrap>,
    shutdown: Shutdown,
    services_shutdown: Shutdown,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Mesh {
    /// `tyboo up`: tenancy, the vault, the executor (with its workers),
    /// metering and the edge on their own loopback ports, on SQLite under the data folder
    /// unless a database URL is configured.
    pub async fn start_embedded(mut config: TybooConfig) -> anyhow::Result<Mesh> {
        // Every service here shares this process, so a secret nobody else
        // knows serves as well as a configured one.
        if config.tenancy.service_secret.is_empty() {
            config.tenancy.service_secret = random_secret();
        }
        with_embedded_master_key(&mut config);
        // Everything that can fail comes before the first start writes its
        // organization: every port, every database, the edge's routes. A
        // start that fails here leaves nothing behind to lock anyone out.
        let mut ports = Ports::bind(
            &config,
            &[
                PortKey::Admin,
                PortKey::Tenancy,
                PortKey::Vault,
                PortKey::Executor,
                PortKey::Metering,
                PortKey::Edge,
            ],
        )
        .await?;
        let tenancy_address = ports.address(PortKey::Tenancy)?;
        let vault_address = ports.address(PortKey::Vault)?;
        let executor_address = ports.address(PortKey::Executor)?;
        let metering_address = ports.address(PortKey::Metering)?;
        let tenancy_channel = lazy_channel(&format!("http://{tenancy_address}"))?;
        let vault_channel = lazy_channel(&format!("http://{vault_address}"))?;
        let executor_channel = lazy_channel(&format!("http://{executor_address}"))?;
        let metering_channel = lazy_channel(&format!("http://{metering_address}"))?;
        let tenancy = open_tenancy(&config).await?;
        let vault = open_vault(&config, tenancy_channel.clone()).await?;
        let metering = open_metering(&config, tenancy_channel.clone()).await?;
        let executor = open_executor(
            &config,
            tenancy_channel.clone(),
            Some(vault_channel.clone()),
            Some(metering_channel.clone()),
        )
        .await?;
        let edge = build_edge(
            &config,
            tenancy_channel.clone(),
            Some(executor_channel),
            Some(vault_channel),
            Some(metering_channel),
        )
        .await?;
        let bootstrap = bootstrap(&config, &tenancy).await?;

        let mut starter = Starter::new(ports.take(PortKey::Admin)?);
        starter.serve(&config, &mut ports, &tenancy)?;
        starter.serve(&config, &mut ports, &vault)?;
        starter.serve(&config, &mut ports, &executor)?;
        starter.serve(&config, &mut ports, &metering)?;
        starter.run_workers(&config, &executor, &Pool::ALL);
        starter.serve_edge(&config, &mut ports, edge, tenancy_channel)?;
        Ok(starter.finish(bootstrap))
    }

    /// `tyboo worker --pool …`: runs the nodes of `pools` and serves nothing
    /// but the admin port.
    pub async fn start_workers(config: TybooConfig, pools: &[Pool]) -> anyhow::Result<Mesh> {
        let mut ports = Ports::bind(&config, &[PortKey::Admin]).await?;
        let tenancy_channel =
            lazy_channel(&required_endpoint(&config.endpoints.tenancy, "tenancy")?)?;
        let executor = open_executor(
            &config,
            tenancy_channel,
            optional_channel(&config.endpoints.vault)?,
            None,
        )
        .await?;
        let mut starter = Starter::new(ports.take(PortKey::Admin)?);
        starter.run_workers(&config, &executor, pools);
        Ok(starter.finish(None))
    }

    /// `tyboo serve <service>`: one service of a distributed deployment.
    pub async fn start_one(config: TybooConfig, service: ServiceName) -> anyhow::Result<Mesh> {
        match service {
            ServiceName::Tenancy => {
                let mut ports = Ports::bind(&config, &[PortKey::Admin, PortKey::Tenancy]).await?;
                let tenancy = open_tenancy(&config).await?;
                let bootstrap = bootstrap(&config, &tenancy).await?;
                let mut starter = Starter::new(ports.take(PortKey::Admin)?);
                starter.serve(&config, &mut ports, &tenancy)?;
                Ok(starter.finish(bootstrap))
            }
            ServiceName::Vault => {
                let tenancy_channel =
                    lazy_channel(&required_endpoint(&config.endpoints.tenancy, "tenancy")?)?;
                let mut ports = Ports::bind(&config, &[PortKey::Admin, PortKey::Vault]).await?;
                let vault = open_vault(&config, tenancy_channel).await?;
                let mut starter = Starter::new(ports.take(PortKey::Admin)?);
                starter.serve(&config, &mut ports, &vault)?;
                Ok(starter.finish(None))
            }
            ServiceName::Executor => {
                let tenancy_channel =
                    lazy_channel(&required_endpoint(&config.endpoints.tenancy, "tenancy")?)?;
                let vault = optional_channel(&config.endpoints.vault)?;
                let mut ports = Ports::bind(&config, &[PortKey::Admin, PortKey::Executor]).await?;
                let metering = optional_channel(&config.endpoints.metering)?;
                let executor = open_executor(&config, tenancy_channel, vault, metering).await?;
                let mut starter = Starter::new(ports.take(PortKey::Admin)?);
                starter.serve(&config, &mut ports, &executor)?;
                Ok(starter.finish(None))
            }
            ServiceName::Metering => {
                let tenancy_channel =
                    lazy_channel(&required_endpoint(&config.endpoints.tenancy, "tenancy")?)?;
                let mut ports = Ports::bind(&config, &[PortKey::Admin, PortKey::Metering]).await?;
                let metering = open_metering(&config, tenancy_channel).await?;
                let mut starter = Starter::new(ports.take(PortKey::Admin)?);
                starter.serve(&config, &mut ports, &metering)?;
                Ok(starter.finish(None))
            }
            ServiceName::Edge => {
                // The edge follows access changes with a service token; a
                // lone edge without the secret would keep changed roles
                // and revoked keys working until cached tokens age out.
                if config.tenancy.service_secret.is_empty() {
                    bail!(
                        "tenancy.service_secret (TYBOO_TENANCY__SERVICE_SECRET): must be set for \
                         a lone edge (the same value as tenancy's), which needs a service token \
                         to follow access changes"
                    );
                }
                let tenancy =
                    lazy_channel(&required_endpoint(&config.endpoints.tenancy, "tenancy")?)?;
                let executor =
                    lazy_channel(&required_endpoint(&config.endpoints.executor, "executor")?)?;
                let vault = lazy_channel(&required_endpoint(&config.endpoints.vault, "vault")?)?;
                let metering = optional_channel(&config.endpoints.metering)?;
                let mut ports = Ports::bind(&config, &[PortKey::Admin, PortKey::Edge]).await?;
                let edge = build_edge(
                    &config,
                    tenancy.clone(),
                    Some(executor),
                    Some(vault),
                    metering,
                )
                .await?;
                let mut starter = Starter::new(ports.take(PortKey::Admin)?);
                starter.serve_edge(&config, &mut ports, edge, tenancy)?;
                Ok(starter.finish(None))
            }
        }
    }

    /// Where `service` listens, when this process serves it.
    pub fn address(&self, service: ServiceName) -> Option<SocketAddr> {
        self.addresses.get(&service).copied()
    }

    /// Starts the drain of every server of this mesh.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Waits until every server has stopped; the first failure is returned.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let outcome = joined
                .context("a server task panicked")
                .and_then(|result| result);
            if let Err(error) = outcome {
                tracing::error!(error = %format!("{error:#}"), "server stopped with an error");
                // One server failing takes the others down with it.
                self.shutdown.trigger();
                self.services_shutdown.trigger();
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Drains and stops everything.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        self.wait().await
    }
}

/// Applies every service's migrations (`tyboo migrate`), starting none.
pub async fn migrate(config: &TybooConfig) -> anyhow::Result<()> {
    ensure_data_dir(config)?;
    Tenancy::migrate_database(&config.database_url_for("tenancy"), &config.tenancy)
        .await
        .context("migrating tenancy")?;
    // The vault checks its master keys; with none configured the embedded
    // key file is used, as `tyboo up` would.
    let mut config = config.clone();
    with_embedded_master_key(&mut config);
    Vault::migrate_database(&config.database_url_for("vault"), &config.vault)
        .await
        .context("migrating the vault")?;
    Executor::migrate_database(&config.database_url_for("executor"), &config.executor)
        .await
        .context("migrating the executor")?;
    Metering::migrate_database(&config.database_url_for("metering"), &config.metering)
        .await
        .context("migrating metering")?;
    Ok(())
}

fn required_endpoint(endpoint: &str, service: &str) -> anyhow::Result<String> {
    if endpoint.is_empty() {
        bail!(
            "endpoints.{service} ({}): must be set when {service} runs in another process",
            tyboo_runtime::config::environment_variable(&format!("endpoints.{service}"))
        );
    }
    Ok(endpoint.to_owned())
}

/// A fresh 256-bit secret, hex: the service secret of an embedded mesh.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    hex::encode(bytes)
}

/// With no master keys configured, the vault keeps a generated one in the
/// data folder, so `tyboo up` works with no set-up and keeps credentials
/// readable across restarts.
fn with_embedded_master_key(config: &mut TybooConfig) {
    if config.vault.master_keys.is_empty() && config.vault.master_key_file.is_none() {
        config.vault.master_key_file = Some(config.data_dir.join("vault-master.key"));
    }
}

/// Service tokens of `service`, exchanged at tenancy for the configured
/// shared secret. Without one, the calls that need a token fail with
/// Internal and a log line saying tenancy refused.
fn service_tokens(config: &TybooConfig, tenancy: Channel, service: &str) -> ServiceTokenSource {
    ServiceTokenSource::new(tenancy, service, config.tenancy.service_secret.clone())
}

/// Connects the vault to its database, verifying tokens with tenancy's keys
/// and writing its audit records to tenancy's log with its own token.
async fn open_vault(config: &TybooConfig, tenancy: Channel) -> anyhow::Result<Vault> {
    ensure_data_dir(config)?;
    let audit = tyboo_audit::TenancyAuditSink::new(
        tenancy.clone(),
        service_tokens(config, tenancy.clone(), "vault"),
    );
    let vault = Vault::connect(
        &config.database_url_for("vault"),
        config.vault.clone(),
        std::sync::Arc::new(GrpcKeySource::new(tenancy)),
        std::sync::Arc::new(audit),
    )
    .await
    .context("connecting the vault to its database")?;
    vault.migrate().await.context("migrating the vault")?;
    Ok(vault)
}

/// Connects metering to its database, verifying tokens with tenancy's keys.
async fn open_metering(config: &TybooConfig, tenancy: Channel) -> anyhow::Result<Metering> {
    ensure_data_dir(config)?;
    let metering = Metering::connect(
        &config.database_url_for("metering"),
        config.metering.clone(),
        std::sync::Arc::new(GrpcKeySource::new(tenancy)),
    )
    .await
    .context("connecting metering to its database")?;
    metering.migrate().await.context("migrating metering")?;
    Ok(metering)
}

/// Connects the executor to its database and the step queue, verifying
/// tokens with the keys tenancy publishes at `tenancy`.
async fn open_executor(
    config: &TybooConfig,
    tenancy: Channel,
    vault: Option<Channel>,
    metering: Option<Channel>,
) -> anyhow::Result<Executor> {
    ensure_data_dir(config)?;
    let queue_url = (!config.queue_url.is_empty()).then_some(config.queue_url.as_str());
    let dispatch = tyboo_broker::connect(queue_url, &config.executor.broker)
        .await
        .context("connecting to the step queue")?;
    let mut executor_config = config.executor.clone();
    executor_config.engine.platform = config.platform_stores();
    let executor = Executor::connect(
        &config.database_url_for("executor"),
        executor_config,
        std::sync::Arc::new(GrpcKeySource::new(tenancy.clone())),
        dispatch,
    )
    .await
    .context("connecting the executor to its database")?;
    let executor = match vault {
        Some(vault) => {
            executor.with_vault(vault, service_tokens(config, tenancy.clone(), "executor"))?
        }
        None => executor,
    };
    // The executor delivers the usage outbox; workers only write to it.
    let executor = match metering {
        Some(metering) => executor.with_metering(
            metering,
            service_tokens(config, tenancy.clone(), "executor"),
        )?,
        None => executor,
    };
    // Slots are shared by every process that claims steps: on the queue's
    // Redis when there is one. Limits come from tenancy, kept briefly.
    let leases = tyboo_lease::connect(
        queue_url,
        &config.executor.concurrency.leases,
        std::sync::Arc::new(tyboo_lease::SystemClock),
    )
    .await
    .context("connecting the concurrency leases")?;
    let limits = tyboo_limits::CachedLimits::new(
        std::sync::Arc::new(tyboo_limits::GrpcLimits::new(
            tenancy.clone(),
            service_tokens(config, tenancy.clone(), "executor"),
        )),
        &config.limits,
    );
    let executor = executor.with_concurrency(leases, std::sync::Arc::new(limits))?;
    // Breakers live where the queue does: on its Redis, shared by every
    // worker process, or in this process when embedded.
    let executor = if config.executor.breakers_enabled {
        let breakers = tyboo_breaker::connect(
            queue_url,
            &config.executor.breakers,
            std::sync::Arc::new(tyboo_breaker::SystemClock),
        )
        .await
        .context("connecting the circuit breakers")?;
        executor.with_breakers(breakers)?
    } else {
        executor
    };
    let audit = tyboo_audit::TenancyAuditSink::new(
        tenancy.clone(),
        service_tokens(config, tenancy, "executor"),
    );
    let executor = executor.with_audit(std::sync::Arc::new(audit))?;
    executor.migrate().await.context("migrating the executor")?;
    Ok(executor)
}

/// SQLite files live under the data folder; PostgreSQL needs none.
fn ensure_data_dir(config: &TybooConfig) -> anyhow::Result<()> {
    if config.database_url.is_empty() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data folder {}", config.data_dir.display()))?;
    }
    Ok(())
}

/// On the first start of an empty platform (when enabled), the organization,
/// workspace and owner that `tyboo up` and `tyboo serve tenancy` announce.
async fn bootstrap(config: &TybooConfig, tenancy: &Tenancy) -> anyhow::Result<Option<Bootstrap>> {
    if !config.bootstrap.enabled {
        return Ok(None);
    }
    tenancy
        .bootstrap_if_empty(
            &config.bootstrap.organization,
            &config.bootstrap.workspace,
            &config.bootstrap.owner_email,
        )
        .await
        .context("creating the first organization")
}

/// Opens (and migrates) tenancy's database in this process, for `tyboo admin`.
pub async fn open_tenancy_for_admin(config: &TybooConfig) -> anyhow::Result<Tenancy> {
    open_tenancy(config).await
}

async fn open_tenancy(config: &TybooConfig) -> anyhow::Result<Tenancy> {
    ensure_data_dir(config)?;
    let tenancy = Tenancy::connect(&config.database_url_for("tenancy"), config.tenancy.clone())
        .await
        .context("connecting tenancy to its database")?
        .with_limit_defaults(config.limits.defaults.clone());
    tenancy.migrate().await.context("migrating tenancy")?;
    Ok(tenancy)
}

/// A channel to `endpoint` when one is configured. A lone executor or
/// worker without `endpoints.vault` refuses credential references.
fn optional_channel(endpoint: &str) -> anyhow::Result<Option<Channel>> {
    if endpoint.is_empty() {
        return Ok(None);
    }
    lazy_channel(endpoint).map(Some)
}

fn lazy_channel(url: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("invalid endpoint {url}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_lazy())
}

/// The edge with its routes to the public services behind it, built before
/// anything is written because a bad route fails here. Its rate limits are
/// shared by every edge replica through the platform's Redis when there is
/// one (`queue_url`), in-process otherwise; each workspace's quotas are
/// read from tenancy's `LimitsService` with the edge's service token.
async fn build_edge(
    config: &TybooConfig,
    tenancy: Channel,
    executor: Option<Channel>,
    vault: Option<Channel>,
    metering: Option<Channel>,
) -> anyhow::Result<Edge> {
    let mut public = vec![
        Upstream {
            service: TENANCY_SERVICE.to_owned(),
            channel: tenancy.clone(),
        },
        Upstream {
            service: LIMITS_SERVICE.to_owned(),
            channel: tenancy.clone(),
        },
    ];
    if let Some(executor) = &executor {
        for service in [WORKFLOW_SERVICE, EXECUTION_SERVICE, DEAD_LETTER_SERVICE] {
            public.push(Upstream {
                service: service.to_owned(),
                channel: executor.clone(),
            });
        }
    }
    if let Some(vault) = vault {
        public.push(Upstream {
            service: CREDENTIAL_SERVICE.to_owned(),
            channel: vault,
        });
    }
    if let Some(metering) = metering {
        public.push(Upstream {
            service: USAGE_SERVICE.to_owned(),
            channel: metering,
        });
    }
    let limits = CachedLimits::new(
        Arc::new(GrpcLimits::new(
            tenancy.clone(),
            service_tokens(config, tenancy.clone(), "edge"),
        )),
        &config.limits,
    );
    let redis = (!config.queue_url.is_empty()).then_some(config.queue_url.as_str());
    let rate_limits = RateLimits::connect(&config.edge, redis, limits)
        .await
        .context("connecting the edge's rate limiter to Redis (queue_url)")?;
    let mut edge = Edge::new(config.edge.clone(), public, tenancy)
        .context("building the edge's routes")?
        .with_rate_limits(rate_limits);
    if let Some(executor) = executor {
        edge = edge.with_webhooks(executor);
    }
    Ok(edge)
}

/// Binds listeners first and spawns servers on them, so addresses are known
/// (and free) before anything announces them.
///
/// Two drains run in order: the edge first, so requests it is still serving
/// can reach the services behind it, then the services themselves.
struct Starter {
    /// The process's drain signal (SIGTERM); the edge follows it.
    shutdown: Shutdown,
    /// The services' drain, started once the edge has finished.
    services_shutdown: Shutdown,
    edge_done: Option<tokio::sync::oneshot::Receiver<()>>,
    tasks: JoinSet<anyhow::Result<()>>,
    addresses: BTreeMap<ServiceName, SocketAddr>,
    admin_address: SocketAddr,
}

impl Starter {
    fn new(admin: TcpListener) -> Starter {
        tyboo_runtime::telemetry::init_metrics();
        let shutdown = Shutdown::new();
        let services_shutdown = Shutdown::new();
        let mut tasks = JoinSet::new();
        let admin_address = admin
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let admin_shutdown = services_shutdown.clone();
        tasks.spawn(async move {
            tyboo_runtime::telemetry::serve_admin(admin, admin_shutdown)
                .await
                .context("admin server")
        });
        Starter {
            shutdown,
            services_shutdown,
            edge_done: None,
            tasks,
            addresses: BTreeMap::new(),
            admin_address,
        }
    }

    /// Serves `service` on its port, with the tasks it runs beside it; both
    /// drain with the services.
    fn serve<S: MeshService>(
        &mut self,
        config: &TybooConfig,
        ports: &mut Ports,
        service: &S,
    ) -> anyhow::Result<()> {
        let name = S::NAME.as_str();
        let listener = ports.take(S::NAME.port())?;
        let address = listener.local_addr()?;
        let server = service.grpc_server();
        service.spawn_tasks(&mut self.tasks, &self.services_shutdown);
        let grpc_config = config.grpc.clone();
        let shutdown = self.services_shutdown.clone();
        self.tasks.spawn(async move {
            server
                .serve(listener, &grpc_config, shutdown)
                .await
                .with_context(|| format!("{name} server"))
        });
        tracing::info!(%address, "{name} serving");
        self.addresses.insert(S::NAME, address);
        Ok(())
    }

    /// Workers for `pools`; they drain with the services.
    fn run_workers(&mut self, config: &TybooConfig, executor: &Executor, pools: &[Pool]) {
        let handle = Workers::start(
            executor,
            pools,
            config.executor.worker_concurrency,
            self.services_shutdown.clone(),
        );
        self.tasks.spawn(async move {
            handle.join().await;
            Ok(())
        });
    }

    fn serve_edge(
        &mut self,
        config: &TybooConfig,
        ports: &mut Ports,
        edge: Edge,
        tenancy: Channel,
    ) -> anyhow::Result<()> {
        let listener = ports.take(ServiceName::Edge.port())?;
        let address = listener.local_addr()?;
        let router = edge.router();
        let limits = tyboo_edge::server::ConnectionLimits::from_config(&config.edge);
        let shutdown = self.shutdown.clone();
        let drain_timeout = Duration::from_secs(config.grpc.drain_timeout_seconds);
        let (done_sender, done_receiver) = tokio::sync::oneshot::channel();
        self.edge_done = Some(done_receiver);
        // The watch serves the edge's cache, so it runs until the edge has
        // finished draining, not merely started to.
        let watch_stop = Shutdown::new();
        let watch = edge.watch_access_changes(
            service_tokens(config, tenancy, "edge"),
            watch_stop.signaled(),
        );
        self.tasks.spawn(async move {
            watch
                .await
                .context("the edge's access-change watch panicked")
        });
        self.tasks.spawn(async move {
            let drain_started = {
                let shutdown = shutdown.clone();
                let edge = edge.clone();
                async move {
                    shutdown.signaled().await;
                    edge.set_serving(false);
                    tracing::info!("edge draining");
                }
            };
            let server = tyboo_edge::server::serve(listener, router, limits, drain_started);
            let outcome = tokio::select! {
                () = server => Ok(()),
                () = async {
                    shutdown.signaled().await;
                    tokio::time::sleep(drain_timeout).await;
                } => {
                    tracing::warn!("edge drain timeout passed with requests still open; stopping");
                    Ok(())
                }
            };
            watch_stop.trigger();
            // The receiver is gone only if the mesh itself is gone.
            let _ = done_sender.send(());
            outcome
        });
        tracing::info!(%address, "edge serving");
        self.addresses.insert(ServiceName::Edge, address);
        Ok(())
    }

    fn finish(mut self, bootstrap: Option<Bootstrap>) -> Mesh {
        let shutdown = self.shutdown.clone();
        let services_shutdown = self.services_shutdown.clone();
        let edge_done = self.edge_done.take();
        self.tasks.spawn(async move {
            shutdown.signaled().await;
            if let Some(edge_done) = edge_done {
                // An error means the edge task ended without saying so
                // (it failed); either way it serves nothing any more.
                let _ = edge_done.await;
            }
            services_shutdown.trigger();
            Ok(())
        });
        Mesh {
            addresses: self.addresses,
            admin_address: self.admin_address,
            bootstrap,
            shutdown: self.shutdown,
            services_shutdown: self.services_shutdown,
            tasks: self.tasks,
        }
    }
}

/// A gRPC service of the mesh as [`Starter::serve`] runs it: what it serves
/// on its port, and the tasks it runs beside that.
trait MeshService {
    const NAME: ServiceName;

    fn grpc_server(&self) -> GrpcServer;

    /// Tasks that run beside the server; they stop on `shutdown`, the
    /// services' drain.
    fn spawn_tasks(&self, _tasks: &mut JoinSet<anyhow::Result<()>>, _shutdown: &Shutdown) {}
}

impl MeshService for Tenancy {
    const NAME: ServiceName = ServiceName::Tenancy;

    fn grpc_server(&self) -> GrpcServer {
        Tenancy::grpc_server(self)
    }
}

impl MeshService for Vault {
    const NAME: ServiceName = ServiceName::Vault;

    fn grpc_server(&self) -> GrpcServer {
        Vault::grpc_server(self)
    }

    fn spawn_tasks(&self, tasks: &mut JoinSet<anyhow::Result<()>>, _shutdown: &Shutdown) {
        let recorder = self.clone();
        // Tenancy may still be starting (another process, or this one's
        // server task not yet polled); a rotation is recorded on the first
        // call that needs keys if this attempt cannot reach the log.
        tasks.spawn(async move {
            if let Err(error) = recorder.record_master_keys().await {
                tracing::warn!(%error, "master key versions not recorded yet; the first credential call will");
            }
            Ok(())
        });
    }
}

impl MeshService for Metering {
    const NAME: ServiceName = ServiceName::Metering;

    fn grpc_server(&self) -> GrpcServer {
        Metering::grpc_server(self)
    }
}

impl MeshService for Executor {
    const NAME: ServiceName = ServiceName::Executor;

    fn grpc_server(&self) -> GrpcServer {
        Executor::grpc_server(self)
    }

    fn spawn_tasks(&self, tasks: &mut JoinSet<anyhow::Result<()>>, shutdown: &Shutdown) {
        // Queue depth and oldest-message age per pool, refreshed even when no
        // worker asks, so an autoscaler can scale worker pools on them.
        let refresher = tyboo_broker::spawn_stats_refresh(
            self.domain().dispatch().clone(),
            Pool::ALL
                .iter()
                .map(|pool| pool.as_str().to_owned())
                .collect(),
            Duration::from_secs(5),
        );
        let refresher_shutdown = shutdown.clone();
        tasks.spawn(async move {
            refresher_shutdown.signaled().await;
            refresher.abort();
            Ok(())
        });
        for background in self.start_background(shutdown.clone()) {
            tasks.spawn(async move {
                background
                    .await
                    .context("an executor background task panicked")
            });
        }
    }
}
