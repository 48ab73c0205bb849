//! What an operator of the platform does from `tyboo admin`, in-process on
//! the database (the service may be stopped): see every tenant, create an
//! organization, give a member a new key when theirs is lost, and mint a
//! short-lived operator token for `grpcurl`. Every action, reads included,
//! is on the audit log with the operator as its actor: reads of one
//! workspace on that workspace's chain, the rest on the global chain.

use tyboo_auth::Principal;
use tyboo_store::Scope;
use uuid::Uuid;

use super::Domain;
use super::api_keys::issue_api_key;
use super::audit::{self, AuditEntry, GLOBAL_CHAIN};
use super::model::{Bootstrap, IssuedToken, Member, Organization, Workspace, member_from_rows};
use super::scope::ADMIN;
use super::validation::{Email, Name};
use super::workspaces as workspaces_domain;
use crate::error::{TenancyError, TenancyResult};
use crate::storage::{self, audit as audit_store, members, workspaces};

/// The longest an operator token lives: it reads across every tenant.
pub const OPERATOR_TOKEN_TTL_MAX_SECONDS: u64 = 3600;
/// The name of the key `tyboo admin keys issue` gives a member.
const RECOVERY_KEY_NAME: &str = "recovery";

/// The operator an admin action is recorded for, such as `operator:cli`.
#[derive(Clone, Debug)]
pub struct Operator {
    principal: Principal,
}

impl Operator {
    /// `name` is a short lowercase identifier (see `is_valid_service_name`).
    pub fn new(name: &str) -> TenancyResult<Operator> {
        if !tyboo_auth::is_valid_service_name(name) {
            return Err(TenancyError::invalid(
                "operator",
                "must be a short lowercase name",
            ));
        }
        Ok(Operator {
            principal: Principal::operator(name),
        })
    }

    pub fn actor(&self) -> String {
        self.principal.actor()
    }
}

/// Who a recovery key is for: a user id or an email address.
#[derive(Clone, Debug)]
pub enum MemberRef {
    Id(Uuid),
    Email(Email),
}

impl MemberRef {
    pub fn parse(text: &str) -> TenancyResult<MemberRef> {
        match Uuid::parse_str(text) {
            Ok(id) => Ok(MemberRef::Id(id)),
            Err(_) => Email::parse("user", text).map(MemberRef::Email),
        }
    }
}

