//! `tyboo.executor.v1.ExecutionService`.

use tonic::{Request, Response, Status};
use tyboo_auth::Permission;
use tyboo_proto::executor::execution_service_server::ExecutionService;
use tyboo_proto::executor::*;

use super::conversions::{
    execution_detail_to_proto, execution_status_from_proto, execution_to_proto, from_timestamp,
    json_from_message, optional_id, parse_id, stored_run_to_proto, within_budget,
};
use super::scope;
use crate::domain::Domain;
use crate::domain::executions::ListExecutions;

#[derive(Clone, Debug)]
pub struct ExecutionGrpc {
    domain: Domain,
}

impl ExecutionGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }
}

#[tonic::async_trait]
impl ExecutionService for ExecutionGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn start_execution(
        &self,
        request: Request<StartExecutionRequest>,
    ) -> Result<Response<StartExecutionResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::ExecutionsRun).await?;
        let from_metadata = request
            .metadata()
            .get("idempotency-key")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let StartExecutionRequest {
            workflow_id,
            version,
            input,
            idempotency_key,
        } = request.into_inner();
        let workflow_id = parse_id(&workflow_id, "workflow")?;
        let input = json_from_message("input", input)?;
        let key = match idempotency_key.is_empty() {
            true => from_metadata,
            false => Some(idempotency_key),
        };
        let execution = self
            .domain
            .start_execution(&scope, workflow_id, version, input, key.as_deref())
            .await?;
        Ok(Response::new(StartExecutionResponse {
            execution: Some(execution_to_proto(&execution)?),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn get_execution(
        &self,
        request: Request<GetExecutionRequest>,
    ) -> Result<Response<GetExecutionResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsRead).await?;
        let GetExecutionRequest { execution_id } = request.into_inner();
        let execution_id = parse_id(&execution_id, "execution")?;
        let detail = self.domain.get_execution(&scope, execution_id).await?;
        let mut execution = execution_detail_to_proto(&detail)?;
        let budget = {
            use prost::Message;
            let mut bare = execution.clone();
            bare.node_runs.clear();
            self.domain
                .config()
                .max_answer_bytes
                .saturating_sub(bare.encoded_len())
        };
        within_budget(&mut execution.node_runs, budget);
        Ok(Response::new(GetExecutionResponse {
            execution: Some(execution),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_node_runs(
        &self,
        request: Request<ListNodeRunsRequest>,
    ) -> Result<Response<ListNodeRunsResponse>, Status> {
        use prost::Message;
        let scope = scope(&self.domain, &request, Permission::WorkflowsRead).await?;
        let ListNodeRunsRequest {
            execution_id,
            page_size,
            page_token,
        } = request.into_inner();
        let execution_id = parse_id(&execution_id, "execution")?;
        let (rows, limit) = self
            .domain
            .list_node_runs(&scope, execution_id, page_size, &page_token)
            .await?;
        let mut budget = self.domain.config().max_answer_bytes;
        let mut node_runs = Vec::new();
        let mut last_id = None;
        for row in &rows {
            let mut run = stored_run_to_proto(row)?;
            let size = run.encoded_len();
            if size > budget {
                if !node_runs.is_empty() {
                    // The rest comes on the next page.
                    break;
                }
                // Alone past the budget: the run without its data.
                within_budget(std::slice::from_mut(&mut run), budget);
            }
            budget = budget.saturating_sub(run.encoded_len());
            node_runs.push(run);
            last_id = Some(row.id);
        }
        let more = node_runs.len() < rows.len() || rows.len() as u64 == limit;
        Ok(Response::new(ListNodeRunsResponse {
            node_runs,
            next_page_token: match (more, last_id) {
                (true, Some(id)) => id.to_string(),
                _ => String::new(),
            },
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_executions(
        &self,
        request: Request<ListExecutionsRequest>,
    ) -> Result<Response<ListExecutionsResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsRead).await?;
        let ListExecutionsRequest {
            workflow_id,
            status,
            create_time_after,
            create_time_before,
            page_size,
            page_token,
        } = request.into_inner();
        let query = ListExecutions {
            workflow_id: optional_id("workflow_id", &workflow_id)?,
            status: execution_status_from_proto(status)?,
            created_after: from_timestamp("create_time_after", create_time_after)?,
            created_before: from_timestamp("create_time_before", create_time_before)?,
            page_size,
            page_token,
        };
        let (executions, next_page_token) = self.domain.list_executions(&scope, query).await?;
        Ok(Response::new(ListExecutionsResponse {
            // Lists leave the trigger data out: a page of large inputs would
            // pass the message cap and break the workspace's listing.
            executions: executions
                .iter()
                .map(|execution| {
                    execution_to_proto(execution).map(|mut message| {
                        message.input = None;
                        message
                    })
                })
                .collect::<Result<_, _>>()?,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn cancel_execution(
        &self,
        request: Request<CancelExecutionRequest>,
    ) -> Result<Response<CancelExecutionResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::ExecutionsRun).await?;
        let CancelExecutionRequest { execution_id } = request.into_inner();
        let execution_id = parse_id(&execution_id, "execution")?;
        let execution = self.domain.cancel_execution(&scope, execution_id).await?;
        Ok(Response::new(CancelExecutionResponse {
            execution: Some(execution_to_proto(&execution)?),
        }))
    }
}
