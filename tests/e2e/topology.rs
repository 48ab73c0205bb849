//! A mesh as separate OS processes: tenancy, the vault, metering, the executor, worker
//! processes of several pool sets and the edge, each a `tyboo` child on its
//! own loopback ports, on PostgreSQL and Redis Streams.
//!
//! Every process reads one TOML file written from a `TybooConfig` into the
//! test's data folder (`tyboo.toml`), so what a test configures reaches all
//! of them. The file is written again as each service announces its address,
//! so a process started later finds every endpoint started before it. Only
//! the log filter is set per process, through the environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tyboo::config::{EndpointsConfig, TybooConfig};

type Lines = tokio::io::Lines<BufReader<ChildStdout>>;

/// A worker process for the `default` pool (HTTP, transforms, control flow).
pub const DEFAULT_POOL: &[&str] = &["default"];
/// A worker process for the `ai` (llm.chat) and `data` (sql.query) pools.
pub const AI_AND_DATA_POOLS: &[&str] = &["ai", "data"];
/// The worker processes of a topology that runs every node type: one per
/// pool set.
pub const EVERY_POOL: [&[&str]; 2] = [DEFAULT_POOL, AI_AND_DATA_POOLS];

/// The shared Redis of the PostgreSQL pass.
pub fn redis_url() -> String {
    std::env::var("TYBOO_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A small deterministic generator (Knuth's MMIX LCG): the same seed gives
/// the same choices on every run.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A value in `low..high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

/// One `tyboo` child process. Dropping it kills it.
pub struct Process {
    child: Child,
    _lines: Lines,
}

impl Process {
    /// SIGKILLs the process and waits for it to be gone.
    async fn kill(mut self) {
        self.child.start_kill().ok();
        self.child.wait().await.ok();
    }
}

/// A worker process and the pools it runs.
pub struct Worker {
    pub pools: Vec<String>,
    process: Process,
}

/// What tenancy prints on the first start of an empty platform.
#[derive(Clone, Debug, Default)]
pub struct Bootstrap {
    pub api_key: String,
    pub workspace_id: String,
    pub owner_id: String,
}

/// What a child printed at start: `name address` pairs, and the bootstrap
/// block when one was expected.
struct Announced {
    addresses: HashMap<String, SocketAddr>,
    bootstrap: Option<Bootstrap>,
}

/// Every service of a mesh and its workers as separate processes, on the
/// configuration's PostgreSQL database and a Redis key prefix of their own.
pub struct Topology {
    config: TybooConfig,
    config_file: PathBuf,
    pub tenancy: SocketAddr,
    pub vault: SocketAddr,
    pub executor: SocketAddr,
    pub metering: SocketAddr,
    pub edge: SocketAddr,
    /// The edge process's admin listener (`/metrics`).
    pub edge_admin: SocketAddr,
    /// The owner tenancy created on its first start.
    pub owner: Bootstrap,
    services: Vec<Process>,
    /// Apart from `services`, so a test can stop and restart it.
    metering_process: Option<Process>,
    pub workers: Vec<Worker>,
    started_workers: usize,
    stopped: bool,
    pub http: reqwest::Client,
}

impl Topology {
    /// Starts tenancy, the vault, metering, the executor, one worker process per
    /// entry of `worker_pools`, and the edge, in that order, each after the
    /// one before has announced its address.
    ///
    /// `config` must name a PostgreSQL database; an empty `queue_url` means
    /// the shared Redis at `TYBOO_TEST_REDIS_URL`. The key prefix is always
    /// a fresh one; the service secret and the vault's master key file are
    /// filled in unless set.
    pub async fn start(mut config: TybooConfig, worker_pools: &[&[&str]]) -> Topology {
        assert!(
            config.database_url.starts_with("postgres"),
            "the process topology runs on PostgreSQL (database_url is {:?})",
            config.database_url
        );
        let unique = uuid::Uuid::now_v7().simple().to_string();
        if config.queue_url.is_empty() {
            config.queue_url = redis_url();
        }
        config.executor.broker.key_prefix = format!("tyboo-test-{unique}");
        // The leases live under the same prefix, so one clean-up removes both.
        config.executor.concurrency.leases.key_prefix = format!("tyboo-test-{unique}");
        // The breakers share the queue's Redis and so its fresh prefix (and
        // its clean-up).
        config.executor.breakers.key_prefix = format!("tyboo-test-{unique}");
        // The edge's rate limits too, so that the keys go with the queue's.
        config.edge.rate_limits.redis.key_prefix = config.executor.broker.key_prefix.clone();
        if config.tenancy.service_secret.is_empty() {
            config.tenancy.service_secret = format!("service-secret-{unique}");
        }
        if config.vault.master_keys.is_empty() && config.vault.master_key_file.is_none() {
            config.vault.master_key_file = Some(config.data_dir.join("vault-master.key"));
        }
        config.endpoints = EndpointsConfig::default();
        std::fs::create_dir_all(&config.data_dir).unwrap();
        let unset = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut topology = Topology {
            config_file: config.data_dir.join("tyboo.toml"),
            config,
            tenancy: unset,
            vault: unset,
            executor: unset,
            metering: unset,
            edge: unset,
            edge_admin: unset,
            owner: Bootstrap::default(),
            services: Vec::new(),
            metering_process: None,
            workers: Vec::new(),
            started_workers: 0,
            stopped: false,
            http: crate::sandbox::http_client(),
        };

        let (process, announced) = topology.spawn("tenancy", &["serve", "tenancy"], true).await;
        topology.services.push(process);
        topology.tenancy = announced.addresses["tenancy"];
        topology.owner = announced
            .bootstrap
            .expect("tenancy prints the owner on first start");
        topology.config.endpoints.tenancy = format!("http://{}", topology.tenancy);

        let (process, announced) = topology.spawn("vault", &["serve", "vault"], false).await;
        topology.services.push(process);
        topology.vault = announced.addresses["vault"];
        topology.config.endpoints.vault = format!("http://{}", topology.vault);

        let (process, announced) = topology
            .spawn("metering", &["serve", "metering"], false)
            .await;
        topology.metering_process = Some(process);
        topology.metering = announced.addresses["metering"];
        topology.config.endpoints.metering = format!("http://{}", topology.metering);

        let (process, announced) = topology
            .spawn("executor", &["serve", "executor"], false)
            .await;
        topology.services.push(process);
        topology.executor = announced.addresses["executor"];
        topology.config.endpoints.executor = format!("http://{}", topology.executor);

        for pools in worker_pools {
            topology.add_worker(pools).await;
        }

        let (process, announced) = topology.spawn("edge", &["serve", "edge"], false).await;
        topology.services.push(process);
        topology.edge = announced.addresses["edge"];
        topology.edge_admin = announced.addresses["metrics"];
        topology
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Starts `tyboo --config <file> <args>` and reads what it announces;
    /// with `bootstrap`, the first-start block too.
    async fn spawn(&self, name: &str, args: &[&str], bootstrap: bool) -> (Process, Announced) {
        let toml = toml::to_string(&self.config).expect("the configuration renders as TOML");
        std::fs::write(&self.config_file, toml).unwrap();
        let log = self.config.data_dir.join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_tyboo"));
        command
            .arg("--config")
            .arg(&self.config_file)
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        // Each process logs to a file of its own in the data folder, which
        // is kept when a test fails.
        crate::process::log_to_file(&mut command, &log, "info");
        let mut child = command.spawn().expect("tyboo starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addresses = HashMap::new();
        let mut owner = Bootstrap::default();
        let read = async {
            // The address block ends with the metrics line; on tenancy's
            // first start the bootstrap block follows.
            loop {
                let Some(line) = lines.next_line().await.unwrap() else {
                    ended(name, &log)
                };
                match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                    ["metrics", url, ..] => {
                        let address = url.trim_start_matches("http://");
                        let address = address.trim_end_matches("/metrics");
                        addresses.insert("metrics".to_owned(), address.parse().unwrap());
                        break;
                    }
                    [
                        service @ ("edge" | "tenancy" | "vault" | "executor" | "metering"),
                        address,
                        ..,
                    ] => {
                        let address = address.trim_start_matches("http://");
                        addresses.insert(service.to_string(), address.parse().unwrap());
                    }
                    _ => {}
                }
            }
            if bootstrap {
                loop {
                    let Some(line) = lines.next_line().await.unwrap() else {
                        ended(name, &log)
                    };
                    match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                        ["workspace", id] => owner.workspace_id = id.to_string(),
                        ["owner", _email, id] => {
                            owner.owner_id = id.trim_matches(['(', ')']).to_owned();
                        }
                        ["API", "key", key] => owner.api_key = key.to_string(),
                        _ if line.starts_with("The API key is shown") => break,
                        _ => {}
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .unwrap_or_else(|_| panic!("{name} announces itself (log: {})", log.display()));
        let announced = Announced {
            addresses,
            bootstrap: bootstrap.then(|| {
                assert!(
                    !owner.api_key.is_empty()
                        && !owner.workspace_id.is_empty()
                        && !owner.owner_id.is_empty(),
                    "{name} printed the whole bootstrap block: {owner:?}"
                );
                owner
            }),
        };
        (
            Process {
                child,
                _lines: lines,
            },
            announced,
        )
    }

    /// SIGKILLs the metering process; the executor's outbox keeps what it
    /// cannot deliver.
    pub async fn kill_metering(&mut self) {
        if let Some(process) = self.metering_process.take() {
            process.kill().await;
        }
    }

    /// Starts metering again on the address it had, where the executor and
    /// the edge still look for it.
    pub async fn restart_metering(&mut self) {
        let any = self.config.listen.metering;
        self.config.listen.metering = self.metering;
        let (process, announced) = self
            .spawn("metering-restarted", &["serve", "metering"], false)
            .await;
        self.config.listen.metering = any;
        assert_eq!(announced.addresses["metering"], self.metering);
        self.metering_process = Some(process);
    }

    /// Starts one more edge process (`tyboo serve edge`) on the same
    /// configuration, and returns where it serves.
    pub async fn add_edge(&mut self) -> SocketAddr {
        let name = format!("edge-{}", self.services.len());
        let (process, announced) = self.spawn(&name, &["serve", "edge"], false).await;
        self.services.push(process);
        announced.addresses["edge"]
    }

    /// Starts one more `tyboo worker --pool …` for `pools`.
    pub async fn add_worker(&mut self, pools: &[&str]) {
        self.started_workers += 1;
        let name = format!("worker-{}-{}", self.started_workers, pools.join("-"));
        let mut args = vec!["worker"];
        for pool in pools {
            args.extend(["--pool", pool]);
        }
        let (process, _) = self.spawn(&name, &args, false).await;
        self.workers.push(Worker {
            pools: pools.iter().map(|pool| pool.to_string()).collect(),
            process,
        });
    }

    /// The indices in `workers` of the processes that run exactly `pools`.
    pub fn workers_of(&self, pools: &[&str]) -> Vec<usize> {
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, worker)| worker.pools == pools)
            .map(|(index, _)| index)
            .collect()
    }

    /// SIGKILLs the worker at `index` and waits for it to be gone.
    pub async fn kill_worker(&mut self, index: usize) {
        self.workers.remove(index).process.kill().await;
    }

    /// SIGSTOPs the worker at `index`, as a worker wedged in a node would
    /// look: alive, connected, and silent. It leaves `workers`; dropping the
    /// returned handle kills it.
    pub fn stall_worker(&mut self, index: usize) -> Worker {
        let worker = self.workers.remove(index);
        let pid = worker.process.child.id().expect("the worker runs");
        let status = std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGSTOP to worker {pid}");
        worker
    }

    /// The index of the worker whose process owns the loopback TCP
    /// connection from `local_port`, found through `/proc`.
    pub fn worker_with_connection_from(&self, local_port: u16) -> Option<usize> {
        let inodes = socket_inodes_on_port(local_port);
        self.workers.iter().position(|worker| {
            let Some(pid) = worker.process.child.id() else {
                return false;
            };
            let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                return false;
            };
            descriptors.flatten().any(|descriptor| {
                std::fs::read_link(descriptor.path()).is_ok_and(|target| {
                    let target = target.to_string_lossy();
                    inodes
                        .iter()
                        .any(|inode| target == format!("socket:[{inode}]"))
                })
            })
        })
    }

    /// How many Redis keys this topology has under its prefix.
    pub fn count_redis_keys(&self) -> usize {
        scan_keys(
            &self.config.queue_url,
            &self.config.executor.broker.key_prefix,
        )
        .expect("redis-cli scans the queue's keys")
        .len()
    }

    /// Stops every process (workers first, the edge before the services it
    /// calls) and removes this topology's Redis keys. The database belongs
    /// to whoever made the configuration.
    pub async fn stop(mut self) {
        for worker in self.workers.drain(..) {
            worker.process.kill().await;
        }
        while let Some(process) = self.services.pop() {
            process.kill().await;
        }
        if let Some(process) = self.metering_process.take() {
            process.kill().await;
        }
        let queue_url = self.config.queue_url.clone();
        let prefix = self.config.executor.broker.key_prefix.clone();
        delete_keys(&queue_url, &prefix).expect("the queue's keys are removed");
        self.stopped = true;
    }
}

/// The inodes of the TCP sockets whose local port is `port`, from
/// `/proc/net/tcp` and `/proc/net/tcp6` (ports there are hexadecimal).
fn socket_inodes_on_port(port: u16) -> Vec<String> {
    let wanted = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let local = fields.get(1)?;
                    local
                        .ends_with(&wanted)
                        .then(|| fields.get(9).map(|inode| inode.to_string()))
                        .flatten()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A child's stdout closed before it announced itself: it exited.
fn ended(name: &str, log: &Path) -> ! {
    panic!(
        "{name} stopped before announcing itself (log: {})",
        log.display()
    )
}

impl Drop for Topology {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        // The children die with their handles (kill_on_drop); a failed
        // test's Redis keys go too when Redis still answers.
        for worker in &mut self.workers {
            worker.process.child.start_kill().ok();
        }
        for process in &mut self.services {
            process.child.start_kill().ok();
        }
        let _ = delete_keys(
            &self.config.queue_url,
            &self.config.executor.broker.key_prefix,
        );
    }
}

/// `redis-cli --scan` for `prefix*`.
fn scan_keys(redis_url: &str, prefix: &str) -> Result<Vec<String>, String> {
    let output = std::process::Command::new("redis-cli")
        .args([
            "-u",
            redis_url,
            "--scan",
            "--pattern",
            &format!("{prefix}*"),
        ])
        .output()
        .map_err(|error| format!("redis-cli: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect())
}

/// SCAN for `prefix*` and DEL what it finds; returns how many keys there
/// were.
fn delete_keys(redis_url: &str, prefix: &str) -> Result<usize, String> {
    let keys = scan_keys(redis_url, prefix)?;
    for chunk in keys.chunks(100) {
        let status = std::process::Command::new("redis-cli")
            .args(["-u", redis_url, "DEL"])
            .args(chunk)
            .stdout(Stdio::null())
            .status()
            .map_err(|error| format!("redis-cli: {error}"))?;
        if !status.success() {
            return Err(format!("redis-cli DEL exited with {status}"));
        }
    }
    Ok(keys.len())
}

/// A Redis server of one test's own on a free loopback port, without
/// persistence, so that a restart loses every key as a crashed Redis
/// without disk would. Dropping it kills it.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: std::process::Child,
}

impl RedisServer {
    /// Starts `redis-server` with its working folder `dir` (created).
    pub fn start(dir: &Path) -> RedisServer {
        std::fs::create_dir_all(dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Self::spawn(port, dir);
        RedisServer {
            port,
            dir: dir.to_owned(),
            child,
        }
    }

    fn spawn(port: u16, dir: &Path) -> std::process::Child {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(dir.join("redis.log"))
            .unwrap();
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "redis-server does not start ({error}); this test runs a Redis of its own \
                     and needs redis-server on PATH (Debian: apt-get install redis-server)"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let pong = std::process::Command::new("redis-cli")
                .args(["-p", &port.to_string(), "ping"])
                .output()
                .is_ok_and(|output| output.stdout.starts_with(b"PONG"));
            if pong {
                return child;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().ok();
        child.wait().ok();
        panic!(
            "redis-server does not answer on port {port} (log: {})",
            dir.join("redis.log").display()
        );
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the server, waits `down` and starts a new, empty one on the
    /// same port.
    pub async fn crash_and_restart(&mut self, down: Duration) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        tokio::time::sleep(down).await;
        let (port, dir) = (self.port, self.dir.clone());
        self.child = tokio::task::spawn_blocking(move || Self::spawn(port, &dir))
            .await
            .unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