impl Domain {
    /// Appends one event to the global chain in a transaction of its own.
    async fn audit_globally(&self, operator: &Operator, entry: AuditEntry) -> TenancyResult<()> {
        let transaction = self.store().write(ADMIN).await?;
        audit_store::ensure_head(&transaction, GLOBAL_CHAIN).await?;
        let mut head = audit::lock_chain(&transaction, GLOBAL_CHAIN).await?;
        audit::append(&transaction, &mut head, &operator.actor(), entry).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn admin_list_organizations(
        &self,
        operator: &Operator,
    ) -> TenancyResult<Vec<Organization>> {
        self.audit_globally(
            operator,
            AuditEntry::new("operator.organizations.listed", "organizations"),
        )
        .await?;
        let rows = workspaces::list_organizations(&self.store().read(ADMIN)).await?;
        Ok(rows.into_iter().map(Organization::from).collect())
    }

    pub async fn admin_list_workspaces(
        &self,
        operator: &Operator,
        organization_id: Option<Uuid>,
    ) -> TenancyResult<Vec<Workspace>> {
        let mut entry = AuditEntry::new("operator.workspaces.listed", "workspaces");
        if let Some(organization_id) = organization_id {
            if workspaces::find_organization(&self.store().read(ADMIN), organization_id)
                .await?
                .is_none()
            {
                return Err(TenancyError::NotFound("organization"));
            }
            entry = entry.detail("organization_id", organization_id.to_string());
        }
        self.audit_globally(operator, entry).await?;
        let rows = workspaces::list_workspaces(&self.store().read(ADMIN), organization_id).await?;
        Ok(rows.into_iter().map(Workspace::from).collect())
    }

    pub async fn admin_list_members(
        &self,
        operator: &Operator,
        workspace_id: Uuid,
    ) -> TenancyResult<Vec<Member>> {
        let transaction = self.store().write(Scope::Workspace(workspace_id)).await?;
        let mut head = audit::lock_chain(&transaction, workspace_id).await?;
        audit::append(
            &transaction,
            &mut head,
            &operator.actor(),
            AuditEntry::new(
                "operator.members.listed",
                format!("workspace:{workspace_id}"),
            ),
        )
        .await?;
        let rows = members::list_members(&transaction, workspace_id).await?;
        transaction.commit().await?;
        rows.into_iter()
            .map(|(membership, user)| member_from_rows(membership, user))
            .collect()
    }

    /// A new organization with its first workspace and owner (created if the
    /// address is new), and the owner's first API key.
    pub async fn admin_create_organization(
        &self,
        operator: &Operator,
        organization_name: &Name,
        workspace_name: &Name,
        owner_email: &Email,
    ) -> TenancyResult<Bootstrap> {
        let actor = operator.actor();
        let transaction = self.store().write(ADMIN).await?;
        let (bootstrap, _) = workspaces_domain::found_organization(
            &transaction,
            organization_name,
            workspace_name,
            owner_email,
            &actor,
            storage::now(),
        )
        .await?;
        transaction.commit().await?;
        Ok(bootstrap)
    }

    /// Recovery: a new API key for an existing member of the workspace, whose
    /// other keys keep working (revoke them with the key itself).
    pub async fn admin_issue_api_key(
        &self,
        operator: &Operator,
        workspace_id: Uuid,
        member: &MemberRef,
    ) -> TenancyResult<(Member, crate::domain::IssuedApiKey)> {
        let transaction = self.store().write(Scope::Workspace(workspace_id)).await?;
        let mut head = audit::lock_chain(&transaction, workspace_id).await?;
        let user_id = match member {
            MemberRef::Id(id) => *id,
            MemberRef::Email(email) => {
                workspaces::find_user_by_email(&transaction, email.as_str())
                    .await?
                    .ok_or(TenancyError::NotFound("member"))?
                    .id
            }
        };
        let (membership, user) = members::find_member(&transaction, workspace_id, user_id)
            .await?
            .ok_or(TenancyError::NotFound("member"))?;
        let issued = issue_api_key(
            &transaction,
            &mut head,
            &operator.actor(),
            workspace_id,
            user_id,
            RECOVERY_KEY_NAME,
            None,
        )
        .await?;
        transaction.commit().await?;
        Ok((member_from_rows(membership, user)?, issued))
    }

    /// A token for the operator itself, living at most
    /// [`OPERATOR_TOKEN_TTL_MAX_SECONDS`]; services grant it the matrix's
    /// operator column. Tenancy lets it name any workspace; the vault and the
    /// executor act in the token's own workspace, so `workspace_id` gives it
    /// one (which must exist), and without it they refuse it.
    pub async fn admin_issue_operator_token(
        &self,
        operator: &Operator,
        ttl_seconds: u64,
        workspace_id: Option<Uuid>,
    ) -> TenancyResult<IssuedToken> {
        if ttl_seconds == 0 || ttl_seconds > OPERATOR_TOKEN_TTL_MAX_SECONDS {
            return Err(TenancyError::invalid(
                "ttl",
                format!("must be between 1 second and {OPERATOR_TOKEN_TTL_MAX_SECONDS} seconds"),
            ));
        }
        let mut principal = operator.principal.clone();
        let entry = AuditEntry::new("operator.token.issued", operator.actor())
            .detail("ttl_seconds", ttl_seconds.to_string());
        match workspace_id {
            Some(workspace_id) => {
                let scope = Scope::Workspace(workspace_id);
                let workspace = workspaces::find_workspace(&self.store().read(scope), workspace_id)
                    .await?
                    .ok_or(TenancyError::NotFound("workspace"))?;
                principal.workspace_id = Some(workspace.id);
                principal.organization_id = Some(workspace.organization_id);
                let transaction = self.store().write(scope).await?;
                let mut head = audit::lock_chain(&transaction, workspace.id).await?;
                audit::append(&transaction, &mut head, &operator.actor(), entry).await?;
                transaction.commit().await?;
            }
            None => self.audit_globally(operator, entry).await?,
        }
        self.sign(principal, ttl_seconds).await
    }
}
