//! What grpcurl sees on each port: reflection lists exactly the services the
//! port serves (plus health and reflection), and a call on a service of
//! another port says which service it was and who serves it. Through the
//! edge: health without a key, and reflection of the public services only
//! when `edge.grpc_reflection` turns it on.
//!
//! Every test here runs on the sandbox's topology, so with
//! `TYBOO_TEST_TOPOLOGY=processes` the same assertions hold for
//! `tyboo serve <service>` processes.

use tonic::Code;
use tonic::transport::Channel;
use tonic_reflection::pb::{v1, v1alpha};
use tyboo_proto::executor::ListNodeTypesRequest;
use tyboo_proto::executor::workflow_service_client::WorkflowServiceClient;
use tyboo_proto::tenancy::GetSigningKeysRequest;
use tyboo_proto::tenancy::auth_service_client::AuthServiceClient;
use tyboo_proto::vault::ListCredentialTypesRequest;
use tyboo_proto::vault::credential_service_client::CredentialServiceClient;

use crate::sandbox::Sandbox;

/// Listed on every server next to its own services.
const ALWAYS_LISTED: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

const TENANCY_SERVICES: [&str; 4] = [
    "tyboo.tenancy.v1.AuditService",
    "tyboo.tenancy.v1.AuthService",
    "tyboo.tenancy.v1.LimitsService",
    "tyboo.tenancy.v1.TenancyService",
];

const VAULT_SERVICES: [&str; 3] = [
    "tyboo.vault.v1.CredentialAccessService",
    "tyboo.vault.v1.CredentialService",
    "tyboo.vault.v1.KeyManagementService",
];

const EXECUTOR_SERVICES: [&str; 5] = [
    "tyboo.executor.v1.CircuitBreakerService",
    "tyboo.executor.v1.DeadLetterService",
    "tyboo.executor.v1.ExecutionService",
    "tyboo.executor.v1.WebhookService",
    "tyboo.executor.v1.WorkflowService",
];

const METERING_SERVICES: [&str; 2] = [
    "tyboo.metering.v1.MeteringIngestService",
    "tyboo.metering.v1.UsageService",
];

/// The services the edge routes for the public.
const PUBLIC_SERVICES: [&str; 7] = [
    "tyboo.executor.v1.DeadLetterService",
    "tyboo.executor.v1.ExecutionService",
    "tyboo.executor.v1.WorkflowService",
    "tyboo.metering.v1.UsageService",
    "tyboo.tenancy.v1.LimitsService",
    "tyboo.tenancy.v1.TenancyService",
    "tyboo.vault.v1.CredentialService",
];

fn expected(services: &[&str]) -> Vec<String> {
    let mut expected: Vec<String> = services
        .iter()
        .chain(ALWAYS_LISTED.iter())
        .map(|name| (*name).to_owned())
        .collect();
    expected.sort();
    expected
}

/// `grpcurl list` over `grpc.reflection.v1`, sorted.
async fn list_v1(channel: Channel) -> Result<Vec<String>, tonic::Status> {
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let answer = answers.message().await?.expect("one answer");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(listed)) =
        answer.message_response
    else {
        panic!("not a list of services: {answer:?}");
    };
    let mut names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
    names.sort();
    Ok(names)
}

/// `grpcurl list` over `grpc.reflection.v1alpha` (older clients), sorted.
async fn list_v1alpha(channel: Channel) -> Result<Vec<String>, tonic::Status> {
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let answer = answers.message().await?.expect("one answer");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(listed)) =
        answer.message_response
    else {
        panic!("not a list of services: {answer:?}");
    };
    let mut names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
    names.sort();
    Ok(names)
}

/// Whether reflection (v1) hands out the file that defines `symbol`, as
/// `grpcurl describe` needs for every listed service.
async fn describes(channel: Channel, symbol: &str) -> bool {
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(symbol.to_owned()),
        ),
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    matches!(
        answer.message_response,
        Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(ref files))
            if !files.file_descriptor_proto.is_empty()
    )
}

/// Both reflection versions list exactly `services` plus health and
/// reflection, and each listed name can be described.
async fn assert_lists_exactly(port: &str, channel: Channel, services: &[&str]) {
    let wanted = expected(services);
    assert_eq!(
        list_v1(channel.clone()).await.unwrap(),
        wanted,
        "{port} (v1)"
    );
    assert_eq!(
        list_v1alpha(channel.clone()).await.unwrap(),
        wanted,
        "{port} (v1alpha)"
    );
    for name in &wanted {
        assert!(
            describes(channel.clone(), name).await,
            "{port}: {name} is listed but not described"
        );
    }
}

