//! Tenancy's `AuditService` as the domain's audit sink, called with the
//! executor's own service token, so records join the mesh-wide hash chain
//! (or a workspace's) and the log shows that the executor wrote them.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use tonic::transport::Channel;
use tyboo_auth::ServiceTokenSource;
use tyboo_proto::tenancy::AppendAuditEventRequest;
use tyboo_proto::tenancy::audit_service_client::AuditServiceClient;
use uuid::Uuid;

use crate::domain::breakers::AuditSink;

/// The change waits on its record; a stuck log must not hold it forever.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct TenancyAuditSink {
    channel: Channel,
    tokens: ServiceTokenSource,
}

impl TenancyAuditSink {
    /// `tokens` should be the executor's own ("executor").
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
    ) -> Result<(), String> {
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
            .map_err(|status| status.message().to_owned())?;
        AuditServiceClient::new(self.channel.clone())
            .append_audit_event(request)
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), message = status.message(), %action, "audit record refused");
                status.message().to_owned()
            })?;
        Ok(())
    }
}
