//! Sealing, opening and rewrapping one credential version.
//!
//! Associated data is fixed-width binary (ids as 16 bytes, numbers
//! big-endian) behind a purpose label, so no two different bindings can
//! encode to the same bytes, and a data key can never be mistaken for fields
//! or the other way round.

use aes_gcm::aead::{Aead, AeadInOut, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::keyring::KeyRing;
use super::random_bytes;
use crate::error::{VaultError, VaultResult};

const NONCE_BYTES: usize = 12;
const KEY_BYTES: usize = 32;
const TAG_BYTES: usize = 16;
const FIELDS_LABEL: &[u8] = b"tyboo.vault.v1/fields";
const DATA_KEY_LABEL: &[u8] = b"tyboo.vault.v1/data-key";

/// What a sealed row is bound to. Opening it under any other binding fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub workspace_id: Uuid,
    pub credential_id: Uuid,
    /// The credential version; every replace seals under a new one.
    pub version: i64,
}

/// A sealed credential version as stored. Holds no secret in the clear.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub data_nonce: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    pub key_nonce: Vec<u8>,
    pub key_version: u32,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Sealed")
            .field("ciphertext_bytes", &self.ciphertext.len())
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

impl Binding {
    fn fields_aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(FIELDS_LABEL.len() + 40);
        aad.extend_from_slice(FIELDS_LABEL);
        aad.extend_from_slice(self.workspace_id.as_bytes());
        aad.extend_from_slice(self.credential_id.as_bytes());
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad
    }

    fn data_key_aad(&self, key_version: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(DATA_KEY_LABEL.len() + 44);
        aad.extend_from_slice(DATA_KEY_LABEL);
        aad.extend_from_slice(&key_version.to_be_bytes());
        aad.extend_from_slice(self.workspace_id.as_bytes());
        aad.extend_from_slice(self.credential_id.as_bytes());
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad
    }
}

/// Seals `plaintext` under a fresh data key wrapped by the active master key.
pub fn seal(keys: &KeyRing, binding: Binding, plaintext: &[u8]) -> VaultResult<Sealed> {
    let data_key = random_bytes::<KEY_BYTES>()?;
    let data_nonce = random_bytes::<NONCE_BYTES>()?;
    let data_cipher = Aes256Gcm::new_from_slice(data_key.as_slice())
        .map_err(|_| VaultError::Internal("data key has the wrong length".to_owned()))?;
    // Room for the tag up front: growing the buffer would leave a copy of the
    // plaintext behind in freed memory.
    let mut buffer = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_BYTES));
    buffer.extend_from_slice(plaintext);
    data_cipher
        .encrypt_in_place(&(*data_nonce).into(), &binding.fields_aad(), &mut *buffer)
        .map_err(|_| VaultError::Internal("sealing fields failed".to_owned()))?;
    let ciphertext = std::mem::take(&mut *buffer);

    let key_version = keys.active_version();
    let (wrapped_key, key_nonce) = wrap_data_key(keys, binding, key_version, &data_key)?;
    Ok(Sealed {
        ciphertext,
        data_nonce: data_nonce.to_vec(),
        wrapped_key,
        key_nonce,
        key_version,
    })
}

/// The plaintext of a sealed row, in a buffer wiped when dropped.
pub fn open(keys: &KeyRing, binding: Binding, sealed: &Sealed) -> VaultResult<Zeroizing<Vec<u8>>> {
    let data_key = unwrap_data_key(keys, binding, sealed)?;
    let data_nonce = nonce_of(&sealed.data_nonce, "data nonce")?;
    let data_cipher = Aes256Gcm::new_from_slice(data_key.as_slice())
        .map_err(|_| VaultError::Internal("data key has the wrong length".to_owned()))?;
    let mut buffer = Zeroizing::new(sealed.ciphertext.clone());
    data_cipher
        .decrypt_in_place(&data_nonce.into(), &binding.fields_aad(), &mut *buffer)
        .map_err(|_| {
            VaultError::Sealed(format!(
                "fields of credential {} version {}",
                binding.credential_id, binding.version
            ))
        })?;
    Ok(buffer)
}

/// The same row with its data key wrapped under the active master key. The
/// fields ciphertext is not touched and the plaintext is never formed.
pub fn rewrap(keys: &KeyRing, binding: Binding, sealed: &Sealed) -> VaultResult<Sealed> {
    let data_key = unwrap_data_key(keys, binding, sealed)?;
    let key_version = keys.active_version();
    let (wrapped_key, key_nonce) = wrap_data_key(keys, binding, key_version, &data_key)?;
    Ok(Sealed {
        ciphertext: sealed.ciphertext.clone(),
        data_nonce: sealed.data_nonce.clone(),
        wrapped_key,
        key_nonce,
        key_version,
    })
}