#[tokio::test]
async fn each_service_port_lists_exactly_the_services_it_serves() {
    let sandbox = Sandbox::start().await;
    assert_lists_exactly(
        "tenancy",
        sandbox.tenancy_channel().await,
        &TENANCY_SERVICES,
    )
    .await;
    assert_lists_exactly("vault", sandbox.vault_channel().await, &VAULT_SERVICES).await;
    assert_lists_exactly(
        "executor",
        sandbox.executor_channel().await,
        &EXECUTOR_SERVICES,
    )
    .await;
    assert_lists_exactly(
        "metering",
        sandbox.metering_channel().await,
        &METERING_SERVICES,
    )
    .await;
    sandbox.stop().await;
}

#[tokio::test]
async fn a_call_on_the_wrong_port_names_the_service_and_who_serves_it() {
    let sandbox = Sandbox::start().await;

    let mut workflows_on_tenancy = WorkflowServiceClient::new(sandbox.tenancy_channel().await);
    let status = workflows_on_tenancy
        .list_node_types(ListNodeTypesRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(
        status.message(),
        "tyboo.executor.v1.WorkflowService is not served on this port; it is served by the \
         executor"
    );

    let mut credentials_on_executor =
        CredentialServiceClient::new(sandbox.executor_channel().await);
    let status = credentials_on_executor
        .list_credential_types(ListCredentialTypesRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(
        status.message(),
        "tyboo.vault.v1.CredentialService is not served on this port; it is served by the vault"
    );

    let mut auth_on_vault = AuthServiceClient::new(sandbox.vault_channel().await);
    let status = auth_on_vault
        .get_signing_keys(GetSigningKeysRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(
        status.message(),
        "tyboo.tenancy.v1.AuthService is not served on this port; it is served by tenancy"
    );

    // The same services on their own ports answer (whatever the answer).
    let answered = WorkflowServiceClient::new(sandbox.executor_channel().await)
        .list_node_types(ListNodeTypesRequest {})
        .await;
    assert!(
        answered
            .as_ref()
            .err()
            .is_none_or(|status| status.code() != Code::Unimplemented),
        "{answered:?}"
    );
    AuthServiceClient::new(sandbox.tenancy_channel().await)
        .get_signing_keys(GetSigningKeysRequest {})
        .await
        .unwrap();

    sandbox.stop().await;
}

#[tokio::test]
async fn reflection_switched_off_says_so_and_health_stays() {
    let sandbox = Sandbox::start_with(|config| config.grpc.reflection = false).await;
    let status = list_v1(sandbox.tenancy_channel().await).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert!(
        status
            .message()
            .contains("grpc.reflection.v1.ServerReflection")
            && status.message().contains("grpc.reflection = false"),
        "{status:?}"
    );
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(sandbox.executor_channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    sandbox.stop().await;
}

async fn health_of(channel: Channel, service: &str) -> Result<i32, tonic::Status> {
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map(|response| response.into_inner().status)
}

#[tokio::test]
async fn the_edge_answers_health_without_a_key_and_no_reflection_by_default() {
    let sandbox = Sandbox::start().await;
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    // What a Kubernetes gRPC probe sends: no key, the empty service name.
    assert_eq!(
        health_of(sandbox.edge_channel().await, "").await.unwrap(),
        serving
    );
    assert_eq!(
        health_of(
            sandbox.edge_channel().await,
            "tyboo.tenancy.v1.TenancyService"
        )
        .await
        .unwrap(),
        serving
    );
    let internal = health_of(sandbox.edge_channel().await, "tyboo.tenancy.v1.AuthService")
        .await
        .unwrap_err();
    assert_eq!(internal.code(), Code::NotFound, "{internal:?}");

    let status = list_v1(sandbox.edge_channel().await).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(
        status.message(),
        "grpc.reflection.v1.ServerReflection is not served on this port: server reflection is \
         off (edge.grpc_reflection = false)"
    );
    let status = list_v1alpha(sandbox.edge_channel().await)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("grpc.reflection.v1alpha.ServerReflection is not served"),
        "{status:?}"
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn edge_reflection_switched_on_lists_only_the_public_services() {
    let sandbox = Sandbox::start_with(|config| config.edge.grpc_reflection = true).await;
    assert_lists_exactly("edge", sandbox.edge_channel().await, &PUBLIC_SERVICES).await;
    // Internal services stay unlisted and unreachable.
    let mut auth_through_edge = AuthServiceClient::new(sandbox.edge_channel().await);
    let status = auth_through_edge
        .get_signing_keys(GetSigningKeysRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    sandbox.stop().await;
}
