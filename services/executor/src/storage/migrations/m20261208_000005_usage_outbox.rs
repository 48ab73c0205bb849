//! The usage outbox: what metering has yet to acknowledge, written in the
//! transaction of the work it counts.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, pk_uuid, string, timestamp_with_time_zone, uuid};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000005_usage_outbox"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum UsageOutbox {
    Table,
    Id,
    WorkspaceId,
    IdempotencyKey,
    Kind,
    WorkflowId,
    ExecutionId,
    NodeId,
    OccurredAt,
    ProviderHost,
    Model,
    InputTokens,
    OutputTokens,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Rows are read oldest first by their time-ordered id and deleted
        // once delivered: the primary key is the only index needed.
        manager
            .create_table(
                Table::create()
                    .table(UsageOutbox::Table)
                    .col(pk_uuid(UsageOutbox::Id))
                    .col(uuid(UsageOutbox::WorkspaceId))
                    .col(string(UsageOutbox::IdempotencyKey))
                    .col(string(UsageOutbox::Kind))
                    .col(uuid(UsageOutbox::WorkflowId))
                    .col(uuid(UsageOutbox::ExecutionId))
                    .col(string(UsageOutbox::NodeId))
                    .col(timestamp_with_time_zone(UsageOutbox::OccurredAt))
                    .col(string(UsageOutbox::ProviderHost))
                    .col(string(UsageOutbox::Model))
                    .col(big_integer(UsageOutbox::InputTokens))
                    .col(big_integer(UsageOutbox::OutputTokens))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UsageOutbox::Table).to_owned())
            .await
    }
}
