//! `tyboo.metering.v1.UsageService`: a workspace's usage, for its members
//! and for the platform.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tyboo_proto::metering::usage_service_server::UsageService;
use tyboo_proto::metering::*;

use super::conversions::{event_to_proto, report_to_proto};
use crate::domain::Domain;

#[derive(Clone, Debug)]
pub struct UsageGrpc {
    domain: Domain,
}

impl UsageGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }
}

type ExportStream = Pin<Box<dyn Stream<Item = Result<ExportUsageResponse, Status>> + Send>>;

#[tonic::async_trait]
impl UsageService for UsageGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn get_workspace_usage(
        &self,
        request: Request<GetWorkspaceUsageRequest>,
    ) -> Result<Response<GetWorkspaceUsageResponse>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        let GetWorkspaceUsageRequest {
            workspace_id,
            month,
        } = request.get_ref().clone();
        let workspace_id = self.domain.authorize_reader(bearer, &workspace_id).await?;
        let report = self.domain.usage(workspace_id, &month).await?;
        Ok(Response::new(report_to_proto(report)))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_usage_events(
        &self,
        request: Request<ListUsageEventsRequest>,
    ) -> Result<Response<ListUsageEventsResponse>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        let ListUsageEventsRequest {
            workspace_id,
            month,
            page_size,
            page_token,
        } = request.get_ref().clone();
        let workspace_id = self.domain.authorize_reader(bearer, &workspace_id).await?;
        let (rows, next_page_token) = self
            .domain
            .usage_events(workspace_id, &month, page_size, &page_token)
            .await?;
        Ok(Response::new(ListUsageEventsResponse {
            events: rows.into_iter().map(event_to_proto).collect(),
            next_page_token,
        }))
    }

    type ExportUsageStream = ExportStream;

    #[tracing::instrument(skip(self, request))]
    async fn export_usage(
        &self,
        request: Request<ExportUsageRequest>,
    ) -> Result<Response<Self::ExportUsageStream>, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        let ExportUsageRequest {
            workspace_id,
            month,
        } = request.get_ref().clone();
        let workspace_id = self.domain.authorize_reader(bearer, &workspace_id).await?;
        let rows = self.domain.export(workspace_id, &month)?;
        let stream = rows.map(|row| {
            row.map(|row| ExportUsageResponse {
                event: Some(event_to_proto(row)),
            })
            .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
