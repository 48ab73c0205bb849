//! Sealed rows resist tampering: any flipped bit, and any row moved to
//! another workspace, credential or version, fails to decrypt — never
//! decrypts to something else.

use tonic::Code;
use uuid::Uuid;

use super::conformance;
use super::harness::{CANARY, World, failure};
use crate::crypto::{self, Sealed};
use crate::domain::credentials::{binding_of, sealed_of};
use crate::error::VaultError;
use crate::storage::entities::credential;

conformance!(
    random_bit_flips_never_decrypt,
    rows_moved_to_another_workspace_credential_or_version_do_not_decrypt,
);

/// Random flips checked in memory, through the same `open` the decrypt path
/// uses, per sealed part.
const FLIPS_PER_PART: usize = 1_000;
/// Of those, how many also go through the database and the RPC.
const STORED_FLIPS_PER_PART: usize = 8;

fn random_below(bound: usize) -> usize {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    (u64::from_le_bytes(bytes) % bound as u64) as usize
}

/// A copy of `bytes` with one random bit flipped.
fn flipped(bytes: &[u8]) -> Vec<u8> {
    let mut copy = bytes.to_vec();
    let bit = random_below(bytes.len() * 8);
    copy[bit / 8] ^= 1 << (bit % 8);
    copy
}

#[derive(Clone, Copy, Debug)]
enum Part {
    Ciphertext,
    DataNonce,
    WrappedKey,
    KeyNonce,
}

impl Part {
    const ALL: [Part; 4] = [
        Part::Ciphertext,
        Part::DataNonce,
        Part::WrappedKey,
        Part::KeyNonce,
    ];

    fn bytes(self, sealed: &Sealed) -> &[u8] {
        match self {
            Part::Ciphertext => &sealed.ciphertext,
            Part::DataNonce => &sealed.data_nonce,
            Part::WrappedKey => &sealed.wrapped_key,
            Part::KeyNonce => &sealed.key_nonce,
        }
    }

    fn with(self, sealed: &Sealed, bytes: Vec<u8>) -> Sealed {
        let mut changed = sealed.clone();
        match self {
            Part::Ciphertext => changed.ciphertext = bytes,
            Part::DataNonce => changed.data_nonce = bytes,
            Part::WrappedKey => changed.wrapped_key = bytes,
            Part::KeyNonce => changed.key_nonce = bytes,
        }
        changed
    }

    fn column(self) -> credential::Column {
        match self {
            Part::Ciphertext => credential::Column::Ciphertext,
            Part::DataNonce => credential::Column::DataNonce,
            Part::WrappedKey => credential::Column::WrappedKey,
            Part::KeyNonce => credential::Column::KeyNonce,
        }
    }
}

async fn random_bit_flips_never_decrypt(world: World) {
    let id = world.create_bearer("tamper", CANARY).await;
    let row = world.row(id).await;
    let sealed = sealed_of(&row).unwrap();
    let binding = binding_of(&row);
    let keys = world.vault.domain().keys();
    assert!(crypto::open(keys, binding, &sealed).is_ok());

    for part in Part::ALL {
        for _ in 0..FLIPS_PER_PART {
            let tampered = part.with(&sealed, flipped(part.bytes(&sealed)));
            match crypto::open(keys, binding, &tampered) {
                Err(VaultError::Sealed(_)) => {}
                Ok(plaintext) => panic!(
                    "a flipped bit in {part:?} decrypted to {} bytes",
                    plaintext.len()
                ),
                Err(other) => panic!("a flipped bit in {part:?} failed oddly: {other:?}"),
            }
        }
        for _ in 0..STORED_FLIPS_PER_PART {
            world
                .set_column(id, part.column(), flipped(part.bytes(&sealed)))
                .await;
            let answer = failure(world.decrypt(world.workspace_id, id).await);
            assert_eq!(
                answer,
                (Code::DataLoss, "credential cannot be decrypted".to_owned()),
                "{part:?}"
            );
        }
        world
            .set_column(id, part.column(), part.bytes(&sealed).to_vec())
            .await;
    }
    assert_eq!(world.decrypted_token(id).await.unwrap(), CANARY);
}

async fn rows_moved_to_another_workspace_credential_or_version_do_not_decrypt(world: World) {
    let victim = world.create_bearer("victim", CANARY).await;
    let decoy = world.create_bearer("decoy", "decoy-secret").await;
    let victim_row = world.row(victim).await;
    let cannot_decrypt = (Code::DataLoss, "credential cannot be decrypted".to_owned());

    // The whole row moved into another workspace.
    let elsewhere = Uuid::now_v7();
    world
        .set_column(victim, credential::Column::WorkspaceId, elsewhere)
        .await;
    assert_eq!(
        failure(world.decrypt(elsewhere, victim).await),
        cannot_decrypt
    );
    world
        .set_column(victim, credential::Column::WorkspaceId, world.workspace_id)
        .await;

    // The victim's sealed parts copied onto another credential of the same
    // workspace.
    for (column, value) in [
        (
            credential::Column::Ciphertext,
            victim_row.ciphertext.clone(),
        ),
        (credential::Column::DataNonce, victim_row.data_nonce.clone()),
        (
            credential::Column::WrappedKey,
            victim_row.wrapped_key.clone(),
        ),
        (credential::Column::KeyNonce, victim_row.key_nonce.clone()),
    ] {
        world.set_column(decoy, column, value).await;
    }
    assert_eq!(
        failure(world.decrypt(world.workspace_id, decoy).await),
        cannot_decrypt
    );

    // A sealed row relabelled as another version of the same credential.
    world
        .set_column(victim, credential::Column::Version, 2i64)
        .await;
    assert_eq!(
        failure(world.decrypt(world.workspace_id, victim).await),
        cannot_decrypt
    );
    world
        .set_column(victim, credential::Column::Version, 1i64)
        .await;
    assert_eq!(world.decrypted_token(victim).await.unwrap(), CANARY);
}
