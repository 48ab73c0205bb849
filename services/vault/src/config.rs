//! The vault's settings. Every limit has a default here and a key of the
//! same name in the `vault` section of the configuration.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultConfig {
    /// Largest credential, as the JSON of its fields, in bytes.
    pub max_fields_bytes: usize,
    /// Longest credential name, in characters.
    pub max_name_length: usize,
    /// Most entries in a credential's `allowed_hosts`.
    pub max_allowed_hosts: usize,
    /// Shortest value a secret field may have, in characters. Workers
    /// redact every secret from what nodes return; a shorter one would
    /// redact ordinary words along with it.
    pub min_secret_chars: usize,
    pub page_size_default: u32,
    pub page_size_max: u32,
    /// Most ids one `CheckCredentials` call may ask about.
    pub max_check_ids: usize,
    /// Rows one `RewrapCredentials` call moves when it asks for no number,
    /// and the most it may ask for.
    pub rewrap_batch_default: u32,
    pub rewrap_batch_max: u32,
    pub database_max_connections: u32,
    /// Service names whose tokens may decrypt credentials; empty lets any
    /// service token through.
    pub decrypt_services: Vec<String>,
    /// Master keys by version, from a Kubernetes Secret in a cluster. Never
    /// stored in the database.
    pub master_keys: Vec<MasterKeyConfig>,
    /// The version new writes use; unset means the highest configured one.
    pub active_version: Option<u32>,
    /// Credentials wrapped under an older version no longer decrypt.
    pub min_decrypt_version: u32,
    /// Where a master key is kept when `master_keys` is empty (embedded
    /// mode): read if present, generated (mode 0600) if not. Unset with no
    /// `master_keys` is a configuration error.
    pub master_key_file: Option<PathBuf>,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            max_fields_bytes: 16 * 1024,
            max_name_length: 200,
            max_allowed_hosts: 32,
            min_secret_chars: 8,
            page_size_default: 50,
            page_size_max: 500,
            max_check_ids: 500,
            rewrap_batch_default: 100,
            rewrap_batch_max: 1_000,
            database_max_connections: 10,
            decrypt_services: vec!["executor".to_owned()],
            master_keys: Vec::new(),
            active_version: None,
            min_decrypt_version: 1,
            master_key_file: None,
        }
    }
}

/// One master key version.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterKeyConfig {
    pub version: u32,
    /// 32 bytes, standard base64.
    pub key: MasterKeyText,
}

/// A master key as configured. Its `Debug` and serialized forms never show
/// the key, so `--dump-config` and logged configs stay safe to share.
#[derive(Clone)]
pub struct MasterKeyText(Zeroizing<String>);

impl MasterKeyText {
    pub fn new(text: impl Into<String>) -> Self {
        MasterKeyText(Zeroizing::new(text.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for MasterKeyText {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl Serialize for MasterKeyText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for MasterKeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(MasterKeyText::new)
    }
}

impl VaultConfig {
    /// Rejects settings the service cannot run with; the message names the
    /// key. Master key material is checked when the key ring is built.
    pub fn validate(&self) -> Result<(), String> {
        // Every problem, not only the first: an operator fixes them in one go.
        let mut problems: Vec<String> = Vec::new();
        let positive: [(&str, u64); 10] = [
            ("max_fields_bytes", self.max_fields_bytes as u64),
            ("min_secret_chars", self.min_secret_chars as u64),
            ("max_name_length", self.max_name_length as u64),
            ("page_size_default", u64::from(self.page_size_default)),
            ("page_size_max", u64::from(self.page_size_max)),
            ("max_check_ids", self.max_check_ids as u64),
            ("rewrap_batch_default", u64::from(self.rewrap_batch_default)),
            ("rewrap_batch_max", u64::from(self.rewrap_batch_max)),
            (
                "database_max_connections",
                u64::from(self.database_max_connections),
            ),
            ("min_decrypt_version", u64::from(self.min_decrypt_version)),
        ];
        for (key, value) in positive {
            if value == 0 {
                problems.push(format!("{key}: must be positive"));
            }
        }
        if self.page_size_default > self.page_size_max {
            problems.push("page_size_default: must not exceed page_size_max".to_owned());
        }
        // The contract caps names at 200 characters and allowed hosts at 32
        // entries (credential.proto); a setting can only lower that.
        if self.max_name_length > 200 {
            problems.push("max_name_length: must be at most 200".to_owned());
        }
        if self.max_allowed_hosts > 32 {
            problems.push("max_allowed_hosts: must be at most 32".to_owned());
        }
        if self.rewrap_batch_default > self.rewrap_batch_max {
            problems.push("rewrap_batch_default: must not exceed rewrap_batch_max".to_owned());
        }
        if self.master_keys.is_empty() && self.master_key_file.is_none() {
            problems.push(
                "master_keys: none configured, and no master_key_file to keep a generated one in"
                    .to_owned(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_input_keeps_defaults_and_unknown_keys_are_rejected() {
        let config: VaultConfig = serde_json::from_str(
            r#"{"page_size_max":80,"master_keys":[{"version":1,"key":"c2VjcmV0"}]}"#,
        )
        .unwrap();
        assert_eq!(config.page_size_max, 80);
        assert_eq!(config.page_size_default, 50);
        assert_eq!(config.validate(), Ok(()));
        assert!(serde_json::from_str::<VaultConfig>(r#"{"no_such_key":1}"#).is_err());
    }

    #[test]
    fn master_keys_never_show_in_debug_or_dumps() {
        let config: VaultConfig = serde_json::from_str(
            r#"{"master_keys":[{"version":1,"key":"dG9wLXNlY3JldC1tYXN0ZXI="}]}"#,
        )
        .unwrap();
        let debug = format!("{config:?}");
        let dumped = serde_json::to_string(&config).unwrap();
        for shown in [debug, dumped] {
            assert!(!shown.contains("dG9wLXNlY3JldC1tYXN0ZXI="), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
    }

    #[test]
    fn no_key_and_no_key_file_is_rejected() {
        let error = VaultConfig::default().validate().unwrap_err();
        assert!(error.starts_with("master_keys"), "{error}");
    }
}
