//! Workflows and their versions, triggers (webhook routes, schedules),
//! executions, steps, node runs, dead letters and webhook deliveries.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, integer, pk_uuid, string, string_null, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null, uuid, uuid_null,
};
use tyboo_store::create_index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000001_create_executor"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum Workflows {
    Table,
    Id,
    WorkspaceId,
    Name,
    Description,
    LatestVersion,
    CreateTime,
    UpdateTime,
    DeleteTime,
}

#[derive(Clone, Copy, DeriveIden)]
enum WorkflowVersions {
    Table,
    Id,
    WorkspaceId,
    WorkflowId,
    Version,
    Name,
    Description,
    Graph,
    CreatedBy,
    CreateTime,
    RestoredFromVersion,
    NodeCount,
}

#[derive(Clone, Copy, DeriveIden)]
enum WebhookRoutes {
    Table,
    Id,
    WorkspaceId,
    Path,
    WorkflowId,
    NodeId,
    CreateTime,
}

#[derive(Clone, Copy, DeriveIden)]
enum Schedules {
    Table,
    Id,
    WorkspaceId,
    WorkflowId,
    NodeId,
    Cron,
    Timezone,
    NextFireAt,
}

#[derive(Clone, Copy, DeriveIden)]
enum Executions {
    Table,
    Id,
    WorkspaceId,
    WorkflowId,
    WorkflowVersion,
    Status,
    TriggerType,
    Input,
    Error,
    ErrorClass,
    FailedNodeId,
    CreateTime,
    StartTime,
    EndTime,
    Deadline,
    DataBytes,
    DeadLetterId,
}

#[derive(Clone, Copy, DeriveIden)]
enum Steps {
    Table,
    Id,
    WorkspaceId,
    ExecutionId,
    NodeId,
    Pool,
    State,
    Attempt,
    Fencing,
    LeaseOwner,
    LeaseExpiresAt,
    AvailableAt,
    DispatchedAt,
    Output,
    Port,
    Error,
    ErrorClass,
    StartTime,
    EndTime,
}

#[derive(Clone, Copy, DeriveIden)]
enum NodeRuns {
    Table,
    Id,
    WorkspaceId,
    ExecutionId,
    NodeId,
    Attempt,
    Status,
    Input,
    Output,
    Port,
    Error,
    ErrorClass,
    StartTime,
    EndTime,
    ResumeTime,
    LlmModel,
    PromptTokens,
    CompletionTokens,
    TotalTokens,
}

#[derive(Clone, Copy, DeriveIden)]
enum DeadLetters {
    Table,
    Id,
    WorkspaceId,
    ExecutionId,
    WorkflowId,
    WorkflowVersion,
    NodeId,
    Inputs,
    ErrorClass,
    Error,
    Attempts,
    State,
    CreateTime,
    ResolveTime,
    ReplayExecutionId,
}

