//! `tyboo.tenancy.v1.LimitsService`.

use tonic::{Request, Response, Status};
use tyboo_auth::Principal;
use tyboo_limits::LimitOverrides;
use tyboo_proto::convert::timestamp;
use tyboo_proto::tenancy::limits_service_server::LimitsService;
use tyboo_proto::tenancy::*;

use crate::domain::Domain;
use crate::domain::limits::WorkspaceLimits as View;

#[derive(Clone, Debug)]
pub struct LimitsGrpc {
    domain: Domain,
}

impl LimitsGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        Ok(self.domain.verify_caller(bearer).await?)
    }
}

fn parts(
    view: View,
) -> (
    WorkspaceLimits,
    LimitOverrides,
    Option<prost_types::Timestamp>,
) {
    (
        view.limits.to_proto(),
        view.overrides,
        view.updated_at.map(timestamp),
    )
}

#[tonic::async_trait]
impl LimitsService for LimitsGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn get_workspace_limits(
        &self,
        request: Request<GetWorkspaceLimitsRequest>,
    ) -> Result<Response<GetWorkspaceLimitsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let GetWorkspaceLimitsRequest { workspace_id } = request.into_inner();
        let scope = self.domain.limits_scope(&caller, &workspace_id).await?;
        let (limits, overrides, updated_at) = parts(self.domain.workspace_limits(&scope).await?);
        Ok(Response::new(GetWorkspaceLimitsResponse {
            limits: Some(limits),
            overrides: Some(overrides.to_proto()),
            updated_at,
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn set_workspace_limits(
        &self,
        request: Request<SetWorkspaceLimitsRequest>,
    ) -> Result<Response<SetWorkspaceLimitsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let SetWorkspaceLimitsRequest {
            workspace_id,
            overrides,
        } = request.into_inner();
        let scope = self.domain.limits_scope(&caller, &workspace_id).await?;
        let overrides = overrides
            .as_ref()
            .map(LimitOverrides::from_proto)
            .unwrap_or_default();
        let (limits, overrides, updated_at) =
            parts(self.domain.set_workspace_limits(&scope, overrides).await?);
        Ok(Response::new(SetWorkspaceLimitsResponse {
            limits: Some(limits),
            overrides: Some(overrides.to_proto()),
            updated_at,
        }))
    }
}
