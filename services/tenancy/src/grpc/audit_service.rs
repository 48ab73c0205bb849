//! `tyboo.tenancy.v1.AuditService`: internal to the mesh, for service tokens.

use tonic::{Request, Response, Status};
use tyboo_proto::tenancy::audit_service_server::AuditService;
use tyboo_proto::tenancy::*;

use crate::domain::Domain;
use crate::domain::audit::ExternalAuditEvent;
use crate::domain::validation::parse_id;

#[derive(Clone, Debug)]
pub struct AuditGrpc {
    domain: Domain,
}

impl AuditGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }
}

#[tonic::async_trait]
impl AuditService for AuditGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn append_audit_event(
        &self,
        request: Request<AppendAuditEventRequest>,
    ) -> Result<Response<AppendAuditEventResponse>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        let caller = self.domain.verify_caller(bearer).await?;
        let AppendAuditEventRequest {
            workspace_id,
            actor,
            action,
            target,
            details,
        } = request.into_inner();
        // Empty (or the nil id) is the mesh-wide chain.
        let workspace_id = if workspace_id.is_empty() {
            None
        } else {
            Some(parse_id("workspace_id", &workspace_id)?).filter(|id| !id.is_nil())
        };
        let event = ExternalAuditEvent {
            workspace_id,
            actor,
            action,
            target,
            details: details.into_iter().collect(),
        };
        let stored = self
            .domain
            .append_external_audit_event(&caller, event)
            .await?;
        Ok(Response::new(AppendAuditEventResponse {
            event: Some(stored.into()),
        }))
    }
}
