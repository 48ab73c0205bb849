//! Invitations: a single-use token for an e-mail address and a role, shown
//! once, stored as a hash, valid until it expires, is accepted or revoked.

use chrono::{DateTime, Utc};
use tyboo_auth::{Permission, Principal, Role};
use tyboo_store::Scope;
use uuid::Uuid;

use super::Domain;
use super::api_keys::issue_api_key;
use super::audit::{self, AuditEntry};
use super::members::check_invitation_role;
use super::model::{
    Invitation, InvitationState, IssuedApiKey, IssuedInvitation, Member, Workspace,
    invitation_from_row, parse_role,
};
use super::scope::{ACCEPT_INVITATION, WorkspaceScope};
use super::secrets::{INVITATION_TOKEN_PREFIX, hash_secret, new_invitation_token};
use super::validation::{Email, Name};
use super::workspaces::FIRST_KEY_NAME;
use crate::error::{TenancyError, TenancyResult};
use crate::storage::invitations::{NewInvitation, STATE_ACCEPTED, STATE_REVOKED};
use crate::storage::{self, invitations, members, workspaces};

/// What accepting an invitation produced.
#[derive(Clone, Debug)]
pub struct Acceptance {
    pub member: Member,
    pub workspace: Workspace,
    pub api_key: IssuedApiKey,
}

impl Domain {
    /// The lifetime for a request's `ttl_seconds`: the default for zero, at
    /// most the configured maximum.
    pub fn invitation_ttl(&self, requested_seconds: i64) -> TenancyResult<chrono::Duration> {
        let config = self.config();
        let seconds = match requested_seconds {
            0 => config.invitation_ttl_seconds,
            negative if negative < 0 => {
                return Err(TenancyError::invalid("ttl_seconds", "must not be negative"));
            }
            // Longer than allowed: the longest allowed, as a page size is
            // (the answer's expire_time shows what was granted).
            seconds => seconds.min(config.invitation_ttl_max_seconds),
        };
        Ok(super::bounded_seconds(
            u64::try_from(seconds).unwrap_or_default(),
        ))
    }

    pub async fn create_invitation(
        &self,
        scope: &WorkspaceScope,
        email: &Email,
        role: Role,
        ttl: chrono::Duration,
    ) -> TenancyResult<IssuedInvitation> {
        scope.require(Permission::MembersInvite)?;
        check_invitation_role(scope.rank(), role)?;
        let generated = new_invitation_token()?;
        let actor = scope.actor();
        let transaction = self.store().write(scope.store_scope()).await?;
        let mut head = audit::lock_chain(&transaction, scope.workspace_id).await?;
        let now = storage::now();
        if let Some(user) = workspaces::find_user_by_email(&transaction, email.as_str()).await?
            && members::find_membership(&transaction, scope.workspace_id, user.id)
                .await?
                .is_some()
        {
            return Err(TenancyError::AlreadyExists(
                "email: already a member of this workspace".to_owned(),
            ));
        }
        if invitations::find_open_for_email(&transaction, scope.workspace_id, email.as_str(), now)
            .await?
            .is_some()
        {
            return Err(TenancyError::AlreadyExists(
                "email: already has a pending invitation; revoke it to invite again".to_owned(),
            ));
        }
        let row = invitations::insert(
            &transaction,
            NewInvitation {
                id: Uuid::now_v7(),
                workspace_id: scope.workspace_id,
                email: email.as_str(),
                role: role.as_str(),
                token_hash: &generated.hash,
                invited_by: &actor,
                create_time: now,
                expire_time: now + ttl,
            },
        )
        .await?;
        audit::append(
            &transaction,
            &mut head,
            &actor,
            AuditEntry::new("invitation.created", format!("invitation:{}", row.id))
                .detail("email", email.as_str())
                .detail("role", role.as_str())
                .detail("expire_time", row.expire_time.to_rfc3339()),
        )
        .await?;
        transaction.commit().await?;
        Ok(IssuedInvitation {
            invitation: invitation_from_row(row, now)?,
            token: generated.secret,
        })
    }

    /// Pending invitations, newest first; closed ones too when asked.
    pub async fn list_invitations(
        &self,
        scope: &WorkspaceScope,
        include_closed: bool,
    ) -> TenancyResult<Vec<Invitation>> {
        scope.require(Permission::MembersInvite)?;
        let now = storage::now();
        invitations::list(
            &self.store().read(scope.store_scope()),
            scope.workspace_id,
            include_closed,
            now,
        )
        .await?
        .into_iter()
        .map(|row| invitation_from_row(row, now))
        .collect()
    }

    pub async fn revoke_invitation(
        &self,
        scope: &WorkspaceScope,
        invitation_id: Uuid,
    ) -> TenancyResult<Invitation> {
        scope.require(Permission::MembersInvite)?;
        let transaction = self.store().write(scope.store_scope()).await?;
        let mut head = audit::lock_chain(&transaction, scope.workspace_id).await?;
        let row = invitations::find_in_workspace(&transaction, scope.workspace_id, invitation_id)
            .await?
            .ok_or(TenancyError::NotFound("invitation"))?;
        let now = storage::now();
        ensure_open(&invitation_from_row(row.clone(), now)?)?;
        invitations::close(&transaction, row.id, STATE_REVOKED, None, now).await?;
        audit::append(
            &transaction,
            &mut head,
            &scope.actor(),
            AuditEntry::new("invitation.revoked", format!("invitation:{}", row.id))
                .detail("email", row.email.clone()),
        )
        .await?;
        transaction.commit().await?;
        let mut invitation = invitation_from_row(row, now)?;
        invitation.state = InvitationState::Revoked;
        Ok(invitation)
    }

