//! The executor schema, built with sea-query's table builders so the same
//! migrations run on SQLite and PostgreSQL.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261126_000001_create_executor;
mod m20261126_000002_step_lost_workers;
mod m20261207_000003_webhook_tokens;
mod m20261207_000004_execution_concurrency;
mod m20261208_000005_usage_outbox;
mod m20261208_000006_monthly_usage;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_executor::Migration),
            Box::new(m20261126_000002_step_lost_workers::Migration),
            Box::new(m20261207_000003_webhook_tokens::Migration),
            Box::new(m20261207_000004_execution_concurrency::Migration),
            Box::new(m20261208_000005_usage_outbox::Migration),
            Box::new(m20261208_000006_monthly_usage::Migration),
        ]
    }
}
