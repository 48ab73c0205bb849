//! API keys: created for a member of a workspace, secret shown once and
//! stored as a hash, listed by prefix, rotated, revoked, and exchanged for
//! short-lived principal tokens.

use chrono::{DateTime, Utc};
use tyboo_auth::{Permission, Principal, Subject};
use tyboo_store::Scope;
use uuid::Uuid;

use super::Domain;
use super::access_changes::{self, AccessChangeOf};
use super::audit::{self, AuditEntry, ChainHead};
use super::model::{ApiKey, IssuedApiKey, IssuedToken, parse_role};
use super::scope::{AUTHENTICATE, WorkspaceScope};
use super::secrets::{API_KEY_PREFIX, hash_secret, new_api_key};
use super::validation::Name;
use crate::error::{TenancyError, TenancyResult};
use crate::storage::api_keys::NewApiKey;
use crate::storage::entities::api_key;
use crate::storage::{self, Session, api_keys, members, workspaces};

/// Creates a key inside the caller's transaction and records it on the chain.
pub(crate) async fn issue_api_key<C: Session>(
    db: &C,
    head: &mut ChainHead,
    actor: &str,
    workspace_id: Uuid,
    user_id: Uuid,
    name: &str,
    expire_time: Option<DateTime<Utc>>,
) -> TenancyResult<IssuedApiKey> {
    let generated = new_api_key()?;
    let row = api_keys::insert(
        db,
        NewApiKey {
            id: Uuid::now_v7(),
            workspace_id,
            user_id,
            name,
            prefix: &generated.display_prefix,
            key_hash: &generated.hash,
            create_time: storage::now(),
            expire_time,
        },
    )
    .await?;
    let mut entry = AuditEntry::new("api_key.created", format!("api_key:{}", row.id))
        .detail("user_id", user_id.to_string())
        .detail("name", name)
        .detail("prefix", generated.display_prefix.clone());
    if let Some(expiry) = expire_time {
        entry = entry.detail("expire_time", expiry.to_rfc3339());
    }
    audit::append(db, head, actor, entry).await?;
    Ok(IssuedApiKey {
        api_key: ApiKey::from(row),
        secret: generated.secret,
    })
}

/// The one answer for every key that does not authenticate, so a caller
/// learns nothing about which keys exist.
fn invalid_api_key() -> TenancyError {
    TenancyError::Unauthenticated("invalid API key".to_owned())
}

impl Domain {
    /// A key for the caller in the workspace.
    pub async fn create_api_key(
        &self,
        scope: &WorkspaceScope,
        name: &Name,
        expire_time: Option<DateTime<Utc>>,
    ) -> TenancyResult<IssuedApiKey> {
        scope.require(Permission::ApiKeysCreate)?;
        let user_id = scope.user_id().ok_or_else(|| {
            TenancyError::PermissionDenied("API keys belong to people, not services".to_owned())
        })?;
        if let Some(expiry) = expire_time
            && expiry <= storage::now()
        {
            return Err(TenancyError::invalid(
                "expire_time",
                "must lie in the future",
            ));
        }
        let transaction = self.store().write(scope.store_scope()).await?;
        let mut head = audit::lock_chain(&transaction, scope.workspace_id).await?;
        let issued = issue_api_key(
            &transaction,
            &mut head,
            &scope.actor(),
            scope.workspace_id,
            user_id,
            name.as_str(),
            expire_time,
        )
        .await?;
        transaction.commit().await?;
        Ok(issued)
    }

