//! The log of access changes: one row per role change, removal, revoked or
//! rotated API key, numbered in commit order, so that the edge can drop the
//! principal tokens it caches for them instead of waiting for them to age
//! out. Rows are kept for a short while only (see `storage::access_changes`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_pk_auto, string, timestamp_with_time_zone, uuid, uuid_null};
use tyboo_store::create_index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000002_access_changes"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum AccessChanges {
    Table,
    Id,
    WorkspaceId,
    UserId,
    ApiKeyId,
    Kind,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // An auto-increment key is the cursor: `bigserial` on PostgreSQL,
        // `INTEGER PRIMARY KEY AUTOINCREMENT` on SQLite, which never reuses
        // an id even after the newest rows are deleted. No foreign keys: a
        // change outlives nothing it names, and stays readable as plain ids.
        manager
            .create_table(
                Table::create()
                    .table(AccessChanges::Table)
                    .col(big_pk_auto(AccessChanges::Id))
                    .col(uuid(AccessChanges::WorkspaceId))
                    .col(uuid_null(AccessChanges::UserId))
                    .col(uuid_null(AccessChanges::ApiKeyId))
                    .col(string(AccessChanges::Kind))
                    .col(timestamp_with_time_zone(AccessChanges::CreateTime))
                    .to_owned(),
            )
            .await?;
        // Pruning looks for the newest row older than the retention.
        create_index(
            manager,
            "ix_access_changes_create_time",
            AccessChanges::Table,
            &[AccessChanges::CreateTime],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccessChanges::Table).to_owned())
            .await
    }
}
