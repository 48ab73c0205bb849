//! The keys that sign principal and service tokens: created on first use,
//! rotated on request, and kept published after rotation until every token
//! they signed has expired.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tyboo_auth::{AuthError, KeySource, Principal, PublicKey, TokenSigner, generate_signing_key};

use super::Domain;
use super::audit::{self, AuditEntry, GLOBAL_CHAIN};
use super::model::{IssuedToken, SigningKeyInfo};
use super::scope::SIGNING_KEYS;
use super::secrets::secrets_equal;
use super::validation::ServiceName;
use crate::config::TenancyConfig;
use crate::error::{TenancyError, TenancyResult};
use crate::storage::entities::signing_key;
use crate::storage::{self, LOCK_SIGNING_KEYS, Store, audit as audit_store, signing_keys};

/// How long a superseded key stays published: the longest token lifetime,
/// plus the time another replica may keep signing with it from its cache,
/// plus a minute for clock skew between machines.
fn publish_grace(config: &TenancyConfig) -> chrono::Duration {
    let longest_token = config
        .principal_token_ttl_seconds
        .max(config.service_token_ttl_seconds);
    super::bounded_seconds(
        longest_token
            .saturating_add(config.signing_key_cache_seconds)
            .saturating_add(60),
    )
}

fn key_bytes(kid: &str, bytes: &[u8]) -> TenancyResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| TenancyError::Internal(format!("signing key {kid} is not 32 bytes")))
}

fn key_info(model: &signing_key::Model) -> TenancyResult<SigningKeyInfo> {
    Ok(SigningKeyInfo {
        kid: model.kid.clone(),
        public_key: key_bytes(&model.kid, &model.public)?,
        create_time: model.create_time,
        active: model.active,
    })
}

/// The signer this process uses, reloaded now and then so a rotation made by
/// another replica takes effect here too.
#[derive(Default)]
pub(crate) struct SignerCache {
    current: tokio::sync::Mutex<Option<(Arc<TokenSigner>, Instant)>>,
}

/// Reads the published keys straight from the database: how tenancy verifies
/// the tokens it issued, without calling itself over the network.
#[derive(Clone, Debug)]
pub struct LocalKeySource {
    store: Store,
    grace: chrono::Duration,
}

impl LocalKeySource {
    pub fn new(store: Store, config: &TenancyConfig) -> Self {
        Self {
            store,
            grace: publish_grace(config),
        }
    }

    async fn published(&self) -> TenancyResult<Vec<SigningKeyInfo>> {
        let since = storage::now() - self.grace;
        signing_keys::list_published(&self.store.read(SIGNING_KEYS), since)
            .await?
            .iter()
            .map(key_info)
            .collect()
    }
}

#[async_trait]
impl KeySource for LocalKeySource {
    async fn public_keys(&self) -> Result<Vec<PublicKey>, AuthError> {
        let keys = self
            .published()
            .await
            .map_err(|error| AuthError::KeySource(error.to_string()))?;
        Ok(keys
            .into_iter()
            .map(|key| PublicKey {
                kid: key.kid,
                public: key.public_key,
            })
            .collect())
    }
}

impl Domain {
    pub fn key_source(&self) -> Arc<dyn KeySource> {
        Arc::new(LocalKeySource::new(self.store().clone(), self.config()))
    }

    /// Every key that verifies tokens now, newest first.
    pub async fn signing_keys(&self) -> TenancyResult<Vec<SigningKeyInfo>> {
        // Make sure there is a key to publish before anyone asks for a token.
        self.active_signer().await?;
        LocalKeySource::new(self.store().clone(), self.config())
            .published()
            .await
    }

