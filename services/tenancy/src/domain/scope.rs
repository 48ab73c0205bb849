//! The workspace a verified caller acts in. Every tenant-owned query starts
//! from a `WorkspaceScope`, and only a verified principal produces one.
//!
//! The few paths that must cross workspaces open their reads and
//! transactions with one of the system scopes named here, and nowhere else.

use tyboo_auth::{Permission, Principal, Role, Subject};
use tyboo_store::Scope;
use uuid::Uuid;

use super::Domain;
use crate::error::{TenancyError, TenancyResult};
use crate::storage::{members, workspaces};

/// Exchanging an API key for a token: the key is found by its secret alone.
pub(crate) const AUTHENTICATE: Scope = Scope::System("authenticate");
/// Finding an invitation by its token, before its workspace is known.
pub(crate) const ACCEPT_INVITATION: Scope = Scope::System("accept invitation");
/// The first start: founding the first organization, or renewing its key.
pub(crate) const FIRST_START: Scope = Scope::System("first start");
/// The platform's signing keys, and the global chain that records rotations.
pub(crate) const SIGNING_KEYS: Scope = Scope::System("signing keys");
/// The log of access changes, which names members and keys of every workspace.
pub(crate) const ACCESS_CHANGES: Scope = Scope::System("access changes");
/// The global audit chain, for events of no workspace.
pub(crate) const GLOBAL_AUDIT: Scope = Scope::System("global audit chain");
/// The workspaces of a member across their organization.
pub(crate) const ORGANIZATION: Scope = Scope::System("organization");
/// `tyboo admin`: an operator of the platform, across every tenant.
pub(crate) const ADMIN: Scope = Scope::System("admin");

/// A workspace scope with the organization the workspace belongs to. It
/// reads as the [`tyboo_auth::WorkspaceScope`] it extends.
#[derive(Clone, Debug)]
pub struct WorkspaceScope {
    pub organization_id: Uuid,
    /// The caller, with the role they hold in the workspace now (a token may
    /// carry a role that was changed since it was issued).
    workspace: tyboo_auth::WorkspaceScope,
}

impl std::ops::Deref for WorkspaceScope {
    type Target = tyboo_auth::WorkspaceScope;

    fn deref(&self) -> &tyboo_auth::WorkspaceScope {
        &self.workspace
    }
}

impl WorkspaceScope {
    /// The store scope of the caller's workspace.
    pub fn store_scope(&self) -> Scope {
        Scope::Workspace(self.workspace_id)
    }

    pub(crate) fn require(&self, permission: Permission) -> TenancyResult<()> {
        self.principal().require(permission).map_err(Into::into)
    }

    pub(crate) fn allows(&self, permission: Permission) -> bool {
        self.principal().require(permission).is_ok()
    }

    /// The role that bounds what the caller may grant: their own, or owner
    /// for a service acting for the mesh.
    pub(crate) fn rank(&self) -> Role {
        let principal = self.principal();
        match principal.subject {
            Subject::Service(_) => Role::Owner,
            // An operator reads only; it outranks nobody.
            Subject::Operator(_) => Role::Viewer,
            Subject::User(_) => principal.role.unwrap_or(Role::Viewer),
        }
    }
}

impl Domain {
    /// The scope of a request naming `workspace_id`. Anything but the
    /// caller's own, existing workspace answers "workspace not found" —
    /// the same whether or not that workspace exists.
    pub async fn workspace_scope(
        &self,
        caller: &Principal,
        workspace_id: &str,
    ) -> TenancyResult<WorkspaceScope> {
        let requested =
            Uuid::parse_str(workspace_id).map_err(|_| TenancyError::NotFound("workspace"))?;
        if caller.is_operator() {
            // An operator reads across tenants: any workspace it names, with
            // the matrix's operator column deciding what it may do there.
            let mut principal = caller.clone();
            principal.workspace_id = Some(requested);
            return self.own_scope(&principal).await;
        }
        if caller.workspace_id != Some(requested) {
            return Err(TenancyError::NotFound("workspace"));
        }
        self.own_scope(caller).await
    }

    /// The scope of the caller's own workspace, for calls that name none.
    pub async fn own_scope(&self, caller: &Principal) -> TenancyResult<WorkspaceScope> {
        let workspace_id = caller
            .workspace_id
            .ok_or(TenancyError::NotFound("workspace"))?;
        let db = self.store().read(Scope::Workspace(workspace_id));
        let workspace = workspaces::find_workspace(&db, workspace_id)
            .await?
            .ok_or(TenancyError::NotFound("workspace"))?;
        let mut principal = caller.clone();
        principal.organization_id = Some(workspace.organization_id);
        if let Subject::User(user_id) = caller.subject {
            // A removed member sees nothing, whatever their token says.
            let membership = members::find_membership(&db, workspace_id, user_id)
                .await?
                .ok_or(TenancyError::NotFound("workspace"))?;
            principal.role = Some(super::model::parse_role(&membership.role)?);
        }
        Ok(WorkspaceScope {
            organization_id: workspace.organization_id,
            workspace: tyboo_auth::WorkspaceScope::of_principal(principal)?,
        })
    }
}
