//! The limits an operator set for a workspace apart from the defaults.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string, text, timestamp_with_time_zone, uuid};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000004_workspace_limits"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum WorkspaceLimits {
    Table,
    WorkspaceId,
    /// The overrides as JSON (`tyboo_limits::LimitOverrides`): a new limit
    /// needs no migration, and an unset one reads as the default.
    Overrides,
    UpdateTime,
    UpdatedBy,
}

#[derive(Clone, Copy, DeriveIden)]
enum Workspaces {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WorkspaceLimits::Table)
                    .col(uuid(WorkspaceLimits::WorkspaceId).primary_key())
                    .col(text(WorkspaceLimits::Overrides))
                    .col(timestamp_with_time_zone(WorkspaceLimits::UpdateTime))
                    .col(string(WorkspaceLimits::UpdatedBy))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WorkspaceLimits::Table, WorkspaceLimits::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WorkspaceLimits::Table).to_owned())
            .await
    }
}
