//! Tenant isolation and sandboxed use: another workspace's credential, and
//! any caller that may not use plaintext, get exactly what a missing
//! credential gets.

use tonic::Code;
use tyboo_auth::Role;
use tyboo_proto::vault as pb;
use tyboo_proto::vault::credential_access_service_server::CredentialAccessService;
use tyboo_proto::vault::credential_service_server::CredentialService;
use uuid::Uuid;

use super::conformance;
use super::harness::{World, failure, fields_struct, request};

conformance!(
    another_workspaces_credential_answers_exactly_as_a_missing_one,
    only_allowed_services_decrypt_and_others_see_not_found,
    check_credentials_reports_only_the_workspaces_own,
);

/// Every public RPC that names a credential, called with `credential_id`.
async fn answers_for(world: &World, token: &str, credential_id: &str) -> Vec<(Code, String)> {
    let api = world.credentials();
    vec![
        failure(
            api.get_credential(request(
                pb::GetCredentialRequest {
                    credential_id: credential_id.to_owned(),
                },
                token,
            ))
            .await,
        ),
        failure(
            api.replace_credential(request(
                pb::ReplaceCredentialRequest {
                    credential_id: credential_id.to_owned(),
                    fields: Some(fields_struct(&[("token", "stolen-token")])),
                    allowed_hosts: None,
                    expected_version: None,
                },
                token,
            ))
            .await,
        ),
        failure(
            api.replace_credential(request(
                pb::ReplaceCredentialRequest {
                    credential_id: credential_id.to_owned(),
                    fields: Some(fields_struct(&[("token", "stolen-token")])),
                    allowed_hosts: Some(pb::AllowedHosts {
                        hosts: vec!["evil.example".to_owned()],
                    }),
                    expected_version: Some(1),
                },
                token,
            ))
            .await,
        ),
        failure(
            api.delete_credential(request(
                pb::DeleteCredentialRequest {
                    credential_id: credential_id.to_owned(),
                },
                token,
            ))
            .await,
        ),
    ]
}

async fn another_workspaces_credential_answers_exactly_as_a_missing_one(world: World) {
    let theirs = world.create_bearer("theirs", "their-secret").await;
    let intruder = world.user_token_in(Uuid::now_v7(), Role::Owner);

    let foreign = answers_for(&world, &intruder, &theirs.to_string()).await;
    let missing = answers_for(&world, &intruder, &Uuid::now_v7().to_string()).await;
    let malformed = answers_for(&world, &intruder, "not-an-id").await;
    assert_eq!(foreign, missing);
    assert_eq!(foreign, malformed);
    assert!(
        foreign
            .iter()
            .all(|answer| *answer == (Code::NotFound, "credential not found".to_owned())),
        "{foreign:?}"
    );

    // The intruder's list shows nothing of the other workspace.
    let listed = world
        .credentials()
        .list_credentials(request(
            pb::ListCredentialsRequest {
                page_size: 50,
                page_token: String::new(),
                r#type: String::new(),
            },
            &intruder,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.credentials.is_empty());

    // The owner's credential is untouched by every attempt.
    assert_eq!(world.decrypted_token(theirs).await.unwrap(), "their-secret");
    assert_eq!(world.row(theirs).await.version, 1);

    // A service asking in the wrong workspace gets the same answer too.
    let wrong_workspace = world.decrypt(Uuid::now_v7(), theirs).await;
    let nowhere = world.decrypt(world.workspace_id, Uuid::now_v7()).await;
    assert_eq!(failure(wrong_workspace), failure(nowhere));
}

async fn only_allowed_services_decrypt_and_others_see_not_found(world: World) {
    let id = world.create_bearer("api", "s3cret-token").await;
    let decrypt_as = |token: String, credential_id: String| {
        let access = world.access();
        let workspace_id = world.workspace_id.to_string();
        async move {
            access
                .decrypt_credential(request(
                    pb::DecryptCredentialRequest {
                        workspace_id,
                        credential_id,
                        execution_id: "exec-1".to_owned(),
                        node_id: "node-1".to_owned(),
                    },
                    &token,
                ))
                .await
        }
    };
    let missing =
        failure(decrypt_as(world.service_token("executor"), Uuid::now_v7().to_string()).await);
    assert_eq!(missing, (Code::NotFound, "credential not found".to_owned()));
    for token in [
        world.user_token_in(world.workspace_id, Role::Owner),
        world.user_token_in(world.workspace_id, Role::Editor),
        world.service_token("template"),
    ] {
        let refused = failure(decrypt_as(token, id.to_string()).await);
        assert_eq!(refused, missing);
    }
    let decrypted = decrypt_as(world.service_token("executor"), id.to_string())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        super::harness::string_field(&decrypted.fields.unwrap(), "token"),
        "s3cret-token"
    );
    assert_eq!(decrypted.allowed_hosts, ["api.example.com"]);

    // Each decryption is audited with its execution and node; refusals
    // decrypted nothing and are not.
    let decryptions: Vec<_> = world
        .audit
        .records()
        .into_iter()
        .filter(|record| record.action == crate::audit::actions::CREDENTIAL_DECRYPTED)
        .collect();
    assert_eq!(decryptions.len(), 1);
    assert_eq!(decryptions[0].actor, "service:executor");
    assert_eq!(decryptions[0].workspace_id, Some(world.workspace_id));
    assert_eq!(decryptions[0].target, format!("credential:{id}"));
    assert_eq!(decryptions[0].details["execution_id"], "exec-1");
    assert_eq!(decryptions[0].details["node_id"], "node-1");

    // A service must say which execution and node use the plaintext.
    let anonymous = world
        .access()
        .decrypt_credential(request(
            pb::DecryptCredentialRequest {
                workspace_id: world.workspace_id.to_string(),
                credential_id: id.to_string(),
                execution_id: String::new(),
                node_id: "node-1".to_owned(),
            },
            &world.service_token("executor"),
        ))
        .await;
    assert_eq!(
        failure(anonymous),
        (
            Code::InvalidArgument,
            "execution_id: must be set".to_owned()
        )
    );
}

async fn check_credentials_reports_only_the_workspaces_own(world: World) {
    let ours = world.create_bearer("ours", "ours-token").await;
    let other_world = World {
        workspace_id: Uuid::now_v7(),
        ..world.clone()
    };
    let theirs = other_world.create_bearer("theirs", "theirs-token").await;
    let ask = |token: String| {
        let access = world.access();
        let ids = vec![
            ours.to_string(),
            theirs.to_string(),
            Uuid::now_v7().to_string(),
            "garbage".to_owned(),
        ];
        let workspace_id = world.workspace_id.to_string();
        async move {
            access
                .check_credentials(request(
                    pb::CheckCredentialsRequest {
                        workspace_id,
                        credential_ids: ids,
                    },
                    &token,
                ))
                .await
                .unwrap()
                .into_inner()
                .credentials
        }
    };
    let found = ask(world.service_token("executor")).await;
    assert_eq!(
        found,
        [pb::ExistingCredential {
            credential_id: ours.to_string(),
            r#type: "bearer_token".to_owned(),
            // The hosts the credential was created with: workers check them
            // before they ask for the secret.
            allowed_hosts: vec!["api.example.com".to_owned()],
        }]
    );
    assert!(ask(world.editor()).await.is_empty());
}
