//! The rules of tenancy: who may do what to organizations, workspaces,
//! members, invitations, API keys, signing keys and the audit log. Nothing
//! here knows about gRPC; every change and its audit event commit together.

pub mod access_changes;
pub mod admin;
pub mod api_keys;
pub mod audit;
mod caller;
pub mod invitations;
pub mod limits;
pub mod members;
pub mod model;
mod scope;
pub mod secrets;
pub mod signing;
pub mod validation;
pub mod workspaces;

use std::sync::{Arc, RwLock};

use tyboo_auth::TokenVerifier;
use tyboo_limits::Limits;

pub use access_changes::{AccessChange, AccessChangeKind, AccessChangesPage, AccessChangesQuery};
pub use audit::AuditQuery;
pub use model::*;
pub use scope::WorkspaceScope;
pub use signing::LocalKeySource;

use crate::config::TenancyConfig;
use crate::storage::Store;

/// The tenancy domain service: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Domain {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: TenancyConfig,
    signer: signing::SignerCache,
    /// Replaced after a local rotation so the new key is known at once.
    verifier: RwLock<TokenVerifier>,
    /// Every workspace's limits unless overridden (the `limits` section).
    limit_defaults: Limits,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Domain")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Seconds as a time span, capped at ten years so that arithmetic on dates
/// can never overflow, whatever the configuration says.
pub(crate) fn bounded_seconds(seconds: u64) -> chrono::Duration {
    const TEN_YEARS: u64 = 10 * 366 * 24 * 3600;
    chrono::Duration::seconds(i64::try_from(seconds.min(TEN_YEARS)).unwrap_or_default())
}

impl Domain {
    pub fn new(store: Store, config: TenancyConfig) -> Domain {
        Domain::with_limit_defaults(store, config, Limits::default())
    }

    pub fn with_limit_defaults(
        store: Store,
        config: TenancyConfig,
        limit_defaults: Limits,
    ) -> Domain {
        let key_source = Arc::new(LocalKeySource::new(store.clone(), &config));
        Domain {
            inner: Arc::new(Inner {
                verifier: RwLock::new(TokenVerifier::new(key_source)),
                signer: signing::SignerCache::default(),
                store,
                config,
                limit_defaults,
            }),
        }
    }

    pub fn config(&self) -> &TenancyConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn limit_defaults(&self) -> &Limits {
        &self.inner.limit_defaults
    }
}
