//! Counts, per step, the deliveries whose worker stopped responding before a
//! result, so a step that crashes or stalls every worker it reaches can be
//! dead-lettered after `max_deliveries` of them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::integer;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000002_step_lost_workers"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum Steps {
    Table,
    LostWorkers,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Steps::Table)
                    .add_column(integer(Steps::LostWorkers).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Steps::Table)
                    .drop_column(Steps::LostWorkers)
                    .to_owned(),
            )
            .await
    }
}
