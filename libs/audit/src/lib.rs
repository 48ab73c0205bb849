//! Where a service other than tenancy sends its audit records. The vault
//! audits every credential action and the executor every manual breaker
//! change; both write to tenancy's hash-chained log through
//! [`TenancyAuditSink`], and both write the record before the action
//! commits, refusing the action when the record cannot be written. Tests
//! and embedded set-ups without a log use [`MemoryAuditSink`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tonic::transport::Channel;
use tyboo_auth::ServiceTokenSource;
use tyboo_proto::tenancy::AppendAuditEventRequest;
use tyboo_proto::tenancy::audit_service_client::AuditServiceClient;
use uuid::Uuid;

/// The action waits on its record; a stuck log must not hold it forever.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A record that was not written; the action it describes must not go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit record not written: {0}")]
pub struct AuditError(pub String);

#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Writes one record. `workspace_id` is `None` for events of the whole
    /// mesh (a master key rotation, a breaker change), which join the
    /// mesh-wide chain. `target` names what was acted on, such as
    /// `credential:<id>`. Details never carry a secret.
    async fn record(
        &self,
        workspace_id: Option<Uuid>,
        actor: &str,
        action: &str,
        target: &str,
        details: BTreeMap<String, String>,
    ) -> Result<(), AuditError>;
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

/// Keeps records in memory, and can be told to refuse them.
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
    ) -> Result<(), AuditError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AuditError("the audit log refused the record".to_owned()));
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

/// Tenancy's `AuditService`, called with the writing service's own token,
/// so the log shows which service wrote each record and the record joins
/// its workspace's hash chain (or the mesh-wide one).
#[derive(Clone, Debug)]
pub struct TenancyAuditSink {
    channel: Channel,
    tokens: ServiceTokenSource,
}

impl TenancyAuditSink {
    /// `tokens` should be the writing service's own ("vault", "executor").
    pub fn new(channel: Channel, tokens: ServiceTokenSource) -> Self {
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
    ) -> Result<(), AuditError> {
        let mut request = tonic::Request::new(AppendAuditEventRequest {
            workspace_id: workspace_id.map(|id| id.to_string()).unwrap_or_default(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            details: details.into_iter().collect(),
        });
        request.set_timeout(AUDIT_TIMEOUT);
        self.tokens
            .authorize(&mut request)
            .await
            .map_err(|status| AuditError(status.message().to_owned()))?;
        AuditServiceClient::new(self.channel.clone())
            .append_audit_event(request)
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), message = status.message(), %action, "audit record refused");
                AuditError(status.message().to_owned())
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_keeps_records_in_order_and_refuses_while_failing() {
        let sink = MemoryAuditSink::new();
        let details = BTreeMap::from([("reason".to_owned(), "test".to_owned())]);
        sink.record(None, "operator:cli", "a.first", "thing:1", details.clone())
            .await
            .expect("written");
        sink.set_failing(true);
        let refused = sink
            .record(None, "operator:cli", "a.second", "thing:2", BTreeMap::new())
            .await
            .unwrap_err();
        assert!(refused.to_string().starts_with("audit record not written"));
        sink.set_failing(false);
        let workspace = Uuid::now_v7();
        sink.record(
            Some(workspace),
            "user:1",
            "a.third",
            "thing:3",
            BTreeMap::new(),
        )
        .await
        .expect("written");
        let records = sink.records();
        let actions: Vec<&str> = records
            .iter()
            .map(|record| record.action.as_str())
            .collect();
        assert_eq!(actions, ["a.first", "a.third"]);
        assert_eq!(records[0].details, details);
        assert_eq!(records[1].workspace_id, Some(workspace));
    }
}
