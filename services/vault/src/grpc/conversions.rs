//! Proto ↔ domain conversions. Domain values are destructured in full so a
//! new field breaks the build until it is handled here.

use prost_types::value::Kind;
use tyboo_proto::convert::json_to_struct;
use tyboo_proto::vault as pb;
use uuid::Uuid;
use zeroize::Zeroize;

use crate::domain::types::CredentialTypeSpec;
use crate::domain::{
    CredentialView, DecryptedCredential, MasterKeyView, MasterKeysView, RewrapOutcome,
    RotationStatus, SecretFields,
};
use crate::error::{VaultError, VaultResult};

// ---- secret fields --------------------------------------------------------

/// The fields of a request, taken over without copying their values. Values
/// that are not strings are refused by name, and any text in them is wiped.
pub fn fields_from_proto(fields: Option<prost_types::Struct>) -> VaultResult<SecretFields> {
    let fields = fields.ok_or_else(|| VaultError::invalid("fields", "must be set"))?;
    let mut secret = SecretFields::new();
    let mut refused: Option<VaultError> = None;
    for (name, value) in fields.fields {
        match value.kind {
            Some(Kind::StringValue(text)) => secret.insert(name, text),
            // An explicit null is an absent optional field.
            None | Some(Kind::NullValue(_)) => {}
            Some(other) => {
                wipe(other);
                refused.get_or_insert_with(|| {
                    VaultError::invalid(format!("fields.{name}"), "must be a string")
                });
            }
        }
    }
    match refused {
        Some(error) => Err(error),
        None => Ok(secret),
    }
}

/// Overwrites every string inside a refused value before it is freed.
fn wipe(kind: Kind) {
    match kind {
        Kind::StringValue(mut text) => text.zeroize(),
        Kind::ListValue(list) => {
            for value in list.values {
                if let Some(kind) = value.kind {
                    wipe(kind);
                }
            }
        }
        Kind::StructValue(object) => {
            for (_, value) in object.fields {
                if let Some(kind) = value.kind {
                    wipe(kind);
                }
            }
        }
        Kind::NullValue(_) | Kind::NumberValue(_) | Kind::BoolValue(_) => {}
    }
}

fn fields_to_proto(fields: &SecretFields) -> prost_types::Struct {
    prost_types::Struct {
        fields: fields
            .iter()
            .map(|(name, value)| {
                (
                    name.to_owned(),
                    prost_types::Value {
                        kind: Some(Kind::StringValue(value.to_owned())),
                    },
                )
            })
            .collect(),
    }
}

// ---- credentials ----------------------------------------------------------

pub fn credential_to_proto(view: &CredentialView) -> pb::Credential {
    let CredentialView {
        id,
        workspace_id,
        name,
        credential_type,
        allowed_hosts,
        version,
        key_version,
        created_by,
        updated_by,
        create_time,
        update_time,
    } = view;
    pb::Credential {
        id: id.to_string(),
        workspace_id: workspace_id.to_string(),
        name: name.clone(),
        r#type: credential_type.clone(),
        allowed_hosts: allowed_hosts.clone(),
        version: *version,
        key_version: *key_version,
        create_time: Some(timestamp(*create_time)),
        update_time: Some(timestamp(*update_time)),
        created_by: created_by.clone(),
        updated_by: updated_by.clone(),
    }
}

pub fn credential_type_to_proto(spec: &CredentialTypeSpec) -> pb::CredentialType {
    pb::CredentialType {
        name: spec.name.to_owned(),
        title: spec.title.to_owned(),
        description: spec.description.to_owned(),
        fields_schema: Some(json_to_struct(&spec.schema())),
    }
}

pub fn decrypted_to_proto(credential: &DecryptedCredential) -> pb::DecryptCredentialResponse {
    let DecryptedCredential {
        credential_id,
        credential_type,
        version,
        fields,
        allowed_hosts,
    } = credential;
    pb::DecryptCredentialResponse {
        credential_id: credential_id.to_string(),
        r#type: credential_type.clone(),
        version: *version,
        fields: Some(fields_to_proto(fields)),
        allowed_hosts: allowed_hosts.clone(),
    }
}

// ---- master keys ------------------------------------------------------------

pub fn master_keys_to_proto(view: MasterKeysView) -> pb::ListMasterKeysResponse {
    let MasterKeysView {
        keys,
        active_version,
        min_decrypt_version,
    } = view;
    pb::ListMasterKeysResponse {
        keys: keys
            .into_iter()
            .map(|key| {
                let MasterKeyView {
                    version,
                    active,
                    decryptable,
                    configured,
                    credential_count,
                } = key;
                pb::MasterKeyVersion {
                    version,
                    active,
                    decryptable,
                    configured,
                    credential_count,
                }
            })
            .collect(),
        active_version,
        min_decrypt_version,
    }
}

pub fn rewrap_to_proto(outcome: RewrapOutcome) -> pb::RewrapCredentialsResponse {
    let RewrapOutcome {
        rewrapped,
        remaining,
        failed,
        active_version,
    } = outcome;
    pb::RewrapCredentialsResponse {
        rewrapped,
        remaining,
        failed,
        active_version,
    }
}

pub fn rotation_status_to_proto(status: RotationStatus) -> pb::GetRotationStatusResponse {
    let complete = status.complete();
    let RotationStatus {
        active_version,
        min_decrypt_version,
        total_credentials,
        on_active_version,
        pending_rewrap,
        undecryptable,
    } = status;
    pb::GetRotationStatusResponse {
        active_version,
        min_decrypt_version,
        total_credentials,
        on_active_version,
        pending_rewrap,
        undecryptable,
        complete,
    }
}

// ---- plain values ---------------------------------------------------------

pub use tyboo_proto::convert::timestamp;

/// An id from a request. A malformed id cannot name anything, so it answers
/// like a missing one.
pub fn parse_id(value: &str, what: &'static str) -> VaultResult<Uuid> {
    Uuid::parse_str(value.trim()).map_err(|_| VaultError::NotFound(what))
}
