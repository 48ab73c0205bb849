//! Who is calling. Every tenant-owned query starts from a `WorkspaceScope`
//! or a `ServiceCaller`, and only a verified token produces either.
//!
//! The few paths that must cross workspaces open their reads and
//! transactions with one of the system scopes named here, and nowhere else.

use tyboo_auth::{Permission, Principal, Subject};
use tyboo_store::Scope;

/// A user (or API key) acting in the workspace of its verified token.
pub use tyboo_auth::WorkspaceScope;

use super::Domain;
use crate::error::{VaultError, VaultResult};

/// Recording the master key versions in use: one row for the whole vault.
pub(crate) const KEY_STATE: Scope = Scope::System("master key state");
/// Master key rotation: counting and re-encrypting credentials of every
/// workspace under the active key.
pub(crate) const KEY_ROTATION: Scope = Scope::System("key rotation");

/// A mesh service, verified by its service token.
#[derive(Clone, Debug)]
pub struct ServiceCaller {
    name: String,
}

impl ServiceCaller {
    /// The caller if `principal` is a service; `None` for anyone else.
    pub fn for_principal(principal: &Principal) -> Option<ServiceCaller> {
        match &principal.subject {
            Subject::Service(name) => Some(ServiceCaller { name: name.clone() }),
            Subject::User(_) | Subject::Operator(_) => None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn actor(&self) -> String {
        format!("service:{}", self.name)
    }
}

impl Domain {
    async fn verify(&self, bearer: Option<&str>) -> VaultResult<Principal> {
        let token = bearer.ok_or_else(|| {
            VaultError::Unauthenticated(
                "missing credentials: send `authorization: Bearer <token>`".to_owned(),
            )
        })?;
        Ok(self.inner.verifier.verify(token).await?)
    }

    /// Verifies the bearer token of a public call and checks `permission`.
    pub async fn authorize(
        &self,
        bearer: Option<&str>,
        permission: Permission,
    ) -> VaultResult<WorkspaceScope> {
        let principal = self.verify(bearer).await?;
        Ok(WorkspaceScope::for_principal(principal, permission)?)
    }

    /// The service allowed to use plaintext, or the same NOT_FOUND a missing
    /// credential gets: a user token learns nothing from trying.
    pub async fn authorize_credential_user(
        &self,
        bearer: Option<&str>,
    ) -> VaultResult<ServiceCaller> {
        let principal = self.verify(bearer).await?;
        let allowed = &self.inner.config.decrypt_services;
        match ServiceCaller::for_principal(&principal) {
            Some(caller) if allowed.is_empty() || allowed.iter().any(|n| n == caller.name()) => {
                Ok(caller)
            }
            _ => {
                tracing::warn!(
                    subject = %principal.actor(),
                    "credential access refused to a caller that may not use plaintext"
                );
                Err(VaultError::NotFound("credential"))
            }
        }
    }

    /// Any service, for key management. There is nothing to hide about
    /// master key versions, so other callers are plainly refused.
    pub async fn authorize_operator(&self, bearer: Option<&str>) -> VaultResult<ServiceCaller> {
        let principal = self.verify(bearer).await?;
        ServiceCaller::for_principal(&principal).ok_or_else(|| {
            VaultError::PermissionDenied("key management needs a service token".to_owned())
        })
    }
}
