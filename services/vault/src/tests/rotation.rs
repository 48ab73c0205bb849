//! Master key rotation: add a version and make it active, rewrap, retire the
//! old version — and every credential stays usable throughout.

use tonic::Code;
use tyboo_proto::vault as pb;
use tyboo_proto::vault::credential_service_server::CredentialService;
use tyboo_proto::vault::key_management_service_server::KeyManagementService;

use super::conformance;
use super::harness::{World, failure, master_key, request};
use crate::audit::actions;

conformance!(
    rotation_then_rewrap_then_retirement_keeps_every_credential_usable,
    rows_under_a_retired_version_fail_clearly,
    key_management_needs_a_service_token,
);

async fn status(world: &World) -> pb::GetRotationStatusResponse {
    world
        .key_management()
        .get_rotation_status(request(
            pb::GetRotationStatusRequest {},
            &world.service_token("operator"),
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn rewrap(world: &World, batch_size: i32) -> pb::RewrapCredentialsResponse {
    world
        .key_management()
        .rewrap_credentials(request(
            pb::RewrapCredentialsRequest { batch_size },
            &world.service_token("operator"),
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn rotation_then_rewrap_then_retirement_keeps_every_credential_usable(world: World) {
    let mut ids = Vec::new();
    for index in 0..3 {
        ids.push(
            world
                .create_bearer(&format!("old {index}"), &format!("secret-token {index}"))
                .await,
        );
    }
    let ciphertexts_before: Vec<Vec<u8>> = {
        let mut collected = Vec::new();
        for id in &ids {
            collected.push(world.row(*id).await.ciphertext);
        }
        collected
    };

    // Add version 2 and make it active: new writes use it, old rows still
    // open under version 1.
    let mut rotated = world.config.clone();
    rotated.master_keys.push(master_key(2));
    rotated.active_version = Some(2);
    let world = world.restart(rotated.clone()).await;
    let fresh = world.create_bearer("new", "secret-token new").await;
    assert_eq!(world.row(fresh).await.key_version, 2);
    for (index, id) in ids.iter().enumerate() {
        assert_eq!(
            world.decrypted_token(*id).await.unwrap(),
            format!("secret-token {index}")
        );
    }
    let rotation: Vec<_> = world
        .audit
        .records()
        .into_iter()
        .filter(|record| record.action == actions::MASTER_KEY_ROTATED)
        .collect();
    assert_eq!(rotation.len(), 1);
    assert_eq!(rotation[0].workspace_id, None);
    assert_eq!(rotation[0].details["previous_active_version"], "1");
    assert_eq!(rotation[0].details["active_version"], "2");

    let before = status(&world).await;
    assert_eq!(
        (
            before.total_credentials,
            before.on_active_version,
            before.pending_rewrap
        ),
        (4, 1, 3)
    );
    assert!(!before.complete);
    let keys = world
        .key_management()
        .list_master_keys(request(
            pb::ListMasterKeysRequest {},
            &world.service_token("operator"),
        ))
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<(u32, bool, i64)> = keys
        .keys
        .iter()
        .map(|key| (key.version, key.active, key.credential_count))
        .collect();
    assert_eq!(counts, [(1, false, 3), (2, true, 1)]);

    // Rewrap in batches: the sealed fields are not touched.
    let first = rewrap(&world, 2).await;
    assert_eq!((first.rewrapped, first.remaining, first.failed), (2, 1, 0));
    let second = rewrap(&world, 2).await;
    assert_eq!(
        (second.rewrapped, second.remaining, second.failed),
        (1, 0, 0)
    );
    let idle = rewrap(&world, 2).await;
    assert_eq!((idle.rewrapped, idle.remaining), (0, 0));
    for (id, ciphertext) in ids.iter().zip(&ciphertexts_before) {
        let row = world.row(*id).await;
        assert_eq!(row.key_version, 2);
        assert_eq!(&row.ciphertext, ciphertext);
    }
    let rewrapped = world
        .audit
        .records()
        .into_iter()
        .filter(|record| record.action == actions::CREDENTIAL_REWRAPPED)
        .count();
    assert_eq!(rewrapped, 3);

    // Retire version 1, and even drop its key: everything still opens.
    let mut retired = rotated;
    retired.min_decrypt_version = 2;
    retired.master_keys.retain(|key| key.version == 2);
    let world = world.restart(retired).await;
    for (index, id) in ids.iter().enumerate() {
        assert_eq!(
            world.decrypted_token(*id).await.unwrap(),
            format!("secret-token {index}")
        );
    }
    assert_eq!(
        world.decrypted_token(fresh).await.unwrap(),
        "secret-token new"
    );
    let after = status(&world).await;
    assert!(after.complete, "{after:?}");
    assert_eq!(after.undecryptable, 0);
    assert_eq!(after.min_decrypt_version, 2);
}

async fn rows_under_a_retired_version_fail_clearly(world: World) {
    let straggler = world.create_bearer("straggler", "old-token").await;
    let mut retired = world.config.clone();
    retired.master_keys.push(master_key(2));
    retired.active_version = Some(2);
    retired.min_decrypt_version = 2;
    let world = world.restart(retired).await;
    let (code, message) = failure(world.decrypt(world.workspace_id, straggler).await);
    assert_eq!(code, Code::FailedPrecondition);
    assert!(
        message.contains("retired master key version 1"),
        "{message}"
    );
    let report = status(&world).await;
    assert_eq!((report.undecryptable, report.pending_rewrap), (1, 0));
    // Rewrap cannot move it (its key is retired), and says so by not
    // counting it as pending.
    assert_eq!(rewrap(&world, 0).await.rewrapped, 0);
    // Replacing the credential seals it under the active key again.
    world
        .credentials()
        .replace_credential(request(
            pb::ReplaceCredentialRequest {
                credential_id: straggler.to_string(),
                fields: Some(super::harness::fields_struct(&[("token", "new-token")])),
                allowed_hosts: None,
                expected_version: None,
            },
            &world.editor(),
        ))
        .await
        .map(|_| ())
        .unwrap();
    assert_eq!(world.decrypted_token(straggler).await.unwrap(), "new-token");
}

async fn key_management_needs_a_service_token(world: World) {
    let refused = world
        .key_management()
        .list_master_keys(request(pb::ListMasterKeysRequest {}, &world.editor()))
        .await;
    assert_eq!(failure(refused).0, Code::PermissionDenied);
    let refused = world
        .key_management()
        .rewrap_credentials(request(
            pb::RewrapCredentialsRequest { batch_size: 1 },
            &world.editor(),
        ))
        .await;
    assert_eq!(failure(refused).0, Code::PermissionDenied);
}
