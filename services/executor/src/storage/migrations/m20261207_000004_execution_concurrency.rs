//! Who started an execution (their running executions count against their
//! own limit as well as the workspace's), and why a queued one has not
//! started yet.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000004_execution_concurrency"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum Executions {
    Table,
    /// The person who started it; empty for webhooks, schedules and the mesh.
    StartedBy,
    /// Why a QUEUED execution waits, e.g. for a concurrency slot.
    QueueReason,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .add_column(ColumnDef::new(Executions::StartedBy).uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .add_column(ColumnDef::new(Executions::QueueReason).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Executions::QueueReason, Executions::StartedBy] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Executions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
