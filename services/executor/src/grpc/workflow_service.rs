//! `tyboo.executor.v1.WorkflowService`.

use tonic::{Request, Response, Status};
use tyboo_auth::Permission;
use tyboo_proto::executor::workflow_service_server::WorkflowService;
use tyboo_proto::executor::*;

use super::conversions::{
    graph_from_proto, node_type_to_proto, parse_id, version_to_proto, workflow_to_proto,
};
use super::scope;
use crate::domain::Domain;
use crate::domain::webhooks::{HookView, WebhookMode};
use crate::domain::workflows::Draft;

fn webhook_to_proto(hook: &HookView) -> Webhook {
    Webhook {
        node_id: hook.node_id.clone(),
        path: hook.path.clone(),
        method: hook.method.clone(),
        mode: match hook.mode {
            WebhookMode::Async => "async",
            WebhookMode::Sync => "sync",
        }
        .to_owned(),
        url_path: hook.url_path(),
        signature: hook.signature.clone().unwrap_or_default(),
    }
}

#[derive(Clone, Debug)]
pub struct WorkflowGrpc {
    domain: Domain,
}

impl WorkflowGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }
}

#[tonic::async_trait]
impl WorkflowService for WorkflowGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn create_workflow(
        &self,
        request: Request<CreateWorkflowRequest>,
    ) -> Result<Response<CreateWorkflowResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsWrite).await?;
        let CreateWorkflowRequest {
            name,
            description,
            graph,
        } = request.into_inner();
        let draft = Draft {
            name,
            description,
            graph: graph_from_proto(graph)?,
        };
        let view = self.domain.create_workflow(&scope, draft).await?;
        Ok(Response::new(CreateWorkflowResponse {
            workflow: Some(workflow_to_proto(&view)),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn update_workflow(
        &self,
        request: Request<UpdateWorkflowRequest>,
    ) -> Result<Response<UpdateWorkflowResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsWrite).await?;
        let UpdateWorkflowRequest {
            workflow_id,
            name,
            description,
            graph,
            expected_version,
        } = request.into_inner();
        let workflow_id = parse_id(&workflow_id, "workflow")?;
        let draft = Draft {
            name,
            description,
            graph: graph_from_proto(graph)?,
        };
        let view = self
            .domain
            .update_workflow(&scope, workflow_id, draft, expected_version)
            .await?;
        Ok(Response::new(UpdateWorkflowResponse {
            workflow: Some(workflow_to_proto(&view)),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn get_workflow(
        &self,
        request: Request<GetWorkflowRequest>,
    ) -> Result<Response<GetWorkflowResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsRead).await?;
        let GetWorkflowRequest {
            workflow_id,
            version,
        } = request.into_inner();
        let workflow_id = parse_id(&workflow_id, "workflow")?;
        let view = self
            .domain
            .get_workflow(&scope, workflow_id, version)
            .await?;
        Ok(Response::new(GetWorkflowResponse {
            workflow: Some(workflow_to_proto(&view)),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_workflows(
        &self,
        request: Request<ListWorkflowsRequest>,
    ) -> Result<Response<ListWorkflowsResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsRead).await?;
        let ListWorkflowsRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let (views, next_page_token) = self
            .domain
            .list_workflows(&scope, page_size, &page_token)
            .await?;
        Ok(Response::new(ListWorkflowsResponse {
            workflows: views.iter().map(workflow_to_proto).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_workflow_versions(
        &self,
        request: Request<ListWorkflowVersionsRequest>,
    ) -> Result<Response<ListWorkflowVersionsResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsRead).await?;
        let ListWorkflowVersionsRequest {
            workflow_id,
            page_size,
            page_token,
        } = request.into_inner();
        let workflow_id = parse_id(&workflow_id, "workflow")?;
        let (versions, next_page_token) = self
            .domain
            .list_workflow_versions(&scope, workflow_id, page_size, &page_token)
            .await?;
        Ok(Response::new(ListWorkflowVersionsResponse {
            versions: versions.iter().map(version_to_proto).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn restore_workflow_version(
        &self,
        request: Request<RestoreWorkflowVersionRequest>,
    ) -> Result<Response<RestoreWorkflowVersionResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsWrite).await?;
        let RestoreWorkflowVersionRequest {
            workflow_id,
            version,
        } = request.into_inner();
        let workflow_id = parse_id(&workflow_id, "workflow")?;
        let view = self
            .domain
            .restore_workflow_version(&scope, workflow_id, version)
            .await?;
        Ok(Response::new(RestoreWorkflowVersionResponse {
            workflow: Some(workflow_to_proto(&view)),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn delete_workflow(
        &self,
        request: Request<DeleteWorkflowRequest>,
    ) -> Result<Response<DeleteWorkflowResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsWrite).await?;
        let DeleteWorkflowRequest { workflow_id } = request.into_inner();
        let workflow_id = parse_id(&workflow_id, "workflow")?;
        self.domain.delete_workflow(&scope, workflow_id).await?;
        Ok(Response::new(DeleteWorkflowResponse {}))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_webhooks(
        &self,
        request: Request<ListWebhooksRequest>,
    ) -> Result<Response<ListWebhooksResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsWrite).await?;
        let ListWebhooksRequest { workflow_id } = request.into_inner();
        let workflow_id = parse_id(&workflow_id, "workflow")?;
        let webhooks = self
            .domain
            .list_webhooks(&scope, workflow_id)
            .await?
            .iter()
            .map(webhook_to_proto)
            .collect();
        Ok(Response::new(ListWebhooksResponse { webhooks }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn rotate_webhook_token(
        &self,
        request: Request<RotateWebhookTokenRequest>,
    ) -> Result<Response<RotateWebhookTokenResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsWrite).await?;
        let RotateWebhookTokenRequest {
            workflow_id,
            node_id,
        } = request.into_inner();
        let workflow_id = parse_id(&workflow_id, "workflow")?;
        let webhook = self
            .domain
            .rotate_webhook_token(&scope, workflow_id, &node_id)
            .await?;
        Ok(Response::new(RotateWebhookTokenResponse {
            webhook: Some(webhook_to_proto(&webhook)),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_node_types(
        &self,
        request: Request<ListNodeTypesRequest>,
    ) -> Result<Response<ListNodeTypesResponse>, Status> {
        scope(&self.domain, &request, Permission::WorkflowsRead).await?;
        let ListNodeTypesRequest {} = request.into_inner();
        let node_types = self
            .domain
            .engine()
            .catalog()
            .all()
            .map(node_type_to_proto)
            .collect();
        Ok(Response::new(ListNodeTypesResponse { node_types }))
    }
}
