//! Workflows: versions, restore, validation errors that name their path,
//! scoping, and the handlers' codes.

use serde_json::json;
use tonic::{Code, Request};
use tyboo_auth::Role;
use tyboo_engine::WorkflowGraph;
use tyboo_proto::executor::workflow_service_server::WorkflowService;
use tyboo_proto::executor::*;

use super::conformance;
use super::harness::World;
use crate::domain::workflows::Draft;

fn linear_graph(value: i64) -> serde_json::Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "mark", "type": "set", "parameters": {"values": {"value": value}}}
        ],
        "edges": [{"from": "start", "to": "mark"}]
    })
}

fn draft(graph: serde_json::Value) -> Draft {
    Draft {
        name: "orders".to_owned(),
        description: "sync orders".to_owned(),
        graph: serde_json::from_value::<WorkflowGraph>(graph).unwrap(),
    }
}

async fn versions_are_immutable_and_restorable(world: World) {
    let domain = world.executor.domain();
    let scope = world.scope();
    let created = domain
        .create_workflow(&scope, draft(linear_graph(1)))
        .await
        .unwrap();
    let id = created.workflow.id;
    assert_eq!(created.version.version, 1);
    let updated = domain
        .update_workflow(&scope, id, draft(linear_graph(2)), Some(1))
        .await
        .unwrap();
    assert_eq!(updated.version.version, 2);
    // A save against a stale version is refused.
    let stale = domain
        .update_workflow(&scope, id, draft(linear_graph(3)), Some(1))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    let first = domain.get_workflow(&scope, id, Some(1)).await.unwrap();
    assert_eq!(first.graph.nodes[1].parameters["values"]["value"], 1);
    let restored = domain
        .restore_workflow_version(&scope, id, 1)
        .await
        .unwrap();
    assert_eq!(restored.version.version, 3);
    assert_eq!(restored.version.restored_from_version, Some(1));
    let latest = domain.get_workflow(&scope, id, None).await.unwrap();
    assert_eq!(latest.graph.nodes[1].parameters["values"]["value"], 1);
    let (versions, next) = domain
        .list_workflow_versions(&scope, id, 2, "")
        .await
        .unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![3, 2]
    );
    let (rest, _) = domain
        .list_workflow_versions(&scope, id, 2, &next)
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1]);

    // Another workspace sees nothing, exactly as for a missing workflow.
    let other = world.other_scope();
    assert_eq!(
        domain
            .get_workflow(&other, id, None)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let (listed, _) = domain.list_workflows(&other, 0, "").await.unwrap();
    assert!(listed.is_empty());

    domain.delete_workflow(&scope, id).await.unwrap();
    assert_eq!(
        domain
            .get_workflow(&scope, id, None)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}

async fn validation_names_the_node_and_field(world: World) {
    let domain = world.executor.domain();
    let scope = world.scope();
    let bad_url = json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "fetch", "type": "http.request", "parameters": {"method": "GET"}}
        ],
        "edges": [{"from": "start", "to": "fetch"}]
    });
    let error = domain
        .create_workflow(&scope, draft(bad_url))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.to_string().starts_with("nodes[fetch].parameters"),
        "{error}"
    );

    let unknown_type = json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "mystery", "type": "no.such.type"}
        ],
        "edges": [{"from": "start", "to": "mystery"}]
    });
    let error = domain
        .create_workflow(&scope, draft(unknown_type))
        .await
        .unwrap_err();
    assert!(error.to_string().starts_with("nodes[mystery]"), "{error}");

    let dangling = json!({
        "nodes": [{"id": "start", "type": "trigger.manual"}],
        "edges": [{"from": "start", "to": "nowhere"}]
    });
    let error = domain
        .create_workflow(&scope, draft(dangling))
        .await
        .unwrap_err();
    assert!(error.to_string().starts_with("edges[0]"), "{error}");

    let with_credential = json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "fetch", "type": "http.request", "parameters": {"url": "http://127.0.0.1/"},
             "credential_id": "0190c1d4-0000-7000-8000-000000000000"}
        ],
        "edges": [{"from": "start", "to": "fetch"}]
    });
    let error = domain
        .create_workflow(&scope, draft(with_credential))
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with("nodes[fetch].credential_id"),
        "{error}"
    );
}

async fn handlers_check_tokens_roles_and_report_paths(world: World) {
    let service = crate::WorkflowGrpc::new(world.executor.domain().clone());
    let request = |token: Option<String>, graph: Option<tyboo_proto::executor::WorkflowGraph>| {
        let mut request = Request::new(CreateWorkflowRequest {
            name: "hooks".to_owned(),
            description: String::new(),
            graph,
        });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    };
    let status = service
        .create_workflow(request(None, None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = service
        .create_workflow(request(Some(world.token(Role::Viewer)), None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = service
        .create_workflow(request(Some(world.token(Role::Editor)), None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "graph: must be set");

    let graph = super::super::grpc::conversions::graph_to_proto(
        &serde_json::from_value(linear_graph(7)).unwrap(),
    );
    let created = service
        .create_workflow(request(Some(world.token(Role::Editor)), Some(graph)))
        .await
        .unwrap()
        .into_inner()
        .workflow
        .unwrap();
    assert_eq!(created.version, 1);
    // Whole numbers survive the trip through google.protobuf.Struct as integers.
    let node = &created.graph.unwrap().nodes[1];
    let values = super::super::grpc::conversions::struct_to_json(node.parameters.clone().unwrap());
    assert_eq!(values["values"]["value"], json!(7));

    let mut list = Request::new(ListNodeTypesRequest {});
    list.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", world.token(Role::Viewer))
            .parse()
            .unwrap(),
    );
    let types = service
        .list_node_types(list)
        .await
        .unwrap()
        .into_inner()
        .node_types;
    assert!(
        types
            .iter()
            .any(|node_type| node_type.name == "http.request"
                && node_type.parameters_schema.is_some())
    );
}

conformance!(
    versions_are_immutable_and_restorable,
    validation_names_the_node_and_field,
    handlers_check_tokens_roles_and_report_paths,
);
