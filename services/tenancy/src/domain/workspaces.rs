//! Organizations and workspaces, the caller's own view, and the first start.

use tyboo_auth::{Permission, Principal, Role};
use tyboo_store::{Scope, Tx};
use uuid::Uuid;

use super::Domain;
use super::access_changes::{self, AccessChangeOf};
use super::api_keys::issue_api_key;
use super::audit::{self, AuditEntry, SYSTEM_ACTOR};
use super::model::{Bootstrap, IssuedApiKey, Organization, User, Workspace};
use super::scope::{FIRST_START, ORGANIZATION, WorkspaceScope};
use super::validation::{Email, Name};
use crate::error::{TenancyError, TenancyResult};
use crate::storage::{
    self, LOCK_BOOTSTRAP, api_keys, audit as audit_store, first_start, members, workspaces,
};

/// The name of the key a member receives with a new membership.
pub(crate) const FIRST_KEY_NAME: &str = "default";

impl Domain {
    /// The caller with their current role, and who they are if a person.
    pub async fn current_principal(
        &self,
        caller: &Principal,
    ) -> TenancyResult<(Principal, Option<User>)> {
        let (principal, scope) = match caller.workspace_id {
            Some(workspace_id) => (
                self.own_scope(caller).await?.principal().clone(),
                Scope::Workspace(workspace_id),
            ),
            None => (caller.clone(), ORGANIZATION),
        };
        let user = match principal.user_id() {
            Some(user_id) => workspaces::find_user(&self.store().read(scope), user_id)
                .await?
                .map(User::from),
            None => None,
        };
        Ok((principal, user))
    }

    pub async fn get_organization(&self, scope: &WorkspaceScope) -> TenancyResult<Organization> {
        scope.require(Permission::WorkspaceRead)?;
        workspaces::find_organization(
            &self.store().read(scope.store_scope()),
            scope.organization_id,
        )
        .await?
        .map(Organization::from)
        .ok_or(TenancyError::NotFound("organization"))
    }

    pub async fn get_workspace(&self, scope: &WorkspaceScope) -> TenancyResult<Workspace> {
        scope.require(Permission::WorkspaceRead)?;
        workspaces::find_workspace(&self.store().read(scope.store_scope()), scope.workspace_id)
            .await?
            .map(Workspace::from)
            .ok_or(TenancyError::NotFound("workspace"))
    }

    /// The workspaces of the caller's organization that the caller belongs to.
    pub async fn list_workspaces(&self, scope: &WorkspaceScope) -> TenancyResult<Vec<Workspace>> {
        scope.require(Permission::WorkspaceRead)?;
        let Some(user_id) = scope.user_id() else {
            // A service belongs to no workspace; it sees the one it names.
            return Ok(vec![self.get_workspace(scope).await?]);
        };
        let db = self.store().read(ORGANIZATION);
        let rows = workspaces::workspaces_of_member(&db, scope.organization_id, user_id).await?;
        Ok(rows.into_iter().map(Workspace::from).collect())
    }

    /// A new workspace in the caller's organization, owned by the caller, who
    /// receives a first API key for it.
    pub async fn create_workspace(
        &self,
        scope: &WorkspaceScope,
        name: &Name,
    ) -> TenancyResult<(Workspace, IssuedApiKey)> {
        scope.require(Permission::WorkspaceCreate)?;
        let owner_id = scope.user_id().ok_or_else(|| {
            TenancyError::PermissionDenied("only a person can own a workspace".to_owned())
        })?;
        let actor = scope.actor();
        let now = storage::now();
        // The transaction acts in the workspace it creates.
        let workspace_id = Uuid::now_v7();
        let transaction = self.store().write(Scope::Workspace(workspace_id)).await?;
        let workspace = workspaces::insert_workspace(
            &transaction,
            workspace_id,
            scope.organization_id,
            name.as_str(),
            now,
        )
        .await?;
        audit_store::insert_head(&transaction, workspace.id).await?;
        let mut head = audit::lock_chain(&transaction, workspace.id).await?;
        members::insert_membership(
            &transaction,
            workspace.id,
            owner_id,
            Role::Owner.as_str(),
            now,
        )
        .await?;
        audit::append(
            &transaction,
            &mut head,
            &actor,
            AuditEntry::new("workspace.created", format!("workspace:{}", workspace.id))
                .detail("name", name.as_str())
                .detail("organization_id", scope.organization_id.to_string()),
        )
        .await?;
        audit::append(
            &transaction,
            &mut head,
            &actor,
            AuditEntry::new("member.added", format!("user:{owner_id}"))
                .detail("role", Role::Owner.as_str()),
        )
        .await?;
        let issued = issue_api_key(
            &transaction,
            &mut head,
            &actor,
            workspace.id,
            owner_id,
            FIRST_KEY_NAME,
            None,
        )
        .await?;
        transaction.commit().await?;
        Ok((Workspace::from(workspace), issued))
    }

