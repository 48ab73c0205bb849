//! A workspace's limits: read by its members over HTTP through the edge,
//! overridden by an operator over gRPC (`tyboo admin operator-token`, as
//! with grpcurl), refused to everyone else, and validated with the field
//! named.

use reqwest::Method;
use serde_json::json;
use tyboo_proto::tenancy::limits_service_client::LimitsServiceClient;
use tyboo_proto::tenancy::{LimitOverrides, SetWorkspaceLimitsRequest};

use crate::process::tyboo;
use crate::sandbox::{Sandbox, with_key};

async fn operator_token(sandbox: &Sandbox) -> String {
    let output = tyboo(sandbox.store.as_ref().unwrap())
        .env("TYBOO_LOG__FILTER", "warn")
        .args(["admin", "operator-token", "--ttl", "5m"])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_set_a_workspaces_limits_and_members_read_them() {
    let sandbox = Sandbox::start().await;
    let path = format!("/v1/workspaces/{}/limits", sandbox.workspace_id);

    let (status, defaults) = sandbox.get(&path, &sandbox.owner_key).await;
    assert_eq!(status, 200, "{defaults}");
    assert_eq!(defaults["limits"]["runningExecutionsPerWorkspace"], 50);
    assert_eq!(defaults["overrides"], json!({}));

    // Not even the owner raises their own limits.
    let body = json!({"overrides": {"runningExecutionsPerWorkspace": 2}});
    let (status, refused) = sandbox
        .call(
            Method::PUT,
            &path,
            Some(&sandbox.owner_key),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 403, "{refused}");

    let operator = operator_token(&sandbox).await;
    let mut limits = LimitsServiceClient::new(sandbox.tenancy_channel().await);
    let set = |overrides: LimitOverrides| {
        with_key(
            SetWorkspaceLimitsRequest {
                workspace_id: sandbox.workspace_id.clone(),
                overrides: Some(overrides),
            },
            &operator,
        )
    };
    let two = LimitOverrides {
        running_executions_per_workspace: Some(2),
        ..LimitOverrides::default()
    };
    let answer = limits
        .set_workspace_limits(set(two))
        .await
        .unwrap()
        .into_inner();
    let effective = answer.limits.unwrap();
    assert_eq!(effective.running_executions_per_workspace, 2);
    assert_eq!(effective.api_key_burst, 100, "the rest keep the defaults");
    let zero = LimitOverrides {
        running_executions_per_user: Some(0),
        ..LimitOverrides::default()
    };
    let refused = limits.set_workspace_limits(set(zero)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("running_executions_per_user"),
        "{refused:?}"
    );
    let (_, read) = sandbox.get(&path, &sandbox.owner_key).await;
    assert_eq!(read["overrides"]["runningExecutionsPerWorkspace"], 2);
    assert!(read["updatedAt"].is_string(), "{read}");

    // Bad input through the edge: 400 naming the field, checked before
    // anything else, and the stored overrides stay.
    for bad in [
        json!({"overrides": {"runningExecutionsPerWorkspace": 0}}),
        json!({"overrides": {"queueWaitLimitSeconds": 2_592_001}}),
        json!({"overrides": {"noSuchLimit": 1}}),
    ] {
        let (status, error) = sandbox
            .call(
                Method::PUT,
                &path,
                Some(&sandbox.owner_key),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {error}");
        let field = bad["overrides"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        let snake: String = field
            .chars()
            .flat_map(|c| {
                if c.is_ascii_uppercase() {
                    vec!['_', c.to_ascii_lowercase()]
                } else {
                    vec![c]
                }
            })
            .collect();
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&field) || message.contains(&snake),
            "{bad}: {error}"
        );
    }
    let (_, read) = sandbox.get(&path, &sandbox.owner_key).await;
    assert_eq!(read["limits"]["runningExecutionsPerWorkspace"], 2);

    // Another workspace's limits answer as a missing one.
    let other = format!("/v1/workspaces/{}/limits", uuid::Uuid::now_v7());
    let (status, _) = sandbox.get(&other, &sandbox.owner_key).await;
    assert_eq!(status, 404);

    // An empty set clears every override.
    let cleared = limits
        .set_workspace_limits(set(LimitOverrides::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.limits.unwrap().running_executions_per_workspace, 50);
    let (_, read) = sandbox.get(&path, &sandbox.owner_key).await;
    assert_eq!(read["overrides"], json!({}));
    sandbox.stop().await;
}

/// A monthly executions quota through the whole mesh: over it an execution
/// is HELD with the reason, visible over HTTP; lifting the quota releases
/// it, and it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_monthly_quota_executions_are_held_then_released() {
    let sandbox = Sandbox::start_with(|config| {
        config.limits.cache_ttl_ms = 200;
        config.executor.quota_release_interval_ms = 100;
    })
    .await;
    let operator = operator_token(&sandbox).await;
    let mut limits = LimitsServiceClient::new(sandbox.tenancy_channel().await);
    let quota = |executions_per_month: u32| {
        with_key(
            SetWorkspaceLimitsRequest {
                workspace_id: sandbox.workspace_id.clone(),
                overrides: Some(LimitOverrides {
                    executions_per_month: Some(executions_per_month),
                    ..LimitOverrides::default()
                }),
            },
            &operator,
        )
    };
    let answer = limits
        .set_workspace_limits(quota(1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.limits.unwrap().executions_per_month, 1);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    let workflow = sandbox
        .create_workflow(
            "Quota",
            json!({
                "nodes": [{"id": "start", "type": "trigger.manual"},
                          {"id": "done", "type": "set", "parameters": {"values": {"ok": true}}}],
                "edges": [{"from": "start", "to": "done"}]
            }),
        )
        .await;
    let first = sandbox.start_execution(&workflow, json!({})).await;
    let execution = sandbox.wait_for_execution(&first).await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    let second = sandbox.start_execution(&workflow, json!({})).await;
    let (status, held) = sandbox
        .get(&format!("/v1/executions/{second}"), &sandbox.owner_key)
        .await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(
        held["execution"]["status"], "EXECUTION_STATUS_HELD",
        "{held}"
    );
    assert!(
        held["execution"]["queueReason"]
            .as_str()
            .is_some_and(|reason| reason.contains("executions_per_month")),
        "{held}"
    );
    // Listed by its status like any other.
    let (_, listed) = sandbox
        .get(
            &format!("/v1/executions?workflowId={workflow}&status=EXECUTION_STATUS_HELD"),
            &sandbox.owner_key,
        )
        .await;
    assert_eq!(listed["executions"][0]["id"], second.as_str(), "{listed}");

    // The operator lifts the quota: it runs.
    limits.set_workspace_limits(quota(0)).await.unwrap();
    let execution = sandbox.wait_for_execution(&second).await;
    assert_eq!(
        execution["status"], "EXECUTION_STATUS_SUCCEEDED",
        "{execution}"
    );
    sandbox.stop().await;
}
