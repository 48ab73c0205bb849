//! Where the vault's audit records go. The production sink writes to
//! tenancy's hash-chained audit log; the vault only needs the trait. Every
//! action that must be audited calls `record` before it commits, and fails
//! when the record cannot be written.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::{VaultError, VaultResult};

/// The actions the vault audits, as written to the log.
pub mod actions {
    pub const CREDENTIAL_CREATED: &str = "vault.credential.created";
    pub const CREDENTIAL_REPLACED: &str = "vault.credential.replaced";
    pub const CREDENTIAL_DELETED: &str = "vault.credential.deleted";
    pub const CREDENTIAL_DECRYPTED: &str = "vault.credential.decrypted";
    pub const CREDENTIAL_REWRAPPED: &str = "vault.credential.rewrapped";
    /// The active or minimum master key version changed since the vault last
    /// recorded them.
    pub const MASTER_KEY_ROTATED: &str = "vault.master_key.rotated";
}

#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Writes one record. `workspace_id` is `None` only for events of the
    /// whole vault (a master key rotation), which belong to no workspace.
    /// `target` is "credential:<id>" or "master_key:<version>". Details
    /// never carry a secret.
    async fn record(
        &self,
        workspace_id: Option<Uuid>,
        actor: &str,
        action: &str,
        target: &str,
        details: BTreeMap<String, String>,
    ) -> VaultResult<()>;
}

/// One record as a [`MemoryAuditSink`] keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub workspace_id: Option<Uuid>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: BTreeMap<String, String>,
}

/// Keeps records in memory, and can be told to refuse them. For tests and
/// for embedding the vault where no audit log exists.
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    records: Mutex<Vec<AuditRecord>>,
    failing: AtomicBool,
}

impl MemoryAuditSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// While set, every `record` fails as an unreachable audit log would.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn records(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl AuditSink for MemoryAuditSink {
    async fn record(
        &self,
        workspace_id: Option<Uuid>,
        actor: &str,
        action: &str,
        target: &str,
        details: BTreeMap<String, String>,
    ) -> VaultResult<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(VaultError::Audit(
                "the audit log refused the record".to_owned(),
            ));
        }
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(AuditRecord {
                workspace_id,
                actor: actor.to_owned(),
                action: action.to_owned(),
                target: target.to_owned(),
                details,
            });
        Ok(())
    }
}

/// The production sink: tenancy's `AuditService`, called with the vault's
/// own service token, so records join the workspace's hash chain (records
/// of no workspace join the mesh-wide chain).
#[derive(Clone, Debug)]
pub struct TenancyAuditSink {
    channel: tonic::transport::Channel,
    tokens: tyboo_auth::ServiceTokenSource,
}

impl TenancyAuditSink {
    /// `tokens` should be the vault's own ("vault"), so the log shows which
    /// service wrote each record.
    pub fn new(channel: tonic::transport::Channel, tokens: tyboo_auth::ServiceTokenSource) -> Self {
        Self { channel, tokens }
    }
}

#[async_trait]
impl AuditSink for TenancyAuditSink {
    async fn record(
        &self,
        workspace_id: Option<Uuid>,
        actor: &str,
        action: &str,
        target: &str,
        details: BTreeMap<String, String>,
    ) -> VaultResult<()> {
        use tyboo_proto::tenancy::AppendAuditEventRequest;
        use tyboo_proto::tenancy::audit_service_client::AuditServiceClient;
        let mut request = tonic::Request::new(AppendAuditEventRequest {
            workspace_id: workspace_id.map(|id| id.to_string()).unwrap_or_default(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            details: details.into_iter().collect(),
        });
        // The action waits on this record; a stuck log must not hold it
        // forever.
        request.set_timeout(std::time::Duration::from_secs(5));
        self.tokens
            .authorize(&mut request)
            .await
            .map_err(|status| VaultError::Audit(status.message().to_owned()))?;
        AuditServiceClient::new(self.channel.clone())
            .append_audit_event(request)
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), message = status.message(), %action, "audit record refused");
                VaultError::Audit(status.message().to_owned())
            })?;
        Ok(())
    }
}
