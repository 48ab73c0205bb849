//! The usage ledger.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, pk_uuid, string, timestamp_with_time_zone, uuid};
use tyboo_store::create_index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000001_create_metering"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum UsageEvents {
    Table,
    Id,
    WorkspaceId,
    IdempotencyKey,
    Kind,
    WorkflowId,
    ExecutionId,
    NodeId,
    UsageMonth,
    UsageDay,
    OccurredAt,
    RecordedAt,
    ProviderHost,
    Model,
    InputTokens,
    OutputTokens,
    CostMicros,
    PriceVersion,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageEvents::Table)
                    .col(pk_uuid(UsageEvents::Id))
                    .col(uuid(UsageEvents::WorkspaceId))
                    .col(string(UsageEvents::IdempotencyKey))
                    .col(string(UsageEvents::Kind))
                    .col(uuid(UsageEvents::WorkflowId))
                    .col(uuid(UsageEvents::ExecutionId))
                    .col(string(UsageEvents::NodeId))
                    .col(string(UsageEvents::UsageMonth))
                    .col(string(UsageEvents::UsageDay))
                    .col(timestamp_with_time_zone(UsageEvents::OccurredAt))
                    .col(timestamp_with_time_zone(UsageEvents::RecordedAt))
                    .col(string(UsageEvents::ProviderHost))
                    .col(string(UsageEvents::Model))
                    .col(big_integer(UsageEvents::InputTokens))
                    .col(big_integer(UsageEvents::OutputTokens))
                    .col(big_integer(UsageEvents::CostMicros))
                    .col(string(UsageEvents::PriceVersion))
                    .to_owned(),
            )
            .await?;
        // One row per event however often it is delivered.
        create_index(
            manager,
            "ux_usage_events_workspace_key",
            UsageEvents::Table,
            &[UsageEvents::WorkspaceId, UsageEvents::IdempotencyKey],
            true,
        )
        .await?;
        // Every read is one workspace's month, in recording order.
        create_index(
            manager,
            "ix_usage_events_workspace_month",
            UsageEvents::Table,
            &[
                UsageEvents::WorkspaceId,
                UsageEvents::UsageMonth,
                UsageEvents::Id,
            ],
            false,
        )
        .await?;
        Ok(())
    }
}