fn wrap_data_key(
    keys: &KeyRing,
    binding: Binding,
    key_version: u32,
    data_key: &[u8; KEY_BYTES],
) -> VaultResult<(Vec<u8>, Vec<u8>)> {
    let master = keys.cipher(key_version)?;
    let key_nonce = random_bytes::<NONCE_BYTES>()?;
    let aad = binding.data_key_aad(key_version);
    let wrapped = master
        .encrypt(
            &(*key_nonce).into(),
            Payload {
                msg: data_key,
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::Internal("wrapping a data key failed".to_owned()))?;
    Ok((wrapped, key_nonce.to_vec()))
}

fn unwrap_data_key(
    keys: &KeyRing,
    binding: Binding,
    sealed: &Sealed,
) -> VaultResult<Zeroizing<[u8; KEY_BYTES]>> {
    let master = keys.decryption_cipher(sealed.key_version)?;
    let key_nonce = nonce_of(&sealed.key_nonce, "key nonce")?;
    let mut buffer = Zeroizing::new(sealed.wrapped_key.clone());
    master
        .decrypt_in_place(
            &key_nonce.into(),
            &binding.data_key_aad(sealed.key_version),
            &mut *buffer,
        )
        .map_err(|_| {
            VaultError::Sealed(format!(
                "data key of credential {} version {}",
                binding.credential_id, binding.version
            ))
        })?;
    let mut data_key = Zeroizing::new([0u8; KEY_BYTES]);
    if buffer.len() != KEY_BYTES {
        return Err(VaultError::Sealed(format!(
            "data key of credential {} has the wrong length",
            binding.credential_id
        )));
    }
    data_key.copy_from_slice(&buffer);
    Ok(data_key)
}

fn nonce_of(bytes: &[u8], what: &str) -> VaultResult<[u8; NONCE_BYTES]> {
    bytes
        .try_into()
        .map_err(|_| VaultError::Sealed(format!("{what} has the wrong length")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keyring::tests::{master_key, ring};

    fn binding() -> Binding {
        Binding {
            workspace_id: Uuid::now_v7(),
            credential_id: Uuid::now_v7(),
            version: 1,
        }
    }

    #[test]
    fn sealing_round_trips_and_hides_the_plaintext() {
        let keys = ring(&[1], 1, 1);
        let binding = binding();
        let sealed = seal(&keys, binding, b"{\"token\":\"canary\"}").unwrap();
        assert!(
            !sealed
                .ciphertext
                .windows(6)
                .any(|window| window == b"canary")
        );
        assert_eq!(
            open(&keys, binding, &sealed).unwrap().as_slice(),
            b"{\"token\":\"canary\"}"
        );
        let again = seal(&keys, binding, b"{\"token\":\"canary\"}").unwrap();
        assert_ne!(again.ciphertext, sealed.ciphertext, "fresh key and nonce");
        assert_ne!(again.wrapped_key, sealed.wrapped_key);
    }

    #[test]
    fn another_binding_does_not_open() {
        let keys = ring(&[1], 1, 1);
        let binding = binding();
        let sealed = seal(&keys, binding, b"secret").unwrap();
        for other in [
            Binding {
                workspace_id: Uuid::now_v7(),
                ..binding
            },
            Binding {
                credential_id: Uuid::now_v7(),
                ..binding
            },
            Binding {
                version: 2,
                ..binding
            },
        ] {
            let error = open(&keys, other, &sealed).unwrap_err();
            assert!(matches!(error, VaultError::Sealed(_)), "{error:?}");
        }
    }

    #[test]
    fn rewrap_keeps_the_ciphertext_and_a_claimed_version_must_match() {
        let keys = [master_key(1), master_key(2)];
        let old = KeyRing::new(&keys, Some(1), 1).unwrap();
        let new = KeyRing::new(&keys, Some(2), 1).unwrap();
        let binding = binding();
        let sealed = seal(&old, binding, b"secret").unwrap();
        let moved = rewrap(&new, binding, &sealed).unwrap();
        assert_eq!(moved.ciphertext, sealed.ciphertext);
        assert_eq!(moved.key_version, 2);
        assert_eq!(open(&new, binding, &moved).unwrap().as_slice(), b"secret");
        // Relabelling a row's key version does not let another key open it.
        let relabelled = Sealed {
            key_version: 2,
            ..sealed
        };
        assert!(matches!(
            open(&new, binding, &relabelled).unwrap_err(),
            VaultError::Sealed(_)
        ));
    }
}
