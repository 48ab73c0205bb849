//! Every sensitive action is audited before it takes effect, and does not
//! take effect when the audit record cannot be written.

use tonic::Code;
use tyboo_proto::vault as pb;
use tyboo_proto::vault::credential_service_server::CredentialService;
use tyboo_proto::vault::key_management_service_server::KeyManagementService;

use super::conformance;
use super::harness::{World, failure, fields_struct, master_key, request};
use crate::audit::actions;

conformance!(
    writes_are_audited_with_who_what_and_which_version,
    a_failed_audit_write_fails_the_action_and_changes_nothing,
);

async fn writes_are_audited_with_who_what_and_which_version(world: World) {
    let id = world.create_bearer("audited", "first-token").await;
    world
        .credentials()
        .replace_credential(request(
            pb::ReplaceCredentialRequest {
                credential_id: id.to_string(),
                fields: Some(fields_struct(&[("token", "second-token")])),
                allowed_hosts: None,
                expected_version: None,
            },
            &world.editor(),
        ))
        .await
        .unwrap();
    world
        .credentials()
        .delete_credential(request(
            pb::DeleteCredentialRequest {
                credential_id: id.to_string(),
            },
            &world.editor(),
        ))
        .await
        .unwrap();
    let records = world.audit.records();
    let seen: Vec<(&str, &str)> = records
        .iter()
        .map(|record| (record.action.as_str(), record.details["version"].as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (actions::CREDENTIAL_CREATED, "1"),
            (actions::CREDENTIAL_REPLACED, "2"),
            (actions::CREDENTIAL_DELETED, "2"),
        ]
    );
    for record in &records {
        assert_eq!(record.workspace_id, Some(world.workspace_id));
        assert_eq!(record.target, format!("credential:{id}"));
        assert!(record.actor.starts_with("user:"));
        assert_eq!(record.details["name"], "audited");
        let text = format!("{record:?}");
        assert!(
            !text.contains("first") && !text.contains("second"),
            "{text}"
        );
    }
}

async fn a_failed_audit_write_fails_the_action_and_changes_nothing(world: World) {
    let id = world.create_bearer("kept", "original").await;
    let api = world.credentials();
    let editor = world.editor();
    let before = world.row(id).await;
    world.audit.set_failing(true);

    let created = api
        .create_credential(request(
            pb::CreateCredentialRequest {
                name: "never".to_owned(),
                r#type: "bearer_token".to_owned(),
                fields: Some(fields_struct(&[("token", "token-one")])),
                allowed_hosts: Vec::new(),
            },
            &editor,
        ))
        .await;
    let replaced = api
        .replace_credential(request(
            pb::ReplaceCredentialRequest {
                credential_id: id.to_string(),
                fields: Some(fields_struct(&[("token", "changed-token")])),
                allowed_hosts: None,
                expected_version: None,
            },
            &editor,
        ))
        .await;
    let deleted = api
        .delete_credential(request(
            pb::DeleteCredentialRequest {
                credential_id: id.to_string(),
            },
            &editor,
        ))
        .await;
    let decrypted = world.decrypt(world.workspace_id, id).await;
    for outcome in [
        failure(created),
        failure(replaced),
        failure(deleted),
        failure(decrypted),
    ] {
        assert_eq!(outcome.0, Code::Unavailable, "{outcome:?}");
    }

    world.audit.set_failing(false);
    assert_eq!(world.row(id).await, before, "the row is unchanged");
    let listed = api
        .list_credentials(request(
            pb::ListCredentialsRequest {
                page_size: 10,
                page_token: String::new(),
                r#type: String::new(),
            },
            &editor,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.credentials.len(), 1, "the failed create left no row");
    assert_eq!(world.decrypted_token(id).await.unwrap(), "original");

    // Rotation and rewrap: a new active key is neither recorded nor used
    // while the audit log is down.
    let mut rotated = world.config.clone();
    rotated.master_keys.push(master_key(2));
    rotated.active_version = Some(2);
    let restarted = world.restart(rotated).await;
    world.audit.set_failing(true);
    let rewrap = restarted
        .key_management()
        .rewrap_credentials(request(
            pb::RewrapCredentialsRequest { batch_size: 0 },
            &world.service_token("operator"),
        ))
        .await;
    assert_eq!(failure(rewrap).0, Code::Unavailable);
    assert_eq!(world.row(id).await.key_version, 1);
    world.audit.set_failing(false);
    let outcome = restarted
        .key_management()
        .rewrap_credentials(request(
            pb::RewrapCredentialsRequest { batch_size: 0 },
            &world.service_token("operator"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome.rewrapped, 1);
    let actions: Vec<String> = world
        .audit
        .records()
        .into_iter()
        .map(|record| record.action)
        .collect();
    assert!(actions.contains(&actions::MASTER_KEY_ROTATED.to_owned()));
    assert!(actions.contains(&actions::CREDENTIAL_REWRAPPED.to_owned()));
}
