//! The master keys by version, from configuration or, in embedded mode, from
//! a key file in the data folder. Master keys never reach the database.

use std::collections::BTreeMap;
use std::path::Path;

use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::random_bytes;
use crate::config::{MasterKeyConfig, MasterKeyText, VaultConfig};
use crate::error::{VaultError, VaultResult};

/// The configured master keys, ready to use.
pub struct KeyRing {
    ciphers: BTreeMap<u32, Aes256Gcm>,
    active_version: u32,
    min_decrypt_version: u32,
}

/// What may be said about the key ring: versions, never keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterKeyState {
    pub configured_versions: Vec<u32>,
    pub active_version: u32,
    pub min_decrypt_version: u32,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KeyRing")
            .field("versions", &self.ciphers.keys().collect::<Vec<_>>())
            .field("active_version", &self.active_version)
            .field("min_decrypt_version", &self.min_decrypt_version)
            .finish()
    }
}

impl KeyRing {
    /// Builds the ring from `master_keys`, or from `master_key_file` when no
    /// key is configured, generating that file on first start.
    pub fn from_config(config: &VaultConfig) -> VaultResult<KeyRing> {
        let configured = if config.master_keys.is_empty() {
            let path = config.master_key_file.as_deref().ok_or_else(|| {
                VaultError::Config("master_keys: none configured and no master_key_file".into())
            })?;
            load_or_generate_key_file(path)?
        } else {
            config.master_keys.clone()
        };
        KeyRing::new(
            &configured,
            config.active_version,
            config.min_decrypt_version,
        )
    }

    pub fn new(
        keys: &[MasterKeyConfig],
        active_version: Option<u32>,
        min_decrypt_version: u32,
    ) -> VaultResult<KeyRing> {
        let mut ciphers = BTreeMap::new();
        for (index, key) in keys.iter().enumerate() {
            if key.version == 0 {
                return Err(VaultError::Config(format!(
                    "master_keys[{index}].version: must be positive"
                )));
            }
            let bytes = Zeroizing::new(STANDARD.decode(key.key.expose().trim()).map_err(|_| {
                VaultError::Config(format!("master_keys[{index}].key: is not base64"))
            })?);
            let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
                VaultError::Config(format!(
                    "master_keys[{index}].key: must be 32 bytes, is {}",
                    bytes.len()
                ))
            })?;
            if ciphers.insert(key.version, cipher).is_some() {
                return Err(VaultError::Config(format!(
                    "master_keys[{index}].version: {} appears twice",
                    key.version
                )));
            }
        }
        let highest = *ciphers
            .keys()
            .next_back()
            .ok_or_else(|| VaultError::Config("master_keys: none configured".to_owned()))?;
        let active_version = active_version.unwrap_or(highest);
        if !ciphers.contains_key(&active_version) {
            return Err(VaultError::Config(format!(
                "active_version: {active_version} is not among master_keys"
            )));
        }
        if min_decrypt_version == 0 || min_decrypt_version > active_version {
            return Err(VaultError::Config(format!(
                "min_decrypt_version: must be between 1 and active_version {active_version}"
            )));
        }
        Ok(KeyRing {
            ciphers,
            active_version,
            min_decrypt_version,
        })
    }

    pub fn active_version(&self) -> u32 {
        self.active_version
    }

    pub fn min_decrypt_version(&self) -> u32 {
        self.min_decrypt_version
    }

    pub fn state(&self) -> MasterKeyState {
        MasterKeyState {
            configured_versions: self.ciphers.keys().copied().collect(),
            active_version: self.active_version,
            min_decrypt_version: self.min_decrypt_version,
        }
    }

    /// Whether a row wrapped under `version` can still be opened.
    pub fn can_decrypt(&self, version: u32) -> bool {
        version >= self.min_decrypt_version && self.ciphers.contains_key(&version)
    }

    /// Fails, saying why, unless a row wrapped under `version` can be opened.
    pub fn ensure_decryptable(&self, version: u32) -> VaultResult<()> {
        self.decryption_cipher(version).map(|_| ())
    }

    /// The cipher of `version`, for wrapping.
    pub(super) fn cipher(&self, version: u32) -> VaultResult<&Aes256Gcm> {
        self.ciphers.get(&version).ok_or_else(|| {
            VaultError::FailedPrecondition(format!(
                "master key version {version} is not configured"
            ))
        })
    }

    /// The cipher of `version`, for unwrapping: a retired version fails with
    /// a message that says what to do.
    pub(super) fn decryption_cipher(&self, version: u32) -> VaultResult<&Aes256Gcm> {
        if version < self.min_decrypt_version {
            return Err(VaultError::FailedPrecondition(format!(
                "credential is sealed under retired master key version {version} \
                 (min_decrypt_version is {}); replace the credential",
                self.min_decrypt_version
            )));
        }
        self.cipher(version)
    }
}

