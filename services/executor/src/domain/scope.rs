//! The workspace a verified caller acts in. Every tenant-owned query starts
//! from a `WorkspaceScope`, and only a verified principal produces one.

use tyboo_auth::Permission;
pub use tyboo_auth::WorkspaceScope;

use super::Domain;
use crate::error::{ExecutorError, ExecutorResult};

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
        Ok(WorkspaceScope::for_principal(principal, permission)?)
    }
}
