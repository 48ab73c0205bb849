//! Creating, replacing, reading (metadata only) and deleting credentials.
//! Each write seals under a fresh data key, and is audited inside its
//! transaction: when the audit record cannot be written, nothing commits
//! (an early return drops the transaction, which rolls it back).

use tyboo_store::Scope;
use uuid::Uuid;

use super::pagination::{decode_name_token, encode_name_token, page_size};
use super::{
    CredentialView, Domain, NewCredential, Replacement, WorkspaceScope, credential_target, details,
    types, validation,
};
use crate::audit::actions;
use crate::crypto::{self, Binding, Sealed};
use crate::error::{VaultError, VaultResult};
use crate::storage::entities::credential;
use crate::storage::{self, credentials as rows};

impl Domain {
    pub async fn create_credential(
        &self,
        scope: &WorkspaceScope,
        new: NewCredential,
    ) -> VaultResult<CredentialView> {
        let config = self.config();
        let name = validation::name(&new.name, config.max_name_length)?;
        let spec = types::require("type", &new.credential_type)?;
        let allowed_hosts = validation::allowed_hosts(new.allowed_hosts, config.max_allowed_hosts)?;
        spec.validate(&new.fields, config.min_secret_chars)?;
        let plaintext = new.fields.to_json(config.max_fields_bytes)?;
        drop(new.fields);
        self.record_key_state().await?;

        let credential_id = Uuid::now_v7();
        let binding = Binding {
            workspace_id: scope.workspace_id,
            credential_id,
            version: 1,
        };
        let sealed = crypto::seal(self.keys(), binding, &plaintext)?;
        drop(plaintext);
        let now = storage::now();
        let actor = scope.actor();
        let row = credential::Model {
            id: credential_id,
            workspace_id: scope.workspace_id,
            name,
            credential_type: spec.name.to_owned(),
            allowed_hosts: encode_hosts(&allowed_hosts)?,
            version: 1,
            key_version: i64::from(sealed.key_version),
            ciphertext: sealed.ciphertext,
            data_nonce: sealed.data_nonce,
            wrapped_key: sealed.wrapped_key,
            key_nonce: sealed.key_nonce,
            created_by: actor.clone(),
            updated_by: actor.clone(),
            create_time: now,
            update_time: now,
        };

        let transaction = self
            .store()
            .write(Scope::Workspace(scope.workspace_id))
            .await?;
        rows::insert(&transaction, row.clone())
            .await
            .map_err(|error| {
                if storage::is_unique_violation(&error) {
                    VaultError::AlreadyExists(format!(
                        "a credential named {:?} already exists",
                        row.name
                    ))
                } else {
                    error.into()
                }
            })?;
        self.audit(
            Some(scope.workspace_id),
            &actor,
            actions::CREDENTIAL_CREATED,
            credential_target(credential_id),
            details([
                ("name", row.name.clone()),
                ("type", row.credential_type.clone()),
                ("version", "1".to_owned()),
                ("key_version", row.key_version.to_string()),
            ]),
        )
        .await?;
        transaction.commit().await?;
        view_of(&row)
    }

    /// Seals new fields as the next version. The earlier version's data key
    /// and ciphertext are overwritten, so they are gone with the commit.
    pub async fn replace_credential(
        &self,
        scope: &WorkspaceScope,
        credential_id: Uuid,
        replacement: Replacement,
    ) -> VaultResult<CredentialView> {
        let config = self.config();
        let allowed_hosts = replacement
            .allowed_hosts
            .map(|hosts| validation::allowed_hosts(hosts, config.max_allowed_hosts))
            .transpose()?;
        self.record_key_state().await?;

        let transaction = self
            .store()
            .write(Scope::Workspace(scope.workspace_id))
            .await?;
        let current = rows::find(&transaction, scope.workspace_id, credential_id)
            .await?
            .ok_or(VaultError::NotFound("credential"))?;
        if let Some(expected) = replacement.expected_version
            && expected != current.version
        {
            return Err(VaultError::Aborted(format!(
                "credential is at version {}, not {expected}",
                current.version
            )));
        }
        let spec = types::require("type", &current.credential_type)?;
        spec.validate(&replacement.fields, config.min_secret_chars)?;
        let plaintext = replacement.fields.to_json(config.max_fields_bytes)?;
        drop(replacement.fields);

        let version = current.version + 1;
        let binding = Binding {
            workspace_id: scope.workspace_id,
            credential_id,
            version,
        };
        let sealed = crypto::seal(self.keys(), binding, &plaintext)?;
        drop(plaintext);
        let hosts_json = match &allowed_hosts {
            Some(hosts) => encode_hosts(hosts)?,
            None => current.allowed_hosts.clone(),
        };
        let actor = scope.actor();
        let now = storage::now();
        let replaced = rows::replace(
            &transaction,
            scope.workspace_id,
            credential_id,
            current.version,
            rows::Replacement {
                version,
                sealed: &sealed,
                allowed_hosts: &hosts_json,
                updated_by: &actor,
                update_time: now,
            },
        )
        .await?;
        if !replaced {
            return Err(VaultError::Aborted(
                "credential changed concurrently; retry".to_owned(),
            ));
        }
        self.audit(
            Some(scope.workspace_id),
            &actor,
            actions::CREDENTIAL_REPLACED,
            credential_target(credential_id),
            details([
                ("name", current.name.clone()),
                ("type", current.credential_type.clone()),
                ("version", version.to_string()),
                ("key_version", sealed.key_version.to_string()),
            ]),
        )
        .await?;
        transaction.commit().await?;

        let Sealed {
            ciphertext,
            data_nonce,
            wrapped_key,
            key_nonce,
            key_version,
        } = sealed;
        view_of(&credential::Model {
            version,
            key_version: i64::from(key_version),
            ciphertext,
            data_nonce,
            wrapped_key,
            key_nonce,
            allowed_hosts: hosts_json,
            updated_by: actor,
            update_time: now,
            ..current
        })
    }

