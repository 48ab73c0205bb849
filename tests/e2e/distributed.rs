//! The distributed mode as separate OS processes (see `topology`): tenancy,
//! the vault, the executor, worker processes and the edge, each a `tyboo`
//! child on its own loopback ports, on PostgreSQL and Redis Streams. Workers
//! are killed with SIGKILL, and Redis is killed and restarted empty
//! mid-batch; every execution still ends and no completed node runs again.
//!
//! These tests need PostgreSQL and Redis, so they run only when
//! `TYBOO_TEST_BACKEND=postgres` (Redis at `TYBOO_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`; the restart test runs a `redis-server` of its
//! own); in the SQLite pass they say so and return.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tyboo::config::TybooConfig;

use crate::sandbox::{Backend, TERMINAL_STATUSES, TestStore, test_config};
use crate::topology::{AI_AND_DATA_POOLS, DEFAULT_POOL, Lcg, RedisServer, Topology};
use crate::upstreams::Upstreams;

/// Steps one worker process runs at once in these tests.
const WORKER_CONCURRENCY: usize = 4;

/// Two workers for the `default` pool, which runs every node here, and one
/// for the other pools.
const WORKERS: [&[&str]; 3] = [DEFAULT_POOL, DEFAULT_POOL, AI_AND_DATA_POOLS];

/// Whether this pass has PostgreSQL and Redis; prints why not otherwise.
fn distributed_backends(test: &str) -> bool {
    if matches!(Backend::from_env(), Backend::Postgres { .. }) {
        return true;
    }
    println!("{test}: needs PostgreSQL and Redis (TYBOO_TEST_BACKEND=postgres); skipped");
    false
}

/// The test configuration with leases, heartbeats and redelivery short
/// enough that a dead worker's steps move on within a second or two.
fn quick_recovery(store: &TestStore) -> TybooConfig {
    let mut config = test_config(store);
    config.executor.broker.visibility_timeout_ms = 2000;
    config.executor.lease_duration_ms = 1500;
    config.executor.heartbeat_interval_ms = 300;
    config.executor.reconcile_interval_ms = 300;
    config.executor.redispatch_grace_ms = 1000;
    config.executor.worker_concurrency = WORKER_CONCURRENCY;
    config
}

