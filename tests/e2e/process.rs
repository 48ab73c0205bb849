//! The `tyboo` binary as an operator runs it: first start, restart, config
//! dump, and draining on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_stream::StreamExt;

use crate::sandbox::TestStore;

/// A `tyboo up` child process on ephemeral ports, configured through its own
/// environment.
pub(crate) struct Running {
    pub(crate) child: Child,
    _lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pub(crate) edge: String,
    pub(crate) tenancy: String,
    pub(crate) executor: String,
    pub(crate) vault: String,
    pub(crate) api_key: Option<String>,
    pub(crate) workspace_id: Option<String>,
}

pub(crate) fn tyboo(store: &TestStore) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tyboo"));
    command
        .env("TYBOO_DATA_DIR", &store.data_dir)
        .env("TYBOO_DATABASE_URL", &store.database_url)
        .env("TYBOO_LISTEN__EDGE", "127.0.0.1:0")
        .env("TYBOO_LISTEN__TENANCY", "127.0.0.1:0")
        .env("TYBOO_LISTEN__ADMIN", "127.0.0.1:0")
        .env("TYBOO_LISTEN__EXECUTOR", "127.0.0.1:0")
        .env("TYBOO_LISTEN__VAULT", "127.0.0.1:0")
        .env("TYBOO_LISTEN__METERING", "127.0.0.1:0")
        .env("TYBOO_LOG__FORMAT", "json")
        .env("TYBOO_GRPC__DRAIN_TIMEOUT_SECONDS", "10")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}

pub(crate) async fn start(store: &TestStore) -> Running {
    start_with(store, |_| {}).await
}

/// Writes the child's log (its stderr) to `path` at the level `filter` sets,
/// for tests that check what the process logged. Without it the log is
/// discarded.
pub(crate) fn log_to_file(command: &mut Command, path: &std::path::Path, filter: &str) {
    let file = std::fs::File::create(path).expect("log file can be created");
    command.env("TYBOO_LOG__FILTER", filter).stderr(file);
}

