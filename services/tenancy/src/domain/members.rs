//! Members and their roles, with the rules a real team needs: nobody raises
//! anyone above their own role, nobody changes someone ranked above them,
//! and a workspace always keeps an owner.

use tyboo_auth::{Permission, Role};
use uuid::Uuid;

use super::Domain;
use super::access_changes::{self, AccessChangeOf};
use super::audit::{self, AuditEntry};
use super::model::{Member, member_from_rows, parse_role};
use super::scope::WorkspaceScope;
use crate::error::{TenancyError, TenancyResult};
use crate::storage::{self, api_keys, members};

/// Who acts, for the rules below.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Actor {
    pub user_id: Option<Uuid>,
    /// The highest role the actor may grant or touch.
    pub rank: Role,
}

/// Whom the action touches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub user_id: Uuid,
    pub role: Role,
}

fn last_owner() -> TenancyError {
    TenancyError::FailedPrecondition("the workspace must keep at least one owner".to_owned())
}

/// Rules for changing `target`'s role to `new_role`, given how many owners
/// the workspace has. Permission to manage others is checked before this.
pub(crate) fn check_role_change(
    actor: Actor,
    target: Target,
    new_role: Role,
    owner_count: u64,
) -> TenancyResult<()> {
    if actor.user_id == Some(target.user_id) {
        if new_role > target.role {
            return Err(TenancyError::PermissionDenied(
                "nobody can raise their own role".to_owned(),
            ));
        }
    } else {
        if target.role > actor.rank {
            return Err(TenancyError::PermissionDenied(format!(
                "cannot change a member whose role ({}) is above your own ({})",
                target.role, actor.rank
            )));
        }
        if new_role > actor.rank {
            return Err(TenancyError::PermissionDenied(format!(
                "cannot grant a role above your own ({})",
                actor.rank
            )));
        }
    }
    if target.role == Role::Owner && new_role != Role::Owner && owner_count <= 1 {
        return Err(last_owner());
    }
    Ok(())
}

/// Rules for removing `target` (leaving, when it is the actor).
pub(crate) fn check_removal(actor: Actor, target: Target, owner_count: u64) -> TenancyResult<()> {
    if actor.user_id != Some(target.user_id) && target.role > actor.rank {
        return Err(TenancyError::PermissionDenied(format!(
            "cannot remove a member whose role ({}) is above your own ({})",
            target.role, actor.rank
        )));
    }
    if target.role == Role::Owner && owner_count <= 1 {
        return Err(last_owner());
    }
    Ok(())
}

/// Nobody invites anyone above their own role.
pub(crate) fn check_invitation_role(actor_rank: Role, role: Role) -> TenancyResult<()> {
    if role > actor_rank {
        return Err(TenancyError::PermissionDenied(format!(
            "cannot invite with a role above your own ({actor_rank})"
        )));
    }
    Ok(())
}

fn actor_of(scope: &WorkspaceScope) -> Actor {
    Actor {
        user_id: scope.user_id(),
        rank: scope.rank(),
    }
}

impl Domain {
    /// Every member of the workspace, in the order they joined.
    pub async fn list_members(&self, scope: &WorkspaceScope) -> TenancyResult<Vec<Member>> {
        scope.require(Permission::MembersRead)?;
        members::list_members(&self.store().read(scope.store_scope()), scope.workspace_id)
            .await?
            .into_iter()
            .map(|(membership, user)| member_from_rows(membership, user))
            .collect()
    }

    pub async fn update_member_role(
        &self,
        scope: &WorkspaceScope,
        user_id: Uuid,
        new_role: Role,
    ) -> TenancyResult<Member> {
        let is_self = scope.user_id() == Some(user_id);
        // Anyone may step down; changing others takes the manage permission.
        if is_self {
            scope.require(Permission::WorkspaceRead)?;
        } else {
            scope.require(Permission::MembersManage)?;
        }
        let transaction = self.store().write(scope.store_scope()).await?;
        // Locking the chain first serializes every change to the workspace,
        // so the owner count below cannot change before this commits.
        let mut head = audit::lock_chain(&transaction, scope.workspace_id).await?;
        let (membership, user) = members::find_member(&transaction, scope.workspace_id, user_id)
            .await?
            .ok_or(TenancyError::NotFound("member"))?;
        let current_role = parse_role(&membership.role)?;
        let owner_count =
            members::count_with_role(&transaction, scope.workspace_id, Role::Owner.as_str())
                .await?;
        check_role_change(
            actor_of(scope),
            Target {
                user_id,
                role: current_role,
            },
            new_role,
            owner_count,
        )?;
        if current_role != new_role {
            members::update_role(&transaction, membership.id, new_role.as_str()).await?;
            audit::append(
                &transaction,
                &mut head,
                &scope.actor(),
                AuditEntry::new("member.role_changed", format!("user:{user_id}"))
                    .detail("from", current_role.as_str())
                    .detail("to", new_role.as_str()),
            )
            .await?;
            access_changes::record(
                &transaction,
                self,
                scope.workspace_id,
                AccessChangeOf::RoleChanged { user_id },
            )
            .await?;
        }
        transaction.commit().await?;
        let mut member = member_from_rows(membership, user)?;
        member.role = new_role;
        Ok(member)
    }

