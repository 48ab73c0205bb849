//! The distributed mode as separate OS processes: tenancy, the vault, the
//! executor, worker processes and the edge, each a `tyboo` child on its own
//! loopback ports, on PostgreSQL and Redis Streams. Workers are killed with
//! SIGKILL and Redis loses its keys mid-batch; every execution still ends and
//! no completed node runs again.
//!
//! These tests need PostgreSQL and Redis, so they run only when
//! `TYBOO_TEST_BACKEND=postgres` (Redis at `TYBOO_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`); in the SQLite pass they say so and return.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::sandbox::{Backend, TERMINAL_STATUSES, TestStore};
use crate::upstreams::Upstreams;

type Lines = tokio::io::Lines<BufReader<ChildStdout>>;

/// Steps one worker process runs at once in these tests.
const WORKER_CONCURRENCY: usize = 4;

/// Whether this pass has PostgreSQL and Redis; prints why not otherwise.
fn distributed_backends(test: &str) -> bool {
    if matches!(Backend::from_env(), Backend::Postgres { .. }) {
        return true;
    }
    println!("{test}: needs PostgreSQL and Redis (TYBOO_TEST_BACKEND=postgres); skipped");
    false
}

fn redis_url() -> String {
    std::env::var("TYBOO_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A small deterministic generator (Knuth's MMIX LCG): the same seed kills
/// at the same points on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A value in `low..high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

/// One `tyboo` child process. Dropping it kills it.
struct Process {
    child: Child,
    _lines: Lines,
}

/// What a child printed at start: `name address` pairs, and the bootstrap
/// block on tenancy's first start.
struct Announced {
    addresses: HashMap<String, String>,
    api_key: Option<String>,
}

/// Every service of a mesh and its workers as separate processes, on a
/// PostgreSQL database and a Redis key prefix of their own.
struct Topology {
    store: Option<TestStore>,
    redis_url: String,
    prefix: String,
    secret: String,
    tenancy: String,
    vault: String,
    executor: String,
    pub edge: String,
    pub owner_key: String,
    services: Vec<Process>,
    pub workers: Vec<Process>,
    started_workers: usize,
    http: reqwest::Client,
}

impl Topology {
    async fn start(workers: usize) -> Topology {
        let store = TestStore::create().await;
        assert!(
            store.is_postgres(),
            "the distributed mode runs on PostgreSQL"
        );
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let mut topology = Topology {
            store: Some(store),
            redis_url: redis_url(),
            prefix: format!("tyboo-test-{unique}"),
            secret: format!("service-secret-{unique}"),
            tenancy: String::new(),
            vault: String::new(),
            executor: String::new(),
            edge: String::new(),
            owner_key: String::new(),
            services: Vec::new(),
            workers: Vec::new(),
            started_workers: 0,
            http: crate::sandbox::http_client(),
        };
        let (process, announced) = topology.spawn("tenancy", &["serve", "tenancy"]).await;
        topology.tenancy = announced.addresses["tenancy"].clone();
        topology.owner_key = announced
            .api_key
            .expect("tenancy prints the owner's key on first start");
        topology.services.push(process);
        let (process, announced) = topology.spawn("vault", &["serve", "vault"]).await;
        topology.vault = announced.addresses["vault"].clone();
        topology.services.push(process);
        let (process, announced) = topology.spawn("executor", &["serve", "executor"]).await;
        topology.executor = announced.addresses["executor"].clone();
        topology.services.push(process);
        for _ in 0..workers {
            topology.add_worker().await;
        }
        let (process, announced) = topology.spawn("edge", &["serve", "edge"]).await;
        topology.edge = announced.addresses["edge"]
            .trim_start_matches("http://")
            .to_owned();
        topology.services.push(process);
        topology
    }

    fn store(&self) -> &TestStore {
        self.store.as_ref().unwrap()
    }

    fn command(&self, log: &Path) -> Command {
        let store = self.store();
        let endpoint = |address: &str| {
            if address.is_empty() {
                String::new()
            } else {
                format!("http://{address}")
            }
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_tyboo"));
        command
            .env("TYBOO_DATA_DIR", &store.data_dir)
            .env("TYBOO_DATABASE_URL", &store.database_url)
            .env("TYBOO_QUEUE_URL", &self.redis_url)
            .env("TYBOO_TENANCY__SERVICE_SECRET", &self.secret)
            .env(
                "TYBOO_VAULT__MASTER_KEY_FILE",
                store.data_dir.join("vault-master.key"),
            )
            .env("TYBOO_ENDPOINTS__TENANCY", endpoint(&self.tenancy))
            .env("TYBOO_ENDPOINTS__VAULT", endpoint(&self.vault))
            .env("TYBOO_ENDPOINTS__EXECUTOR", endpoint(&self.executor))
            .env("TYBOO_LISTEN__EDGE", "127.0.0.1:0")
            .env("TYBOO_LISTEN__TENANCY", "127.0.0.1:0")
            .env("TYBOO_LISTEN__ADMIN", "127.0.0.1:0")
            .env("TYBOO_LISTEN__EXECUTOR", "127.0.0.1:0")
            .env("TYBOO_LISTEN__VAULT", "127.0.0.1:0")
            .env("TYBOO_GRPC__DRAIN_TIMEOUT_SECONDS", "5")
            .env("TYBOO_EXECUTOR__BROKER__KEY_PREFIX", &self.prefix)
            .env("TYBOO_EXECUTOR__BROKER__VISIBILITY_TIMEOUT_MS", "2000")
            .env("TYBOO_EXECUTOR__LEASE_DURATION_MS", "1500")
            .env("TYBOO_EXECUTOR__HEARTBEAT_INTERVAL_MS", "300")
            .env("TYBOO_EXECUTOR__RECONCILE_INTERVAL_MS", "300")
            .env("TYBOO_EXECUTOR__REDISPATCH_GRACE_MS", "1000")
            .env(
                "TYBOO_EXECUTOR__WORKER_CONCURRENCY",
                WORKER_CONCURRENCY.to_string(),
            )
            .env(
                "TYBOO_EXECUTOR__ENGINE__EGRESS__ALLOW_CIDRS",
                "[127.0.0.0/8]",
            )
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        // Each process logs to a file of its own in the data folder, which
        // is kept when a test fails.
        crate::process::log_to_file(&mut command, log, "info");
        command
    }

    /// Starts `tyboo <args>` and reads what it announces.
    async fn spawn(&self, name: &str, args: &[&str]) -> (Process, Announced) {
        let log = self.store().data_dir.join(format!("{name}.log"));
        let mut child = self.command(&log).args(args).spawn().expect("tyboo starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addresses = HashMap::new();
        let mut api_key = None;
        let read = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["metrics", ..] => break,
                    [
                        name @ ("edge" | "tenancy" | "vault" | "executor"),
                        address,
                        ..,
                    ] => {
                        addresses.insert(name.to_string(), address.to_string());
                    }
                    _ => {}
                }
            }
            let next = tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await;
            if let Ok(Ok(Some(_blank))) = next {
                while let Some(line) = lines.next_line().await.unwrap() {
                    if let ["API", "key", key] = line.split_whitespace().collect::<Vec<_>>()[..] {
                        api_key = Some(key.to_owned());
                    }
                    if line.starts_with("The API key is shown") {
                        break;
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .unwrap_or_else(|_| panic!("{name} announces its addresses (log: {})", log.display()));
        (
            Process {
                child,
                _lines: lines,
            },
            Announced { addresses, api_key },
        )
    }

    /// Starts one more `tyboo worker --pool default`.
    async fn add_worker(&mut self) {
        self.started_workers += 1;
        let name = format!("worker-{}", self.started_workers);
        let (process, _) = self.spawn(&name, &["worker", "--pool", "default"]).await;
        self.workers.push(process);
    }

    /// SIGKILLs the worker at `index` and waits for it to be gone.
    async fn kill_worker(&mut self, index: usize) {
        let mut worker = self.workers.remove(index);
        worker.child.start_kill().unwrap();
        worker.child.wait().await.unwrap();
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.edge, path)
    }

    async fn create_workflow(&self, graph: Value) -> String {
        let response = self
            .http
            .post(self.url("/v1/workflows"))
            .bearer_auth(&self.owner_key)
            .json(&json!({"name": "Two effects", "graph": graph}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["workflow"]["id"].as_str().unwrap().to_owned()
    }

    async fn start_execution(&self, workflow_id: &str) -> String {
        let response = self
            .http
            .post(self.url(&format!("/v1/workflows/{workflow_id}/executions")))
            .bearer_auth(&self.owner_key)
            .json(&json!({"input": {}}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["execution"]["id"].as_str().unwrap().to_owned()
    }

    async fn execution(&self, execution_id: &str) -> Value {
        let response = self
            .http
            .get(self.url(&format!("/v1/executions/{execution_id}")))
            .bearer_auth(&self.owner_key)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["execution"].clone()
    }

    /// Waits until every execution is terminal; returns them in order.
    async fn wait_for_all(&self, execution_ids: &[String], within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut finished: HashMap<String, Value> = HashMap::new();
        loop {
            for id in execution_ids {
                if finished.contains_key(id) {
                    continue;
                }
                let execution = self.execution(id).await;
                let status = execution["status"].as_str().unwrap_or_default();
                if TERMINAL_STATUSES.contains(&status) {
                    finished.insert(id.clone(), execution);
                }
            }
            if finished.len() == execution_ids.len() {
                break;
            }
            if Instant::now() > deadline {
                let mut stuck = Vec::new();
                for id in execution_ids
                    .iter()
                    .filter(|id| !finished.contains_key(*id))
                {
                    stuck.push(self.execution(id).await);
                }
                panic!(
                    "{} of {} executions not finished (logs in {}): {}",
                    stuck.len(),
                    execution_ids.len(),
                    self.store().data_dir.display(),
                    serde_json::to_string_pretty(&stuck).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        execution_ids
            .iter()
            .map(|id| finished.remove(id).unwrap())
            .collect()
    }

    /// Deletes every Redis key under this topology's prefix; returns how
    /// many there were.
    fn delete_redis_keys(&self) -> usize {
        delete_keys(&self.redis_url, &self.prefix)
    }

    /// Stops every process and removes the database and the Redis keys.
    async fn stop(mut self) {
        for mut process in self.workers.drain(..).chain(self.services.drain(..).rev()) {
            process.child.start_kill().ok();
            process.child.wait().await.ok();
        }
        self.delete_redis_keys();
        if let Some(store) = self.store.take() {
            store.remove().await;
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // The children die with their handles (kill_on_drop); a failed
        // test's Redis keys go with them.
        for process in self.workers.iter_mut().chain(self.services.iter_mut()) {
            process.child.start_kill().ok();
        }
        if self.store.is_some() {
            delete_keys(&self.redis_url, &self.prefix);
        }
    }
}

/// SCAN for `prefix*` and DEL what it finds, with `redis-cli`.
fn delete_keys(redis_url: &str, prefix: &str) -> usize {
    let output = std::process::Command::new("redis-cli")
        .args([
            "-u",
            redis_url,
            "--scan",
            "--pattern",
            &format!("{prefix}*"),
        ])
        .output()
        .expect("redis-cli runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let keys: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    for chunk in keys.chunks(100) {
        let status = std::process::Command::new("redis-cli")
            .args(["-u", redis_url, "DEL"])
            .args(chunk)
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(status.success());
    }
    keys.len()
}

/// start → POST /sink → GET /slow/300 → POST /sink.
fn two_effects(upstreams: &Upstreams) -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "first_effect", "type": "http.request",
             "parameters": {"method": "POST", "url": upstreams.url("/sink"), "body": {"step": 1}}},
            {"id": "wait", "type": "http.request",
             "parameters": {"method": "GET", "url": upstreams.url("/slow/300")}},
            {"id": "second_effect", "type": "http.request",
             "parameters": {"method": "POST", "url": upstreams.url("/sink"), "body": {"step": 2}}}
        ],
        "edges": [
            {"from": "start", "to": "first_effect"},
            {"from": "first_effect", "to": "wait"},
            {"from": "wait", "to": "second_effect"}
        ]
    })
}

const NODES: [&str; 4] = ["start", "first_effect", "wait", "second_effect"];
const EFFECTS: [&str; 2] = ["first_effect", "second_effect"];

/// Checks what must hold however the batch was disturbed: every execution
/// succeeded with one succeeded run per node, and the sink saw exactly the
/// two effect keys of each execution. Returns how many sink calls were
/// repeats of a key already seen.
async fn assert_batch_completed(
    executions: &[Value],
    execution_ids: &[String],
    upstreams: &Upstreams,
) -> usize {
    for execution in executions {
        assert_eq!(
            execution["status"], "EXECUTION_STATUS_SUCCEEDED",
            "{execution}"
        );
        for node in NODES {
            let succeeded = crate::sandbox::node_runs(execution, node)
                .iter()
                .filter(|run| run["status"] == "NODE_RUN_STATUS_SUCCEEDED")
                .count();
            assert_eq!(succeeded, 1, "node {node} succeeded once: {execution}");
        }
    }
    let keys = upstreams.seen.sink_keys.lock().await.clone();
    let distinct: HashSet<&String> = keys.iter().collect();
    let expected: HashSet<String> = execution_ids
        .iter()
        .flat_map(|id| EFFECTS.iter().map(move |node| format!("{id}:{node}")))
        .collect();
    assert_eq!(
        distinct,
        expected.iter().collect(),
        "the sink saw each (execution, node) key, and no other"
    );
    keys.len() - distinct.len()
}

#[tokio::test]
async fn a_batch_survives_workers_killed_at_seeded_points() {
    if !distributed_backends("a_batch_survives_workers_killed_at_seeded_points") {
        return;
    }
    let begun = Instant::now();
    let upstreams = Upstreams::start().await;
    let mut topology = Topology::start(2).await;
    let workflow_id = topology.create_workflow(two_effects(&upstreams)).await;

    const KILLS: usize = 20;
    const PER_ROUND: usize = 2;
    let mut random = Lcg(0x7b0_5eed);
    let mut execution_ids = Vec::new();
    for _ in 0..KILLS {
        for _ in 0..PER_ROUND {
            execution_ids.push(topology.start_execution(&workflow_id).await);
        }
        tokio::time::sleep(Duration::from_millis(random.between(100, 700))).await;
        let victim = random.between(0, topology.workers.len() as u64) as usize;
        topology.kill_worker(victim).await;
        topology.add_worker().await;
        assert_eq!(topology.workers.len(), 2);
    }
    // A last few after the storm.
    for _ in 0..4 {
        execution_ids.push(topology.start_execution(&workflow_id).await);
    }
    let executions = topology
        .wait_for_all(&execution_ids, Duration::from_secs(40))
        .await;
    let repeats = assert_batch_completed(&executions, &execution_ids, &upstreams).await;
    let runs: usize = executions
        .iter()
        .map(|execution| execution["nodeRuns"].as_array().map_or(0, Vec::len))
        .sum();
    let interrupted = runs - executions.len() * NODES.len();
    assert!(interrupted > 0, "no kill interrupted a node run");
    // Only a node in flight when its worker died is sent again: at most
    // what the killed workers held.
    assert!(
        repeats <= KILLS * WORKER_CONCURRENCY,
        "{repeats} repeated side effects for {KILLS} kills"
    );
    println!(
        "{} executions, {KILLS} workers killed, {interrupted} extra node runs, {repeats} effects of interrupted nodes sent again, {:.1} s",
        execution_ids.len(),
        begun.elapsed().as_secs_f64()
    );
    topology.stop().await;
}

#[tokio::test]
async fn a_redis_restart_mid_batch_loses_no_execution() {
    if !distributed_backends("a_redis_restart_mid_batch_loses_no_execution") {
        return;
    }
    let begun = Instant::now();
    let upstreams = Upstreams::start().await;
    let topology = Topology::start(2).await;
    let workflow_id = topology.create_workflow(two_effects(&upstreams)).await;

    let mut execution_ids = Vec::new();
    for _ in 0..30 {
        execution_ids.push(topology.start_execution(&workflow_id).await);
    }
    // Mid-batch: some effects seen, most executions still running.
    let deadline = Instant::now() + Duration::from_secs(20);
    while upstreams.seen.sink_keys.lock().await.len() < 5 {
        assert!(Instant::now() < deadline, "the batch never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen_before = upstreams.seen.sink_keys.lock().await.len();
    // What a Redis restart without persistence looks like to this mesh:
    // every stream, consumer group and delayed entry of ours is gone.
    let deleted = topology.delete_redis_keys();
    assert!(deleted > 0, "the batch had keys in Redis");
    // Executions started after the loss run too.
    for _ in 0..5 {
        execution_ids.push(topology.start_execution(&workflow_id).await);
    }
    let executions = topology
        .wait_for_all(&execution_ids, Duration::from_secs(40))
        .await;
    let repeats = assert_batch_completed(&executions, &execution_ids, &upstreams).await;
    println!(
        "{} executions, {deleted} Redis keys deleted after {seen_before} effects, {repeats} effects sent again, {:.1} s",
        execution_ids.len(),
        begun.elapsed().as_secs_f64()
    );
    topology.stop().await;
}