/// Reads the embedded-mode key file, or creates it with one fresh key.
fn load_or_generate_key_file(path: &Path) -> VaultResult<Vec<MasterKeyConfig>> {
    match std::fs::read(path) {
        Ok(contents) => {
            let contents = Zeroizing::new(contents);
            refuse_shared_file(path)?;
            serde_json::from_slice(&contents).map_err(|error| {
                VaultError::Config(format!(
                    "master_key_file: {} does not parse: {error}",
                    path.display()
                ))
            })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => generate_key_file(path),
        Err(error) => Err(VaultError::Config(format!(
            "master_key_file: cannot read {}: {error}",
            path.display()
        ))),
    }
}

fn generate_key_file(path: &Path) -> VaultResult<Vec<MasterKeyConfig>> {
    let key = random_bytes::<32>()?;
    let keys = vec![MasterKeyConfig {
        version: 1,
        key: MasterKeyText::new(STANDARD.encode(key.as_slice())),
    }];
    let contents = Zeroizing::new(
        serde_json::to_vec(&[serde_json::json!({
            "version": 1,
            "key": keys[0].key.expose(),
        })])
        .map_err(|error| VaultError::Internal(format!("encoding the key file: {error}")))?,
    );
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|error| {
            VaultError::Config(format!(
                "master_key_file: cannot create {}: {error}",
                parent.display()
            ))
        })?;
    }
    write_private_file(path, &contents)?;
    tracing::warn!(
        path = %path.display(),
        "no master key configured: generated master key version 1 and stored it in this file \
         (mode 0600); back it up, since losing it loses every credential"
    );
    Ok(keys)
}

/// Creates the file readable by its owner only; never overwrites one, so two
/// processes starting at once cannot replace each other's key.
fn write_private_file(path: &Path, contents: &[u8]) -> VaultResult<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|error| {
        VaultError::Config(format!(
            "master_key_file: cannot create {}: {error}",
            path.display()
        ))
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|error| {
            VaultError::Config(format!(
                "master_key_file: cannot write {}: {error}",
                path.display()
            ))
        })
}

/// A key file others can read is a leaked key; refuse to use it rather than
/// carry on quietly.
fn refuse_shared_file(path: &Path) -> VaultResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|error| {
                VaultError::Config(format!("master_key_file: {}: {error}", path.display()))
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(VaultError::Config(format!(
                "master_key_file: {} is accessible to other users (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A random key of `version`.
    pub(crate) fn master_key(version: u32) -> MasterKeyConfig {
        MasterKeyConfig {
            version,
            key: MasterKeyText::new(STANDARD.encode(*random_bytes::<32>().unwrap())),
        }
    }

    /// A ring with random keys of `versions`.
    pub(crate) fn ring(versions: &[u32], active: u32, min: u32) -> KeyRing {
        let keys: Vec<MasterKeyConfig> = versions.iter().copied().map(master_key).collect();
        KeyRing::new(&keys, Some(active), min).unwrap()
    }

    #[test]
    fn bad_key_settings_name_their_key() {
        let short = [MasterKeyConfig {
            version: 1,
            key: MasterKeyText::new(STANDARD.encode([7u8; 16])),
        }];
        let error = KeyRing::new(&short, None, 1).unwrap_err().to_string();
        assert!(
            error.contains("master_keys[0].key: must be 32 bytes"),
            "{error}"
        );
        let good = [MasterKeyConfig {
            version: 1,
            key: MasterKeyText::new(STANDARD.encode([7u8; 32])),
        }];
        let error = KeyRing::new(&good, Some(2), 1).unwrap_err().to_string();
        assert!(error.contains("active_version"), "{error}");
        let error = KeyRing::new(&good, None, 2).unwrap_err().to_string();
        assert!(error.contains("min_decrypt_version"), "{error}");
    }

    #[test]
    fn the_key_file_is_generated_private_and_read_back() {
        let path = std::env::temp_dir()
            .join(format!("tyboo-vault-{}", uuid::Uuid::now_v7().simple()))
            .join("vault-master.key");
        let config = VaultConfig {
            master_key_file: Some(path.clone()),
            ..VaultConfig::default()
        };
        let first = KeyRing::from_config(&config).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = KeyRing::from_config(&config).unwrap();
        let binding = crate::crypto::Binding {
            workspace_id: uuid::Uuid::now_v7(),
            credential_id: uuid::Uuid::now_v7(),
            version: 1,
        };
        let sealed = crate::crypto::seal(&first, binding, b"kept").unwrap();
        assert_eq!(
            crate::crypto::open(&second, binding, &sealed)
                .unwrap()
                .as_slice(),
            b"kept"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = KeyRing::from_config(&config).unwrap_err().to_string();
            assert!(error.contains("chmod 600"), "{error}");
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