    /// Accepts an invitation with its token: creates the user if the address
    /// is new, the membership, and a first API key, in one transaction.
    ///
    /// The token alone proves only that its holder received the invitation,
    /// not that they own the address. So when the address already belongs to
    /// a user, `caller` must be that user (signed in with one of their own
    /// keys): otherwise whoever holds the token would get a key acting as them.
    /// Users are never merged; nothing is written when the check fails.
    pub async fn accept_invitation(
        &self,
        token: &str,
        display_name: Option<&Name>,
        caller: Option<&Principal>,
    ) -> TenancyResult<Acceptance> {
        let not_found = || TenancyError::NotFound("invitation");
        if !token.starts_with(INVITATION_TOKEN_PREFIX) {
            return Err(not_found());
        }
        let token_hash = hash_secret(token);
        // Find the workspace first, outside the transaction; the state is
        // checked again once its chain is locked.
        let found =
            invitations::find_by_token_hash(&self.store().read(ACCEPT_INVITATION), &token_hash)
                .await?
                .ok_or_else(not_found)?;
        let transaction = self
            .store()
            .write(Scope::Workspace(found.workspace_id))
            .await?;
        let mut head = audit::lock_chain(&transaction, found.workspace_id).await?;
        let row = invitations::find_by_token_hash(&transaction, &token_hash)
            .await?
            .ok_or_else(not_found)?;
        let now = storage::now();
        ensure_open(&invitation_from_row(row.clone(), now)?)?;
        let role = parse_role(&row.role)?;
        let workspace = workspaces::find_workspace(&transaction, row.workspace_id)
            .await?
            .ok_or(TenancyError::NotFound("workspace"))?;
        let display_name = match display_name {
            Some(name) => name.as_str().to_owned(),
            None => row.email.split('@').next().unwrap_or(&row.email).to_owned(),
        };
        let user = match workspaces::find_user_by_email(&transaction, &row.email).await? {
            Some(existing) => match caller {
                None => {
                    return Err(TenancyError::Unauthenticated(
                            "an account already uses this address: accept the invitation with one of that account's API keys".to_owned(),
                        ));
                }
                Some(caller) if caller.user_id() != Some(existing.id) => {
                    return Err(TenancyError::PermissionDenied(
                        "this invitation is for another account's address".to_owned(),
                    ));
                }
                Some(_) => existing,
            },
            None => {
                let (user, created) =
                    workspaces::find_or_create_user(&transaction, &row.email, &display_name, now)
                        .await?;
                if !created {
                    // Another acceptance created the account meanwhile: it is
                    // that account's now, and only its owner may join with it.
                    return Err(TenancyError::FailedPrecondition(
                        "an account for this address was just created: accept again with its API key".to_owned(),
                    ));
                }
                user
            }
        };
        if members::find_membership(&transaction, row.workspace_id, user.id)
            .await?
            .is_some()
        {
            return Err(TenancyError::AlreadyExists(
                "already a member of this workspace".to_owned(),
            ));
        }
        let membership =
            members::insert_membership(&transaction, row.workspace_id, user.id, role.as_str(), now)
                .await?;
        if !invitations::close(&transaction, row.id, STATE_ACCEPTED, Some(user.id), now).await? {
            return Err(TenancyError::FailedPrecondition(
                "invitation was already used".to_owned(),
            ));
        }
        let actor = format!("user:{}", user.id);
        audit::append(
            &transaction,
            &mut head,
            &actor,
            AuditEntry::new("invitation.accepted", format!("invitation:{}", row.id))
                .detail("user_id", user.id.to_string())
                .detail("email", row.email.clone())
                .detail("role", role.as_str()),
        )
        .await?;
        let api_key = issue_api_key(
            &transaction,
            &mut head,
            &actor,
            row.workspace_id,
            user.id,
            FIRST_KEY_NAME,
            None,
        )
        .await?;
        transaction.commit().await?;
        let member = super::model::member_from_rows(membership, user)?;
        Ok(Acceptance {
            member,
            workspace: Workspace::from(workspace),
            api_key,
        })
    }
}

/// Only a pending, unexpired invitation can be accepted or revoked.
fn ensure_open(invitation: &Invitation) -> TenancyResult<()> {
    let closed = |why: &str| Err(TenancyError::FailedPrecondition(why.to_owned()));
    match invitation.state {
        InvitationState::Pending => Ok(()),
        InvitationState::Accepted => closed("invitation was already accepted"),
        InvitationState::Revoked => closed("invitation was revoked"),
        InvitationState::Expired => closed(&format!(
            "invitation expired at {}",
            format_time(invitation.expire_time)
        )),
    }
}

fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
