//! Plaintext for services, and existence checks for workflow validation.
//! Every refusal here looks exactly like a missing credential.

use std::collections::HashSet;

use tyboo_store::Scope;
use uuid::Uuid;

use super::credentials::{binding_of, decode_hosts, key_version_of, sealed_of};
use super::{DecryptRequest, DecryptedCredential, Domain, SecretFields, ServiceCaller};
use super::{credential_target, details};
use crate::audit::actions;
use crate::crypto;
use crate::error::{VaultError, VaultResult};
use crate::storage::credentials as rows;

/// Longest execution or node id a decrypt request may carry.
const MAX_REFERENCE_LENGTH: usize = 200;

impl Domain {
    /// The plaintext of one credential for the node about to use it. The
    /// decryption is audited (with execution and node) before the data key is
    /// unwrapped; if the audit fails, no plaintext is ever formed.
    pub async fn decrypt_credential(
        &self,
        caller: &ServiceCaller,
        request: DecryptRequest,
    ) -> VaultResult<DecryptedCredential> {
        let execution_id = reference("execution_id", &request.execution_id)?;
        let node_id = reference("node_id", &request.node_id)?;
        self.record_key_state().await?;
        let row = rows::find(
            &self.store().read(Scope::Workspace(request.workspace_id)),
            request.workspace_id,
            request.credential_id,
        )
        .await?
        .ok_or(VaultError::NotFound("credential"))?;
        let key_version = key_version_of(&row)?;
        // A retired or unknown master key fails here, before auditing a use
        // that cannot happen.
        self.keys().ensure_decryptable(key_version)?;
        self.audit(
            Some(row.workspace_id),
            &caller.actor(),
            actions::CREDENTIAL_DECRYPTED,
            credential_target(row.id),
            details([
                ("execution_id", execution_id.to_owned()),
                ("node_id", node_id.to_owned()),
                ("version", row.version.to_string()),
                ("key_version", key_version.to_string()),
            ]),
        )
        .await?;
        let plaintext = crypto::open(self.keys(), binding_of(&row), &sealed_of(&row)?)?;
        let fields = SecretFields::from_json(&plaintext)?;
        Ok(DecryptedCredential {
            credential_id: row.id,
            credential_type: row.credential_type.clone(),
            version: row.version,
            fields,
            allowed_hosts: decode_hosts(&row)?,
        })
    }

    /// Which of `ids` exist in the workspace, with their types and allowed
    /// hosts (neither is secret: a worker checks where a node may go before
    /// it asks for plaintext). Ids that do not parse cannot exist, so they
    /// are left out like missing ones.
    pub async fn check_credentials(
        &self,
        _caller: &ServiceCaller,
        workspace_id: Uuid,
        ids: &[String],
    ) -> VaultResult<Vec<(Uuid, String, Vec<String>)>> {
        if ids.len() > self.config().max_check_ids {
            return Err(VaultError::invalid(
                "credential_ids",
                format!("must have at most {} entries", self.config().max_check_ids),
            ));
        }
        let parsed: HashSet<Uuid> = ids
            .iter()
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect();
        if parsed.is_empty() {
            return Ok(Vec::new());
        }
        let parsed: Vec<Uuid> = parsed.into_iter().collect();
        rows::existing(
            &self.store().read(Scope::Workspace(workspace_id)),
            workspace_id,
            &parsed,
        )
        .await?
        .into_iter()
        .map(|(id, credential_type, hosts)| {
            let hosts = serde_json::from_str(&hosts).map_err(|error| {
                VaultError::Internal(format!(
                    "allowed hosts of credential {id} do not parse: {error}"
                ))
            })?;
            Ok((id, credential_type, hosts))
        })
        .collect()
    }
}

fn reference<'a>(field: &'static str, value: &'a str) -> VaultResult<&'a str> {
    let value = value.trim();
    if value.is_empty() {
        return Err(VaultError::invalid(field, "must be set"));
    }
    if value.len() > MAX_REFERENCE_LENGTH || value.chars().any(char::is_control) {
        return Err(VaultError::invalid(
            field,
            format!("must be at most {MAX_REFERENCE_LENGTH} printable characters"),
        ));
    }
    Ok(value)
}
