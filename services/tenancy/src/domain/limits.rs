//! The limits of a workspace: the platform's defaults with the overrides an
//! operator stored for it. Tenancy is the one source the edge and the
//! executor ask (`tyboo_limits::LimitsSource`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tyboo_auth::{Permission, Principal};
use tyboo_limits::{LimitOverrides, Limits, LimitsError, LimitsSource};
use tyboo_store::Scope;
use uuid::Uuid;

use super::Domain;
use super::audit::{self, AuditEntry};
use super::scope::WorkspaceScope;
use crate::error::{TenancyError, TenancyResult};
use crate::storage::{self, limits as limits_store};

/// What a workspace runs under, and what it sets apart from the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceLimits {
    pub limits: Limits,
    pub overrides: LimitOverrides,
    /// When the overrides last changed; `None` when there are none.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Domain {
    /// The scope of a limits call naming `workspace_id`: members see their
    /// own workspace, and operators and the mesh's services any workspace
    /// they name (a service token belongs to no workspace).
    pub async fn limits_scope(
        &self,
        caller: &Principal,
        workspace_id: &str,
    ) -> TenancyResult<WorkspaceScope> {
        if caller.is_service() {
            let workspace_id =
                Uuid::parse_str(workspace_id).map_err(|_| TenancyError::NotFound("workspace"))?;
            let mut principal = caller.clone();
            principal.workspace_id = Some(workspace_id);
            return self.own_scope(&principal).await;
        }
        self.workspace_scope(caller, workspace_id).await
    }

    pub async fn workspace_limits(&self, scope: &WorkspaceScope) -> TenancyResult<WorkspaceLimits> {
        scope.require(Permission::WorkspaceRead)?;
        let db = self.store().read(scope.store_scope());
        let row = limits_store::find(&db, scope.workspace_id).await?;
        self.view(row)
    }

    /// Replaces the overrides of the scope's workspace (empty clears them),
    /// audited in the workspace's chain in the same transaction.
    pub async fn set_workspace_limits(
        &self,
        scope: &WorkspaceScope,
        overrides: LimitOverrides,
    ) -> TenancyResult<WorkspaceLimits> {
        scope.require(Permission::PlatformManage)?;
        overrides
            .validate()
            .map_err(|error| TenancyError::invalid("overrides", error.problems.join("; ")))?;
        let workspace_id = scope.workspace_id;
        let actor = scope.actor();
        let now = storage::now();
        let transaction = self.store().write(Scope::Workspace(workspace_id)).await?;
        let mut head = audit::lock_chain(&transaction, workspace_id).await?;
        if overrides.is_empty() {
            limits_store::delete(&transaction, workspace_id).await?;
        } else {
            let encoded = serde_json::to_string(&overrides)
                .map_err(|error| TenancyError::Internal(format!("encoding limits: {error}")))?;
            limits_store::upsert(&transaction, workspace_id, &encoded, now, &actor).await?;
        }
        let mut entry = AuditEntry::new(
            "tenancy.limits.updated",
            format!("workspace:{workspace_id}"),
        );
        for (name, value) in overrides.fields() {
            entry = entry.detail(
                name,
                value.map_or_else(|| "default".to_owned(), |v| v.to_string()),
            );
        }
        audit::append(&transaction, &mut head, &actor, entry).await?;
        transaction.commit().await?;
        Ok(WorkspaceLimits {
            limits: self.limit_defaults().with(&overrides),
            updated_at: (!overrides.is_empty()).then_some(now),
            overrides,
        })
    }

    fn view(
        &self,
        row: Option<crate::storage::entities::workspace_limits::Model>,
    ) -> TenancyResult<WorkspaceLimits> {
        let Some(row) = row else {
            return Ok(WorkspaceLimits {
                limits: self.limit_defaults().clone(),
                overrides: LimitOverrides::default(),
                updated_at: None,
            });
        };
        // Overrides stored before a bound tightened still read: the
        // out-of-bounds value is dropped for the default, and logged.
        let mut overrides: LimitOverrides = serde_json::from_str(&row.overrides)
            .map_err(|error| TenancyError::Internal(format!("decoding limits: {error}")))?;
        if let Err(error) = overrides.validate() {
            tracing::warn!(workspace_id = %row.workspace_id, %error, "stored limit overrides out of bounds; using the defaults");
            overrides = LimitOverrides::default();
        }
        Ok(WorkspaceLimits {
            limits: self.limit_defaults().with(&overrides),
            overrides,
            updated_at: Some(row.update_time),
        })
    }
}

/// Tenancy answers the limits trait from its own store, for a process that
/// runs tenancy beside the service that asks.
#[async_trait]
impl LimitsSource for Domain {
    async fn limits(&self, workspace_id: Uuid) -> Result<Limits, LimitsError> {
        let db = self.store().read(Scope::Workspace(workspace_id));
        let row = limits_store::find(&db, workspace_id)
            .await
            .map_err(|error| LimitsError::Unavailable(error.to_string()))?;
        self.view(row)
            .map(|view| view.limits)
            .map_err(|error| LimitsError::Unavailable(error.to_string()))
    }
}
