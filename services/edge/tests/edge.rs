//! The edge in front of a real tonic server, over real loopback sockets.

mod support;

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tonic::Code;
use tyboo_edge::EdgeConfig;
use tyboo_proto::tenancy::auth_service_client::AuthServiceClient;
use tyboo_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use tyboo_proto::tenancy::{AuthenticateRequest, ListMembersRequest, ListWorkspacesRequest};

use support::{Counters, GOOD_KEY, PRINCIPAL_TOKEN, SLOW_KEY, Sandbox, bearer, lazy_channel};

#[tokio::test]
async fn get_binds_path_and_query_and_forwards_token_and_request_id() {
    let sandbox = Sandbox::start(EdgeConfig::default()).await;
    let authorization = bearer(GOOD_KEY);
    let answer = sandbox
        .call(
            Method::GET,
            "/v1/workspaces/%301a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations?include_closed=true",
            &[
                ("authorization", &authorization),
                ("x-request-id", "req-abc"),
            ],
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.headers["x-request-id"], "req-abc");
    assert_eq!(answer.headers["content-type"], "application/json");
    let invitation = &answer.json["invitations"][0];
    assert_eq!(
        invitation["workspaceId"], "01a24fd1-cb17-7725-9e75-ffc4fc5f8878",
        "percent-decoded"
    );
    assert_eq!(invitation["id"], "include_closed=true");
    assert_eq!(invitation["invitedBy"], bearer(PRINCIPAL_TOKEN));
    assert_eq!(invitation["email"], "req-abc");
    // Defaults are emitted, enums by name.
    assert_eq!(invitation["role"], "ROLE_UNSPECIFIED");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn post_body_is_transcoded_and_the_key_is_exchanged_once() {
    let sandbox = Sandbox::start(EdgeConfig::default()).await;
    let authorization = bearer(GOOD_KEY);
    let headers = [("authorization", authorization.as_str())];
    let created = sandbox
        .call(
            Method::POST,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations",
            &headers,
            r#"{"email": "ada@example.com", "role": "ROLE_EDITOR", "ttl_seconds": "3600"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.json);
    assert_eq!(
        created.json["invitation"]["email"],
        json!("ada@example.com")
    );
    assert_eq!(created.json["invitation"]["role"], "ROLE_EDITOR");
    assert_eq!(
        created.json["invitation"]["workspaceId"],
        "01a24fd1-cb17-7725-9e75-ffc4fc5f8878"
    );
    assert_eq!(created.json["token"], bearer(PRINCIPAL_TOKEN));
    let listed = sandbox
        .call(
            Method::GET,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations",
            &headers,
            "",
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_ne!(
        listed.headers["x-request-id"],
        created.headers["x-request-id"]
    );
    assert_eq!(
        sandbox.authenticate_calls(),
        1,
        "the second call uses the cache"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn concurrent_misses_for_one_key_share_one_exchange() {
    let sandbox = Sandbox::start(EdgeConfig::default()).await;
    let authorization = bearer(SLOW_KEY);
    let headers = [("authorization", authorization.as_str())];
    let calls = (0..8).map(|_| {
        sandbox.call(
            Method::GET,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations",
            &headers,
            "",
        )
    });
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    }
    assert_eq!(sandbox.authenticate_calls(), 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn bad_keys_are_401_and_other_bearers_never_reach_tenancy() {
    let sandbox = Sandbox::start(EdgeConfig::default()).await;
    let wrong = bearer("tyb_wrong");
    let answer = sandbox
        .call(
            Method::GET,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations",
            &[("authorization", &wrong)],
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json["code"], "UNAUTHENTICATED");
    assert_eq!(
        answer.json["request_id"],
        *answer.headers["x-request-id"].to_str().unwrap()
    );
    assert_eq!(sandbox.authenticate_calls(), 1);

    let jwt = bearer("eyJhbGciOiJFZERTQSJ9.e30.sig");
    let answer = sandbox
        .call(
            Method::GET,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations",
            &[("authorization", &jwt)],
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        sandbox.authenticate_calls(),
        1,
        "only API keys are exchanged"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_upstream_unauthenticated_evicts_the_cached_token() {
    let sandbox = Sandbox::start(EdgeConfig::default()).await;
    let authorization = bearer(GOOD_KEY);
    let headers = [("authorization", authorization.as_str())];
    let refused = sandbox
        .call(
            Method::GET,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878",
            &headers,
            "",
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json["message"], "the API key was revoked");
    let again = sandbox
        .call(
            Method::GET,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations",
            &headers,
            "",
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        sandbox.authenticate_calls(),
        2,
        "the key was exchanged again"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let config = EdgeConfig {
        max_body_bytes: 256,
        ..EdgeConfig::default()
    };
    let sandbox = Sandbox::start(config).await;
    let body = format!(r#"{{"email": "{}@example.com"}}"#, "a".repeat(1024));
    let answer = sandbox
        .call(
            Method::POST,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations",
            &[],
            &body,
        )
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json["code"], "PAYLOAD_TOO_LARGE");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn malformed_and_unknown_json_is_400_naming_the_field() {
    let sandbox = Sandbox::start(EdgeConfig::default()).await;
    let path = "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations";
    let wrong_type = sandbox
        .call(Method::POST, path, &[], r#"{"email": 5}"#)
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_type.json["code"], "INVALID_ARGUMENT");
    let message = wrong_type.json["message"].as_str().unwrap();
    assert!(message.contains("`email`"), "{message}");

    let unknown = sandbox
        .call(Method::POST, path, &[], r#"{"emial": "a@b.c"}"#)
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.json["message"].as_str().unwrap().contains("emial"));

    let malformed = sandbox
        .call(Method::POST, path, &[], r#"{"email": "a@b.c""#)
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json["code"], "INVALID_ARGUMENT");

    let bad_query = sandbox
        .call(
            Method::GET,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations?include_closed=perhaps",
            &[],
            "",
        )
        .await;
    assert_eq!(bad_query.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_query.json["message"]
            .as_str()
            .unwrap()
            .contains("include_closed")
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let sandbox = Sandbox::start(EdgeConfig::default()).await;
    let missing = sandbox.call(Method::GET, "/v1/nowhere", &[], "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json["code"], "NOT_FOUND");
    let wrong = sandbox
        .call(
            Method::PUT,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations",
            &[],
            "{}",
        )
        .await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.headers["allow"], "GET, POST");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_service_is_503() {
    // A port that was just free: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = closed.local_addr().expect("address");
    drop(closed);
    let sandbox = Sandbox::start_edge(
        EdgeConfig::default(),
        lazy_channel(address),
        Arc::new(Counters::default()),
        None,
    )
    .await;
    let answer = sandbox
        .call(
            Method::GET,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations",
            &[],
            "",
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.json
    );
    assert_eq!(answer.json["code"], "UNAVAILABLE");
    assert!(
        !answer.json["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1")
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn native_grpc_passes_through_with_the_principal_token() {
    let sandbox = Sandbox::start(EdgeConfig::default()).await;
    let mut client = TenancyServiceClient::new(sandbox.grpc_channel().await);

    let mut request = tonic::Request::new(ListMembersRequest {
        workspace_id: "01a24fd1-cb17-7725-9e75-ffc4fc5f8879".into(),
    });
    request
        .metadata_mut()
        .insert("authorization", bearer(GOOD_KEY).parse().unwrap());
    request
        .metadata_mut()
        .insert("x-request-id", "grpc-req-1".parse().unwrap());
    let response = client
        .list_members(request)
        .await
        .expect("passthrough call");
    let member = &response.get_ref().members[0];
    assert_eq!(member.workspace_id, "01a24fd1-cb17-7725-9e75-ffc4fc5f8879");
    assert_eq!(
        member.user_id,
        bearer(PRINCIPAL_TOKEN),
        "the key became the token"
    );
    assert_eq!(member.display_name, "grpc-req-1");

    let mut refused = tonic::Request::new(ListMembersRequest::default());
    refused
        .metadata_mut()
        .insert("authorization", bearer("tyb_wrong").parse().unwrap());
    let status = client.list_members(refused).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let unimplemented = client
        .list_workspaces(ListWorkspacesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(unimplemented.code(), Code::Unimplemented);
    assert_eq!(
        unimplemented.message(),
        "list_workspaces",
        "the service itself answered"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn internal_services_are_unimplemented_through_the_edge() {
    let sandbox = Sandbox::start(EdgeConfig::default()).await;
    let mut client = AuthServiceClient::new(sandbox.grpc_channel().await);
    let status = client
        .authenticate(AuthenticateRequest {
            api_key: GOOD_KEY.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(
        sandbox.authenticate_calls(),
        0,
        "the call never reached tenancy"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn openapi_and_health_are_served_and_metrics_are_not() {
    let sandbox = Sandbox::start(EdgeConfig::default()).await;
    let openapi = sandbox.call(Method::GET, "/openapi.json", &[], "").await;
    assert_eq!(openapi.status, StatusCode::OK);
    assert!(openapi.json["paths"]["/v1/workspaces/{workspace_id}/members"]["get"].is_object());

    let healthy = sandbox.call(Method::GET, "/healthz", &[], "").await;
    assert_eq!(healthy.status, StatusCode::OK);
    assert_eq!(healthy.json, json!({"status": "SERVING"}));
    sandbox.edge.set_serving(false);
    let draining = sandbox.call(Method::GET, "/healthz", &[], "").await;
    assert_eq!(draining.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(draining.json, json!({"status": "NOT_SERVING"}));

    // The edge still counts its requests, for the admin listener to serve.
    let text = tyboo_runtime::telemetry::render_metrics();
    assert!(text.contains("tyboo_edge_requests_total"), "{text}");
    assert!(text.contains(r#"route="/healthz""#), "{text}");
    for path in ["/metrics", "/v1/../metrics", "/v1/%2e%2e/metrics"] {
        let answer = sandbox.call(Method::GET, path, &[], "").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!answer.json.to_string().contains("tyboo_"), "{path}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn cors_headers_only_for_configured_origins() {
    let plain = Sandbox::start(EdgeConfig::default()).await;
    let origin = [("origin", "https://app.example")];
    let answer = plain.call(Method::GET, "/healthz", &origin, "").await;
    assert!(answer.headers.get("access-control-allow-origin").is_none());
    plain.shutdown().await;

    let config = EdgeConfig {
        cors_allowed_origins: vec!["https://app.example".into()],
        ..EdgeConfig::default()
    };
    let sandbox = Sandbox::start(config).await;
    let preflight = sandbox
        .call(
            Method::OPTIONS,
            "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/invitations",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization,content-type",
                ),
            ],
            "",
        )
        .await;
    assert_eq!(preflight.status, StatusCode::OK);
    assert_eq!(
        preflight.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let refused = sandbox.call(Method::GET, "/v1/nowhere", &origin, "").await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(
        refused.headers["access-control-allow-origin"], "https://app.example",
        "errors stay readable from the browser"
    );
    assert_eq!(
        refused.headers["access-control-expose-headers"],
        "x-request-id"
    );
    sandbox.shutdown().await;
}
