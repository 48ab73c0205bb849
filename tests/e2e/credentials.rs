//! Credentials end to end: stored through the edge, used by a workflow's
//! http.request against a local API, never shown back through any API,
//! audited in tenancy's chain, held to their allowed hosts, and invisible
//! to other workspaces.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};

use crate::process::{log_to_file, send_sigterm, start_with};
use crate::sandbox::{Sandbox, TERMINAL_STATUSES, TestStore, http_client, node_runs};

const CANARY: &str = "canary-7f3a9c1e-never-shown";

/// An API that answers only `Authorization: Bearer <canary>`.
async fn start_api() -> (SocketAddr, Arc<AtomicUsize>) {
    let authorized = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/secure",
            get(
                |State(authorized): State<Arc<AtomicUsize>>, headers: HeaderMap| async move {
                    let expected = format!("Bearer {CANARY}");
                    let given = headers
                        .get("authorization")
                        .and_then(|value| value.to_str().ok());
                    if given == Some(expected.as_str()) {
                        authorized.fetch_add(1, Ordering::SeqCst);
                        (StatusCode::OK, axum::Json(json!({"ok": true})))
                    } else {
                        (StatusCode::UNAUTHORIZED, axum::Json(json!({"ok": false})))
                    }
                },
            ),
        )
        .with_state(authorized.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (address, authorized)
}

fn call_graph(url: &str, credential_id: &str) -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "call", "type": "http.request", "credentialId": credential_id,
             "parameters": {"method": "GET", "url": url}}
        ],
        "edges": [{"from": "start", "to": "call"}]
    })
}

