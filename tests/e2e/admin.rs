//! `tyboo admin …` as an operator runs it: on the configured database, with
//! the platform stopped or running, every action on the audit log, and an
//! operator token that reads any workspace and changes nothing.

use std::process::{Output, Stdio};

use serde_json::Value;
use tyboo_proto::executor::workflow_service_client::WorkflowServiceClient;
use tyboo_proto::executor::{CreateWorkflowRequest, ListWorkflowsRequest};
use tyboo_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use tyboo_proto::tenancy::{CreateApiKeyRequest, ListMembersRequest};
use tyboo_proto::vault::ListCredentialsRequest;
use tyboo_proto::vault::credential_service_client::CredentialServiceClient;

use crate::process::{send_sigterm, start, tyboo};
use crate::sandbox::{TestStore, with_key};

async fn admin(store: &TestStore, arguments: &[&str]) -> Output {
    tyboo(store)
        .env("TYBOO_LOG__FILTER", "warn")
        .arg("admin")
        .args(arguments)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap()
}

/// Runs an admin command with `--json` and returns what it printed.
async fn admin_json(store: &TestStore, arguments: &[&str]) -> Value {
    let mut with_json = arguments.to_vec();
    with_json.push("--json");
    let output = admin(store, &with_json).await;
    assert!(
        output.status.success(),
        "{arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{arguments:?} printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

async fn me(edge: &str, key: &str) -> (u16, Value) {
    let response = crate::sandbox::http_client()
        .get(format!("http://{edge}/v1/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn connect(address: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_commands_work_with_the_platform_stopped_and_recover_a_lost_key() {
    let store = TestStore::create().await;
    let mut running = start(&store).await;
    let first_key = running.api_key.clone().unwrap();
    let workspace_id = running.workspace_id.clone().unwrap();
    assert_eq!(me(&running.edge, &first_key).await.0, 200);
    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());

    // Stopped: list, create, and recover.
    let organizations = admin_json(&store, &["orgs", "list"]).await;
    assert_eq!(organizations["organizations"].as_array().unwrap().len(), 1);
    let created = admin_json(
        &store,
        &[
            "orgs",
            "create",
            "--name",
            "Globex",
            "--owner-email",
            "hank@globex.test",
        ],
    )
    .await;
    let globex_key = created["apiKey"].as_str().unwrap().to_owned();
    let globex_org = created["organizationId"].as_str().unwrap().to_owned();
    assert!(globex_key.starts_with("tyb_"));
    let workspaces = admin_json(&store, &["workspaces", "list"]).await;
    assert_eq!(workspaces["workspaces"].as_array().unwrap().len(), 2);
    let of_globex = admin_json(&store, &["workspaces", "list", "--org", &globex_org]).await;
    let of_globex = of_globex["workspaces"].as_array().unwrap();
    assert_eq!(of_globex.len(), 1);
    assert_eq!(of_globex[0]["id"], created["workspaceId"]);
    let members = admin_json(&store, &["members", "list", "--workspace", &workspace_id]).await;
    let members = members["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["email"], "owner@tyboo.local");
    assert_eq!(members[0]["role"], "owner");
    let recovered = admin_json(
        &store,
        &[
            "keys",
            "issue",
            "--workspace",
            &workspace_id,
            "--user",
            "owner@tyboo.local",
        ],
    )
    .await;
    let recovery_key = recovered["secret"].as_str().unwrap().to_owned();
    // Text output prints the key once too.
    let by_id = admin(
        &store,
        &[
            "keys",
            "issue",
            "--workspace",
            &workspace_id,
            "--user",
            members[0]["userId"].as_str().unwrap(),
        ],
    )
    .await;
    assert!(by_id.status.success());
    let text = String::from_utf8_lossy(&by_id.stdout);
    assert_eq!(text.matches("tyb_").count(), 1, "{text}");

    // Refusals say what is wrong, and exit non-zero.
    let stranger = admin(
        &store,
        &[
            "keys",
            "issue",
            "--workspace",
            &workspace_id,
            "--user",
            "hank@globex.test",
        ],
    )
    .await;
    assert!(!stranger.status.success());
    assert!(String::from_utf8_lossy(&stranger.stderr).contains("member not found"));
    let too_long = admin(&store, &["operator-token", "--ttl", "2h"]).await;
    assert!(!too_long.status.success());

    // Restarted: the used first key prints nothing; every key works.
    let mut running = start(&store).await;
    assert_eq!(running.api_key, None);
    for key in [&first_key, &recovery_key, &globex_key] {
        assert_eq!(me(&running.edge, key).await.0, 200, "{key}");
    }

    // Each action is on the workspace's audit log, by the operator.
    let audit: Value = crate::sandbox::http_client()
        .get(format!(
            "http://{}/v1/workspaces/{workspace_id}/audit-events?actor=operator:cli",
            running.edge
        ))
        .bearer_auth(&recovery_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{audit}"))
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "api_key.created",
            "api_key.created",
            "operator.members.listed"
        ],
        "{audit}"
    );
    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());
    store.remove().await;
}

#[tokio::test]
async fn an_operator_token_reads_any_workspace_over_grpc_and_writes_nothing() {
    let store = TestStore::create().await;
    let mut running = start(&store).await;
    let workspace_id = running.workspace_id.clone().unwrap();
    let issued = admin_json(&store, &["operator-token", "--ttl", "5m"]).await;
    assert_eq!(issued["subject"], "operator:cli");
    let token = issued["token"].as_str().unwrap().to_owned();
    // The plain form prints the token alone, for `$(tyboo admin operator-token)`.
    let plain = admin(&store, &["operator-token"]).await;
    let plain = String::from_utf8(plain.stdout).unwrap();
    assert_eq!(plain.trim().split('.').count(), 3, "{plain}");

    let mut tenancy = TenancyServiceClient::new(connect(&running.tenancy).await);
    let members = tenancy
        .list_members(with_key(
            ListMembersRequest {
                workspace_id: workspace_id.clone(),
            },
            &token,
        ))
        .await
        .expect("an operator reads members")
        .into_inner();
    assert_eq!(members.members.len(), 1);
    let refused = tenancy
        .create_api_key(with_key(
            CreateApiKeyRequest {
                workspace_id: workspace_id.clone(),
                name: "operator".to_owned(),
                expire_time: None,
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");

    // The executor and the vault act in the token's workspace: a token
    // without one is refused, a token for one reads there and writes nothing.
    let mut workflows = WorkflowServiceClient::new(connect(&running.executor).await);
    let unscoped = workflows
        .list_workflows(with_key(ListWorkflowsRequest::default(), &token))
        .await
        .unwrap_err();
    assert_eq!(
        unscoped.code(),
        tonic::Code::PermissionDenied,
        "{unscoped:?}"
    );
    let scoped = admin_json(&store, &["operator-token", "--workspace", &workspace_id]).await;
    let scoped = scoped["token"].as_str().unwrap().to_owned();
    workflows
        .list_workflows(with_key(ListWorkflowsRequest::default(), &scoped))
        .await
        .expect("an operator lists a workspace's workflows");
    let refused = workflows
        .create_workflow(with_key(
            // Valid as a request: refused for who asks, not for what.
            CreateWorkflowRequest {
                name: "operator".to_owned(),
                graph: Some(Default::default()),
                ..CreateWorkflowRequest::default()
            },
            &scoped,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let mut credentials = CredentialServiceClient::new(connect(&running.vault).await);
    credentials
        .list_credentials(with_key(ListCredentialsRequest::default(), &scoped))
        .await
        .expect("an operator lists a workspace's credentials");
    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());
    store.remove().await;
}