    /// On first start, creates an organization, a workspace, its owner and an
    /// API key for the owner, all audited as "system", and records them as
    /// the first start. Later starts return a fresh key for that owner (the
    /// previous one revoked) for as long as the first start's key has never
    /// been used, so a key lost before its first use never locks anyone
    /// out; after that, and on any platform whose organizations were not
    /// made by a first start, they return `None`.
    pub async fn bootstrap_if_empty(
        &self,
        organization_name: &Name,
        workspace_name: &Name,
        owner_email: &Email,
    ) -> TenancyResult<Option<Bootstrap>> {
        let transaction = self.store().write(FIRST_START).await?;
        // Two processes starting together must not both bootstrap.
        storage::lock_globally(&transaction, LOCK_BOOTSTRAP).await?;
        if workspaces::any_organization_exists(&transaction).await? {
            let renewed = self.renew_unused_first_key(&transaction).await?;
            if renewed.is_some() {
                transaction.commit().await?;
            } else {
                transaction.rollback().await?;
            }
            return Ok(renewed);
        }
        let now = storage::now();
        let (bootstrap, api_key_id) = found_organization(
            &transaction,
            organization_name,
            workspace_name,
            owner_email,
            SYSTEM_ACTOR,
            now,
        )
        .await?;
        first_start::insert(
            &transaction,
            bootstrap.organization_id,
            bootstrap.workspace_id,
            bootstrap.user_id,
            api_key_id,
            now,
        )
        .await?;
        transaction.commit().await?;
        tracing::info!(
            organization_id = %bootstrap.organization_id,
            workspace_id = %bootstrap.workspace_id,
            "created the first organization and workspace"
        );
        Ok(Some(bootstrap))
    }

    /// Inside the bootstrap lock: while the first start's key is live and
    /// has never authenticated, revokes it and issues its holder a new one.
    async fn renew_unused_first_key(&self, transaction: &Tx) -> TenancyResult<Option<Bootstrap>> {
        let Some(record) = first_start::find(transaction).await? else {
            return Ok(None);
        };
        let Some(previous) = api_keys::find(transaction, record.api_key_id).await? else {
            return Ok(None);
        };
        if previous.last_use_time.is_some() || previous.revoke_time.is_some() {
            return Ok(None);
        }
        let (Some(owner), Some(_)) = (
            workspaces::find_user(transaction, record.user_id).await?,
            members::find_membership(transaction, record.workspace_id, record.user_id).await?,
        ) else {
            return Ok(None);
        };
        let mut head = audit::lock_chain(transaction, record.workspace_id).await?;
        api_keys::revoke(transaction, previous.id, storage::now()).await?;
        audit::append(
            transaction,
            &mut head,
            SYSTEM_ACTOR,
            AuditEntry::new("api_key.revoked", format!("api_key:{}", previous.id))
                .detail("user_id", previous.user_id.to_string())
                .detail("prefix", previous.prefix.clone())
                .detail("reason", "first start key never used; replaced on restart"),
        )
        .await?;
        access_changes::record(
            transaction,
            self,
            record.workspace_id,
            AccessChangeOf::ApiKeyRevoked {
                api_key_id: previous.id,
            },
        )
        .await?;
        let issued = issue_api_key(
            transaction,
            &mut head,
            SYSTEM_ACTOR,
            record.workspace_id,
            record.user_id,
            FIRST_KEY_NAME,
            None,
        )
        .await?;
        first_start::replace_api_key(transaction, issued.api_key.id).await?;
        tracing::info!(
            workspace_id = %record.workspace_id,
            "the first start's API key was never used: issued its owner a new one"
        );
        Ok(Some(Bootstrap {
            organization_id: record.organization_id,
            workspace_id: record.workspace_id,
            user_id: record.user_id,
            owner_email: owner.email,
            api_key: issued.secret,
            renewed: true,
        }))
    }
}

/// Inside `transaction`: a new organization with its first workspace, its
/// owner (an existing user of that address, or a new one) and the owner's
/// API key, each step audited as `actor` on the new workspace's chain. The
/// first start and `tyboo admin orgs create` both found organizations so.
/// Returns what to show the owner, and the id of the key.
pub(crate) async fn found_organization(
    transaction: &Tx,
    organization_name: &Name,
    workspace_name: &Name,
    owner_email: &Email,
    actor: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> TenancyResult<(Bootstrap, Uuid)> {
    let organization = workspaces::insert_organization(
        transaction,
        Uuid::now_v7(),
        organization_name.as_str(),
        now,
    )
    .await?;
    let workspace = workspaces::insert_workspace(
        transaction,
        Uuid::now_v7(),
        organization.id,
        workspace_name.as_str(),
        now,
    )
    .await?;
    audit_store::insert_head(transaction, workspace.id).await?;
    let mut head = audit::lock_chain(transaction, workspace.id).await?;
    let (owner, _) = workspaces::find_or_create_user(
        transaction,
        owner_email.as_str(),
        owner_email.local_part(),
        now,
    )
    .await?;
    members::insert_membership(
        transaction,
        workspace.id,
        owner.id,
        Role::Owner.as_str(),
        now,
    )
    .await?;
    let entries = [
        AuditEntry::new(
            "organization.created",
            format!("organization:{}", organization.id),
        )
        .detail("name", organization.name.clone()),
        AuditEntry::new("workspace.created", format!("workspace:{}", workspace.id))
            .detail("name", workspace.name.clone())
            .detail("organization_id", organization.id.to_string()),
        AuditEntry::new("member.added", format!("user:{}", owner.id))
            .detail("role", Role::Owner.as_str())
            .detail("email", owner.email.clone()),
    ];
    for entry in entries {
        audit::append(transaction, &mut head, actor, entry).await?;
    }
    let issued = issue_api_key(
        transaction,
        &mut head,
        actor,
        workspace.id,
        owner.id,
        FIRST_KEY_NAME,
        None,
    )
    .await?;
    Ok((
        Bootstrap {
            organization_id: organization.id,
            workspace_id: workspace.id,
            user_id: owner.id,
            owner_email: owner.email,
            api_key: issued.secret,
            renewed: false,
        },
        issued.api_key.id,
    ))
}