    /// Starts signing with a fresh key. Only the mesh itself (a service
    /// token) may do this; the old key stays published for the grace period.
    pub async fn rotate_signing_key(&self, caller: &Principal) -> TenancyResult<SigningKeyInfo> {
        if !caller.is_service() {
            return Err(TenancyError::PermissionDenied(
                "rotating signing keys needs a service token".to_owned(),
            ));
        }
        let material = generate_signing_key();
        let now = storage::now();
        let transaction = self.store().write(SIGNING_KEYS).await?;
        storage::lock_globally(&transaction, LOCK_SIGNING_KEYS).await?;
        signing_keys::retire_superseded(&transaction, now - publish_grace(self.config()), now)
            .await?;
        let superseded = signing_keys::deactivate_all(&transaction, now).await?;
        let inserted = signing_keys::insert(
            &transaction,
            &material.kid,
            &material.secret,
            &material.public,
            now,
        )
        .await?;
        audit_store::ensure_head(&transaction, GLOBAL_CHAIN).await?;
        let mut head = audit::lock_chain(&transaction, GLOBAL_CHAIN).await?;
        audit::append(
            &transaction,
            &mut head,
            &caller.actor(),
            AuditEntry::new(
                "signing_key.rotated",
                format!("signing_key:{}", material.kid),
            )
            .detail("superseded", superseded.join(",")),
        )
        .await?;
        transaction.commit().await?;

        let signer = Arc::new(TokenSigner::new(material.kid.clone(), material.secret)?);
        *self.inner.signer.current.lock().await = Some((signer, Instant::now()));
        self.reset_verifier();
        tracing::info!(kid = %material.kid, "signing key rotated");
        key_info(&inserted)
    }

    /// A service token for `service`, given the mesh's shared secret.
    pub async fn issue_service_token(
        &self,
        service: &ServiceName,
        secret: &str,
    ) -> TenancyResult<IssuedToken> {
        let configured = &self.config().service_secret;
        if configured.is_empty() {
            return Err(TenancyError::FailedPrecondition(
                "service tokens are disabled: no service secret is configured".to_owned(),
            ));
        }
        if !secrets_equal(secret, configured) {
            return Err(TenancyError::Unauthenticated(
                "invalid service secret".to_owned(),
            ));
        }
        let principal = Principal::service(service.as_str());
        self.sign(principal, self.config().service_token_ttl_seconds)
            .await
    }

    pub(crate) async fn sign(
        &self,
        principal: Principal,
        ttl_seconds: u64,
    ) -> TenancyResult<IssuedToken> {
        let signer = self.active_signer().await?;
        let (token, expire_time) = signer.sign(&principal, Duration::from_secs(ttl_seconds))?;
        Ok(IssuedToken {
            token,
            expire_time,
            principal,
        })
    }

    /// The signer of the newest active key, creating the first key if none.
    pub(crate) async fn active_signer(&self) -> TenancyResult<Arc<TokenSigner>> {
        let refresh_after = Duration::from_secs(self.config().signing_key_cache_seconds);
        let mut current = self.inner.signer.current.lock().await;
        if let Some((signer, loaded_at)) = current.as_ref()
            && loaded_at.elapsed() < refresh_after
        {
            return Ok(signer.clone());
        }
        let key = match signing_keys::find_active(&self.store().read(SIGNING_KEYS)).await? {
            Some(key) => key,
            None => self.create_first_key().await?,
        };
        let signer = Arc::new(TokenSigner::new(
            key.kid.clone(),
            key_bytes(&key.kid, &key.secret)?,
        )?);
        *current = Some((signer.clone(), Instant::now()));
        Ok(signer)
    }

    async fn create_first_key(&self) -> TenancyResult<signing_key::Model> {
        let transaction = self.store().write(SIGNING_KEYS).await?;
        storage::lock_globally(&transaction, LOCK_SIGNING_KEYS).await?;
        // Another process may have created it while we waited for the lock.
        if let Some(existing) = signing_keys::find_active(&transaction).await? {
            transaction.rollback().await?;
            return Ok(existing);
        }
        let material = generate_signing_key();
        let key = signing_keys::insert(
            &transaction,
            &material.kid,
            &material.secret,
            &material.public,
            storage::now(),
        )
        .await?;
        transaction.commit().await?;
        tracing::info!(kid = %key.kid, "created the first signing key");
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superseded_keys_outlive_every_token_they_signed() {
        let config = TenancyConfig {
            principal_token_ttl_seconds: 300,
            service_token_ttl_seconds: 900,
            signing_key_cache_seconds: 30,
            ..TenancyConfig::default()
        };
        assert_eq!(publish_grace(&config), chrono::Duration::seconds(990));
    }
}
