//! What each workspace has used of its monthly quotas, reserved by
//! admission in the transaction that writes the execution.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string, uuid};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000006_monthly_usage"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum MonthlyUsage {
    Table,
    WorkspaceId,
    /// "2026-12", UTC.
    Month,
    Executions,
    Tasks,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MonthlyUsage::Table)
                    .col(uuid(MonthlyUsage::WorkspaceId))
                    .col(string(MonthlyUsage::Month))
                    .col(big_integer(MonthlyUsage::Executions))
                    .col(big_integer(MonthlyUsage::Tasks))
                    .primary_key(
                        Index::create()
                            .col(MonthlyUsage::WorkspaceId)
                            .col(MonthlyUsage::Month),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MonthlyUsage::Table).to_owned())
            .await
    }
}
