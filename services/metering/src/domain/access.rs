//! Who is calling. Usage is read in one workspace at a time, by its members
//! or by the platform (operators and the mesh's services); it is recorded
//! by services only.

use tyboo_auth::{Permission, Principal};
use uuid::Uuid;

use super::Domain;
use crate::error::{MeteringError, MeteringResult};

impl Domain {
    async fn verify(&self, bearer: Option<&str>) -> MeteringResult<Principal> {
        let token = bearer.ok_or_else(|| {
            MeteringError::Unauthenticated(
                "missing credentials: send `authorization: Bearer <token>`".to_owned(),
            )
        })?;
        Ok(self.inner.verifier.verify(token).await?)
    }

    /// The workspace whose usage the caller may read. A member of another
    /// workspace gets the same NOT_FOUND as a workspace that does not exist.
    pub async fn authorize_reader(
        &self,
        bearer: Option<&str>,
        workspace_id: &str,
    ) -> MeteringResult<Uuid> {
        let principal = self.verify(bearer).await?;
        let workspace_id = Uuid::parse_str(workspace_id)
            .map_err(|_| MeteringError::invalid("workspace_id", "must be a UUID"))?;
        if principal.is_service() || principal.is_operator() {
            principal.require(Permission::UsageRead)?;
            return Ok(workspace_id);
        }
        if principal.workspace_id != Some(workspace_id) {
            return Err(MeteringError::NotFound("workspace"));
        }
        principal.require(Permission::UsageRead)?;
        Ok(workspace_id)
    }

    /// The mesh service recording usage; anyone else is refused.
    pub async fn authorize_recorder(&self, bearer: Option<&str>) -> MeteringResult<String> {
        let principal = self.verify(bearer).await?;
        if !principal.is_service() {
            return Err(MeteringError::PermissionDenied(
                "usage is recorded by the mesh's services only".to_owned(),
            ));
        }
        Ok(principal.actor())
    }
}