    /// The caller's live keys, or every member's for those allowed to see all.
    pub async fn list_api_keys(&self, scope: &WorkspaceScope) -> TenancyResult<Vec<ApiKey>> {
        scope.require(Permission::WorkspaceRead)?;
        let only_user = if scope.allows(Permission::ApiKeysManageAll) {
            None
        } else {
            Some(scope.user_id().ok_or(TenancyError::NotFound("api key"))?)
        };
        let rows = api_keys::list_live(
            &self.store().read(scope.store_scope()),
            scope.workspace_id,
            only_user,
        )
        .await?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// A new secret for a key; the old one stops working when this commits.
    pub async fn rotate_api_key(
        &self,
        scope: &WorkspaceScope,
        api_key_id: Uuid,
    ) -> TenancyResult<IssuedApiKey> {
        let transaction = self.store().write(scope.store_scope()).await?;
        let mut head = audit::lock_chain(&transaction, scope.workspace_id).await?;
        let key = self
            .key_the_caller_may_manage(&transaction, scope, api_key_id)
            .await?;
        let now = storage::now();
        if key.expire_time.is_some_and(|expiry| expiry <= now) {
            return Err(TenancyError::FailedPrecondition(
                "the API key has expired; create a new one instead".to_owned(),
            ));
        }
        let generated = new_api_key()?;
        api_keys::replace_secret(
            &transaction,
            key.id,
            &generated.display_prefix,
            &generated.hash,
            now,
        )
        .await?;
        audit::append(
            &transaction,
            &mut head,
            &scope.actor(),
            AuditEntry::new("api_key.rotated", format!("api_key:{}", key.id))
                .detail("user_id", key.user_id.to_string())
                .detail("previous_prefix", key.prefix.clone())
                .detail("prefix", generated.display_prefix.clone()),
        )
        .await?;
        access_changes::record(
            &transaction,
            self,
            scope.workspace_id,
            AccessChangeOf::ApiKeyRotated { api_key_id: key.id },
        )
        .await?;
        transaction.commit().await?;
        let mut api_key = ApiKey::from(key);
        api_key.prefix = generated.display_prefix;
        api_key.rotate_time = Some(now);
        Ok(IssuedApiKey {
            api_key,
            secret: generated.secret,
        })
    }

    pub async fn revoke_api_key(
        &self,
        scope: &WorkspaceScope,
        api_key_id: Uuid,
    ) -> TenancyResult<()> {
        let transaction = self.store().write(scope.store_scope()).await?;
        let mut head = audit::lock_chain(&transaction, scope.workspace_id).await?;
        let key = self
            .key_the_caller_may_manage(&transaction, scope, api_key_id)
            .await?;
        api_keys::revoke(&transaction, key.id, storage::now()).await?;
        audit::append(
            &transaction,
            &mut head,
            &scope.actor(),
            AuditEntry::new("api_key.revoked", format!("api_key:{}", key.id))
                .detail("user_id", key.user_id.to_string())
                .detail("prefix", key.prefix.clone()),
        )
        .await?;
        access_changes::record(
            &transaction,
            self,
            scope.workspace_id,
            AccessChangeOf::ApiKeyRevoked { api_key_id: key.id },
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Own keys take the create permission; others' keys take the manage-all
    /// permission and a role at least as high as the key holder's, because
    /// rotating someone's key hands their access to whoever rotates it.
    async fn key_the_caller_may_manage<C: Session>(
        &self,
        db: &C,
        scope: &WorkspaceScope,
        api_key_id: Uuid,
    ) -> TenancyResult<api_key::Model> {
        let not_found = || TenancyError::NotFound("api key");
        let key = api_keys::find_live_in_workspace(db, scope.workspace_id, api_key_id)
            .await?
            .ok_or_else(not_found)?;
        if scope.user_id() == Some(key.user_id) {
            scope.require(Permission::ApiKeysCreate)?;
            return Ok(key);
        }
        // Keys a caller cannot list are keys that do not exist for them.
        if !scope.allows(Permission::ApiKeysManageAll) {
            return Err(not_found());
        }
        if let Some(holder) = members::find_membership(db, scope.workspace_id, key.user_id).await?
            && parse_role(&holder.role)? > scope.rank()
        {
            return Err(TenancyError::PermissionDenied(
                "cannot manage the API keys of a member whose role is above your own".to_owned(),
            ));
        }
        Ok(key)
    }

    /// Exchanges an API key for a principal token with the holder's current
    /// role. Unknown, revoked and expired keys, and keys of removed members,
    /// all get the same answer.
    pub async fn authenticate_api_key(&self, secret: &str) -> TenancyResult<IssuedToken> {
        if !secret.starts_with(API_KEY_PREFIX) {
            return Err(invalid_api_key());
        }
        let key = api_keys::find_by_hash(&self.store().read(AUTHENTICATE), &hash_secret(secret))
            .await?
            .ok_or_else(invalid_api_key)?;
        let now = storage::now();
        if key.revoke_time.is_some() || key.expire_time.is_some_and(|expiry| expiry <= now) {
            return Err(invalid_api_key());
        }
        // Found, the key names the workspace the rest is read in.
        let db = self.store().read(Scope::Workspace(key.workspace_id));
        let membership = members::find_membership(&db, key.workspace_id, key.user_id)
            .await?
            .ok_or_else(invalid_api_key)?;
        let workspace = workspaces::find_workspace(&db, key.workspace_id)
            .await?
            .ok_or_else(invalid_api_key)?;
        let resolution = super::bounded_seconds(self.config().api_key_last_use_resolution_seconds);
        if key.last_use_time.is_none_or(|used| used < now - resolution) {
            // Last use is informational: a busy database must not turn a
            // valid key away.
            if let Err(error) = api_keys::touch_last_use(&db, key.id, now, resolution).await {
                tracing::warn!(%error, api_key_id = %key.id, "cannot record API key use");
            }
        }
        let principal = Principal {
            subject: Subject::User(key.user_id),
            workspace_id: Some(key.workspace_id),
            organization_id: Some(workspace.organization_id),
            role: Some(parse_role(&membership.role)?),
            api_key_id: Some(key.id),
            api_key_version: Some(secret_version(&key)),
        };
        // A token never outlives the key it was issued for.
        let mut ttl_seconds = self.config().principal_token_ttl_seconds;
        if let Some(expiry) = key.expire_time {
            let left = (expiry - now).num_seconds().max(0);
            ttl_seconds = ttl_seconds.min(u64::try_from(left).unwrap_or(0));
        }
        if ttl_seconds == 0 {
            return Err(invalid_api_key());
        }
        self.sign(principal, ttl_seconds).await
    }
}

/// Identifies the key's current secret: its rotation time, or its creation
/// time if it was never rotated, in microseconds. Tokens carry it, so a token
/// issued for a secret that has since been rotated away is refused.
pub(crate) fn secret_version(key: &crate::storage::entities::api_key::Model) -> i64 {
    key.rotate_time
        .unwrap_or(key.create_time)
        .timestamp_micros()
}
