//! `tyboo.executor.v1.DeadLetterService`.

use tonic::{Request, Response, Status};
use tyboo_auth::Permission;
use tyboo_proto::executor::dead_letter_service_server::DeadLetterService;
use tyboo_proto::executor::{DeadLetterFilter as ProtoFilter, *};

use super::conversions::{
    dead_letter_state_from_proto, dead_letter_to_proto, error_class_from_proto, execution_to_proto,
    from_timestamp, optional_id, parse_id, replay_mode_from_proto, replay_version_from_proto,
};
use super::scope;
use crate::domain::Domain;
use crate::domain::dead_letters::DeadLetterFilter;
use crate::error::ExecutorResult;

#[derive(Clone, Debug)]
pub struct DeadLetterGrpc {
    domain: Domain,
}

impl DeadLetterGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }
}

fn filter_from_proto(filter: Option<ProtoFilter>) -> ExecutorResult<DeadLetterFilter> {
    let ProtoFilter {
        workflow_id,
        node_id,
        error_class,
        create_time_after,
        create_time_before,
    } = filter.unwrap_or_default();
    Ok(DeadLetterFilter {
        workflow_id: optional_id("filter.workflow_id", &workflow_id)?,
        node_id: (!node_id.is_empty()).then_some(node_id),
        state: None,
        error_class: error_class_from_proto("filter.error_class", error_class)?,
        created_after: from_timestamp("filter.create_time_after", create_time_after)?,
        created_before: from_timestamp("filter.create_time_before", create_time_before)?,
    })
}

#[tonic::async_trait]
impl DeadLetterService for DeadLetterGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsRead).await?;
        let ListDeadLettersRequest {
            workflow_id,
            node_id,
            state,
            error_class,
            create_time_after,
            create_time_before,
            page_size,
            page_token,
        } = request.into_inner();
        let filter = DeadLetterFilter {
            workflow_id: optional_id("workflow_id", &workflow_id)?,
            node_id: (!node_id.is_empty()).then_some(node_id),
            state: dead_letter_state_from_proto(state)?,
            error_class: error_class_from_proto("error_class", error_class)?,
            created_after: from_timestamp("create_time_after", create_time_after)?,
            created_before: from_timestamp("create_time_before", create_time_before)?,
        };
        let (letters, next_page_token) = self
            .domain
            .list_dead_letters(&scope, &filter, page_size, &page_token)
            .await?;
        Ok(Response::new(ListDeadLettersResponse {
            // As for executions: the bulky inputs only in GetDeadLetter.
            dead_letters: letters
                .iter()
                .map(|letter| {
                    dead_letter_to_proto(letter).map(|mut message| {
                        message.inputs = None;
                        message
                    })
                })
                .collect::<Result<_, _>>()?,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn get_dead_letter(
        &self,
        request: Request<GetDeadLetterRequest>,
    ) -> Result<Response<GetDeadLetterResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::WorkflowsRead).await?;
        let GetDeadLetterRequest { dead_letter_id } = request.into_inner();
        let dead_letter_id = parse_id(&dead_letter_id, "dead letter")?;
        let letter = self.domain.get_dead_letter(&scope, dead_letter_id).await?;
        Ok(Response::new(GetDeadLetterResponse {
            dead_letter: Some(dead_letter_to_proto(&letter)?),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn replay_dead_letter(
        &self,
        request: Request<ReplayDeadLetterRequest>,
    ) -> Result<Response<ReplayDeadLetterResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::ExecutionsRun).await?;
        let ReplayDeadLetterRequest {
            dead_letter_id,
            mode,
            version,
        } = request.into_inner();
        let dead_letter_id = parse_id(&dead_letter_id, "dead letter")?;
        let mode = replay_mode_from_proto(mode)?;
        let version = replay_version_from_proto(version)?;
        let (letter, execution) = self
            .domain
            .replay_dead_letter(&scope, dead_letter_id, mode, version)
            .await?;
        Ok(Response::new(ReplayDeadLetterResponse {
            dead_letter: Some(dead_letter_to_proto(&letter)?),
            execution: Some(execution_to_proto(&execution)?),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn discard_dead_letter(
        &self,
        request: Request<DiscardDeadLetterRequest>,
    ) -> Result<Response<DiscardDeadLetterResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::ExecutionsRun).await?;
        let DiscardDeadLetterRequest { dead_letter_id } = request.into_inner();
        let dead_letter_id = parse_id(&dead_letter_id, "dead letter")?;
        let letter = self
            .domain
            .discard_dead_letter(&scope, dead_letter_id)
            .await?;
        Ok(Response::new(DiscardDeadLetterResponse {
            dead_letter: Some(dead_letter_to_proto(&letter)?),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn bulk_replay_dead_letters(
        &self,
        request: Request<BulkReplayDeadLettersRequest>,
    ) -> Result<Response<BulkReplayDeadLettersResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::ExecutionsRun).await?;
        let BulkReplayDeadLettersRequest {
            filter,
            mode,
            version,
            limit,
        } = request.into_inner();
        let filter = filter_from_proto(filter)?;
        let mode = replay_mode_from_proto(mode)?;
        let version = replay_version_from_proto(version)?;
        let replayed = self
            .domain
            .bulk_replay_dead_letters(&scope, &filter, mode, version, limit)
            .await?;
        let replayed_count = replayed.iter().filter(|item| item.result.is_ok()).count();
        let results = replayed
            .into_iter()
            .map(|item| {
                let (execution_id, error) = match item.result {
                    Ok(execution_id) => (execution_id.to_string(), String::new()),
                    Err(error) => (String::new(), error),
                };
                BulkReplayResult {
                    dead_letter_id: item.dead_letter_id.to_string(),
                    execution_id,
                    error,
                }
            })
            .collect();
        Ok(Response::new(BulkReplayDeadLettersResponse {
            results,
            replayed_count: i32::try_from(replayed_count).unwrap_or(i32::MAX),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn bulk_discard_dead_letters(
        &self,
        request: Request<BulkDiscardDeadLettersRequest>,
    ) -> Result<Response<BulkDiscardDeadLettersResponse>, Status> {
        let scope = scope(&self.domain, &request, Permission::ExecutionsRun).await?;
        let BulkDiscardDeadLettersRequest { filter, limit } = request.into_inner();
        let filter = filter_from_proto(filter)?;
        let discarded = self
            .domain
            .bulk_discard_dead_letters(&scope, &filter, limit)
            .await?;
        Ok(Response::new(BulkDiscardDeadLettersResponse {
            discarded_count: i32::try_from(discarded.len()).unwrap_or(i32::MAX),
            dead_letter_ids: discarded.iter().map(ToString::to_string).collect(),
        }))
    }
}
