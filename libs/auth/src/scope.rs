//! The workspace a verified caller acts in. Every tenant-owned query starts
//! from a `WorkspaceScope`, and only a verified principal produces one.

use uuid::Uuid;

use crate::{AuthError, Permission, Principal};

#[derive(Clone, Debug)]
pub struct WorkspaceScope {
    pub workspace_id: Uuid,
    principal: Principal,
}

impl WorkspaceScope {
    /// The scope of a principal whose token was already verified, once it is
    /// known to hold `permission`.
    pub fn for_principal(principal: Principal, permission: Permission) -> Result<Self, AuthError> {
        principal.require(permission)?;
        WorkspaceScope::of_principal(principal)
    }

    /// The scope of the workspace a verified principal names, for a service
    /// that checks each call's permission itself.
    pub fn of_principal(principal: Principal) -> Result<Self, AuthError> {
        // A service token names no workspace: it cannot act on tenant rows
        // through the public API.
        let workspace_id = principal.workspace_id.ok_or_else(|| {
            AuthError::PermissionDenied("the caller acts in no workspace".to_owned())
        })?;
        Ok(WorkspaceScope {
            workspace_id,
            principal,
        })
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn user_id(&self) -> Option<Uuid> {
        self.principal.user_id()
    }

    /// "user:<id>" or "service:<name>", as recorded on what the caller
    /// saves and in the audit log.
    pub fn actor(&self) -> String {
        self.principal.actor()
    }
}

#[cfg(test)]
mod tests {
    use crate::Role;
    use crate::Subject;

    use super::*;

    fn member(workspace_id: Option<Uuid>, role: Role) -> Principal {
        Principal {
            subject: Subject::User(Uuid::now_v7()),
            workspace_id,
            organization_id: None,
            role: Some(role),
            api_key_id: None,
            api_key_version: None,
        }
    }

    #[test]
    fn a_scope_needs_the_permission_and_a_workspace() {
        let workspace_id = Uuid::now_v7();
        let scope = WorkspaceScope::for_principal(
            member(Some(workspace_id), Role::Editor),
            Permission::WorkspaceRead,
        )
        .unwrap();
        assert_eq!(scope.workspace_id, workspace_id);
        assert_eq!(scope.actor(), scope.principal().actor());
        assert!(
            WorkspaceScope::for_principal(member(None, Role::Owner), Permission::WorkspaceRead)
                .is_err()
        );
        assert!(matches!(
            WorkspaceScope::of_principal(Principal::service("executor")),
            Err(AuthError::PermissionDenied(message)) if message == "the caller acts in no workspace"
        ));
    }
}