    pub async fn get_credential(
        &self,
        scope: &WorkspaceScope,
        credential_id: Uuid,
    ) -> VaultResult<CredentialView> {
        let row = rows::find(
            &self.store().read(Scope::Workspace(scope.workspace_id)),
            scope.workspace_id,
            credential_id,
        )
        .await?
        .ok_or(VaultError::NotFound("credential"))?;
        view_of(&row)
    }

    /// A page of the workspace's credentials by name, and the next token.
    pub async fn list_credentials(
        &self,
        scope: &WorkspaceScope,
        requested_size: i32,
        page_token: &str,
        credential_type: &str,
    ) -> VaultResult<(Vec<CredentialView>, String)> {
        let config = self.config();
        let limit = page_size(
            requested_size,
            config.page_size_default,
            config.page_size_max,
        )?;
        let after_name = decode_name_token(page_token)?;
        let type_filter = if credential_type.is_empty() {
            None
        } else {
            Some(types::require("type", credential_type)?.name)
        };
        let found = rows::list(
            &self.store().read(Scope::Workspace(scope.workspace_id)),
            scope.workspace_id,
            type_filter,
            after_name.as_deref(),
            limit,
        )
        .await?;
        let next_token = match found.last() {
            Some(last) if found.len() as u64 == limit => encode_name_token(&last.name),
            _ => String::new(),
        };
        let views = found.iter().map(view_of).collect::<VaultResult<_>>()?;
        Ok((views, next_token))
    }

    /// Deletes the row, sealed fields and wrapped key with it.
    pub async fn delete_credential(
        &self,
        scope: &WorkspaceScope,
        credential_id: Uuid,
    ) -> VaultResult<()> {
        let transaction = self
            .store()
            .write(Scope::Workspace(scope.workspace_id))
            .await?;
        let current = rows::find(&transaction, scope.workspace_id, credential_id)
            .await?
            .ok_or(VaultError::NotFound("credential"))?;
        if !rows::delete(&transaction, scope.workspace_id, credential_id).await? {
            return Err(VaultError::NotFound("credential"));
        }
        self.audit(
            Some(scope.workspace_id),
            &scope.actor(),
            actions::CREDENTIAL_DELETED,
            credential_target(credential_id),
            details([
                ("name", current.name),
                ("type", current.credential_type),
                ("version", current.version.to_string()),
            ]),
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }
}

pub(crate) fn encode_hosts(hosts: &[String]) -> VaultResult<String> {
    serde_json::to_string(hosts)
        .map_err(|error| VaultError::Internal(format!("encoding allowed hosts: {error}")))
}

pub(crate) fn decode_hosts(row: &credential::Model) -> VaultResult<Vec<String>> {
    serde_json::from_str(&row.allowed_hosts).map_err(|error| {
        VaultError::Internal(format!(
            "allowed hosts of credential {} do not parse: {error}",
            row.id
        ))
    })
}

pub(crate) fn key_version_of(row: &credential::Model) -> VaultResult<u32> {
    u32::try_from(row.key_version).map_err(|_| {
        VaultError::Internal(format!(
            "credential {} has key version {} out of range",
            row.id, row.key_version
        ))
    })
}

pub(crate) fn sealed_of(row: &credential::Model) -> VaultResult<Sealed> {
    Ok(Sealed {
        ciphertext: row.ciphertext.clone(),
        data_nonce: row.data_nonce.clone(),
        wrapped_key: row.wrapped_key.clone(),
        key_nonce: row.key_nonce.clone(),
        key_version: key_version_of(row)?,
    })
}

pub(crate) fn binding_of(row: &credential::Model) -> Binding {
    Binding {
        workspace_id: row.workspace_id,
        credential_id: row.id,
        version: row.version,
    }
}

fn view_of(row: &credential::Model) -> VaultResult<CredentialView> {
    Ok(CredentialView {
        id: row.id,
        workspace_id: row.workspace_id,
        name: row.name.clone(),
        credential_type: row.credential_type.clone(),
        allowed_hosts: decode_hosts(row)?,
        version: row.version,
        key_version: key_version_of(row)?,
        created_by: row.created_by.clone(),
        updated_by: row.updated_by.clone(),
        create_time: row.create_time,
        update_time: row.update_time,
    })
}
