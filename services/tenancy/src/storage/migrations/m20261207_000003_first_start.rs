//! The first start's record: which organization, workspace, owner and API
//! key the first `tyboo up` created, so that a restart can hand the owner a
//! fresh key for as long as the first one has never been used.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string, timestamp_with_time_zone, uuid};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000003_first_start"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum FirstStart {
    Table,
    /// Always "first_start": the table holds one row at most.
    Id,
    OrganizationId,
    WorkspaceId,
    UserId,
    ApiKeyId,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign keys, as for access changes: the row names what the
        // first start made, and stays readable as plain ids.
        manager
            .create_table(
                Table::create()
                    .table(FirstStart::Table)
                    .col(string(FirstStart::Id).primary_key())
                    .col(uuid(FirstStart::OrganizationId))
                    .col(uuid(FirstStart::WorkspaceId))
                    .col(uuid(FirstStart::UserId))
                    .col(uuid(FirstStart::ApiKeyId))
                    .col(timestamp_with_time_zone(FirstStart::CreateTime))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FirstStart::Table).to_owned())
            .await
    }
}
