//! Native gRPC through the edge with an API key, and the operator's view of
//! a service: health and reflection.

use tonic::Code;
use tyboo_proto::common::Role;
use tyboo_proto::tenancy::auth_service_client::AuthServiceClient;
use tyboo_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use tyboo_proto::tenancy::*;

use crate::sandbox::{Sandbox, with_key};

#[tokio::test]
async fn member_lifecycle_over_native_grpc_through_the_edge() {
    let sandbox = Sandbox::start().await;
    let owner = sandbox.owner_key.clone();
    let workspace_id = sandbox.workspace_id.clone();
    let mut client = TenancyServiceClient::new(sandbox.edge_channel().await);

    let invitation = client
        .create_invitation(with_key(
            CreateInvitationRequest {
                workspace_id: workspace_id.clone(),
                email: "lin@example.com".into(),
                role: Role::Editor as i32,
                ttl_seconds: 0,
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner();
    let accepted = client
        .accept_invitation(tonic::Request::new(AcceptInvitationRequest {
            token: invitation.token.clone(),
            display_name: "Lin".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let lin = accepted.member.unwrap();
    let lin_key = accepted.api_key.unwrap().secret;

    let members = client
        .list_members(with_key(
            ListMembersRequest {
                workspace_id: workspace_id.clone(),
            },
            &lin_key,
        ))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.len(), 2);

    // An editor may not invite; nor raise anyone.
    let denied = client
        .create_invitation(with_key(
            CreateInvitationRequest {
                workspace_id: workspace_id.clone(),
                email: "eve@example.com".into(),
                role: Role::Viewer as i32,
                ttl_seconds: 0,
            },
            &lin_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let promoted = client
        .update_member_role(with_key(
            UpdateMemberRoleRequest {
                workspace_id: workspace_id.clone(),
                user_id: lin.user_id.clone(),
                role: Role::Admin as i32,
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(promoted.member.unwrap().role, Role::Admin as i32);

    // An admin cannot change an owner, nor make someone an owner.
    let refused = client
        .update_member_role(with_key(
            UpdateMemberRoleRequest {
                workspace_id: workspace_id.clone(),
                user_id: sandbox.owner_id.clone(),
                role: Role::Viewer as i32,
            },
            &lin_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = client
        .update_member_role(with_key(
            UpdateMemberRoleRequest {
                workspace_id: workspace_id.clone(),
                user_id: lin.user_id.clone(),
                role: Role::Owner as i32,
            },
            &lin_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    client
        .remove_member(with_key(
            RemoveMemberRequest {
                workspace_id: workspace_id.clone(),
                user_id: lin.user_id.clone(),
            },
            &owner,
        ))
        .await
        .unwrap();
    let after = client
        .list_members(with_key(ListMembersRequest { workspace_id }, &lin_key))
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::Unauthenticated);

    // Bad keys and internal services are refused at the edge.
    let status = client
        .get_current_principal(with_key(GetCurrentPrincipalRequest {}, "tyb_wrong"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut auth_through_edge = AuthServiceClient::new(sandbox.edge_channel().await);
    let status = auth_through_edge
        .get_signing_keys(GetSigningKeysRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);

    sandbox.stop().await;
}

#[tokio::test]
async fn services_answer_health_and_reject_raw_api_keys() {
    let sandbox = Sandbox::start().await;
    let channel = sandbox.tenancy_channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in [
        "",
        "tyboo.tenancy.v1.TenancyService",
        "tyboo.tenancy.v1.AuthService",
    ] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }

    let mut executor_health =
        tonic_health::pb::health_client::HealthClient::new(sandbox.executor_channel().await);
    for service in [
        "tyboo.executor.v1.WorkflowService",
        "tyboo.executor.v1.ExecutionService",
        "tyboo.executor.v1.DeadLetterService",
    ] {
        let status = executor_health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }

    // Services take principal tokens, not API keys.
    let mut tenancy = TenancyServiceClient::new(channel.clone());
    let status = tenancy
        .get_current_principal(with_key(GetCurrentPrincipalRequest {}, &sandbox.owner_key))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let mut auth = AuthServiceClient::new(channel);
    let authenticated = auth
        .authenticate(AuthenticateRequest {
            api_key: sandbox.owner_key.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let me = tenancy
        .get_current_principal(with_key(
            GetCurrentPrincipalRequest {},
            &authenticated.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.principal.unwrap().workspace_id, sandbox.workspace_id);

    // A token whose signature was altered is refused.
    let mut forged = authenticated.token.clone();
    forged.pop();
    forged.push(if authenticated.token.ends_with('A') {
        'B'
    } else {
        'A'
    });
    let status = tenancy
        .get_current_principal(with_key(GetCurrentPrincipalRequest {}, &forged))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    sandbox.stop().await;
}

/// What every other service does: verify tokens against tenancy's published
/// key set over gRPC, across a signing-key rotation, and use service tokens.
#[tokio::test]
async fn services_verify_tokens_from_the_published_key_set_across_rotation() {
    use std::sync::Arc;
    use tyboo_auth::{GrpcKeySource, Subject, TokenVerifier};

    let sandbox = Sandbox::start_with(|config| {
        config.tenancy.service_secret = "mesh-secret-for-tests".to_owned();
    })
    .await;
    let channel = sandbox.tenancy_channel().await;
    let mut auth = AuthServiceClient::new(channel.clone());
    let verifier = TokenVerifier::new(Arc::new(GrpcKeySource::new(channel)));

    // A service token for "executor", and the wrong secret refused.
    let service_token = auth
        .issue_service_token(IssueServiceTokenRequest {
            service: "executor".into(),
            secret: "mesh-secret-for-tests".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let service = verifier.verify(&service_token).await.unwrap();
    assert_eq!(service.subject, Subject::Service("executor".into()));
    let refused = auth
        .issue_service_token(IssueServiceTokenRequest {
            service: "executor".into(),
            secret: "guess".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused.code(),
            Code::Unauthenticated | Code::PermissionDenied
        ),
        "{refused:?}"
    );

    let before = auth
        .authenticate(AuthenticateRequest {
            api_key: sandbox.owner_key.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let principal = verifier.verify(&before).await.unwrap();
    assert_eq!(
        principal.workspace_id.unwrap().to_string(),
        sandbox.workspace_id
    );

    // Only a service may rotate; a user's token is refused.
    let denied = auth
        .rotate_signing_key(with_key(RotateSigningKeyRequest {}, &before))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let rotated = auth
        .rotate_signing_key(with_key(RotateSigningKeyRequest {}, &service_token))
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    let published = auth
        .get_signing_keys(GetSigningKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(published.len() >= 2, "old and new keys are both published");
    assert!(
        published
            .iter()
            .any(|key| key.kid == rotated.kid && key.active)
    );

    // A token signed with the new key verifies once the verifier refetches
    // (it refetches on an unknown key id, at most every two seconds), and
    // the token signed before the rotation still verifies.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let after = auth
        .authenticate(AuthenticateRequest {
            api_key: sandbox.owner_key.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let header = after.split('.').next().unwrap().to_owned();
    assert_ne!(
        header,
        before.split('.').next().unwrap(),
        "new tokens name the new key"
    );
    verifier.verify(&after).await.unwrap();
    verifier.verify(&before).await.unwrap();

    sandbox.stop().await;
}

/// `ListWorkflowsRequest` as a hostile client spells it: `page_token`
/// (field 2) as raw bytes that are not UTF-8, or as many bytes as it likes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawListWorkflows {
    #[prost(bytes = "vec", tag = "2")]
    page_token: Vec<u8>,
}

#[tokio::test]
async fn undecodable_and_oversized_requests_get_codes_that_blame_them() {
    let sandbox = Sandbox::start().await;
    let call = |channel: tonic::transport::Channel, page_token: Vec<u8>| async move {
        let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(64 << 20);
        grpc.ready().await.unwrap();
        let codec =
            tonic_prost::ProstCodec::<RawListWorkflows, ListWorkflowsResponseShape>::default();
        grpc.unary(
            tonic::Request::new(RawListWorkflows { page_token }),
            http::uri::PathAndQuery::from_static(
                "/tyboo.executor.v1.WorkflowService/ListWorkflows",
            ),
            codec,
        )
        .await
        .unwrap_err()
    };
    for channel in [
        sandbox.executor_channel().await,
        sandbox.edge_channel().await,
    ] {
        let garbage = call(channel.clone(), vec![0xff, 0xfe, 0xfd]).await;
        assert_eq!(garbage.code(), Code::InvalidArgument, "{garbage:?}");
        let huge = call(channel, vec![b'a'; 5 << 20]).await;
        assert_eq!(huge.code(), Code::ResourceExhausted, "{huge:?}");
        assert!(huge.message().contains("max_message_bytes"), "{huge:?}");
    }
    sandbox.stop().await;
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListWorkflowsResponseShape {}
