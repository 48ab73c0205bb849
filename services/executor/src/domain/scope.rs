//! The workspace a verified caller acts in. Every tenant-owned query starts
//! from a `WorkspaceScope`, and only a verified principal produces one.

use tyboo_auth::{Permission, Principal};
use uuid::Uuid;

use super::Domain;
use crate::error::{ExecutorError, ExecutorResult};

#[derive(Clone, Debug)]
pub struct WorkspaceScope {
    pub workspace_id: Uuid,
    principal: Principal,
}

impl WorkspaceScope {
    /// The scope of a principal whose token was already verified.
    pub fn for_principal(principal: Principal, permission: Permission) -> ExecutorResult<Self> {
        principal.require(permission)?;
        // A service token names no workspace: it cannot act on tenant rows
        // through the public API.
        let workspace_id = principal.workspace_id.ok_or_else(|| {
            ExecutorError::PermissionDenied("the caller acts in no workspace".to_owned())
        })?;
        Ok(WorkspaceScope {
            workspace_id,
            principal,
        })
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// "user:<id>" or "service:<name>", as recorded on saved versions.
    pub fn actor(&self) -> String {
        self.principal.actor()
    }
}

impl Domain {
    /// Verifies the bearer token of a call and checks `permission`.
    pub async fn authorize(
        &self,
        bearer: Option<&str>,
        permission: Permission,
    ) -> ExecutorResult<WorkspaceScope> {
        let token = bearer.ok_or_else(|| {
            ExecutorError::Unauthenticated(
                "missing credentials: send `authorization: Bearer <token>`".to_owned(),
            )
        })?;
        let principal = self.inner.verifier.verify(token).await?;
        WorkspaceScope::for_principal(principal, permission)
    }
}