async fn create_credential(sandbox: &Sandbox, name: &str, allowed_hosts: Value) -> Value {
    let (status, created) = sandbox
        .post(
            "/v1/credentials",
            Some(&sandbox.owner_key),
            json!({"name": name, "type": "bearer_token",
                   "fields": {"token": CANARY}, "allowedHosts": allowed_hosts}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    created["credential"].clone()
}

fn assert_no_canary(what: &str, body: &Value) {
    assert!(
        !body.to_string().contains(CANARY),
        "the secret shows in {what}: {body}"
    );
}

fn without_request_id(mut error: Value) -> Value {
    if let Some(object) = error.as_object_mut() {
        object.remove("request_id");
    }
    error
}

#[tokio::test]
async fn a_stored_credential_is_used_audited_and_never_shown() {
    let sandbox = Sandbox::start().await;
    let (api, authorized) = start_api().await;
    let url = format!("http://{api}/secure");
    let owner = sandbox.owner_key.clone();

    let credential = create_credential(&sandbox, "Partner API", json!([])).await;
    assert_no_canary("the create response", &credential);
    let credential_id = credential["id"].as_str().unwrap().to_owned();

    let workflow_id = sandbox
        .create_workflow("Authorized call", call_graph(&url, &credential_id))
        .await;
    let execution_id = sandbox.start_execution(&workflow_id, json!({})).await;
    let execution = sandbox.wait_for_execution(&execution_id).await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    assert_eq!(authorized.load(Ordering::SeqCst), 1);
    assert_eq!(
        node_runs(&execution, "call")[0]["output"]["body"]["ok"],
        true
    );

    // Nothing any API returns holds the secret.
    let workspace = &sandbox.workspace_id;
    for path in [
        format!("/v1/credentials/{credential_id}"),
        "/v1/credentials".to_owned(),
        format!("/v1/workflows/{workflow_id}"),
        format!("/v1/executions/{execution_id}"),
        format!("/v1/workspaces/{workspace}/audit-events?pageSize=500"),
    ] {
        let (status, body) = sandbox.get(&path, &owner).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_no_canary(&path, &body);
    }

    // The vault's create and decrypt are in tenancy's chain, which holds.
    let (_, listed) = sandbox
        .get(
            &format!("/v1/workspaces/{workspace}/audit-events?pageSize=500"),
            &owner,
        )
        .await;
    let events = listed["events"].as_array().unwrap();
    let find = |action: &str| {
        events
            .iter()
            .find(|event| event["action"] == action)
            .unwrap_or_else(|| panic!("{action} missing from {listed}"))
            .clone()
    };
    let created = find("vault.credential.created");
    assert_eq!(created["target"], format!("credential:{credential_id}"));
    let decrypted = find("vault.credential.decrypted");
    assert_eq!(decrypted["target"], format!("credential:{credential_id}"));
    assert!(
        decrypted["details"].to_string().contains(&execution_id),
        "{decrypted}"
    );
    let (status, verdict) = sandbox
        .post(
            &format!("/v1/workspaces/{workspace}/audit-events:verify"),
            Some(&owner),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["intact"], true, "{verdict}");

    sandbox.stop().await;
}

#[tokio::test]
async fn a_credential_refuses_hosts_it_does_not_allow() {
    let sandbox = Sandbox::start().await;
    let (api, authorized) = start_api().await;
    let credential = create_credential(&sandbox, "Pinned", json!(["api.example.com"])).await;
    let credential_id = credential["id"].as_str().unwrap();

    let workflow_id = sandbox
        .create_workflow(
            "Wrong host",
            call_graph(&format!("http://{api}/secure"), credential_id),
        )
        .await;
    let execution = sandbox
        .wait_for_execution(&sandbox.start_execution(&workflow_id, json!({})).await)
        .await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_FAILED",
        "{execution}"
    );
    let runs = node_runs(&execution, "call");
    assert_eq!(runs.len(), 1, "{execution}");
    assert_eq!(runs[0]["errorClass"], "ERROR_CLASS_PERMANENT");
    let message = runs[0]["error"].to_string();
    assert!(message.contains("allowed hosts"), "{execution}");
    assert_no_canary("the failed execution", &execution);
    assert_eq!(authorized.load(Ordering::SeqCst), 0);

    // Nor is a credential decrypted for a URL the egress guard refuses.
    let open = create_credential(&sandbox, "Unpinned", json!([])).await;
    let refused_workflow = sandbox
        .create_workflow(
            "Private address",
            call_graph("http://10.0.0.1/secure", open["id"].as_str().unwrap()),
        )
        .await;
    let refused = sandbox
        .wait_for_execution(&sandbox.start_execution(&refused_workflow, json!({})).await)
        .await;
    assert_eq!(refused["status"], "EXECUTION_STATUS_FAILED", "{refused}");
    let error = node_runs(&refused, "call")[0]["error"].to_string();
    assert!(
        error.contains("10.0.0.1 is a private address")
            && error.contains("executor.engine.egress.allow_cidrs"),
        "the refusal names the host and the key: {error}"
    );
    // Neither call could have been sent, so neither decrypted anything.
    let (status, events) = sandbox
        .get(
            &format!(
                "/v1/workspaces/{}/audit-events?action=vault.credential.decrypted",
                sandbox.workspace_id
            ),
            &sandbox.owner_key,
        )
        .await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(
        events["events"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{events}"
    );

    sandbox.stop().await;
}

#[tokio::test]
async fn another_workspace_credential_is_exactly_like_a_missing_one() {
    let sandbox = Sandbox::start().await;
    let credential = create_credential(&sandbox, "Team A only", json!([])).await;
    let credential_id = credential["id"].as_str().unwrap().to_owned();

    let (status, created) = sandbox
        .post(
            "/v1/workspaces",
            Some(&sandbox.owner_key),
            json!({"name": "Team B"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let key_b = created["ownerApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let missing = uuid::Uuid::now_v7().to_string();
    let (status_a, answer_a) = sandbox
        .get(&format!("/v1/credentials/{credential_id}"), &key_b)
        .await;
    let (status_missing, answer_missing) = sandbox
        .get(&format!("/v1/credentials/{missing}"), &key_b)
        .await;
    assert_eq!(status_a, 404, "{answer_a}");
    assert_eq!(status_a, status_missing);
    assert_eq!(
        without_request_id(answer_a),
        without_request_id(answer_missing)
    );

    // Saving a workflow in B that names A's credential fails as an unknown
    // one does, word for word but for the id.
    let save = |id: String| {
        let key_b = key_b.clone();
        let sandbox = &sandbox;
        async move {
            sandbox
                .post(
                    "/v1/workflows",
                    Some(&key_b),
                    json!({"name": "Borrowed", "graph": call_graph("https://api.example.com/", &id)}),
                )
                .await
        }
    };
    let (status_a, refused_a) = save(credential_id.clone()).await;
    let (status_missing, refused_missing) = save(missing.clone()).await;
    assert_eq!(status_a, 400, "{refused_a}");
    assert_eq!(status_a, status_missing);
    assert_eq!(
        without_request_id(refused_a)
            .to_string()
            .replace(&credential_id, "ID"),
        without_request_id(refused_missing)
            .to_string()
            .replace(&missing, "ID"),
    );

    sandbox.stop().await;
}

/// An API that echoes the Authorization header it was sent: `/echo` in a
/// 200 answer, `/reject` in a 400 one (a permanent failure).
async fn start_echo_api() -> SocketAddr {
    fn echoed(headers: &HeaderMap) -> Value {
        let given = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        json!({"authorization": given})
    }
    let app = axum::Router::new()
        .route(
            "/echo",
            get(|headers: HeaderMap| async move { axum::Json(echoed(&headers)) }),
        )
        .route(
            "/reject",
            get(|headers: HeaderMap| async move {
                (StatusCode::BAD_REQUEST, axum::Json(echoed(&headers)))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    address
}

/// The marker the engine puts where a live secret would have been.
const REDACTED: &str = "[redacted]";

/// A canary secret used by a workflow that succeeds and by one that fails
/// into the dead-letter queue, both against an API that echoes it back,
/// shows in no API response and in no line the whole process logged at
/// debug level; the marker stands where it would have been.
#[tokio::test]
async fn a_canary_secret_shows_in_no_response_record_or_log_line() {
    let canary = format!("canary-{}", uuid::Uuid::now_v7().simple());
    let api = start_echo_api().await;
    let store = TestStore::create().await;
    let log_path = store.data_dir.join("tyboo.log");
    let mut running = start_with(&store, |command| {
        command.env(
            "TYBOO_EXECUTOR__ENGINE__EGRESS__ALLOW_CIDRS",
            "[127.0.0.0/8]",
        );
        log_to_file(command, &log_path, "debug,sqlx=warn,h2=warn,hyper=warn");
    })
    .await;
    let key = running.api_key.clone().expect("first start prints a key");
    let workspace = running.workspace_id.clone().expect("and its workspace");
    let edge = format!("http://{}", running.edge);
    let http = http_client();
    let mut responses: Vec<(String, Value)> = Vec::new();
    let get = |path: String| {
        let (http, edge, key) = (http.clone(), edge.clone(), key.clone());
        async move {
            let response = http
                .get(format!("{edge}{path}"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let body: Value = response.json().await.unwrap();
            (path, body)
        }
    };
    let post = |path: String, body: Value| {
        let (http, edge, key) = (http.clone(), edge.clone(), key.clone());
        async move {
            let response = http
                .post(format!("{edge}{path}"))
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let body: Value = response.json().await.unwrap();
            (path, body)
        }
    };

    let created = post(
        "/v1/credentials".to_owned(),
        json!({"name": "Canary", "type": "bearer_token", "fields": {"token": canary},
               "allowedHosts": ["127.0.0.1"]}),
    )
    .await;
    let credential_id = created.1["credential"]["id"].as_str().unwrap().to_owned();
    responses.push(created);

    let run = |name: &'static str, path: &'static str| {
        let graph = call_graph(&format!("http://{api}{path}"), &credential_id);
        let post = &post;
        let get = &get;
        async move {
            let mut seen = Vec::new();
            let saved = post(
                "/v1/workflows".to_owned(),
                json!({"name": name, "graph": graph}),
            )
            .await;
            let workflow_id = saved.1["workflow"]["id"].as_str().unwrap().to_owned();
            seen.push(saved);
            let started = post(
                format!("/v1/workflows/{workflow_id}/executions"),
                json!({"input": {}}),
            )
            .await;
            let execution_id = started.1["execution"]["id"].as_str().unwrap().to_owned();
            seen.push(started);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let execution = loop {
                let (path, body) = get(format!("/v1/executions/{execution_id}")).await;
                let execution = body["execution"].clone();
                let status = execution["status"].as_str().unwrap_or_default().to_owned();
                seen.push((path, body));
                if TERMINAL_STATUSES.contains(&status.as_str()) {
                    break execution;
                }
                assert!(std::time::Instant::now() < deadline, "{execution}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            };
            (workflow_id, execution, seen)
        }
    };

    // (a) Success: the API echoed the token into the node's output.
    let (_, succeeded, seen) = run("Echo", "/echo").await;
    responses.extend(seen);
    assert_eq!(
        succeeded["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{succeeded}"
    );
    assert_eq!(
        node_runs(&succeeded, "call")[0]["output"]["body"]["authorization"],
        format!("Bearer {REDACTED}"),
        "{succeeded}"
    );

    // (b) Permanent failure: the token is echoed in the 400 body that the
    // error message quotes, and the step lands in the dead-letter queue.
    let (failing_workflow, failed, seen) = run("Reject", "/reject").await;
    responses.extend(seen);
    assert_eq!(failed["status"], "EXECUTION_STATUS_FAILED", "{failed}");
    let runs = node_runs(&failed, "call");
    assert_eq!(runs[0]["errorClass"], "ERROR_CLASS_PERMANENT", "{failed}");
    assert!(runs[0]["error"].to_string().contains(REDACTED), "{failed}");
    let letters = get(format!("/v1/dead-letters?workflowId={failing_workflow}")).await;
    let letter = letters.1["deadLetters"][0].clone();
    let letter_id = letter["id"].as_str().expect("dead-lettered").to_owned();
    responses.push(letters);
    let letter = get(format!("/v1/dead-letters/{letter_id}")).await;
    assert!(letter.1.to_string().contains(REDACTED), "{}", letter.1);
    responses.push(letter);

    for path in [
        format!("/v1/credentials/{credential_id}"),
        "/v1/credentials".to_owned(),
        "/v1/workflows".to_owned(),
        "/v1/executions".to_owned(),
        "/v1/dead-letters".to_owned(),
        format!("/v1/workspaces/{workspace}/audit-events?pageSize=500"),
    ] {
        responses.push(get(path).await);
    }
    let audit = &responses.last().unwrap().1;
    assert!(
        audit.to_string().contains("vault.credential.decrypted"),
        "{audit}"
    );
    for (path, body) in &responses {
        assert!(
            !body.to_string().contains(&canary),
            "the canary shows in {path}: {body}"
        );
    }

    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("\"level\":\"DEBUG\""),
        "the log was captured at debug level: {log}"
    );
    let leaked: Vec<&str> = log.lines().filter(|line| line.contains(&canary)).collect();
    assert!(
        leaked.is_empty(),
        "the canary shows in the log: {leaked:#?}"
    );
    store.remove().await;
}