pub(crate) async fn start_with(store: &TestStore, configure: impl Fn(&mut Command)) -> Running {
    let mut command = tyboo(store);
    configure(&mut command);
    let mut child = command.arg("up").spawn().expect("tyboo starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut edge, mut tenancy, mut api_key, mut workspace_id) = (None, None, None, None);
    let (mut executor, mut vault) = (None, None);
    let read = async {
        // The address block ends with the metrics line; on a first start a
        // blank line and the bootstrap block follow at once.
        while let Some(line) = lines.next_line().await.unwrap() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["edge", address, ..] => {
                    edge = Some(address.trim_start_matches("http://").to_owned())
                }
                ["tenancy", address, ..] => tenancy = Some(address.to_string()),
                ["executor", address, ..] => executor = Some(address.to_string()),
                ["vault", address, ..] => vault = Some(address.to_string()),
                ["metrics", ..] => break,
                _ => {}
            }
        }
        let next = tokio::time::timeout(Duration::from_millis(500), lines.next_line()).await;
        if let Ok(Ok(Some(blank))) = next {
            assert!(blank.is_empty(), "unexpected line {blank}");
            while let Some(line) = lines.next_line().await.unwrap() {
                match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                    ["API", "key", key] => api_key = Some(key.to_string()),
                    ["workspace", id] => workspace_id = Some(id.to_string()),
                    _ => {}
                }
                if line.starts_with("The API key is shown") {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("tyboo announces its addresses");
    Running {
        child,
        _lines: lines,
        edge: edge.expect("edge address printed"),
        tenancy: tenancy.expect("tenancy address printed"),
        executor: executor.expect("executor address printed"),
        vault: vault.expect("vault address printed"),
        api_key,
        workspace_id,
    }
}

pub(crate) fn send_sigterm(child: &Child) {
    let pid = child.id().expect("child is running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn first_start_prints_a_working_key_once_and_restart_keeps_data() {
    let store = TestStore::create().await;
    let mut first = start(&store).await;
    let key = first
        .api_key
        .clone()
        .expect("first start prints an API key");
    assert!(key.starts_with("tyb_"));
    let response = crate::sandbox::http_client()
        .get(format!("http://{}/v1/me", first.edge))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    send_sigterm(&first.child);
    assert!(first.child.wait().await.unwrap().success());

    // A restart on the same data prints no new key, and the old key works.
    let mut second = start(&store).await;
    assert_eq!(second.api_key, None);
    let response = crate::sandbox::http_client()
        .get(format!("http://{}/v1/me", second.edge))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    send_sigterm(&second.child);
    assert!(second.child.wait().await.unwrap().success());
    store.remove().await;
}

#[tokio::test]
async fn dump_config_prints_the_resolved_configuration() {
    let store = TestStore::create().await;
    let output = tyboo(&store)
        .env("TYBOO_EDGE__MAX_BODY_BYTES", "12345")
        .args(["--dump-config", "up"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("max_body_bytes = 12345"), "{text}");
    assert!(text.contains("[listen]"), "{text}");

    let output = tyboo(&store)
        .env("TYBOO_EDGE__MAX_BODY_BYTES", "lots")
        .args(["--dump-config", "up"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("max_body_bytes"));
    store.remove().await;
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_reports_not_serving() {
    let store = TestStore::create().await;
    let mut running = start(&store).await;

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", running.tenancy))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "tyboo.tenancy.v1.TenancyService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
    assert_eq!(watch.next().await.unwrap().unwrap().status, serving);

    // A request whose body is still arriving when SIGTERM lands.
    let body = r#"{"token": "no-such-invitation-token", "displayName": "Late"}"#;
    let (head, tail) = body.split_at(20);
    let mut connection = TcpStream::connect(&running.edge).await.unwrap();
    connection
        .write_all(
            format!(
                "POST /v1/invitations:accept HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{head}",
                running.edge,
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_sigterm(&running.child);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // New connections are no longer accepted by the edge...
    assert!(
        crate::sandbox::http_client()
            .get(format!("http://{}/healthz", running.edge))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_err()
    );
    // ...but the request in flight completes, reaching tenancy behind it.
    connection.write_all(tail.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        connection.read_to_end(&mut response),
    )
    .await
    .expect("the in-flight request is answered")
    .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    assert!(response.contains("invitation"), "{response}");

    // Then tenancy reports NOT_SERVING and the process exits cleanly.
    let next = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("health changes");
    assert_eq!(next.unwrap().unwrap().status, not_serving);
    drop(watch);
    let status = tokio::time::timeout(Duration::from_secs(20), running.child.wait())
        .await
        .expect("tyboo exits after draining")
        .unwrap();
    assert!(status.success(), "{status}");
    store.remove().await;
}

/// The curl walk-through of README.md, run as written against `tyboo up`
/// (only the key, workspace id and edge address pasted in).
#[tokio::test]
async fn readme_curl_walkthrough_works_as_written() {
    let readme = include_str!("../../README.md");
    let block: String = ["curl", "workflow", "credential"]
        .iter()
        .map(|name| {
            readme
                .split(&format!("<!-- walkthrough:{name} -->"))
                .nth(1)
                .and_then(|rest| rest.split(&format!("<!-- /walkthrough:{name} -->")).next())
                .unwrap_or_else(|| panic!("README has the {name} walk-through"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let store = TestStore::create().await;
    // As the README's credential section says: loopback allowed for the demo.
    let mut running = start_with(&store, |command| {
        command.env(
            "TYBOO_EXECUTOR__ENGINE__EGRESS__ALLOW_CIDRS",
            "[127.0.0.0/8]",
        );
    })
    .await;
    let script: String = block
        .lines()
        .filter(|line| !line.starts_with("```"))
        .filter(|line| !line.starts_with("export TYBOO_KEY=") && !line.starts_with("export WS="))
        .map(|line| {
            if line.starts_with("EDGE=") {
                format!("EDGE=http://{}", running.edge)
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        // Paths in the walk-throughs are the repository's.
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("TYBOO_KEY", running.api_key.clone().unwrap())
        .env("WS", running.workspace_id.clone().unwrap())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("\"ada@example.com\""), "{stdout}");
    assert!(stdout.contains("\"ROLE_ADMIN\""), "{stdout}");
    assert!(stdout.contains("PERMISSION_DENIED"), "{stdout}");
    assert!(stdout.lines().any(|line| line == "401"), "{stdout}");
    assert!(stdout.contains("\"intact\": true"), "{stdout}");
    assert!(
        stdout.contains("/v1/workspaces/{workspace_id}/members"),
        "{stdout}"
    );
    // The workflow walk-through: the sync webhook's answer and every node run.
    assert!(
        stdout.contains(r#"{"order":"A-1","priority":"high","total":130}"#),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"EXECUTION_STATUS_SUCCEEDED\""),
        "{stdout}"
    );
    for node in ["hook", "total", "big", "label"] {
        assert!(
            stdout.contains(&format!("\"nodeId\":\"{node}\"")),
            "{node} run missing: {stdout}"
        );
    }
    // The credential walk-through: the node called the API with the stored
    // key, the decryption was audited, and the secret never came back.
    assert!(stdout.contains("\"owner@tyboo.local\""), "{stdout}");
    assert!(stdout.contains("vault.credential.decrypted"), "{stdout}");
    let key = running.api_key.clone().unwrap();
    assert_eq!(
        stdout.matches(key.as_str()).count(),
        0,
        "the secret came back: {stdout}"
    );
    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());
    store.remove().await;
}

/// The README walk-through between `<!-- walkthrough:{name} -->` and its
/// end, run as written against `running` with `tyboo` and `grpcurl` on the
/// PATH (grpcurl as the suite's reflection-only stand-in where it is not
/// installed) and the addresses its first lines name replaced by the
/// running ones. Returns what it printed, line by line.
async fn run_walkthrough(name: &str, store: &TestStore, running: &Running) -> Vec<String> {
    let readme = include_str!("../../README.md");
    let block = readme
        .split(&format!("<!-- walkthrough:{name} -->"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("<!-- /walkthrough:{name} -->")).next())
        .unwrap_or_else(|| panic!("README has the {name} walk-through"));
    let script: String = block
        .lines()
        .filter(|line| !line.starts_with("```"))
        .map(|line| {
            if line.starts_with("EDGE=") {
                format!("EDGE=http://{}", running.edge)
            } else if line.starts_with("TENANCY=") {
                format!("TENANCY={}", running.tenancy)
            } else if line.starts_with("EXECUTOR=") {
                format!("EXECUTOR={}", running.executor)
            } else if line.starts_with("LLM_PORT=") {
                format!("LLM_PORT={}", free_port())
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_tyboo"));
    let grpcurl = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/grpcurl");
    let path = format!(
        "{}:{grpcurl}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        // Paths in the walk-throughs are the repository's.
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("PATH", path)
        .env("TYBOO_KEY", running.api_key.clone().unwrap())
        .env("WS", running.workspace_id.clone().unwrap())
        .env("TYBOO_DATA_DIR", &store.data_dir)
        .env("TYBOO_DATABASE_URL", &store.database_url)
        .env("TYBOO_LOG__FILTER", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout.lines().map(str::to_owned).collect()
}

/// A port nothing listens on now, for a server a walk-through starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap()
}

/// The usage walk-through of README.md, run as written, on a platform
/// started as it says (loopback egress, a price for the model).
#[tokio::test]
async fn readme_usage_walkthrough_works_as_written() {
    let store = TestStore::create().await;
    let mut running = start_with(&store, |command| {
        command
            .env("TYBOO_EXECUTOR__ENGINE__EGRESS__ALLOW_CIDRS", "[127.0.0.0/8]")
            .env(
                "TYBOO_METERING__PRICES",
                "[{model=\"tiny\",input_micros_per_million_tokens=1000000,output_micros_per_million_tokens=2000000}]",
            );
    })
    .await;
    let lines = run_walkthrough("usage", &store, &running).await;
    let stdout = lines.join("\n");
    assert_eq!(
        lines[0],
        r#"{"costMicros":"22","executions":"2","inputTokens":"6","llmCalls":"2","outputTokens":"8","tasks":"2"}"#,
        "{stdout}"
    );
    assert_eq!(
        lines[1], r#"{"providerHost":"127.0.0.1","model":"tiny-1","cost":"22"}"#,
        "{stdout}"
    );
    assert_eq!(
        lines[2],
        r#"[{"nodeId":"ask","costMicros":"11","priceVersion":"2026-12"},{"nodeId":"ask","costMicros":"11","priceVersion":"2026-12"}]"#,
        "{stdout}"
    );
    assert_eq!(lines[3], "400", "{stdout}");
    assert_eq!(lines.len(), 4, "{stdout}");
    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());
    store.remove().await;
}

/// The limits walk-through of README.md, run as written.
#[tokio::test]
async fn readme_limits_walkthrough_works_as_written() {
    let store = TestStore::create().await;
    let mut running = start(&store).await;
    let lines = run_walkthrough("limits", &store, &running).await;
    let stdout = lines.join("\n");
    assert!(
        lines[0].contains("\"runningExecutionsPerWorkspace\":50"),
        "{stdout}"
    );
    assert_eq!(
        lines[1], r#"{"runningExecutionsPerWorkspace":1}"#,
        "{stdout}"
    );
    assert_eq!(lines[2], "403", "{stdout}");
    assert_eq!(
        lines[3],
        r#"{"status":"EXECUTION_STATUS_QUEUED","queueReason":"waiting for a concurrency slot: 1 of 1 running in this workspace"}"#,
        "{stdout}"
    );
    assert_eq!(
        lines[4], r#"{"status":"EXECUTION_STATUS_SUCCEEDED","queueReason":""}"#,
        "{stdout}"
    );
    assert_eq!(lines[5], "50", "{stdout}");
    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());
    store.remove().await;
}

/// The circuit breaker walk-through of README.md, run as written: the
/// operator forces a breaker open, sees it in the list, resets it, and
/// neither a call without the operator's token nor a key without a host
/// changes anything.
#[tokio::test]
async fn readme_breakers_walkthrough_works_as_written() {
    let store = TestStore::create().await;
    let mut running = start(&store).await;
    let lines = run_walkthrough("breakers", &store, &running).await;
    let stdout = lines.join("\n");
    assert_eq!(
        lines,
        [
            r#""CIRCUIT_BREAKER_STATE_FORCED_OPEN""#,
            r#"[{"host":"api.example.com","state":"CIRCUIT_BREAKER_STATE_FORCED_OPEN"}]"#,
            r#""CIRCUIT_BREAKER_STATE_FORCED_OPEN""#,
            r#""CIRCUIT_BREAKER_STATE_CLOSED""#,
            "  Code: Unauthenticated",
            "  Code: InvalidArgument",
        ],
        "{stdout}"
    );
    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());
    store.remove().await;
}

/// A `tyboo up` killed with SIGKILL in the middle of an execution finishes
/// it after a restart, and no node that had completed runs again: the sink
/// counts each side effect by its idempotency key.
#[tokio::test]
async fn a_killed_process_resumes_its_executions_without_repeating_nodes() {
    let upstreams = crate::upstreams::Upstreams::start().await;
    let store = TestStore::create().await;
    let configure = |command: &mut Command| {
        command
            .env(
                "TYBOO_EXECUTOR__ENGINE__EGRESS__ALLOW_CIDRS",
                "[127.0.0.0/8]",
            )
            .env("TYBOO_EXECUTOR__LEASE_DURATION_MS", "1500")
            .env("TYBOO_EXECUTOR__HEARTBEAT_INTERVAL_MS", "300")
            .env("TYBOO_EXECUTOR__RECONCILE_INTERVAL_MS", "300")
            .env("TYBOO_EXECUTOR__REDISPATCH_GRACE_MS", "500");
    };
    let mut first = start_with(&store, configure).await;
    let key = first.api_key.clone().unwrap();
    let edge = format!("http://{}", first.edge);
    let http = crate::sandbox::http_client();
    let graph = serde_json::json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "first_effect", "type": "http.request",
             "parameters": {"method": "POST", "url": upstreams.url("/sink"), "body": {"step": 1}}},
            {"id": "wait", "type": "http.request",
             "parameters": {"method": "GET", "url": upstreams.url("/slow/2500")}},
            {"id": "second_effect", "type": "http.request",
             "parameters": {"method": "POST", "url": upstreams.url("/sink"), "body": {"step": 2}}}
        ],
        "edges": [
            {"from": "start", "to": "first_effect"},
            {"from": "first_effect", "to": "wait"},
            {"from": "wait", "to": "second_effect"}
        ]
    });
    let created: serde_json::Value = http
        .post(format!("{edge}/v1/workflows"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"name": "Two effects", "graph": graph}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let workflow_id = created["workflow"]["id"]
        .as_str()
        .expect("workflow created")
        .to_owned();
    let started: serde_json::Value = http
        .post(format!("{edge}/v1/workflows/{workflow_id}/executions"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"input": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let execution_id = started["execution"]["id"].as_str().unwrap().to_owned();

    // Kill it while the slow node runs, after the first side effect.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while upstreams.seen.sink_keys.lock().await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first node never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();
    assert_eq!(upstreams.seen.sink_keys.lock().await.len(), 1);

    let mut second = start_with(&store, configure).await;
    let edge = format!("http://{}", second.edge);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let execution = loop {
        let body: serde_json::Value = http
            .get(format!("{edge}/v1/executions/{execution_id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let status = body["execution"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if crate::sandbox::TERMINAL_STATUSES.contains(&status.as_str()) {
            break body["execution"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "not finished: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    let keys = upstreams.seen.sink_keys.lock().await.clone();
    assert_eq!(
        keys,
        vec![
            format!("{execution_id}:first_effect"),
            format!("{execution_id}:second_effect")
        ],
        "each side effect exactly once"
    );
    assert_eq!(
        crate::sandbox::node_runs(&execution, "first_effect").len(),
        1
    );
    send_sigterm(&second.child);
    assert!(second.child.wait().await.unwrap().success());
    store.remove().await;
}