#[derive(Clone, Copy, DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    WorkspaceId,
    DeliveryId,
    WorkflowId,
    ExecutionId,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Workflows::Table)
                    .col(pk_uuid(Workflows::Id))
                    .col(uuid(Workflows::WorkspaceId))
                    .col(string(Workflows::Name))
                    .col(text(Workflows::Description))
                    .col(big_integer(Workflows::LatestVersion))
                    .col(timestamp_with_time_zone(Workflows::CreateTime))
                    .col(timestamp_with_time_zone(Workflows::UpdateTime))
                    .col(timestamp_with_time_zone_null(Workflows::DeleteTime))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ix_workflows_workspace",
            Workflows::Table,
            &[Workflows::WorkspaceId, Workflows::Id],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(WorkflowVersions::Table)
                    .col(pk_uuid(WorkflowVersions::Id))
                    .col(uuid(WorkflowVersions::WorkspaceId))
                    .col(uuid(WorkflowVersions::WorkflowId))
                    .col(big_integer(WorkflowVersions::Version))
                    .col(string(WorkflowVersions::Name))
                    .col(text(WorkflowVersions::Description))
                    .col(text(WorkflowVersions::Graph))
                    .col(string(WorkflowVersions::CreatedBy))
                    .col(timestamp_with_time_zone(WorkflowVersions::CreateTime))
                    .col(big_integer_null(WorkflowVersions::RestoredFromVersion))
                    .col(integer(WorkflowVersions::NodeCount))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_workflow_versions_workflow_version",
            WorkflowVersions::Table,
            &[WorkflowVersions::WorkflowId, WorkflowVersions::Version],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookRoutes::Table)
                    .col(pk_uuid(WebhookRoutes::Id))
                    .col(uuid(WebhookRoutes::WorkspaceId))
                    .col(string(WebhookRoutes::Path))
                    .col(uuid(WebhookRoutes::WorkflowId))
                    .col(string(WebhookRoutes::NodeId))
                    .col(timestamp_with_time_zone(WebhookRoutes::CreateTime))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_webhook_routes_workspace_path",
            WebhookRoutes::Table,
            &[WebhookRoutes::WorkspaceId, WebhookRoutes::Path],
            true,
        )
        .await?;
        create_index(
            manager,
            "ix_webhook_routes_workflow",
            WebhookRoutes::Table,
            &[WebhookRoutes::WorkflowId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Schedules::Table)
                    .col(pk_uuid(Schedules::Id))
                    .col(uuid(Schedules::WorkspaceId))
                    .col(uuid(Schedules::WorkflowId))
                    .col(string(Schedules::NodeId))
                    .col(string(Schedules::Cron))
                    .col(string(Schedules::Timezone))
                    .col(timestamp_with_time_zone(Schedules::NextFireAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_schedules_workflow_node",
            Schedules::Table,
            &[Schedules::WorkflowId, Schedules::NodeId],
            true,
        )
        .await?;
        create_index(
            manager,
            "ix_schedules_next_fire",
            Schedules::Table,
            &[Schedules::NextFireAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Executions::Table)
                    .col(pk_uuid(Executions::Id))
                    .col(uuid(Executions::WorkspaceId))
                    .col(uuid(Executions::WorkflowId))
                    .col(big_integer(Executions::WorkflowVersion))
                    .col(string(Executions::Status))
                    .col(string(Executions::TriggerType))
                    .col(text(Executions::Input))
                    .col(text_null(Executions::Error))
                    .col(string_null(Executions::ErrorClass))
                    .col(string_null(Executions::FailedNodeId))
                    .col(timestamp_with_time_zone(Executions::CreateTime))
                    .col(timestamp_with_time_zone_null(Executions::StartTime))
                    .col(timestamp_with_time_zone_null(Executions::EndTime))
                    .col(timestamp_with_time_zone(Executions::Deadline))
                    .col(big_integer(Executions::DataBytes))
                    .col(uuid_null(Executions::DeadLetterId))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ix_executions_workspace",
            Executions::Table,
            &[Executions::WorkspaceId, Executions::Id],
            false,
        )
        .await?;
        create_index(
            manager,
            "ix_executions_status_deadline",
            Executions::Table,
            &[Executions::Status, Executions::Deadline],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Steps::Table)
                    .col(pk_uuid(Steps::Id))
                    .col(uuid(Steps::WorkspaceId))
                    .col(uuid(Steps::ExecutionId))
                    .col(string(Steps::NodeId))
                    .col(string(Steps::Pool))
                    .col(string(Steps::State))
                    .col(integer(Steps::Attempt))
                    .col(big_integer(Steps::Fencing))
                    .col(string_null(Steps::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Steps::LeaseExpiresAt))
                    .col(timestamp_with_time_zone(Steps::AvailableAt))
                    .col(timestamp_with_time_zone_null(Steps::DispatchedAt))
                    .col(text_null(Steps::Output))
                    .col(string_null(Steps::Port))
                    .col(text_null(Steps::Error))
                    .col(string_null(Steps::ErrorClass))
                    .col(timestamp_with_time_zone_null(Steps::StartTime))
                    .col(timestamp_with_time_zone_null(Steps::EndTime))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_steps_execution_node",
            Steps::Table,
            &[Steps::ExecutionId, Steps::NodeId],
            true,
        )
        .await?;
        create_index(
            manager,
            "ix_steps_state_available",
            Steps::Table,
            &[Steps::State, Steps::AvailableAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(NodeRuns::Table)
                    .col(pk_uuid(NodeRuns::Id))
                    .col(uuid(NodeRuns::WorkspaceId))
                    .col(uuid(NodeRuns::ExecutionId))
                    .col(string(NodeRuns::NodeId))
                    .col(integer(NodeRuns::Attempt))
                    .col(string(NodeRuns::Status))
                    .col(text(NodeRuns::Input))
                    .col(text_null(NodeRuns::Output))
                    .col(string_null(NodeRuns::Port))
                    .col(text_null(NodeRuns::Error))
                    .col(string_null(NodeRuns::ErrorClass))
                    .col(timestamp_with_time_zone(NodeRuns::StartTime))
                    .col(timestamp_with_time_zone_null(NodeRuns::EndTime))
                    .col(timestamp_with_time_zone_null(NodeRuns::ResumeTime))
                    .col(string_null(NodeRuns::LlmModel))
                    .col(big_integer_null(NodeRuns::PromptTokens))
                    .col(big_integer_null(NodeRuns::CompletionTokens))
                    .col(big_integer_null(NodeRuns::TotalTokens))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_node_runs_execution_node_attempt",
            NodeRuns::Table,
            &[NodeRuns::ExecutionId, NodeRuns::NodeId, NodeRuns::Attempt],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeadLetters::Table)
                    .col(pk_uuid(DeadLetters::Id))
                    .col(uuid(DeadLetters::WorkspaceId))
                    .col(uuid(DeadLetters::ExecutionId))
                    .col(uuid(DeadLetters::WorkflowId))
                    .col(big_integer(DeadLetters::WorkflowVersion))
                    .col(string(DeadLetters::NodeId))
                    .col(text(DeadLetters::Inputs))
                    .col(string(DeadLetters::ErrorClass))
                    .col(text(DeadLetters::Error))
                    .col(integer(DeadLetters::Attempts))
                    .col(string(DeadLetters::State))
                    .col(timestamp_with_time_zone(DeadLetters::CreateTime))
                    .col(timestamp_with_time_zone_null(DeadLetters::ResolveTime))
                    .col(uuid_null(DeadLetters::ReplayExecutionId))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ix_dead_letters_workspace_state",
            DeadLetters::Table,
            &[
                DeadLetters::WorkspaceId,
                DeadLetters::State,
                DeadLetters::Id,
            ],
            false,
        )
        .await?;
        // One dead letter per failed step: a retried commit cannot add a second.
        create_index(
            manager,
            "ux_dead_letters_execution_node",
            DeadLetters::Table,
            &[DeadLetters::ExecutionId, DeadLetters::NodeId],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(pk_uuid(WebhookDeliveries::Id))
                    .col(uuid(WebhookDeliveries::WorkspaceId))
                    .col(string(WebhookDeliveries::DeliveryId))
                    .col(uuid(WebhookDeliveries::WorkflowId))
                    .col(uuid(WebhookDeliveries::ExecutionId))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreateTime))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_webhook_deliveries_workspace_delivery",
            WebhookDeliveries::Table,
            &[
                WebhookDeliveries::WorkspaceId,
                WebhookDeliveries::DeliveryId,
            ],
            true,
        )
        .await?;
        Ok(())
    }
}
