//! What the domain hands back. Credential metadata carries no secret; a
//! decrypted credential carries its fields in wiped buffers only.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::fields::SecretFields;

/// A credential's metadata, as every public answer shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialView {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub credential_type: String,
    pub allowed_hosts: Vec<String>,
    pub version: i64,
    pub key_version: u32,
    pub created_by: String,
    pub updated_by: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// A new credential as a caller describes it.
#[derive(Debug)]
pub struct NewCredential {
    pub name: String,
    pub credential_type: String,
    pub fields: SecretFields,
    pub allowed_hosts: Vec<String>,
}

/// New fields for an existing credential.
#[derive(Debug)]
pub struct Replacement {
    pub fields: SecretFields,
    /// `None` keeps the current list.
    pub allowed_hosts: Option<Vec<String>>,
    pub expected_version: Option<i64>,
}

/// Who asks for plaintext, and for which node.
#[derive(Clone, Debug)]
pub struct DecryptRequest {
    pub workspace_id: Uuid,
    pub credential_id: Uuid,
    pub execution_id: String,
    pub node_id: String,
}

/// A credential's plaintext, for the worker about to use it.
#[derive(Debug)]
pub struct DecryptedCredential {
    pub credential_id: Uuid,
    pub credential_type: String,
    pub version: i64,
    pub fields: SecretFields,
    pub allowed_hosts: Vec<String>,
}

/// One master key version as operators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterKeyView {
    pub version: u32,
    pub active: bool,
    pub decryptable: bool,
    pub configured: bool,
    pub credential_count: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterKeysView {
    pub keys: Vec<MasterKeyView>,
    pub active_version: u32,
    pub min_decrypt_version: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewrapOutcome {
    pub rewrapped: i64,
    pub remaining: i64,
    pub failed: i64,
    pub active_version: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationStatus {
    pub active_version: u32,
    pub min_decrypt_version: u32,
    pub total_credentials: i64,
    pub on_active_version: i64,
    pub pending_rewrap: i64,
    pub undecryptable: i64,
}

impl RotationStatus {
    pub fn complete(&self) -> bool {
        self.on_active_version == self.total_credentials
    }
}