    /// Removes a member and revokes every API key they hold in the workspace.
    pub async fn remove_member(&self, scope: &WorkspaceScope, user_id: Uuid) -> TenancyResult<()> {
        let is_self = scope.user_id() == Some(user_id);
        if is_self {
            scope.require(Permission::WorkspaceRead)?;
        } else {
            scope.require(Permission::MembersManage)?;
        }
        let transaction = self.store().write(scope.store_scope()).await?;
        let mut head = audit::lock_chain(&transaction, scope.workspace_id).await?;
        let membership = members::find_membership(&transaction, scope.workspace_id, user_id)
            .await?
            .ok_or(TenancyError::NotFound("member"))?;
        let role = parse_role(&membership.role)?;
        let owner_count =
            members::count_with_role(&transaction, scope.workspace_id, Role::Owner.as_str())
                .await?;
        check_removal(actor_of(scope), Target { user_id, role }, owner_count)?;
        let now = storage::now();
        let revoked =
            api_keys::revoke_all_of_member(&transaction, scope.workspace_id, user_id, now).await?;
        members::delete_membership(&transaction, membership.id).await?;
        audit::append(
            &transaction,
            &mut head,
            &scope.actor(),
            AuditEntry::new("member.removed", format!("user:{user_id}"))
                .detail("role", role.as_str())
                .detail("revoked_api_keys", revoked.to_string()),
        )
        .await?;
        // One change for the member covers the keys revoked with them.
        access_changes::record(
            &transaction,
            self,
            scope.workspace_id,
            AccessChangeOf::MemberRemoved { user_id },
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn user(rank: Role) -> (Actor, Uuid) {
        let id = Uuid::now_v7();
        (
            Actor {
                user_id: Some(id),
                rank,
            },
            id,
        )
    }

    fn target(role: Role) -> Target {
        Target {
            user_id: Uuid::now_v7(),
            role,
        }
    }

    fn code(result: TenancyResult<()>) -> Option<Code> {
        result.err().map(|error| error.code())
    }

    #[test]
    fn nobody_grants_above_their_own_role() {
        let (admin, _) = user(Role::Admin);
        assert_eq!(
            code(check_role_change(
                admin,
                target(Role::Viewer),
                Role::Admin,
                1
            )),
            None
        );
        assert_eq!(
            code(check_role_change(
                admin,
                target(Role::Viewer),
                Role::Owner,
                1
            )),
            Some(Code::PermissionDenied)
        );
        assert_eq!(
            code(check_invitation_role(Role::Admin, Role::Owner)),
            Some(Code::PermissionDenied)
        );
        assert_eq!(code(check_invitation_role(Role::Owner, Role::Owner)), None);
    }

    #[test]
    fn an_admin_cannot_change_or_remove_an_owner() {
        let (admin, _) = user(Role::Admin);
        assert_eq!(
            code(check_role_change(
                admin,
                target(Role::Owner),
                Role::Viewer,
                2
            )),
            Some(Code::PermissionDenied)
        );
        assert_eq!(
            code(check_removal(admin, target(Role::Owner), 2)),
            Some(Code::PermissionDenied)
        );
        // Admins manage each other.
        assert_eq!(
            code(check_role_change(
                admin,
                target(Role::Admin),
                Role::Editor,
                1
            )),
            None
        );
    }

    #[test]
    fn the_last_owner_stays() {
        let (owner, owner_id) = user(Role::Owner);
        let myself = Target {
            user_id: owner_id,
            role: Role::Owner,
        };
        assert_eq!(
            code(check_role_change(owner, myself, Role::Admin, 1)),
            Some(Code::FailedPrecondition)
        );
        assert_eq!(
            code(check_removal(owner, myself, 1)),
            Some(Code::FailedPrecondition)
        );
        assert_eq!(code(check_role_change(owner, myself, Role::Admin, 2)), None);
        assert_eq!(code(check_removal(owner, target(Role::Owner), 2)), None);
    }

    #[test]
    fn people_may_step_down_but_not_up() {
        let (editor, editor_id) = user(Role::Editor);
        let myself = Target {
            user_id: editor_id,
            role: Role::Editor,
        };
        assert_eq!(
            code(check_role_change(editor, myself, Role::Viewer, 1)),
            None
        );
        assert_eq!(
            code(check_role_change(editor, myself, Role::Admin, 1)),
            Some(Code::PermissionDenied)
        );
        assert_eq!(code(check_removal(editor, myself, 1)), None);
    }
}
