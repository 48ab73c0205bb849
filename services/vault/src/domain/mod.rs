//! The rules of the vault: credential lifecycle, the sandboxed use of
//! plaintext by services, and master key rotation. Nothing here knows about
//! gRPC.

pub mod access;
pub mod credentials;
pub mod fields;
pub mod model;
pub mod pagination;
pub mod rotation;
mod scope;
pub mod types;
pub mod validation;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tyboo_auth::{KeySource, TokenVerifier};
use uuid::Uuid;

pub use fields::SecretFields;
pub use model::*;
pub use scope::{ServiceCaller, WorkspaceScope};

use crate::audit::AuditSink;
use crate::config::VaultConfig;
use crate::crypto::KeyRing;
use crate::error::{VaultError, VaultResult};
use crate::storage::Store;

/// The vault domain service: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Domain {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: VaultConfig,
    keys: KeyRing,
    audit: Arc<dyn AuditSink>,
    verifier: TokenVerifier,
    /// Set once this process has recorded (and, if changed, audited) the
    /// master key versions it runs with.
    key_state_recorded: AtomicBool,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Domain")
            .field("config", &self.inner.config)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

impl Domain {
    pub fn new(
        store: Store,
        config: VaultConfig,
        keys: KeyRing,
        key_source: Arc<dyn KeySource>,
        audit: Arc<dyn AuditSink>,
    ) -> Domain {
        Domain {
            inner: Arc::new(Inner {
                store,
                config,
                keys,
                audit,
                verifier: TokenVerifier::new(key_source),
                key_state_recorded: AtomicBool::new(false),
            }),
        }
    }

    pub fn config(&self) -> &VaultConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// Writes an audit record; the caller's action must not commit unless
    /// this succeeds.
    pub(crate) async fn audit(
        &self,
        workspace_id: Option<Uuid>,
        actor: &str,
        action: &str,
        target: String,
        details: BTreeMap<String, String>,
    ) -> VaultResult<()> {
        self.inner
            .audit
            .record(workspace_id, actor, action, &target, details)
            .await
            .map_err(VaultError::from)
    }
}

/// The audit target of a credential.
pub(crate) fn credential_target(credential_id: Uuid) -> String {
    format!("credential:{credential_id}")
}

/// Audit details from string pairs.
pub(crate) fn details<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}