/// What the tests here do through the edge, as the owner.
impl Topology {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.edge, path)
    }

    pub(crate) async fn create_workflow(&self, graph: Value) -> String {
        let response = self
            .http
            .post(self.url("/v1/workflows"))
            .bearer_auth(&self.owner.api_key)
            .json(&json!({"name": "Two effects", "graph": graph}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["workflow"]["id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn start_execution(&self, workflow_id: &str) -> String {
        let response = self
            .http
            .post(self.url(&format!("/v1/workflows/{workflow_id}/executions")))
            .bearer_auth(&self.owner.api_key)
            .json(&json!({"input": {}}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["execution"]["id"].as_str().unwrap().to_owned()
    }

    /// The month's (executions, tasks) once metering holds `executions`
    /// executions and the counts have stopped moving.
    pub(crate) async fn settled_usage(&self, executions: usize) -> (usize, usize) {
        let path = format!("/v1/workspaces/{}/usage", self.owner.workspace_id);
        let read = |usage: &Value, field: &str| -> usize {
            usage["totals"][field]
                .as_str()
                .and_then(|text| text.parse().ok())
                .unwrap_or(0)
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = (0, 0);
        loop {
            let (status, usage) = self.get(&path).await;
            let now = (read(&usage, "executions"), read(&usage, "tasks"));
            if status == 200 && now.0 >= executions && now == last {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "usage did not settle: {status} {usage}"
            );
            last = now;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The owner's GET of `path` through the edge: status and body.
    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.owner.api_key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn execution(&self, execution_id: &str) -> Value {
        let response = self
            .http
            .get(self.url(&format!("/v1/executions/{execution_id}")))
            .bearer_auth(&self.owner.api_key)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["execution"].clone()
    }

    /// Waits until every execution is terminal; returns them in order.
    pub(crate) async fn wait_for_all(
        &self,
        execution_ids: &[String],
        within: Duration,
    ) -> Vec<Value> {
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
                    self.data_dir().display(),
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
    let store = TestStore::create().await;
    let mut topology = Topology::start(quick_recovery(&store), &WORKERS).await;
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
        // Only the workers that run these workflows' nodes are killed.
        let candidates = topology.workers_of(DEFAULT_POOL);
        let victim = candidates[random.between(0, candidates.len() as u64) as usize];
        topology.kill_worker(victim).await;
        topology.add_worker(DEFAULT_POOL).await;
        assert_eq!(topology.workers_of(DEFAULT_POOL).len(), 2);
        // A breath between rounds: a node that lost its worker gets a
        // chance to finish on another before the next kill, so losing the
        // worker on every one of its max_deliveries (5) deliveries, which
        // would dead-letter it as poison, stays out of reach.
        tokio::time::sleep(Duration::from_millis(300)).await;
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
    // The ledger counts every execution once and every non-trigger node
    // once, whatever the kills interrupted and sent again.
    let succeeded_runs: usize = executions
        .iter()
        .map(|execution| {
            NODES[1..]
                .iter()
                .map(|node| {
                    crate::sandbox::node_runs(execution, node)
                        .iter()
                        .filter(|run| run["status"] == "NODE_RUN_STATUS_SUCCEEDED")
                        .count()
                })
                .sum::<usize>()
        })
        .sum();
    let (executions_metered, tasks_metered) = topology.settled_usage(execution_ids.len()).await;
    assert_eq!(executions_metered, execution_ids.len());
    assert_eq!(tasks_metered, succeeded_runs);
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
    store.remove().await;
}

#[tokio::test]
async fn a_redis_restart_mid_batch_loses_no_execution() {
    if !distributed_backends("a_redis_restart_mid_batch_loses_no_execution") {
        return;
    }
    let begun = Instant::now();
    let upstreams = Upstreams::start().await;
    let store = TestStore::create().await;
    // A Redis of this test's own, without persistence: killing it loses
    // every stream, consumer group and delayed entry, as a crash does.
    let mut redis = RedisServer::start(&store.data_dir.join("redis"));
    let mut config = quick_recovery(&store);
    config.queue_url = redis.url();
    let topology = Topology::start(config, &WORKERS).await;
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
    let keys = topology.count_redis_keys();
    assert!(keys > 0, "the batch had keys in Redis");
    // SIGKILL, half a second without Redis, then an empty one on the same
    // port: every process has to reconnect and find its groups gone.
    redis.crash_and_restart(Duration::from_millis(500)).await;
    // Executions started after the restart run too.
    for _ in 0..5 {
        execution_ids.push(topology.start_execution(&workflow_id).await);
    }
    let executions = topology
        .wait_for_all(&execution_ids, Duration::from_secs(40))
        .await;
    let repeats = assert_batch_completed(&executions, &execution_ids, &upstreams).await;
    println!(
        "{} executions, Redis killed holding {keys} keys after {seen_before} effects and restarted empty, {repeats} effects sent again, {:.1} s",
        execution_ids.len(),
        begun.elapsed().as_secs_f64()
    );
    topology.stop().await;
    drop(redis);
    store.remove().await;
}

#[tokio::test]
async fn a_poison_step_is_dead_lettered_while_the_batch_completes() {
    if !distributed_backends("a_poison_step_is_dead_lettered_while_the_batch_completes") {
        return;
    }
    const MAX_DELIVERIES: u32 = 3;
    let begun = Instant::now();
    let upstreams = Upstreams::start().await;
    let store = TestStore::create().await;
    let mut config = quick_recovery(&store);
    config.executor.max_deliveries = MAX_DELIVERIES;
    // One step per worker at a time: the worker the test crashes or freezes
    // holds the poison step and nothing else, so no step of the batch can
    // lose its worker max_deliveries times and be dead-lettered as well.
    config.executor.worker_concurrency = 1;
    let mut topology = Topology::start(config, &WORKERS).await;
    let workflow_id = topology.create_workflow(two_effects(&upstreams)).await;
    // Its only node wedges whichever worker runs it; the test then crashes
    // or freezes that worker, as a job that kills its worker would.
    let poison_workflow = topology
        .create_workflow(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual"},
                {"id": "poison", "type": "http.request",
                 "parameters": {"method": "POST", "url": upstreams.url("/poison")}}
            ],
            "edges": [{"from": "start", "to": "poison"}]
        }))
        .await;
    let poison_execution = topology.start_execution(&poison_workflow).await;
    let mut execution_ids = Vec::new();
    for _ in 0..10 {
        execution_ids.push(topology.start_execution(&workflow_id).await);
    }
    let mut stalled = Vec::new();
    for delivery in 1..=MAX_DELIVERIES as usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        let peer = loop {
            if let Some(peer) = upstreams.seen.poison_peers.lock().await.get(delivery - 1) {
                break *peer;
            }
            assert!(
                Instant::now() < deadline,
                "delivery {delivery} of the poison step never arrived (logs in {})",
                topology.data_dir().display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let holder = topology
            .worker_with_connection_from(peer.port())
            .expect("a worker process holds the poison call");
        // Crash the first and last holders; freeze the second, which keeps
        // its connection and its lease row but stops renewing it.
        if delivery == 2 {
            stalled.push(topology.stall_worker(holder));
        } else {
            topology.kill_worker(holder).await;
        }
        topology.add_worker(DEFAULT_POOL).await;
        // The rest of the batch keeps arriving and running meanwhile.
        for _ in 0..5 {
            execution_ids.push(topology.start_execution(&workflow_id).await);
        }
    }

    let poisoned = topology
        .wait_for_all(
            std::slice::from_ref(&poison_execution),
            Duration::from_secs(30),
        )
        .await
        .remove(0);
    assert_eq!(poisoned["status"], "EXECUTION_STATUS_FAILED", "{poisoned}");
    let error = poisoned["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("delivered {MAX_DELIVERIES} times")),
        "{poisoned}"
    );
    let response = topology
        .http
        .get(topology.url("/v1/dead-letters"))
        .bearer_auth(&topology.owner.api_key)
        .send()
        .await
        .unwrap();
    let letters: Value = response.json().await.unwrap();
    let letters = letters["deadLetters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["executionId"], poison_execution.as_str());
    assert_eq!(letters[0]["nodeId"], "poison");

    let executions = topology
        .wait_for_all(&execution_ids, Duration::from_secs(40))
        .await;
    let repeats = assert_batch_completed(&executions, &execution_ids, &upstreams).await;
    // Dead-lettered instead of delivered again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        upstreams.seen.poison_peers.lock().await.len(),
        MAX_DELIVERIES as usize,
        "the poison step was delivered exactly max_deliveries times"
    );
    println!(
        "poison step dead-lettered after {MAX_DELIVERIES} deliveries (2 crashed workers, 1 stalled) while {} executions completed, {repeats} effects sent again, {:.1} s",
        execution_ids.len(),
        begun.elapsed().as_secs_f64()
    );
    drop(stalled);
    topology.stop().await;
    store.remove().await;
}
