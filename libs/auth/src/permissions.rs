//! The one permission matrix. Roles are ordered; each holds every permission
//! of the roles below it, and each permission names the least role that
//! holds it.

use serde::{Deserialize, Serialize};
use tyboo_proto::common::Role as ProtoRole;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer = 1,
    Editor = 2,
    Admin = 3,
    Owner = 4,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Editor, Role::Admin, Role::Owner];

    pub fn from_proto(value: i32) -> Option<Role> {
        match ProtoRole::try_from(value).ok()? {
            ProtoRole::Unspecified => None,
            ProtoRole::Viewer => Some(Role::Viewer),
            ProtoRole::Editor => Some(Role::Editor),
            ProtoRole::Admin => Some(Role::Admin),
            ProtoRole::Owner => Some(Role::Owner),
        }
    }

    pub fn to_proto(self) -> i32 {
        let role = match self {
            Role::Viewer => ProtoRole::Viewer,
            Role::Editor => ProtoRole::Editor,
            Role::Admin => ProtoRole::Admin,
            Role::Owner => ProtoRole::Owner,
        };
        role as i32
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See the workspace, its organization and its members.
    WorkspaceRead,
    /// Create another workspace in the organization.
    WorkspaceCreate,
    MembersRead,
    /// Invite people and revoke pending invitations.
    MembersInvite,
    /// Change roles and remove members.
    MembersManage,
    /// Create, rotate and revoke one's own API keys.
    ApiKeysCreate,
    /// See, rotate and revoke anyone's API keys in the workspace.
    ApiKeysManageAll,
    AuditRead,
    WorkflowsRead,
    WorkflowsWrite,
    ExecutionsRun,
    CredentialsRead,
    CredentialsWrite,
    TemplatesPublish,
    UsageRead,
    /// Change the platform's own safeguards: circuit breakers and the limits
    /// of a workspace. No workspace role holds it; only operators do.
    PlatformManage,
}

impl Permission {
    /// The least role that holds this permission; `None` when no workspace
    /// role does (an operator's permission).
    pub fn least_role(self) -> Option<Role> {
        let role = match self {
            Permission::WorkspaceRead
            | Permission::MembersRead
            | Permission::WorkflowsRead
            | Permission::CredentialsRead
            | Permission::UsageRead => Role::Viewer,
            Permission::ApiKeysCreate
            | Permission::WorkflowsWrite
            | Permission::ExecutionsRun
            | Permission::CredentialsWrite => Role::Editor,
            Permission::MembersInvite
            | Permission::MembersManage
            | Permission::ApiKeysManageAll
            | Permission::AuditRead
            | Permission::TemplatesPublish => Role::Admin,
            Permission::WorkspaceCreate => Role::Owner,
            Permission::PlatformManage => return None,
        };
        Some(role)
    }
}

/// Whether `role` holds `permission`.
pub fn role_allows(role: Role, permission: Permission) -> bool {
    permission.least_role().is_some_and(|least| role >= least)
}

/// The matrix's operator column: what an operator token (`Subject::Operator`)
/// may do, in any workspace it names: read, and manage the platform's own
/// safeguards, never a workspace's content. The match has no fallback, so a
/// new permission must take a side here.
pub fn operator_allows(permission: Permission) -> bool {
    match permission {
        Permission::WorkspaceRead
        | Permission::MembersRead
        | Permission::AuditRead
        | Permission::WorkflowsRead
        | Permission::CredentialsRead
        | Permission::UsageRead
        | Permission::PlatformManage => true,
        Permission::WorkspaceCreate
        | Permission::MembersInvite
        | Permission::MembersManage
        | Permission::ApiKeysCreate
        | Permission::ApiKeysManageAll
        | Permission::WorkflowsWrite
        | Permission::ExecutionsRun
        | Permission::CredentialsWrite
        | Permission::TemplatesPublish => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_is_monotonic_in_role() {
        let permissions = [
            Permission::WorkspaceRead,
            Permission::MembersInvite,
            Permission::ApiKeysCreate,
            Permission::AuditRead,
            Permission::WorkspaceCreate,
        ];
        for permission in permissions {
            for pair in Role::ALL.windows(2) {
                if role_allows(pair[0], permission) {
                    assert!(role_allows(pair[1], permission), "{permission:?}");
                }
            }
        }
    }

    #[test]
    fn viewer_reads_but_cannot_invite() {
        assert!(role_allows(Role::Viewer, Permission::MembersRead));
        assert!(!role_allows(Role::Viewer, Permission::MembersInvite));
        for role in Role::ALL {
            assert!(!role_allows(role, Permission::PlatformManage), "{role}");
        }
        assert!(operator_allows(Permission::PlatformManage));
        assert!(!role_allows(Role::Editor, Permission::MembersInvite));
        assert!(role_allows(Role::Admin, Permission::MembersInvite));
        assert!(!role_allows(Role::Admin, Permission::WorkspaceCreate));
        assert!(role_allows(Role::Owner, Permission::WorkspaceCreate));
    }

    #[test]
    fn the_operator_column_reads_only_what_a_viewer_reads() {
        assert!(operator_allows(Permission::WorkspaceRead));
        assert!(operator_allows(Permission::AuditRead));
        assert!(!operator_allows(Permission::ApiKeysCreate));
        assert!(!operator_allows(Permission::MembersManage));
        assert!(!operator_allows(Permission::WorkspaceCreate));
    }

    #[test]
    fn roles_round_trip_through_proto_and_text() {
        for role in Role::ALL {
            assert_eq!(Role::from_proto(role.to_proto()), Some(role));
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::from_proto(0), None);
        assert_eq!(Role::from_proto(99), None);
    }
}
