//! The handlers on SQLite: authentication, validation messages and codes as
//! a client sees them, without a network in between.

use tonic::{Code, Request, Status};
use tyboo_proto::tenancy::auth_service_server::AuthService;
use tyboo_proto::tenancy::tenancy_service_server::TenancyService;
use tyboo_proto::tenancy::*;

use super::harness::{SERVICE_SECRET, bootstrap, on_sqlite};
use crate::{AuthGrpc, Tenancy, TenancyGrpc};

fn with_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn services(tenancy: &Tenancy) -> (TenancyGrpc, AuthGrpc) {
    (
        TenancyGrpc::new(tenancy.domain().clone()),
        AuthGrpc::new(tenancy.domain().clone()),
    )
}

async fn token_for(auth: &AuthGrpc, api_key: &str) -> String {
    let response = auth
        .authenticate(Request::new(AuthenticateRequest {
            api_key: api_key.to_owned(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(response.expire_time.is_some());
    assert_eq!(response.principal.unwrap().role, 4, "owner");
    response.token
}

fn assert_status<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, message: &str) {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status.message(), message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_authenticate_validate_and_scope() {
    on_sqlite(|tenancy: Tenancy| async move {
        let fixture = bootstrap(&tenancy).await;
        let (service, auth) = services(&tenancy);
        let token = token_for(&auth, &fixture.owner_key).await;
        let workspace_id = fixture.workspace();

        let members = service
            .list_members(with_bearer(
                ListMembersRequest {
                    workspace_id: workspace_id.clone(),
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
            .members;
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].email, "owner@acme.test");

        let me = service
            .get_current_principal(with_bearer(GetCurrentPrincipalRequest {}, &token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(me.email, "owner@acme.test");
        assert_eq!(me.principal.unwrap().workspace_id, workspace_id);

        // Credentials.
        let unauthenticated = service
            .list_members(Request::new(ListMembersRequest {
                workspace_id: workspace_id.clone(),
            }))
            .await;
        assert_eq!(unauthenticated.unwrap_err().code(), Code::Unauthenticated);
        let raw_key = service
            .list_members(with_bearer(
                ListMembersRequest {
                    workspace_id: workspace_id.clone(),
                },
                &fixture.owner_key,
            ))
            .await
            .unwrap_err();
        assert_eq!(raw_key.code(), Code::Unauthenticated);
        assert!(raw_key.message().contains("Authenticate"));
        assert_status(
            auth.authenticate(Request::new(AuthenticateRequest {
                api_key: "tyb_wrong".to_owned(),
            }))
            .await,
            Code::Unauthenticated,
            "invalid API key",
        );

        // Validation names the field.
        assert_status(
            service
                .create_invitation(with_bearer(
                    CreateInvitationRequest {
                        workspace_id: workspace_id.clone(),
                        email: "not-an-address".to_owned(),
                        role: 1,
                        ttl_seconds: 0,
                    },
                    &token,
                ))
                .await,
            Code::InvalidArgument,
            "email: must be a valid e-mail address",
        );
        assert_status(
            service
                .create_invitation(with_bearer(
                    CreateInvitationRequest {
                        workspace_id: workspace_id.clone(),
                        email: "ok@acme.test".to_owned(),
                        role: 0,
                        ttl_seconds: 0,
                    },
                    &token,
                ))
                .await,
            Code::InvalidArgument,
            "role: must be set",
        );
        assert_status(
            service
                .create_workspace(with_bearer(
                    CreateWorkspaceRequest {
                        name: "x".repeat(201),
                    },
                    &token,
                ))
                .await,
            Code::InvalidArgument,
            "name: must be 1 to 200 characters",
        );
        let bad_token = service
            .list_audit_events(with_bearer(
                ListAuditEventsRequest {
                    workspace_id: workspace_id.clone(),
                    page_token: "garbage!".to_owned(),
                    ..ListAuditEventsRequest::default()
                },
                &token,
            ))
            .await
            .unwrap_err();
        assert_eq!(bad_token.code(), Code::InvalidArgument);
        assert!(bad_token.message().starts_with("page_token:"));

        // Another workspace, existing or not, is not found.
        for other in [uuid::Uuid::now_v7().to_string(), "not-a-uuid".to_owned()] {
            assert_status(
                service
                    .list_members(with_bearer(
                        ListMembersRequest {
                            workspace_id: other,
                        },
                        &token,
                    ))
                    .await,
                Code::NotFound,
                "workspace not found",
            );
        }

        // The full invitation round trip through the handlers.
        let invitation = service
            .create_invitation(with_bearer(
                CreateInvitationRequest {
                    workspace_id: workspace_id.clone(),
                    email: "new@acme.test".to_owned(),
                    role: 2,
                    ttl_seconds: 600,
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(invitation.invitation.unwrap().state, 1, "pending");
        let accepted = service
            .accept_invitation(Request::new(AcceptInvitationRequest {
                token: invitation.token,
                display_name: "New Person".to_owned(),
            }))
            .await
            .unwrap()
            .into_inner();
        let secret = accepted.api_key.unwrap().secret;
        assert!(secret.starts_with("tyb_"));
        assert_eq!(accepted.member.unwrap().display_name, "New Person");

        let verified = service
            .verify_audit_log(with_bearer(
                VerifyAuditLogRequest {
                    workspace_id: workspace_id.clone(),
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(verified.intact);
        assert_eq!(verified.events_checked, 7);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_service_publishes_keys_and_issues_service_tokens() {
    on_sqlite(|tenancy: Tenancy| async move {
        let (_, auth) = services(&tenancy);
        let keys = auth
            .get_signing_keys(Request::new(GetSigningKeysRequest {}))
            .await
            .unwrap()
            .into_inner()
            .keys;
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].algorithm, "EdDSA");
        assert_eq!(keys[0].public_key.len(), 32);
        assert!(keys[0].active);

        assert_status(
            auth.issue_service_token(Request::new(IssueServiceTokenRequest {
                service: "Not Valid".to_owned(),
                secret: SERVICE_SECRET.to_owned(),
            }))
            .await,
            Code::InvalidArgument,
            "service: must be 1 to 64 lowercase letters, digits or dashes",
        );
        let service_token = auth
            .issue_service_token(Request::new(IssueServiceTokenRequest {
                service: "executor".to_owned(),
                secret: SERVICE_SECRET.to_owned(),
            }))
            .await
            .unwrap()
            .into_inner()
            .token;
        assert_eq!(
            auth.rotate_signing_key(Request::new(RotateSigningKeyRequest {}))
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
        let rotated = auth
            .rotate_signing_key(with_bearer(RotateSigningKeyRequest {}, &service_token))
            .await
            .unwrap()
            .into_inner()
            .key
            .unwrap();
        assert!(rotated.active);
        let keys = auth
            .get_signing_keys(Request::new(GetSigningKeysRequest {}))
            .await
            .unwrap()
            .into_inner()
            .keys;
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].kid, rotated.kid);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_tokens_are_refused_without_a_configured_secret() {
    let path = std::env::temp_dir().join(format!(
        "tyboo-tenancy-{}.db",
        uuid::Uuid::now_v7().simple()
    ));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let tenancy = Tenancy::connect(&url, crate::TenancyConfig::default())
        .await
        .unwrap();
    tenancy.migrate().await.unwrap();
    let (_, auth) = services(&tenancy);
    let refused = auth
        .issue_service_token(Request::new(IssueServiceTokenRequest {
            service: "executor".to_owned(),
            secret: "anything".to_owned(),
        }))
        .await;
    tenancy.close().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    assert_eq!(refused.unwrap_err().code(), Code::FailedPrecondition);
}
